//! The tower `Layer` and `Service`.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use cookie::{Key, SameSite};
use http::{HeaderValue, Request, Response, header};
use session_core::{RetryPolicy, SessionStore};
use tower_layer::Layer;
use tower_service::Service;

use crate::config::{Config, CookieLifetime, SaveFailure};
use crate::session::{Finished, Session};

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
#[derive(Debug, Clone)]
pub struct SessionLayer {
    config: Arc<Config>,
}

impl SessionLayer {
    /// A layer over `store` (by value, or shared: an `Arc<MemoryStore>` or an
    /// `Arc<dyn SessionStore>` is a store too) with the default
    /// [`CookieConfig`](crate::CookieConfig), [`SaveFailure::Fail`], and no save when the
    /// handler answers with a server error.
    pub fn new(store: impl SessionStore + 'static) -> Self {
        SessionLayer {
            config: Arc::new(Config::new(Arc::new(store))),
        }
    }

    fn edit(mut self, f: impl FnOnce(&mut Config)) -> Self {
        f(Arc::make_mut(&mut self.config));
        self
    }

    /// The cookie's name (default `session`).
    pub fn cookie_name(self, name: impl Into<String>) -> Self {
        let name = name.into();
        self.edit(|c| c.cookie.name = name)
    }

    /// The cookie's `Domain` (default: none, so the cookie is host-only).
    pub fn domain(self, domain: impl Into<String>) -> Self {
        let domain = domain.into();
        self.edit(|c| c.cookie.domain = Some(domain))
    }

    /// The cookie's `Path` (default `/`).
    pub fn path(self, path: impl Into<String>) -> Self {
        let path = path.into();
        self.edit(|c| c.cookie.path = path)
    }

    /// The `Secure` attribute (default on). Turn off only for plain-HTTP development.
    pub fn secure(self, secure: bool) -> Self {
        self.edit(|c| c.cookie.secure = secure)
    }

    /// The `HttpOnly` attribute (default on).
    pub fn http_only(self, http_only: bool) -> Self {
        self.edit(|c| c.cookie.http_only = http_only)
    }

    /// The `SameSite` attribute (default `Lax`; `None` leaves it out).
    pub fn same_site(self, same_site: Option<SameSite>) -> Self {
        self.edit(|c| c.cookie.same_site = same_site)
    }

    /// Browser-session (default) or persistent cookies.
    pub fn lifetime(self, lifetime: CookieLifetime) -> Self {
        self.edit(|c| c.cookie.lifetime = lifetime)
    }

    /// Signs the cookie with `key` (HMAC-SHA256): a cookie with a bad signature counts as
    /// absent. Tokens are unguessable anyway; signing lets you rotate the key to invalidate
    /// every cookie at once.
    pub fn signed(self, key: Key) -> Self {
        self.edit(|c| c.cookie.key = Some(key))
    }

    /// What to do when saving fails (default [`SaveFailure::Fail`]).
    pub fn on_save_failure(self, failure: SaveFailure) -> Self {
        self.edit(|c| c.save_failure = failure)
    }

    /// How [`Session::update`] retries on conflict (default: [`RetryPolicy::default`], 10
    /// attempts). After the last conflict the handler gets
    /// [`Error::Conflict`](session_core::Error::Conflict) (a `409` through
    /// [`SessionError`](crate::SessionError)).
    pub fn retry(self, retry: RetryPolicy) -> Self {
        self.edit(|c| c.retry = retry)
    }

    /// The attributes requests under this layer read, so a load is
    /// [`load_some`](SessionStore::load_some) of these names (see [`Session::need`]).
    pub fn need(self, names: &[&str]) -> Self {
        let names = names.iter().map(|n| (*n).to_owned()).collect();
        self.edit(|c| c.need = Some(names))
    }

    /// Whether a response with a server-error status (5xx) still saves the request's
    /// deferred changes and rotation. Off by default, as in tower-sessions: a handler that
    /// failed halfway should not leave half its changes behind. What a handler applied at
    /// once ([`Session::update`], [`Session::delete`]) is applied either way.
    pub fn save_on_server_error(self, save: bool) -> Self {
        self.edit(|c| c.save_on_server_error = save)
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
    config: Arc<Config>,
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
        let config = self.config.clone();
        let (token, presented) = config.cookie.token_from(req.headers());
        let stale = presented && token.is_none();
        let session = Session::new(config, token, stale);
        req.extensions_mut().insert(session.clone());
        Box::pin(async move {
            let response = inner.call(req).await?;
            Ok(finish(session, response).await)
        })
    }
}

/// Writes what the end of the request decided ([`Session::finish`]) into the response: the
/// cookie, and under [`SaveFailure::Fail`] an error response in place of the handler's when
/// the changes were not saved.
async fn finish<B: From<String>>(session: Session, mut response: Response<B>) -> Response<B> {
    let failed = response.status().is_server_error();
    let Finished { set_cookie, error } = session.finish(failed).await;
    if let Some(error) = error {
        match session.inner.config.save_failure {
            SaveFailure::Fail => {
                tracing::error!(%error, "session changes not saved; failing the request");
                response = crate::error::unsaved(&error);
            }
            SaveFailure::LogAndContinue => {
                tracing::error!(%error, "session changes not saved; continuing as configured");
            }
        }
    }
    if let Some(cookie) = set_cookie {
        match HeaderValue::from_str(&cookie) {
            Ok(value) => {
                response.headers_mut().append(header::SET_COOKIE, value);
            }
            Err(_) => tracing::error!("session cookie is not a valid header value"),
        }
    }
    response
}
