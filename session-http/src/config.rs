//! The configuration a framework's session middleware runs with: the store, cookie
//! attributes, what to load, what to do when a save fails.

use std::sync::Arc;
use std::time::Duration;

use cookie::{Cookie, CookieJar, Key, SameSite};
use session_core::{RetryPolicy, SessionStore, SessionToken};

use crate::legacy::{Legacy, LegacyToken, Read};

/// What the middleware does when the changes of a request cannot be saved at response time
/// (the store is down, a write was rejected, a rotation failed).
///
/// The default is [`SaveFailure::Fail`]: the client is never told "done" for a change that
/// was not stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SaveFailure {
    /// Replace the handler's response with an error response, with the status a handler's
    /// `?` on the same error gives ([`status_of`](crate::status_of): `409` for a conflict,
    /// `400` for a limit the client's data broke, `503` when Redis could not be reached or
    /// answered too late, `500` otherwise) and a plain-text body that says the session
    /// changes were not saved ([`unsaved_message`](crate::unsaved_message)). The error is
    /// logged at `error` level.
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
    pub(crate) key: Option<(Key, Protection)>,
    /// Another library's session cookie, read when ours is absent and then replaced by
    /// ours (see [`SessionConfig::legacy_cookie`]).
    pub(crate) legacy: Option<Legacy>,
    /// How the legacy cookie's value becomes a token (default: it is one).
    pub(crate) legacy_token: Option<Arc<dyn LegacyToken>>,
}

/// How the cookie's value is protected with a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Protection {
    /// HMAC-SHA256 signed.
    Signed,
    /// AES-256-GCM encrypted (and so authenticated).
    Private,
}

/// The session cookies a request presented.
#[derive(Debug, Default)]
pub(crate) struct Presented {
    /// The token to work on, from our cookie, else from the legacy one.
    pub(crate) token: Option<SessionToken>,
    /// Our cookie was presented but held no valid token.
    pub(crate) stale: bool,
    /// The token came from the legacy cookie: the response moves it into ours.
    pub(crate) from_legacy: bool,
    /// The legacy cookie was presented and read (or is unprotected): the response removes
    /// it. A protected one that does not open stays.
    pub(crate) legacy: bool,
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
            .field("protection", &self.key.as_ref().map(|(_, p)| p))
            .field("legacy", &self.legacy.as_ref().map(|l| &l.name))
            .field(
                "legacy_protection",
                &self
                    .legacy
                    .as_ref()
                    .and_then(|l| l.key.as_ref().map(|(_, p)| p)),
            )
            .field("legacy_token", &self.legacy_token)
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
            legacy: None,
            legacy_token: None,
        }
    }
}

impl CookieConfig {
    /// Reads the session token from the request's `Cookie` headers: from our cookie, else
    /// from the legacy cookie if one is configured. A missing, malformed, wrongly signed or
    /// non-token cookie gives no token (a fresh session), never an error.
    pub(crate) fn token_from<'h>(
        &self,
        cookie_headers: impl IntoIterator<Item = &'h str>,
    ) -> Presented {
        let mut presented = Presented::default();
        let mut ours_presented = false;
        let mut legacy_cookies = Vec::new();
        let cookies = cookie_headers
            .into_iter()
            .flat_map(|text| Cookie::split_parse(text).flatten());
        for cookie in cookies {
            if cookie.name() == self.name {
                ours_presented = true;
                if presented.token.is_none() {
                    presented.token = verified(cookie, self.key.as_ref());
                }
            } else if self
                .legacy
                .as_ref()
                .is_some_and(|l| l.name == cookie.name())
            {
                legacy_cookies.push(cookie);
            }
        }
        presented.stale = ours_presented && presented.token.is_none();
        let Some(legacy) = self.legacy.as_ref().filter(|_| !legacy_cookies.is_empty()) else {
            return presented;
        };
        if presented.token.is_some() {
            // Ours carries the session: the old cookie is not read (for a mapped value that
            // costs a keyed hash), only removed.
            presented.legacy = true;
            return presented;
        }
        for cookie in legacy_cookies {
            match legacy.read(cookie, self.legacy_token.as_deref()) {
                Read::Token(token) => {
                    presented.token = Some(token);
                    presented.from_legacy = true;
                    presented.legacy = true;
                    break;
                }
                Read::Unusable => presented.legacy = true,
                Read::Unopened => {}
            }
        }
        presented
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
        let Some((key, protection)) = &self.key else {
            return cookie.to_string();
        };
        let mut jar = CookieJar::new();
        match protection {
            Protection::Signed => jar.signed_mut(key).add(cookie),
            Protection::Private => jar.private_mut(key).add(cookie),
        }
        jar.delta()
            .next()
            .map(ToString::to_string)
            .unwrap_or_default()
    }

    /// The `Set-Cookie` value that removes the cookie.
    pub(crate) fn remove_cookie(&self) -> String {
        let mut cookie = self.base(String::new());
        cookie.make_removal();
        cookie.to_string()
    }

    /// The `Set-Cookie` value that removes the legacy cookie (with our path and domain).
    pub(crate) fn remove_legacy_cookie(&self) -> Option<String> {
        let mut cookie = self.base(String::new());
        cookie.set_name(self.legacy.as_ref()?.name.clone());
        cookie.make_removal();
        Some(cookie.to_string())
    }
}

