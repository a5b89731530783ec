//! The handle handlers take, as an actix-web extractor.

use std::future::{Ready, ready};
use std::ops::Deref;

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpMessage, HttpRequest};
use session_core::{SessionStore, SessionToken};
use session_http::RequestSession;

/// The session of one request, handed to handlers by the
/// [`SessionMiddleware`](crate::SessionMiddleware) as an extractor. Every method is
/// [`RequestSession`]'s, through `Deref`.
///
/// A handler on a route the middleware does not wrap gets a `500` with a body that says so
/// (a programming error).
#[derive(Debug, Clone)]
pub struct Session(RequestSession);

impl Session {
    pub(crate) fn new(session: RequestSession) -> Self {
        Session(session)
    }

    /// A session handle outside any middleware, for unit tests of handlers without a
    /// server or Redis: see [`RequestSession::detached`].
    ///
    /// ```
    /// use session_actix::Session;
    /// use session_core::MemoryStore;
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

impl FromRequest for Session {
    type Error = actix_web::Error;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(req.extensions().get::<Session>().cloned().ok_or_else(|| {
            actix_web::error::ErrorInternalServerError("no SessionMiddleware wraps this route")
        }))
    }
}
