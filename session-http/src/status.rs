//! The one error-to-HTTP-status policy, for every framework: for a handler's `?` on a
//! session call and for a save that failed at the end of a request alike. Statuses are
//! plain `u16`s, so each framework crate turns them into its own `http` version's type.

use session_core::Error;

/// The HTTP status of a session error, wherever a framework answers one:
///
/// - `409 Conflict`: a conflict (an [`update`](crate::RequestSession::update) that kept
///   conflicting); the client may try again.
/// - `400 Bad Request`: the data the client's requests accumulated broke a limit (the
///   session's size, a counter's range); the client can act on it.
/// - `503 Service Unavailable`: Redis could not be reached or did not answer in time, and
///   nothing is known to have changed; a retry may succeed.
/// - `500 Internal Server Error`: everything else, the handler's own mistakes included (an
///   invalid attribute name, a stored value read as the wrong type, a value that does not
///   serialize): the client can do nothing about those.
///
/// ```
/// use session_core::Error;
/// assert_eq!(session_http::status_of(&Error::Conflict { current_version: 2 }), 409);
/// assert_eq!(session_http::status_of(&Error::Timeout), 503);
/// ```
pub fn status_of(error: &Error) -> u16 {
    match error {
        Error::Conflict { .. } => 409,
        Error::LimitExceeded { .. } | Error::Overflow { .. } => 400,
        Error::Unavailable(_) | Error::Timeout => 503,
        _ => 500,
    }
}

/// The status of a handler's session error, logged: at `error` for a server error (the
/// handler's mistake, or Redis), at `warn` otherwise. The body a framework answers with is
/// [`error_message`].
///
/// ```
/// use session_core::Error;
/// let error = Error::Timeout;
/// assert_eq!(session_http::report(&error), 503); // and logged at `error`
/// assert_eq!(session_http::error_message(&error), "session error: timed out\n");
/// assert!(session_http::unsaved_message(&error).starts_with("session changes were not saved"));
/// ```
pub fn report(error: &Error) -> u16 {
    let status = status_of(error);
    if status >= 500 {
        tracing::error!(%error, status, "session error");
    } else {
        tracing::warn!(%error, status, "session error");
    }
    status
}

/// The plain-text body of a handler's session error: it names the error, never a token.
pub fn error_message(error: &Error) -> String {
    format!("session error: {error}\n")
}

/// The plain-text body of the response that replaces a handler's when its session changes
/// were not saved ([`SaveFailure::Fail`](crate::SaveFailure::Fail)), with the status
/// [`status_of`] gives; it names the error, never a token.
pub fn unsaved_message(error: &Error) -> String {
    format!("session changes were not saved: {error}\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use session_core::Error as E;

    #[test]
    fn each_error_has_the_status_of_the_one_policy() {
        let cases = [
            (E::Conflict { current_version: 3 }, 409),
            (
                E::LimitExceeded {
                    limit: session_core::Limit::SessionSize,
                    actual: 2,
                    max: 1,
                },
                400,
            ),
            // The handler's own mistakes: nothing the client can fix.
            (E::InvalidInput("bad name".into()), 500),
            (E::Timeout, 503),
            (E::Unavailable("down".into()), 503),
            (E::Corrupt("garbage".into()), 500),
        ];
        for (error, status) in cases {
            assert_eq!(status_of(&error), status, "{error}");
            assert_eq!(report(&error), status, "{error}");
            assert!(unsaved_message(&error).starts_with("session changes were not saved"));
        }
    }
}
