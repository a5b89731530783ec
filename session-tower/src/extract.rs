//! The axum extractor and the error type handlers can return with `?`.

use axum_core::extract::FromRequestParts;
use axum_core::response::{IntoResponse, Response};
use http::StatusCode;
use http::request::Parts;

use crate::session::Session;

/// The rejection when a handler takes a [`Session`] but no
/// [`SessionLayer`](crate::SessionLayer) wraps the route: a programming error, answered
/// with `500` and a clear body.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("no SessionLayer wraps this route")]
pub struct MissingSessionLayer;

impl IntoResponse for MissingSessionLayer {
    fn into_response(self) -> Response {
        (StatusCode::INTERNAL_SERVER_ERROR, self.to_string()).into_response()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Session {
    type Rejection = MissingSessionLayer;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Session>()
            .cloned()
            .ok_or(MissingSessionLayer)
    }
}

/// The HTTP status of a session error, wherever the layer answers one (a handler's `?`, a
/// save that failed): `409 Conflict` for a conflict (an [`update`](Session::update) that kept
/// conflicting), `400 Bad Request` for input the contract rejects (bad names, overflow, a
/// value of the wrong type, a limit), `503 Service Unavailable` when Redis could not be
/// reached or did not answer in time and nothing is known to have changed (a retry may
/// succeed), `500` for everything else.
pub(crate) fn status_of(error: &session_core::Error) -> StatusCode {
    use session_core::Error as E;
    match error {
        E::Conflict { .. } => StatusCode::CONFLICT,
        E::InvalidInput(_)
        | E::TypeMismatch { .. }
        | E::Overflow { .. }
        | E::LimitExceeded { .. }
        | E::Encode { .. } => StatusCode::BAD_REQUEST,
        E::Unavailable(_) | E::Timeout => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// A [`session_core::Error`] as a response, so handlers can use `?` on session calls: `409
/// Conflict` for a conflict, `400 Bad Request` for input the contract rejects, `503 Service
/// Unavailable` when Redis could not be reached or did not answer in time, `500` otherwise
/// (the same statuses as a save that fails under `SaveFailure::Fail`). The body names the
/// error; it never holds a token.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct SessionError(#[from] pub session_core::Error);

impl IntoResponse for SessionError {
    fn into_response(self) -> Response {
        let status = status_of(&self.0);
        tracing::warn!(error = %self.0, %status, "session error");
        (status, format!("session error: {}\n", self.0)).into_response()
    }
}