/// The token in our `cookie`, if its signature or encryption (when `key` protects it) and
/// its form are valid.
fn verified(cookie: Cookie<'_>, key: Option<&(Key, Protection)>) -> Option<SessionToken> {
    parse(opened(cookie, key)?.value())
}

/// The cookie as sent, if its signature or encryption (when `key` protects it) is valid.
pub(crate) fn opened<'c>(
    cookie: Cookie<'c>,
    key: Option<&(Key, Protection)>,
) -> Option<Cookie<'c>> {
    let Some((key, protection)) = key else {
        return Some(cookie);
    };
    let jar = CookieJar::new();
    let opened = match protection {
        Protection::Signed => jar.signed(key).verify(cookie.into_owned()),
        Protection::Private => jar.private(key).decrypt(cookie.into_owned()),
    };
    if opened.is_none() {
        tracing::debug!(?protection, "session cookie that does not verify ignored");
    }
    opened
}

/// A cookie value as a token; a malformed one is logged and ignored.
pub(crate) fn parse(value: &str) -> Option<SessionToken> {
    SessionToken::parse(value)
        .map_err(|error| tracing::debug!(%error, "malformed session cookie ignored"))
        .ok()
}

/// Everything a framework's session middleware runs with: the store, the cookie, what to
/// load, retries, and what to do when saving fails or the handler failed. Built once at
/// start-up and shared by every request; the framework crates (`session-tower`,
/// `session-actix`) take it whole or build it through their own constructors.
///
/// ```
/// use session_core::MemoryStore;
/// use session_http::{CookieLifetime, SaveFailure, SessionConfig};
///
/// let config = SessionConfig::new(MemoryStore::new())
///     .cookie_name("sid")
///     .lifetime(CookieLifetime::Persistent)
///     .on_save_failure(SaveFailure::Fail);
/// ```
#[derive(Clone)]
pub struct SessionConfig {
    pub(crate) store: Arc<dyn SessionStore>,
    pub(crate) cookie: CookieConfig,
    pub(crate) save_failure: SaveFailure,
    pub(crate) need: Option<Vec<String>>,
    pub(crate) retry: RetryPolicy,
    /// Whether a response with a 5xx status still saves the request's changes.
    pub(crate) save_on_server_error: bool,
}

impl SessionConfig {
    /// The defaults over `store` (by value, or shared: an `Arc<MemoryStore>` or an
    /// `Arc<dyn SessionStore>` is a store too): the default [`CookieConfig`],
    /// [`SaveFailure::Fail`], full loads, the default retry policy, and no save after a
    /// server error.
    pub fn new(store: impl SessionStore + 'static) -> Self {
        SessionConfig {
            store: Arc::new(store),
            cookie: CookieConfig::default(),
            save_failure: SaveFailure::default(),
            need: None,
            retry: RetryPolicy::default(),
            save_on_server_error: false,
        }
    }

    /// The cookie's name (default `session`).
    pub fn cookie_name(mut self, name: impl Into<String>) -> Self {
        self.cookie.name = name.into();
        self
    }

