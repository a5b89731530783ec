//! The tower `Layer` and `Service`.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{HeaderValue, Request, Response, header};
use session_core::{RetryPolicy, SessionStore};
use session_http::{Key, SameSite};
use tower_layer::Layer;
use tower_service::Service;

use session_http::{CookieLifetime, Finished, RequestSession, SaveFailure, SessionConfig};

use crate::extract::Session;

/// A tower [`Layer`] that gives every request a [`Session`] (in its extensions; handlers
/// take it with the axum extractor) and saves the request's changes when the response is
/// produced.
///
/// ```
/// use std::sync::Arc;
/// use axum::{Router, routing::post};
/// use session_core::MemoryStore;
/// use session_tower::{SaveFailure, Session, SessionLayer};
///
/// async fn visit(session: Session) -> Result<&'static str, session_tower::SessionError> {
///     session.increment("visits", 1).await?; // no load: applied at response time
///     Ok("counted")
/// }
///
/// let layer = SessionLayer::new(Arc::new(MemoryStore::new()))
///     .cookie_name("sid")
///     .secure(false) // plain-HTTP development only
///     .on_save_failure(SaveFailure::Fail);
/// let app: Router = Router::new().route("/visit", post(visit)).layer(layer);
/// ```
///
/// The settings are [`SessionConfig`]'s, the one configuration every framework crate
/// shares; each method here sets the one of the same name there.
#[derive(Debug, Clone)]
pub struct SessionLayer {
    config: Arc<SessionConfig>,
}

impl From<SessionConfig> for SessionLayer {
    fn from(config: SessionConfig) -> Self {
        SessionLayer {
            config: Arc::new(config),
        }
    }
}

impl SessionLayer {
    /// A layer over `store` (by value, or shared: an `Arc<MemoryStore>` or an
    /// `Arc<dyn SessionStore>` is a store too) with the default
    /// [`CookieConfig`](crate::CookieConfig), [`SaveFailure::Fail`], and no save when the
    /// handler answers with a server error.
    pub fn new(store: impl SessionStore + 'static) -> Self {
        SessionLayer::from(SessionConfig::new(store))
    }

    fn edit(mut self, f: impl FnOnce(SessionConfig) -> SessionConfig) -> Self {
        let config = Arc::unwrap_or_clone(self.config);
        self.config = Arc::new(f(config));
        self
    }

    /// The cookie's name (default `session`).
    pub fn cookie_name(self, name: impl Into<String>) -> Self {
        self.edit(|c| c.cookie_name(name))
    }

    /// The cookie's `Domain` (default: none, so the cookie is host-only).
    pub fn domain(self, domain: impl Into<String>) -> Self {
        self.edit(|c| c.domain(domain))
    }

    /// The cookie's `Path` (default `/`).
    pub fn path(self, path: impl Into<String>) -> Self {
        self.edit(|c| c.path(path))
    }

    /// The `Secure` attribute (default on). Turn off only for plain-HTTP development.
    pub fn secure(self, secure: bool) -> Self {
        self.edit(|c| c.secure(secure))
    }

    /// The `HttpOnly` attribute (default on).
    pub fn http_only(self, http_only: bool) -> Self {
        self.edit(|c| c.http_only(http_only))
    }

    /// The `SameSite` attribute (default `Lax`; `None` leaves it out).
    pub fn same_site(self, same_site: Option<SameSite>) -> Self {
        self.edit(|c| c.same_site(same_site))
    }

    /// Also reads the session token from the cookie `name` of the library this application
    /// ran on before (tower-sessions: `id`), when our cookie is absent, and hands it over:
    /// the response sets our cookie with the same token and removes the old cookie (with
    /// this layer's path and domain). Pair it with a store that imports the old library's
    /// sessions ([`Importing`](session_core::import::Importing)), so a signed-in user stays
    /// signed in across the switch. The old cookie is read unprotected, as tower-sessions'
    /// default writes it; see [`SessionConfig::legacy_cookie`] for what that means for a
    /// signed cookie of ours. Remove this setting once the old sessions have expired.
    ///
    /// ```
    /// # use session_core::MemoryStore;
    /// let layer = session_tower::SessionLayer::new(MemoryStore::new()).legacy_cookie("id");
    /// ```
    pub fn legacy_cookie(self, name: impl Into<String>) -> Self {
        self.edit(|c| c.legacy_cookie(name))
    }

    /// As [`legacy_cookie`](SessionLayer::legacy_cookie), for an old cookie signed with
    /// `key`, the key of tower-sessions' `SessionManagerLayer::with_signed`
    /// ([`SessionConfig::legacy_cookie_signed`]).
    ///
    /// ```
    /// # use session_core::MemoryStore;
    /// # let old_key = session_tower::Key::generate();
    /// let layer = session_tower::SessionLayer::new(MemoryStore::new())
    ///     .legacy_cookie_signed("id", old_key);
    /// ```
    pub fn legacy_cookie_signed(self, name: impl Into<String>, key: Key) -> Self {
        self.edit(|c| c.legacy_cookie_signed(name, key))
    }

