//! Sending one encoded export request over OTLP/gRPC (tonic) or OTLP/HTTP (reqwest, binary
//! protobuf), and sorting the answer the way the OTLP specification's client rules do:
//! accepted (perhaps partly), retryable (with the server's requested delay when it gives one),
//! or permanent.

use std::marker::PhantomData;
use std::str::FromStr;
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceResponse;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceResponse;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use prost::Message;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::metadata::{MetadataKey, MetadataMap, MetadataValue};
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Status};

use super::requests::EncodedRequest;
use crate::model::Signal;
use crate::receivers::otlp::rpc;

/// What the backend made of a request it took.
#[derive(Debug, Default, PartialEq)]
pub struct Accepted {
    /// Records it rejected (its `partial_success`), not to be resent.
    pub rejected: usize,
    /// Why, in its words.
    pub message: String,
}

/// Why a request was not taken.
#[derive(Debug, PartialEq)]
pub enum Failure {
    /// Try again later; after `retry_after` when the backend said how long.
    Retryable {
        /// What went wrong.
        message: String,
        /// The delay the backend asked for (`RetryInfo`, `Retry-After`).
        retry_after: Option<Duration>,
    },
    /// Never resend this request (bad data, refused, too large).
    Permanent {
        /// What went wrong.
        message: String,
    },
}

/// A connection to the backend, over one protocol.
pub enum Transport {
    /// OTLP/gRPC.
    Grpc {
        /// Lazily connected channel (reconnects by itself).
        channel: Channel,
        /// Headers, as gRPC metadata.
        metadata: MetadataMap,
    },
    /// OTLP/HTTP with binary protobuf bodies.
    Http {
        /// The HTTP client (keeps connections alive).
        client: reqwest::Client,
        /// `endpoint` without a trailing slash; `/v1/<signal>` is appended.
        base_url: String,
        /// Headers sent with every request.
        headers: reqwest::header::HeaderMap,
    },
}

impl Transport {
    /// A gRPC transport to `endpoint` (`http://host:port`); no connection is made until the
    /// first request.
    pub fn grpc(
        endpoint: &str,
        timeout: Duration,
        headers: &[(String, String)],
    ) -> anyhow::Result<Transport> {
        let channel = Endpoint::from_str(endpoint)
            .map_err(|error| anyhow::anyhow!("endpoint `{endpoint}`: {error}"))?
            .timeout(timeout)
            .connect_timeout(timeout)
            .connect_lazy();
        let mut metadata = MetadataMap::new();
        for (name, value) in headers {
            let key = MetadataKey::from_bytes(name.to_ascii_lowercase().as_bytes())
                .map_err(|error| anyhow::anyhow!("header `{name}`: {error}"))?;
            let value = MetadataValue::try_from(value.as_str())
                .map_err(|error| anyhow::anyhow!("header `{name}` value: {error}"))?;
            metadata.insert(key, value);
        }
        Ok(Transport::Grpc { channel, metadata })
    }

    /// An HTTP transport posting to `endpoint` + `/v1/<signal>`.
    pub fn http(
        endpoint: &str,
        timeout: Duration,
        headers: &[(String, String)],
    ) -> anyhow::Result<Transport> {
        // reqwest is built without a default crypto provider and refuses to build a client,
        // even for plain http, until one is installed (an error means one already is).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut header_map = reqwest::header::HeaderMap::new();
        for (name, value) in headers {
            let name = reqwest::header::HeaderName::from_bytes(name.as_bytes())
                .map_err(|error| anyhow::anyhow!("header `{name}`: {error}"))?;
            let value = reqwest::header::HeaderValue::from_str(value)
                .map_err(|error| anyhow::anyhow!("header `{name}` value: {error}"))?;
            header_map.insert(name, value);
        }
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .build()
            .map_err(|error| anyhow::anyhow!("cannot build the HTTP client: {error}"))?;
        Ok(Transport::Http {
            client,
            base_url: endpoint.trim_end_matches('/').to_owned(),
            headers: header_map,
        })
    }

