//! The layer's configuration: cookie attributes, what to load, what to do when a save fails.

use std::sync::Arc;
use std::time::Duration;

use cookie::{Cookie, CookieJar, Key, SameSite};
use session_core::{SessionStore, SessionToken};

/// What the layer does when the changes of a request cannot be saved at response time
/// (the store is down, a write was rejected, a rotation failed).
///
/// The default is [`SaveFailure::Fail`]: the client is never told "done" for a change that
/// was not stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SaveFailure {
    /// Replace the handler's response with an error response, with the status a handler's
    /// `?` on the same error gives ([`SessionError`](crate::SessionError): `409` for a
    /// conflict, `400` for input the contract rejects, `503` when Redis could not be reached
    /// or answered too late, `500` otherwise) and a plain-text body that says the session
    /// changes were not saved. The error is logged at `error` level.
    #[default]
    Fail,
    /// Log the error at `error` level and send the handler's response unchanged. The
    /// request's session changes are lost; use this only for sessions whose changes are
    /// disposable (analytics counters, say).
    LogAndContinue,
}

/// Whether the cookie outlives the browser session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CookieLifetime {
    /// No `Max-Age`: the browser drops the cookie when it closes (the default).
    #[default]
    BrowserSession,
    /// `Max-Age` = the session's idle timeout, re-sent on every request that touches the
    /// session so it slides with the server-side expiry.
    Persistent,
}

/// Cookie attributes. Defaults: name `session`, path `/`, no domain, `Secure`, `HttpOnly`,
/// `SameSite=Lax`, a browser-session cookie, unsigned.
#[derive(Clone)]
pub struct CookieConfig {
    pub(crate) name: String,
    pub(crate) domain: Option<String>,
    pub(crate) path: String,
    pub(crate) secure: bool,
    pub(crate) http_only: bool,
    pub(crate) same_site: Option<SameSite>,
    pub(crate) lifetime: CookieLifetime,
    pub(crate) key: Option<Key>,
}

impl std::fmt::Debug for CookieConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CookieConfig")
            .field("name", &self.name)
            .field("domain", &self.domain)
            .field("path", &self.path)
            .field("secure", &self.secure)
            .field("http_only", &self.http_only)
            .field("same_site", &self.same_site)
            .field("lifetime", &self.lifetime)
            .field("signed", &self.key.is_some())
            .finish()
    }
}

impl Default for CookieConfig {
    fn default() -> Self {
        CookieConfig {
            name: "session".into(),
            domain: None,
            path: "/".into(),
            secure: true,
            http_only: true,
            same_site: Some(SameSite::Lax),
            lifetime: CookieLifetime::BrowserSession,
            key: None,
        }
    }
}

impl CookieConfig {
    /// Reads the session token from the request's `Cookie` headers. A missing, malformed,
    /// wrongly signed or non-token cookie gives `None` (a fresh session), never an error.
    pub(crate) fn token_from(&self, headers: &http::HeaderMap) -> (Option<SessionToken>, bool) {
        let mut presented = false;
        for value in headers.get_all(http::header::COOKIE) {
            let Ok(text) = value.to_str() else { continue };
            for cookie in Cookie::split_parse(text).flatten() {
                if cookie.name() != self.name {
                    continue;
                }
                presented = true;
                let value = match &self.key {
                    None => Some(cookie.value().to_owned()),
                    Some(key) => {
                        let mut jar = CookieJar::new();
                        jar.add_original(cookie.into_owned());
                        jar.signed(key)
                            .get(&self.name)
                            .map(|c| c.value().to_owned())
                    }
                };
                match value.as_deref().map(SessionToken::parse) {
                    Some(Ok(token)) => return (Some(token), true),
                    Some(Err(error)) => {
                        tracing::debug!(%error, "malformed session cookie ignored")
                    }
                    None => tracing::debug!("session cookie with a bad signature ignored"),
                }
            }
        }
        (None, presented)
    }

    fn base(&self, value: String) -> Cookie<'static> {
        let mut cookie = Cookie::build((self.name.clone(), value))
            .path(self.path.clone())
            .secure(self.secure)
            .http_only(self.http_only)
            .build();
        if let Some(same_site) = self.same_site {
            cookie.set_same_site(same_site);
        }
        if let Some(domain) = &self.domain {
            cookie.set_domain(domain.clone());
        }
        cookie
    }

    /// The `Set-Cookie` value that hands `token` to the client.
    pub(crate) fn set_cookie(&self, token: &SessionToken, idle_timeout: Duration) -> String {
        let mut cookie = self.base(token.expose());
        if self.lifetime == CookieLifetime::Persistent {
            let secs = i64::try_from(idle_timeout.as_secs()).unwrap_or(i64::MAX);
            cookie.set_max_age(cookie::time::Duration::seconds(secs));
        }
        match &self.key {
            None => cookie.to_string(),
            Some(key) => {
                let mut jar = CookieJar::new();
                jar.signed_mut(key).add(cookie);
                jar.delta()
                    .next()
                    .map(ToString::to_string)
                    .unwrap_or_default()
            }
        }
    }

    /// The `Set-Cookie` value that removes the cookie.
    pub(crate) fn remove_cookie(&self) -> String {
        let mut cookie = self.base(String::new());
        cookie.make_removal();
        cookie.to_string()
    }
}

/// Everything a [`SessionLayer`](crate::SessionLayer) is configured with.
#[derive(Clone)]
pub(crate) struct Config {
    pub(crate) store: Arc<dyn SessionStore>,
    pub(crate) cookie: CookieConfig,
    pub(crate) save_failure: SaveFailure,
    pub(crate) need: Option<Vec<String>>,
    pub(crate) retry: session_core::RetryPolicy,
    /// Whether a response with a 5xx status still saves the request's changes.
    pub(crate) save_on_server_error: bool,
}

impl Config {
    /// The defaults over `store`: the default [`CookieConfig`], [`SaveFailure::Fail`], full
    /// loads, the default retry policy, and no save after a server error.
    pub(crate) fn new(store: Arc<dyn SessionStore>) -> Self {
        Config {
            store,
            cookie: CookieConfig::default(),
            save_failure: SaveFailure::default(),
            need: None,
            retry: session_core::RetryPolicy::default(),
            save_on_server_error: false,
        }
    }
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("store", &self.store)
            .field("cookie", &self.cookie)
            .field("save_failure", &self.save_failure)
            .field("need", &self.need)
            .field("retry", &self.retry)
            .field("save_on_server_error", &self.save_on_server_error)
            .finish()
    }
}
