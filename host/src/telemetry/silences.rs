//! The admin endpoint's silence API, over the store every alert sink's router reads:
//!
//! - `GET /api/silences`: the silences that have not ended, as a JSON array;
//! - `POST /api/silences` with `{"matchers": [{"label": "service", "equal": "checkout"}],
//!   "duration": "2h", "comment": "…"}` (or `"ends_at"`, and optionally `"starts_at"`, in
//!   RFC 3339): `201 {"id": "…"}`, or `400 {"error": "…"}`;
//! - `DELETE /api/silences/{id}`: `200`, `404` when unknown, `409` for a silence written in the
//!   config.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::json;

use crate::alerts::silences::{DeleteError, SilenceRequest, SilenceStore};

/// A JSON answer.
fn answer(status: StatusCode, body: &impl Serialize) -> Response {
    match serde_json::to_string(body) {
        Ok(text) => (status, [(header::CONTENT_TYPE, "application/json")], text).into_response(),
        Err(error) => (StatusCode::INTERNAL_SERVER_ERROR, error.to_string()).into_response(),
    }
}

/// `GET /api/silences`.
pub async fn list(State(store): State<Arc<SilenceStore>>) -> Response {
    answer(StatusCode::OK, &store.list(chrono::Utc::now()))
}

/// `POST /api/silences`.
pub async fn create(State(store): State<Arc<SilenceStore>>, body: axum::body::Bytes) -> Response {
    let request: SilenceRequest = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(error) => {
            return answer(
                StatusCode::BAD_REQUEST,
                &json!({"error": format!("the body is not a silence: {error}")}),
            );
        }
    };
    match store.add(request, chrono::Utc::now()) {
        Ok(id) => {
            tracing::info!(silence = %id, "silence added");
            answer(StatusCode::CREATED, &json!({"id": id}))
        }
        Err(problem) => answer(StatusCode::BAD_REQUEST, &json!({"error": problem})),
    }
}

/// `DELETE /api/silences/{id}`.
pub async fn remove(State(store): State<Arc<SilenceStore>>, Path(id): Path<String>) -> Response {
    match store.delete(&id) {
        Ok(()) => {
            tracing::info!(silence = %id, "silence deleted");
            answer(StatusCode::OK, &json!({"deleted": id}))
        }
        Err(DeleteError::NotFound) => answer(
            StatusCode::NOT_FOUND,
            &json!({"error": format!("no silence `{id}` (unknown or ended)")}),
        ),
        Err(DeleteError::FromConfig) => answer(
            StatusCode::CONFLICT,
            &json!({"error": format!("silence `{id}` is written in the config ([[alerts.silences]]): change the config instead")}),
        ),
    }
}