    /// Sends one request once.
    pub async fn send(&self, request: &EncodedRequest) -> Result<Accepted, Failure> {
        match self {
            Transport::Grpc { channel, metadata } => {
                send_grpc(channel.clone(), metadata, request).await
            }
            Transport::Http {
                client,
                base_url,
                headers,
            } => send_http(client, base_url, headers, request).await,
        }
    }
}

/// The partial success of any of the three responses.
trait ExportResponse: Message + Default + Send + 'static {
    fn accepted(&self) -> Accepted;
}

impl ExportResponse for ExportLogsServiceResponse {
    fn accepted(&self) -> Accepted {
        self.partial_success
            .as_ref()
            .map(|partial| Accepted {
                rejected: usize::try_from(partial.rejected_log_records).unwrap_or(0),
                message: partial.error_message.clone(),
            })
            .unwrap_or_default()
    }
}

impl ExportResponse for ExportMetricsServiceResponse {
    fn accepted(&self) -> Accepted {
        self.partial_success
            .as_ref()
            .map(|partial| Accepted {
                rejected: usize::try_from(partial.rejected_data_points).unwrap_or(0),
                message: partial.error_message.clone(),
            })
            .unwrap_or_default()
    }
}

impl ExportResponse for ExportTraceServiceResponse {
    fn accepted(&self) -> Accepted {
        self.partial_success
            .as_ref()
            .map(|partial| Accepted {
                rejected: usize::try_from(partial.rejected_spans).unwrap_or(0),
                message: partial.error_message.clone(),
            })
            .unwrap_or_default()
    }
}

/// Sends an already encoded request body as is and decodes the response with prost.
struct PreEncodedCodec<R>(PhantomData<R>);

impl<R> Default for PreEncodedCodec<R> {
    fn default() -> Self {
        PreEncodedCodec(PhantomData)
    }
}

impl<R: Message + Default + Send + 'static> Codec for PreEncodedCodec<R> {
    type Encode = Bytes;
    type Decode = R;
    type Encoder = BytesEncoder;
    type Decoder = ResponseDecoder<R>;

    fn encoder(&mut self) -> BytesEncoder {
        BytesEncoder
    }

    fn decoder(&mut self) -> ResponseDecoder<R> {
        ResponseDecoder(PhantomData)
    }
}

struct BytesEncoder;

impl Encoder for BytesEncoder {
    type Item = Bytes;
    type Error = Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put(item);
        Ok(())
    }
}

struct ResponseDecoder<R>(PhantomData<R>);

impl<R: Message + Default> Decoder for ResponseDecoder<R> {
    type Item = R;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<R>, Status> {
        let response = R::decode(src.copy_to_bytes(src.remaining()))
            .map_err(|error| Status::internal(format!("undecodable response: {error}")))?;
        Ok(Some(response))
    }
}

async fn send_grpc(
    channel: Channel,
    metadata: &MetadataMap,
    request: &EncodedRequest,
) -> Result<Accepted, Failure> {
    match request.signal {
        Signal::Logs => {
            unary::<ExportLogsServiceResponse>(
                channel,
                metadata,
                request,
                "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
            )
            .await
        }
        Signal::Metrics => {
            unary::<ExportMetricsServiceResponse>(
                channel,
                metadata,
                request,
                "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
            )
            .await
        }
        Signal::Traces => {
            unary::<ExportTraceServiceResponse>(
                channel,
                metadata,
                request,
                "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
            )
            .await
        }
    }
}

