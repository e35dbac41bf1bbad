//! OTLP/HTTP: `POST /v1/logs`, `/v1/metrics` and `/v1/traces` with a binary protobuf
//! (`application/x-protobuf`) or OTLP/JSON (`application/json`) body, optionally
//! `Content-Encoding: gzip`. Answers are in the request's encoding; every 4xx and 5xx carries a
//! `google.rpc.Status` body, as the specification asks.
//!
//! OTLP/JSON is decoded by `opentelemetry-proto`'s serde types, which follow the specification's
//! deviations from the proto3 JSON mapping (hex trace and span ids, integer enums, 64-bit
//! integers as strings or numbers, unknown fields ignored). They insist on two fields a proto3
//! JSON encoder omits when empty (`values` of an `arrayValue` or `kvlistValue`, and `key` of a
//! key-value); a body they refuse is retried once with those filled in.

use std::io::Read;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use bytes::Bytes;
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tonic::Code;

use super::{Exports, drain_deadline, rpc};
use crate::intake::IntakeError;
use crate::receivers::http_body::{BodyError, read_bounded};

/// Spawns the HTTP server on `listener`; it stops accepting when the receiver's shutdown token
/// is cancelled and ends once the requests in hand are answered.
pub(super) fn spawn(
    listener: TcpListener,
    exports: Arc<Exports>,
    max_request_bytes: usize,
) -> JoinHandle<()> {
    let shutdown = exports.context.shutdown.clone();
    let name = exports.context.name.clone();
    let address = listener.local_addr().ok();
    let router = Router::new()
        .route("/v1/logs", post(logs))
        .route("/v1/metrics", post(metrics))
        .route("/v1/traces", post(traces))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(HttpState {
            exports,
            max_request_bytes,
        });
    let server =
        axum::serve(listener, router).with_graceful_shutdown(shutdown.clone().cancelled_owned());
    tokio::spawn(async move {
        tracing::info!(receiver = %name, address = ?address, "OTLP/HTTP listening");
        tokio::select! {
            result = server => {
                if let Err(error) = result {
                    tracing::error!(receiver = %name, %error, "OTLP/HTTP server failed");
                }
            }
            () = drain_deadline(shutdown) => {
                tracing::warn!(receiver = %name, "OTLP/HTTP requests still open after the drain time; stopped");
            }
        }
    })
}

#[derive(Clone)]
struct HttpState {
    exports: Arc<Exports>,
    max_request_bytes: usize,
}

/// How a request body is encoded, and so its answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Encoding {
    Protobuf,
    Json,
}

impl Encoding {
    fn content_type(self) -> HeaderValue {
        HeaderValue::from_static(match self {
            Encoding::Protobuf => "application/x-protobuf",
            Encoding::Json => "application/json",
        })
    }
}

/// A refused request: its HTTP status, a message, and the encoding to answer in.
struct Refusal {
    status: StatusCode,
    message: String,
    encoding: Encoding,
    retry_after_seconds: Option<u64>,
}

impl Refusal {
    fn new(status: StatusCode, message: impl Into<String>, encoding: Encoding) -> Refusal {
        Refusal {
            status,
            message: message.into(),
            encoding,
            retry_after_seconds: None,
        }
    }

    fn from_intake(error: IntakeError, encoding: Encoding) -> Refusal {
        // 429 when the buffer is full, 503 when it cannot be written or the gateway stops; both
        // retryable, with the delay to wait.
        let status = crate::receivers::http_body::status_of(&error);
        let retry_after_seconds = Some(error.retry_after_seconds());
        Refusal {
            status,
            message: error.to_string(),
            encoding,
            retry_after_seconds,
        }
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        // The specification leaves `Status.code` to the server; the closest gRPC code helps
        // whoever reads the body.
        let code = match self.status {
            StatusCode::BAD_REQUEST => Code::InvalidArgument,
            StatusCode::PAYLOAD_TOO_LARGE => Code::ResourceExhausted,
            StatusCode::SERVICE_UNAVAILABLE => Code::Unavailable,
            StatusCode::TOO_MANY_REQUESTS => Code::ResourceExhausted,
            StatusCode::NOT_FOUND => Code::NotFound,
            _ => Code::Unimplemented,
        };
        let status = rpc::Status::new(code, self.message);
        let body = match self.encoding {
            Encoding::Protobuf => status.encode_to_vec(),
            Encoding::Json => status.to_json().to_string().into_bytes(),
        };
        let mut response = (self.status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, self.encoding.content_type());
        if let Some(seconds) = self.retry_after_seconds {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

async fn not_found() -> Refusal {
    Refusal::new(
        StatusCode::NOT_FOUND,
        "unknown path: OTLP/HTTP serves POST /v1/logs, /v1/metrics and /v1/traces",
        Encoding::Protobuf,
    )
}

async fn method_not_allowed() -> Response {
    let mut response = Refusal::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "OTLP/HTTP takes POST only",
        Encoding::Protobuf,
    )
    .into_response();
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("POST"));
    response
}

/// An export response in either encoding. In OTLP/JSON the 64-bit `rejected_*` count is a
/// decimal string and an unset `partial_success` is left out.
trait ExportResponse: Message {
    /// The `partialSuccess` object, when set.
    fn partial_success_json(&self) -> Option<Value>;

