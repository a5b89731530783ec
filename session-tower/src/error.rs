//! Session errors as axum responses, with the status of the one policy
//! ([`session_http::status_of`]), for a handler's `?` on a session call and for a save that
//! failed at the end of a request alike.

use axum_core::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};

/// The status `session_http` decided, as this `http` version's type.
fn status(code: u16) -> StatusCode {
    StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// The response that replaces a handler's when its session changes were not saved (see
/// [`Finished::replacement`](session_http::Finished::replacement)).
pub(crate) fn unsaved<B: From<String>>((code, body): (u16, String)) -> http::Response<B> {
    let mut response = http::Response::new(B::from(body));
    *response.status_mut() = status(code);
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// A [`session_core::Error`] as a response, so handlers can use `?` on session calls, with
/// the status of the one policy (`409`, `400`, `503` or `500`; see
/// [`session_http::status_of`]). The body names the error; it never holds a token.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct SessionError(#[from] pub session_core::Error);

impl IntoResponse for SessionError {
    fn into_response(self) -> Response {
        let code = session_http::report(&self.0);
        (status(code), session_http::error_message(&self.0)).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use session_core::Error as E;

    #[test]
    fn a_saved_failure_and_a_handlers_error_share_one_status() {
        for (error, code) in [
            (E::Conflict { current_version: 3 }, 409),
            (E::Timeout, 503),
            (E::InvalidInput("bad name".into()), 500),
        ] {
            let body = session_http::unsaved_message(&error);
            let unsaved: http::Response<String> = unsaved((session_http::status_of(&error), body));
            assert_eq!(unsaved.status().as_u16(), code, "{error}");
            assert!(unsaved.body().starts_with("session changes were not saved"));
            assert_eq!(
                unsaved.headers()[header::CONTENT_TYPE],
                "text/plain; charset=utf-8"
            );
            assert_eq!(SessionError(error).into_response().status().as_u16(), code);
        }
    }
}