async fn unary<R: ExportResponse>(
    channel: Channel,
    metadata: &MetadataMap,
    request: &EncodedRequest,
    path: &'static str,
) -> Result<Accepted, Failure> {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.map_err(|error| Failure::Retryable {
        message: format!("cannot connect: {error}"),
        retry_after: None,
    })?;
    let mut call = tonic::Request::new(request.body.clone());
    *call.metadata_mut() = metadata.clone();
    match grpc
        .unary(
            call,
            http::uri::PathAndQuery::from_static(path),
            PreEncodedCodec::<R>::default(),
        )
        .await
    {
        Ok(response) => Ok(response.into_inner().accepted()),
        Err(status) => Err(grpc_failure(&status)),
    }
}

/// Sorts a gRPC error by the OTLP specification's table of retryable codes.
fn grpc_failure(status: &Status) -> Failure {
    let retry_after = rpc::Status::decode(status.details())
        .ok()
        .and_then(|details| details.retry_delay());
    let message = format!("gRPC {:?}: {}", status.code(), status.message());
    let retryable = match status.code() {
        Code::Cancelled
        | Code::DeadlineExceeded
        | Code::Aborted
        | Code::OutOfRange
        | Code::Unavailable
        | Code::DataLoss => true,
        // Retryable only when the server says it will recover.
        Code::ResourceExhausted => retry_after.is_some(),
        _ => false,
    };
    if retryable {
        Failure::Retryable {
            message,
            retry_after,
        }
    } else {
        Failure::Permanent { message }
    }
}

async fn send_http(
    client: &reqwest::Client,
    base_url: &str,
    headers: &reqwest::header::HeaderMap,
    request: &EncodedRequest,
) -> Result<Accepted, Failure> {
    let url = format!("{base_url}/v1/{}", request.signal.as_str());
    let response = client
        .post(&url)
        .headers(headers.clone())
        .header(reqwest::header::CONTENT_TYPE, "application/x-protobuf")
        .body(request.body.clone())
        .send()
        .await
        .map_err(|error| Failure::Retryable {
            message: format!("POST {url}: {error}"),
            retry_after: None,
        })?;
    let status = response.status();
    let retry_after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let body = response.bytes().await.unwrap_or_default();
    if status.is_success() {
        // An answer we cannot read still means the data was taken.
        let accepted = match request.signal {
            Signal::Logs => ExportLogsServiceResponse::decode(body).map(|r| r.accepted()),
            Signal::Metrics => ExportMetricsServiceResponse::decode(body).map(|r| r.accepted()),
            Signal::Traces => ExportTraceServiceResponse::decode(body).map(|r| r.accepted()),
        };
        return Ok(accepted.unwrap_or_default());
    }
    let detail = rpc::Status::decode(body.clone())
        .ok()
        .map(|status| status.message)
        .filter(|message| !message.is_empty())
        .unwrap_or_else(|| String::from_utf8_lossy(&body).chars().take(200).collect());
    let message = format!("POST {url}: HTTP {status}: {detail}");
    match status.as_u16() {
        429 | 502 | 503 | 504 => Err(Failure::Retryable {
            message,
            retry_after,
        }),
        _ => Err(Failure::Permanent { message }),
    }
}

#[cfg(test)]
mod tests {
    use prost::Message;

    use super::*;

    #[test]
    fn grpc_codes_sort_as_the_specification_says() {
        assert!(matches!(
            grpc_failure(&Status::unavailable("down")),
            Failure::Retryable {
                retry_after: None,
                ..
            }
        ));
        assert!(matches!(
            grpc_failure(&Status::invalid_argument("bad")),
            Failure::Permanent { .. }
        ));
        assert!(matches!(
            grpc_failure(&Status::resource_exhausted("too big")),
            Failure::Permanent { .. }
        ));
        let details = rpc::Status::new(Code::ResourceExhausted, "busy")
            .with_retry_delay(Duration::from_secs(2))
            .encode_to_vec();
        let busy = Status::with_details(Code::ResourceExhausted, "busy", details.into());
        assert_eq!(
            grpc_failure(&busy),
            Failure::Retryable {
                message: "gRPC ResourceExhausted: busy".into(),
                retry_after: Some(Duration::from_secs(2)),
            }
        );
    }
}