    /// The cookie's `Domain` (default: none, so the cookie is host-only).
    pub fn domain(mut self, domain: impl Into<String>) -> Self {
        self.cookie.domain = Some(domain.into());
        self
    }

    /// The cookie's `Path` (default `/`).
    pub fn path(mut self, path: impl Into<String>) -> Self {
        self.cookie.path = path.into();
        self
    }

    /// Whether the cookie is `Secure` (default `true`; turn off only for plain-HTTP
    /// development).
    pub fn secure(mut self, secure: bool) -> Self {
        self.cookie.secure = secure;
        self
    }

    /// Whether the cookie is `HttpOnly` (default `true`).
    pub fn http_only(mut self, http_only: bool) -> Self {
        self.cookie.http_only = http_only;
        self
    }

    /// The cookie's `SameSite` (default `Lax`; `None` leaves the attribute out).
    pub fn same_site(mut self, same_site: Option<SameSite>) -> Self {
        self.cookie.same_site = same_site;
        self
    }

    /// Browser-session (default) or persistent cookies.
    pub fn lifetime(mut self, lifetime: CookieLifetime) -> Self {
        self.cookie.lifetime = lifetime;
        self
    }

    /// Signs the cookie with `key` (HMAC-SHA256): a cookie with a bad signature counts as
    /// absent. Tokens are unguessable anyway; signing lets you rotate the key to invalidate
    /// every cookie at once (not while a [`legacy_cookie`](SessionConfig::legacy_cookie)
    /// is read, which takes raw tokens).
    pub fn signed(mut self, key: Key) -> Self {
        self.cookie.key = Some((key, Protection::Signed));
        self
    }

    /// Encrypts and authenticates the cookie with `key` (AES-256-GCM), as actix-session does
    /// by default: a cookie that does not decrypt counts as absent. The token is random and
    /// means nothing outside the store, so encryption hides nothing that signing does not
    /// protect; it is here for policies that ask for it. As with signing, a
    /// [`legacy_cookie`](SessionConfig::legacy_cookie) read meanwhile takes raw tokens.
    ///
    /// ```
    /// use session_core::MemoryStore;
    /// use session_http::{Key, SessionConfig};
    /// // The same key on every server (here a fresh one; load yours from a secret store).
    /// let config = SessionConfig::new(MemoryStore::new()).private(Key::generate());
    /// ```
    pub fn private(mut self, key: Key) -> Self {
        self.cookie.key = Some((key, Protection::Private));
        self
    }

    /// What to do when saving fails (default [`SaveFailure::Fail`]).
    pub fn on_save_failure(mut self, failure: SaveFailure) -> Self {
        self.save_failure = failure;
        self
    }

    /// How [`RequestSession::update`](crate::RequestSession::update) retries on conflict
    /// (default: [`RetryPolicy::default`], 10 attempts). After the last conflict the handler
    /// gets [`Error::Conflict`](session_core::Error::Conflict) (a `409`).
    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// The attributes requests read, so a load is
    /// [`load_some`](SessionStore::load_some) of these names (see
    /// [`RequestSession::need`](crate::RequestSession::need)).
    pub fn need(mut self, names: &[&str]) -> Self {
        self.need = Some(names.iter().map(|n| (*n).to_owned()).collect());
        self
    }

    /// Whether a response with a server-error status (5xx) still saves the request's
    /// deferred changes and rotation. Off by default, as in tower-sessions: a
    /// handler that failed halfway should not leave half its changes
    /// behind. What a handler applied at once
    /// ([`update`](crate::RequestSession::update),
    /// [`delete`](crate::RequestSession::delete)) is applied either way.
    pub fn save_on_server_error(mut self, save: bool) -> Self {
        self.save_on_server_error = save;
        self
    }
}

impl std::fmt::Debug for SessionConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionConfig")
            .field("store", &self.store)
            .field("cookie", &self.cookie)
            .field("save_failure", &self.save_failure)
            .field("need", &self.need)
            .field("retry", &self.retry)
            .field("save_on_server_error", &self.save_on_server_error)
            .finish()
    }
}
