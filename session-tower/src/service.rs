//! The tower `Layer` and `Service`.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use cookie::{Key, SameSite};
use http::{HeaderValue, Request, Response, header};
use session_core::{Error, RetryPolicy, SessionStore};
use tower_layer::Layer;
use tower_service::Service;

use crate::config::{Config, CookieConfig, CookieLifetime, SaveFailure};
use crate::session::Session;

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
    /// A layer over `store` with the default [`CookieConfig`] and [`SaveFailure::Fail`].
    pub fn new(store: Arc<dyn SessionStore>) -> Self {
        SessionLayer {
            config: Arc::new(Config {
                store,
                cookie: CookieConfig::default(),
                save_failure: SaveFailure::default(),
                need: None,
                retry: RetryPolicy::default(),
            }),
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

/// Saves the request's changes and sets the cookie.
async fn finish<B: From<String>>(session: Session, mut response: Response<B>) -> Response<B> {
    let config = &session.inner.config;
    let mut state = session.inner.state.lock().await;
    state.finished = true;
    let mut outcome = session.save_pending(&mut state).await;
    // Set when another request rotated the token first: its response carries the new
    // cookie, which this one must not overwrite with the old token.
    let mut leave_cookie = false;
    if outcome.is_ok()
        && state.rotate
        && !state.new_token
        && let Some(old) = state.token.clone()
    {
        outcome = match config.store.rotate(&old).await {
            Ok(new) => {
                tracing::debug!(old = %old.handle(), new = %new.handle(), "session rotated");
                state.token = Some(new);
                state.new_token = true;
                Ok(())
            }
            Err(Error::Rotated { successor }) => {
                // A concurrent request (a double-submitted login, another tab) rotated it
                // first and sends the client the new token; this response leaves the cookie
                // alone, and the old token forwards until then.
                tracing::debug!(old = %old.handle(), %successor, "session rotated by another request");
                leave_cookie = true;
                Ok(())
            }
            Err(Error::NotFound { .. }) => {
                // Deleted or expired meanwhile: nothing to rotate, the cookie goes.
                tracing::debug!(old = %old.handle(), "session gone before rotation");
                state.token = None;
                state.stale_cookie = true;
                Ok(())
            }
            Err(error) => Err(error),
        };
    }
    let cookie = match (&state.token, state.new_token) {
        _ if leave_cookie => None,
        (Some(token), true) => Some(config.cookie.set_cookie(token, idle(&state, config))),
        (Some(token), false)
            if config.cookie.lifetime == CookieLifetime::Persistent && state.touched =>
        {
            Some(config.cookie.set_cookie(token, idle(&state, config)))
        }
        (None, _) if state.deleted || state.stale_cookie => Some(config.cookie.remove_cookie()),
        _ => None,
    };
    drop(state);
    if let Err(error) = outcome {
        let status = crate::extract::status_of(&error);
        match config.save_failure {
            SaveFailure::Fail => {
                tracing::error!(%error, "session changes not saved; failing the request");
                response = Response::new(B::from(format!(
                    "session changes were not saved: {error}\n"
                )));
                *response.status_mut() = status;
                response.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/plain; charset=utf-8"),
                );
            }
            SaveFailure::LogAndContinue => {
                tracing::error!(%error, "session changes not saved; continuing as configured");
            }
        }
    }
    if let Some(cookie) = cookie {
        match HeaderValue::from_str(&cookie) {
            Ok(value) => {
                response.headers_mut().append(header::SET_COOKIE, value);
            }
            Err(_) => tracing::error!("session cookie is not a valid header value"),
        }
    }
    response
}

fn idle(state: &crate::session::State, config: &Config) -> Duration {
    state
        .idle_timeout
        .unwrap_or_else(|| config.store.policy().default_idle_timeout)
}