    /// As [`legacy_cookie`](SessionLayer::legacy_cookie), for an old cookie encrypted with
    /// `key`, the key of tower-sessions' `SessionManagerLayer::with_private`
    /// ([`SessionConfig::legacy_cookie_private`]).
    ///
    /// ```
    /// # use session_core::MemoryStore;
    /// # let old_key = session_tower::Key::generate();
    /// let layer = session_tower::SessionLayer::new(MemoryStore::new())
    ///     .legacy_cookie_private("id", old_key);
    /// ```
    pub fn legacy_cookie_private(self, name: impl Into<String>, key: Key) -> Self {
        self.edit(|c| c.legacy_cookie_private(name, key))
    }

    /// Browser-session (default) or persistent cookies.
    pub fn lifetime(self, lifetime: CookieLifetime) -> Self {
        self.edit(|c| c.lifetime(lifetime))
    }

    /// Signs the cookie with `key` (HMAC-SHA256): a cookie with a bad signature counts as
    /// absent. Tokens are unguessable anyway; signing lets you rotate the key to invalidate
    /// every cookie at once.
    pub fn signed(self, key: Key) -> Self {
        self.edit(|c| c.signed(key))
    }

    /// Encrypts the cookie with `key` (AES-256-GCM), as actix-session does by default: a
    /// cookie that does not decrypt counts as absent.
    pub fn private(self, key: Key) -> Self {
        self.edit(|c| c.private(key))
    }

    /// What to do when saving fails (default [`SaveFailure::Fail`]).
    pub fn on_save_failure(self, failure: SaveFailure) -> Self {
        self.edit(|c| c.on_save_failure(failure))
    }

    /// How [`Session::update`](crate::RequestSession::update) retries on conflict (default: [`RetryPolicy::default`], 10
    /// attempts). After the last conflict the handler gets
    /// [`Error::Conflict`](session_core::Error::Conflict) (a `409` through
    /// [`SessionError`](crate::SessionError)).
    pub fn retry(self, retry: RetryPolicy) -> Self {
        self.edit(|c| c.retry(retry))
    }

    /// The attributes requests under this layer read, so a load is
    /// [`load_some`](SessionStore::load_some) of these names (see [`Session::need`](crate::RequestSession::need)).
    pub fn need(self, names: &[&str]) -> Self {
        self.edit(|c| c.need(names))
    }

    /// Whether a response with a server-error status (5xx) still saves the request's
    /// deferred changes and rotation. Off by default, as in tower-sessions: a handler that
    /// failed halfway should not leave half its changes behind. What a handler applied at
    /// once ([`Session::update`](crate::RequestSession::update), [`Session::delete`](crate::RequestSession::delete)) is applied either way.
    pub fn save_on_server_error(self, save: bool) -> Self {
        self.edit(|c| c.save_on_server_error(save))
    }
}

impl<S> Layer<S> for SessionLayer {
    type Service = SessionService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        SessionService {
            inner,
            config: self.config.clone(),
        }
    }
}

/// The [`Service`] made by [`SessionLayer`].
#[derive(Debug, Clone)]
pub struct SessionService<S> {
    inner: S,
    config: Arc<SessionConfig>,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for SessionService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    ReqBody: Send + 'static,
    ResBody: From<String> + Send + 'static,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<ReqBody>) -> Self::Future {
        // The clone that was driven to readiness serves this request.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let cookies = req.headers().get_all(header::COOKIE).iter();
        let session = RequestSession::start(&self.config, cookies.filter_map(|v| v.to_str().ok()));
        req.extensions_mut().insert(Session::new(session.clone()));
        Box::pin(async move {
            let response = inner.call(req).await?;
            Ok(finish(session, response).await)
        })
    }
}

/// Writes what the end of the request decided ([`RequestSession::finish`]) into the
/// response: the cookies, and under [`SaveFailure::Fail`] an error response in place of the
/// handler's when the changes were not saved.
async fn finish<B: From<String>>(
    session: RequestSession,
    mut response: Response<B>,
) -> Response<B> {
    let failed = response.status().is_server_error();
    let finished: Finished = session.finish(failed).await;
    if let Some(replacement) = finished.replacement() {
        response = crate::error::unsaved(replacement);
    }
    for cookie in finished.set_cookies {
        match HeaderValue::from_str(&cookie) {
            Ok(mut value) => {
                // It holds a token: kept out of logs that print headers.
                value.set_sensitive(true);
                response.headers_mut().append(header::SET_COOKIE, value);
            }
            Err(_) => tracing::error!("session cookie is not a valid header value"),
        }
    }
    response
}
