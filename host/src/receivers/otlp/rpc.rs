//! The `google.rpc` messages OTLP uses to describe a failure: `Status` (the body of an OTLP/HTTP
//! error, the `grpc-status-details-bin` of an OTLP/gRPC one) and `RetryInfo` (how long an
//! overloaded server asks its client to wait). The receiver writes them; the OTLP exporter reads
//! them from its backend's answers.

use std::time::Duration;

use prost::Message;

/// `type_url` of a packed `google.rpc.RetryInfo`.
pub const RETRY_INFO_TYPE_URL: &str = "type.googleapis.com/google.rpc.RetryInfo";

/// `google.rpc.Status`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Status {
    /// A `google.rpc.Code` (the gRPC status code).
    #[prost(int32, tag = "1")]
    pub code: i32,
    /// Developer-facing message, in English.
    #[prost(string, tag = "2")]
    pub message: String,
    /// Packed detail messages such as `RetryInfo`.
    #[prost(message, repeated, tag = "3")]
    pub details: Vec<Any>,
}

/// `google.protobuf.Any`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Any {
    /// Which message `value` holds.
    #[prost(string, tag = "1")]
    pub type_url: String,
    /// The message, encoded.
    #[prost(bytes = "vec", tag = "2")]
    pub value: Vec<u8>,
}

/// `google.rpc.RetryInfo`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RetryInfo {
    /// How long the client should wait before retrying.
    #[prost(message, optional, tag = "1")]
    pub retry_delay: Option<ProtoDuration>,
}

/// `google.protobuf.Duration`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ProtoDuration {
    /// Whole seconds.
    #[prost(int64, tag = "1")]
    pub seconds: i64,
    /// Nanoseconds past `seconds`.
    #[prost(int32, tag = "2")]
    pub nanos: i32,
}

impl Status {
    /// A status with this code and message and no details.
    pub fn new(code: tonic::Code, message: impl Into<String>) -> Status {
        Status {
            code: code as i32,
            message: message.into(),
            details: Vec::new(),
        }
    }

    /// Adds a `RetryInfo` asking the client to wait `delay`.
    pub fn with_retry_delay(mut self, delay: Duration) -> Status {
        let retry_info = RetryInfo {
            retry_delay: Some(ProtoDuration {
                seconds: i64::try_from(delay.as_secs()).unwrap_or(i64::MAX),
                nanos: delay.subsec_nanos() as i32,
            }),
        };
        self.details.push(Any {
            type_url: RETRY_INFO_TYPE_URL.into(),
            value: retry_info.encode_to_vec(),
        });
        self
    }

    /// The delay of the first `RetryInfo` detail, if there is one.
    pub fn retry_delay(&self) -> Option<Duration> {
        self.details
            .iter()
            .filter(|detail| detail.type_url == RETRY_INFO_TYPE_URL)
            .find_map(|detail| RetryInfo::decode(detail.value.as_slice()).ok())
            .and_then(|info| info.retry_delay)
            .map(|delay| {
                Duration::new(
                    u64::try_from(delay.seconds).unwrap_or(0),
                    u32::try_from(delay.nanos).unwrap_or(0),
                )
            })
    }

    /// The OTLP/JSON form: `{"code": 3, "message": "..."}` (details are left out; an HTTP
    /// client reads the delay from `Retry-After`).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({ "code": self.code, "message": self.message })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_delay_round_trips_through_the_encoding() {
        let status = Status::new(tonic::Code::Unavailable, "busy")
            .with_retry_delay(Duration::from_millis(1500));
        let decoded = Status::decode(status.encode_to_vec().as_slice()).unwrap();
        assert_eq!(decoded.code, tonic::Code::Unavailable as i32);
        assert_eq!(decoded.retry_delay(), Some(Duration::from_millis(1500)));
        assert_eq!(Status::new(tonic::Code::Internal, "x").retry_delay(), None);
    }
}