    fn into_http(self, encoding: Encoding) -> Response
    where
        Self: Sized,
    {
        let body = match encoding {
            Encoding::Protobuf => self.encode_to_vec(),
            Encoding::Json => match self.partial_success_json() {
                Some(partial) => json!({ "partialSuccess": partial }),
                None => json!({}),
            }
            .to_string()
            .into_bytes(),
        };
        let mut response = (StatusCode::OK, body).into_response();
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, encoding.content_type());
        response
    }
}

impl ExportResponse for ExportLogsServiceResponse {
    fn partial_success_json(&self) -> Option<Value> {
        self.partial_success.as_ref().map(|partial| {
            json!({
                "rejectedLogRecords": partial.rejected_log_records.to_string(),
                "errorMessage": partial.error_message,
            })
        })
    }
}

impl ExportResponse for ExportMetricsServiceResponse {
    fn partial_success_json(&self) -> Option<Value> {
        self.partial_success.as_ref().map(|partial| {
            json!({
                "rejectedDataPoints": partial.rejected_data_points.to_string(),
                "errorMessage": partial.error_message,
            })
        })
    }
}

impl ExportResponse for ExportTraceServiceResponse {
    fn partial_success_json(&self) -> Option<Value> {
        self.partial_success.as_ref().map(|partial| {
            json!({
                "rejectedSpans": partial.rejected_spans.to_string(),
                "errorMessage": partial.error_message,
            })
        })
    }
}

async fn logs(State(state): State<HttpState>, headers: HeaderMap, body: Body) -> Response {
    let (request, encoding) =
        match read_request::<ExportLogsServiceRequest>(&state, &headers, body).await {
            Ok(decoded) => decoded,
            Err(refusal) => return refusal.into_response(),
        };
    match state.exports.logs(request).await {
        Ok(response) => response.into_http(encoding),
        Err(error) => Refusal::from_intake(error, encoding).into_response(),
    }
}

async fn metrics(State(state): State<HttpState>, headers: HeaderMap, body: Body) -> Response {
    let (request, encoding) =
        match read_request::<ExportMetricsServiceRequest>(&state, &headers, body).await {
            Ok(decoded) => decoded,
            Err(refusal) => return refusal.into_response(),
        };
    match state.exports.metrics(request).await {
        Ok(response) => response.into_http(encoding),
        Err(error) => Refusal::from_intake(error, encoding).into_response(),
    }
}

async fn traces(State(state): State<HttpState>, headers: HeaderMap, body: Body) -> Response {
    let (request, encoding) =
        match read_request::<ExportTraceServiceRequest>(&state, &headers, body).await {
            Ok(decoded) => decoded,
            Err(refusal) => return refusal.into_response(),
        };
    match state.exports.traces(request).await {
        Ok(response) => response.into_http(encoding),
        Err(error) => Refusal::from_intake(error, encoding).into_response(),
    }
}

/// Reads, inflates and decodes a request body, counting the request and any refusal.
async fn read_request<R: Message + Default + DeserializeOwned>(
    state: &HttpState,
    headers: &HeaderMap,
    body: Body,
) -> Result<(R, Encoding), Refusal> {
    state.exports.count_request();
    let decoded = decode_request(state.max_request_bytes, headers, body).await;
    if let Err(refusal) = &decoded {
        state.exports.count_malformed_request(&refusal.message);
    }
    decoded
}

async fn decode_request<R: Message + Default + DeserializeOwned>(
    max_request_bytes: usize,
    headers: &HeaderMap,
    body: Body,
) -> Result<(R, Encoding), Refusal> {
    let encoding = request_encoding(headers)?;
    let gzip = request_is_gzip(headers, encoding)?;
    let too_large = || {
        Refusal::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("request body is larger than {max_request_bytes} bytes"),
            encoding,
        )
    };
    let bytes = match read_bounded(headers, body, max_request_bytes).await {
        Ok(bytes) => bytes,
        Err(BodyError::TooLarge) => return Err(too_large()),
        Err(BodyError::Read(error)) => {
            return Err(Refusal::new(
                StatusCode::BAD_REQUEST,
                format!("cannot read the request body: {error}"),
                encoding,
            ));
        }
    };
    let bytes = if gzip {
        gunzip(&bytes, max_request_bytes).map_err(|error| match error {
            GunzipError::TooLarge => too_large(),
            GunzipError::Invalid(error) => Refusal::new(
                StatusCode::BAD_REQUEST,
                format!("invalid gzip body: {error}"),
                encoding,
            ),
        })?
    } else {
        bytes
    };
    let request = match encoding {
        Encoding::Protobuf => R::decode(bytes).map_err(|error| {
            Refusal::new(
                StatusCode::BAD_REQUEST,
                format!("malformed OTLP protobuf request: {error}"),
                encoding,
            )
        })?,
        Encoding::Json => decode_json(&bytes).map_err(|error| {
            Refusal::new(
                StatusCode::BAD_REQUEST,
                format!("malformed OTLP/JSON request: {error}"),
                encoding,
            )
        })?,
    };
    Ok((request, encoding))
}

