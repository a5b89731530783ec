//! The one error-to-HTTP-status policy of the layer: for a handler's `?` on a session call
//! ([`SessionError`]) and for a save that failed at the end of a request
//! ([`SaveFailure::Fail`](crate::SaveFailure::Fail)) alike.

use axum_core::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};

/// The HTTP status of a session error, wherever the layer answers one:
///
/// - `409 Conflict`: a conflict (an [`update`](crate::Session::update) that kept
///   conflicting); the client may try again.
/// - `400 Bad Request`: the data the client's requests accumulated broke a limit (the
///   session's size, a counter's range); the client can act on it.
/// - `503 Service Unavailable`: Redis could not be reached or did not answer in time, and
///   nothing is known to have changed; a retry may succeed.
/// - `500 Internal Server Error`: everything else, the handler's own mistakes included (an
///   invalid attribute name, a stored value read as the wrong type, a value that does not
///   serialize): the client can do nothing about those, and they are logged at `error`.
pub(crate) fn status_of(error: &session_core::Error) -> StatusCode {
    use session_core::Error as E;
    match error {
        E::Conflict { .. } => StatusCode::CONFLICT,
        E::LimitExceeded { .. } | E::Overflow { .. } => StatusCode::BAD_REQUEST,
        E::Unavailable(_) | E::Timeout => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The response that replaces a handler's when its session changes were not saved: the
/// status of [`status_of`], and a plain-text body that says so (it names the error, never a
/// token).
pub(crate) fn unsaved<B: From<String>>(error: &session_core::Error) -> http::Response<B> {
    let mut response = http::Response::new(B::from(format!(
        "session changes were not saved: {error}\n"
    )));
    *response.status_mut() = status_of(error);
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// A [`session_core::Error`] as a response, so handlers can use `?` on session calls, with
/// the status of the layer's one policy (`409`, `400`, `503` or `500`; see
/// [`SaveFailure::Fail`](crate::SaveFailure::Fail)). The body names the error; it never
/// holds a token.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct SessionError(#[from] pub session_core::Error);

impl IntoResponse for SessionError {
    fn into_response(self) -> Response {
        let status = status_of(&self.0);
        if status.is_server_error() {
            tracing::error!(error = %self.0, %status, "session error");
        } else {
            tracing::warn!(error = %self.0, %status, "session error");
        }
        (status, format!("session error: {}\n", self.0)).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use session_core::Error as E;

    #[test]
    fn a_saved_failure_and_a_handlers_error_share_one_status() {
        let cases = [
            (E::Conflict { current_version: 3 }, StatusCode::CONFLICT),
            (
                E::LimitExceeded {
                    limit: session_core::Limit::SessionSize,
                    actual: 2,
                    max: 1,
                },
                StatusCode::BAD_REQUEST,
            ),
            // The handler's own mistakes: nothing the client can fix.
            (
                E::InvalidInput("bad name".into()),
                StatusCode::INTERNAL_SERVER_ERROR,
            ),
            (E::Timeout, StatusCode::SERVICE_UNAVAILABLE),
            (
                E::Unavailable("down".into()),
                StatusCode::SERVICE_UNAVAILABLE,
            ),
            (
                E::Corrupt("garbage".into()),
                StatusCode::INTERNAL_SERVER_ERROR,
            ),
        ];
        for (error, status) in cases {
            let unsaved: http::Response<String> = unsaved(&error);
            assert_eq!(unsaved.status(), status, "{error}");
            assert!(unsaved.body().starts_with("session changes were not saved"));
            assert_eq!(
                unsaved.headers()[header::CONTENT_TYPE],
                "text/plain; charset=utf-8"
            );
            assert_eq!(SessionError(error).into_response().status(), status);
        }
    }
}
