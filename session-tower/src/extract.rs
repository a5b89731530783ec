//! The handle handlers take, as an axum extractor.

use std::ops::Deref;

use axum_core::extract::FromRequestParts;
use axum_core::response::{IntoResponse, Response};
use http::StatusCode;
use http::request::Parts;
use session_core::{SessionStore, SessionToken};
use session_http::RequestSession;

/// The session of one request, handed to handlers by the [`SessionLayer`](crate::SessionLayer)
/// as an axum extractor (or from the request's extensions). Every method is
/// [`RequestSession`]'s, through `Deref`: lazy loads, one delta applied with the response,
/// `update` that loses nothing under concurrency.
#[derive(Debug, Clone)]
pub struct Session(RequestSession);

impl Session {
    pub(crate) fn new(session: RequestSession) -> Self {
        Session(session)
    }

    /// A session handle outside any layer, for unit tests of handlers without a server or
    /// Redis: see [`RequestSession::detached`].
    ///
    /// ```
    /// use session_core::MemoryStore;
    /// use session_tower::Session;
    ///
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let session = Session::detached(MemoryStore::new(), None);
    /// session.insert("n", &1).await?;
    /// assert!(session.save().await?.is_some(), "a session was created");
    /// # Ok::<_, session_core::Error>(()) }).unwrap();
    /// ```
    pub fn detached(store: impl SessionStore + 'static, token: Option<SessionToken>) -> Self {
        Session(RequestSession::detached(store, token))
    }
}

impl Deref for Session {
    type Target = RequestSession;

    fn deref(&self) -> &RequestSession {
        &self.0
    }
}

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