fn request_encoding(headers: &HeaderMap) -> Result<Encoding, Refusal> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("");
    let media_type = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match media_type.as_str() {
        "application/x-protobuf" | "application/protobuf" => Ok(Encoding::Protobuf),
        "application/json" => Ok(Encoding::Json),
        _ => Err(Refusal::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!(
                "unsupported Content-Type `{content_type}`: use application/x-protobuf or application/json"
            ),
            Encoding::Protobuf,
        )),
    }
}

fn request_is_gzip(headers: &HeaderMap, encoding: Encoding) -> Result<bool, Refusal> {
    let content_encoding = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match content_encoding.as_str() {
        "" | "identity" => Ok(false),
        "gzip" | "x-gzip" => Ok(true),
        other => Err(Refusal::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("unsupported Content-Encoding `{other}`: use gzip or none"),
            encoding,
        )),
    }
}

enum GunzipError {
    TooLarge,
    Invalid(std::io::Error),
}

/// Inflates a gzip body, refusing to produce more than `limit` bytes.
fn gunzip(compressed: &[u8], limit: usize) -> Result<Bytes, GunzipError> {
    let mut inflated = Vec::with_capacity(compressed.len().saturating_mul(4).min(limit));
    flate2::read::MultiGzDecoder::new(compressed)
        .take(limit as u64 + 1)
        .read_to_end(&mut inflated)
        .map_err(GunzipError::Invalid)?;
    if inflated.len() > limit {
        return Err(GunzipError::TooLarge);
    }
    Ok(inflated.into())
}

/// Decodes OTLP/JSON; when the strict decoding fails, fills in the fields a proto3 encoder
/// leaves out when empty and tries once more, reporting the first error if that fails too.
fn decode_json<R: DeserializeOwned>(bytes: &[u8]) -> Result<R, serde_json::Error> {
    let first_error = match serde_json::from_slice::<R>(bytes) {
        Ok(request) => return Ok(request),
        Err(error) => error,
    };
    let Ok(mut value) = serde_json::from_slice::<Value>(bytes) else {
        return Err(first_error);
    };
    if !fill_omitted_fields(&mut value) {
        return Err(first_error);
    }
    serde_json::from_value(value).map_err(|_| first_error)
}

/// Adds `"values": []` to empty `arrayValue`/`kvlistValue` objects and `"key": ""` to
/// key-values without a key. Returns whether it changed anything.
fn fill_omitted_fields(value: &mut Value) -> bool {
    let mut changed = false;
    match value {
        Value::Object(object) => {
            for name in ["arrayValue", "kvlistValue"] {
                if let Some(Value::Object(inner)) = object.get_mut(name)
                    && !inner.contains_key("values")
                {
                    inner.insert("values".into(), Value::Array(Vec::new()));
                    changed = true;
                }
            }
            if object.contains_key("value") && !object.contains_key("key") {
                object.insert("key".into(), Value::String(String::new()));
                changed = true;
            }
            for inner in object.values_mut() {
                changed |= fill_omitted_fields(inner);
            }
        }
        Value::Array(items) => {
            for item in items {
                changed |= fill_omitted_fields(item);
            }
        }
        _ => {}
    }
    changed
}

#[cfg(test)]
mod tests {
    use opentelemetry_proto::tonic::common::v1::any_value;

    use super::*;

    #[test]
    fn json_with_omitted_empty_fields_decodes() {
        let body = br#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{
            "timeUnixNano":"1700000000000000000",
            "traceId":"5B8EFFF798038103D269B633813FC60C",
            "body":{"stringValue":"hi"},
            "attributes":[
                {"key":"empty","value":{"arrayValue":{}}},
                {"value":{"kvlistValue":{}}},
                {"key":"n","value":{"intValue":"42"}}
            ],
            "someFutureField":1
        }]}]}]}"#;
        let request: ExportLogsServiceRequest = decode_json(body).unwrap();
        let record = &request.resource_logs[0].scope_logs[0].log_records[0];
        assert_eq!(record.time_unix_nano, 1_700_000_000_000_000_000);
        assert_eq!(record.trace_id[0], 0x5b);
        assert_eq!(record.attributes.len(), 3);
        assert_eq!(record.attributes[1].key, "");
        assert_eq!(
            record.attributes[2].value.as_ref().unwrap().value,
            Some(any_value::Value::IntValue(42))
        );
        assert!(decode_json::<ExportLogsServiceRequest>(b"{\"resourceLogs\": 3}").is_err());
    }

    #[test]
    fn gunzip_stops_at_the_limit() {
        use std::io::Write;
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(&[b'a'; 10_000]).unwrap();
        let compressed = encoder.finish().unwrap();
        assert_eq!(
            gunzip(&compressed, 10_000).ok().map(|b| b.len()),
            Some(10_000)
        );
        assert!(matches!(
            gunzip(&compressed, 9_999),
            Err(GunzipError::TooLarge)
        ));
        assert!(matches!(
            gunzip(b"not gzip", 100),
            Err(GunzipError::Invalid(_))
        ));
    }
}
