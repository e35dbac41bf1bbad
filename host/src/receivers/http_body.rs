//! Reading an HTTP request body with a size limit, the way every HTTP receiver needs it.
//!
//! A body over the limit is still read to its end (and thrown away, up to a bound) before the
//! receiver answers `413`: a server that answers first and closes with bytes unread has its
//! connection reset by the kernel, and the client sees a cut connection — which OTLP and
//! remote-write clients retry, over and over — instead of the `413` they must not retry.

use axum::body::Body;
use axum::http::{HeaderMap, header};
use bytes::Bytes;
use http_body_util::BodyExt;

/// Why a body was not read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyError {
    /// Longer than the limit (declared or as sent).
    TooLarge,
    /// The connection failed while reading.
    Read(String),
}

/// Reads the whole body if it is at most `limit` bytes long.
pub async fn read_bounded(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
) -> Result<Bytes, BodyError> {
    let limit = limit as u64;
    // How much of a refused body is read before giving up on answering it politely.
    let discard_limit = limit.saturating_mul(4).max(64 << 20);
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    let mut over = declared.is_some_and(|length| length > limit);
    let mut seen: u64 = 0;
    let mut collected = bytes::BytesMut::new();
    let mut body = body;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|error| BodyError::Read(error.to_string()))?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        seen += data.len() as u64;
        over |= seen > limit;
        if over {
            if seen > discard_limit {
                break;
            }
            continue;
        }
        collected.extend_from_slice(&data);
    }
    if over {
        return Err(BodyError::TooLarge);
    }
    Ok(collected.freeze())
}

/// The HTTP status for a batch the intake did not take: 429 when the buffer is full, 503 when it
/// cannot be written or the gateway is stopping. Both are retryable; send `Retry-After` with it.
pub fn status_of(error: &crate::intake::IntakeError) -> axum::http::StatusCode {
    if error.is_overload() {
        axum::http::StatusCode::TOO_MANY_REQUESTS
    } else {
        axum::http::StatusCode::SERVICE_UNAVAILABLE
    }
}
