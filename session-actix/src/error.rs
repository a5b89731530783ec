//! Session errors as actix-web responses, with the status of the one policy
//! ([`session_http::status_of`]).

use actix_web::http::StatusCode;
use actix_web::http::header::ContentType;
use actix_web::{HttpResponse, ResponseError};

/// The status `session_http` decided, as actix-web's (http 0.2) type.
pub(crate) fn status(code: u16) -> StatusCode {
    StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// A [`session_core::Error`] as a response, so handlers can use `?` on session calls, with
/// the status of the one policy (`409`, `400`, `503` or `500`; see
/// [`session_http::status_of`]). The body names the error; it never holds a token.
///
/// ```
/// use actix_web::ResponseError;
/// use session_actix::SessionError;
/// let error = SessionError(session_core::Error::Conflict { current_version: 4 });
/// assert_eq!(error.status_code().as_u16(), 409);
/// ```
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct SessionError(#[from] pub session_core::Error);

impl ResponseError for SessionError {
    fn status_code(&self) -> StatusCode {
        status(session_http::status_of(&self.0))
    }

    fn error_response(&self) -> HttpResponse {
        HttpResponse::build(status(session_http::report(&self.0)))
            .content_type(ContentType::plaintext())
            .body(session_http::error_message(&self.0))
    }
}
