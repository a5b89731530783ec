//! The session cookie of the library an application ran on before: read when ours is
//! absent, turned into a token of ours, and replaced by our cookie. Paired with a store that
//! imports the old library's sessions ([`Importing`](session_core::import::Importing)), it
//! keeps signed-in users signed in across the switch.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use cookie::{Cookie, Key};
use percent_encoding::percent_decode_str;
use session_core::SessionToken;

use crate::SessionConfig;
use crate::config::{Protection, opened, parse};

/// How the value of the old library's cookie (once verified or decrypted) becomes a token
/// of ours. Without one, the value must be a token itself, as tower-sessions' ids are (the
/// same 128 bits and text form).
///
/// # Obligations
/// - [`token`](LegacyToken::token): the same token for the same value, on every instance
///   of the application (requests presenting one old cookie must meet in one session), and
///   a token nobody can compute without the old cookie (it becomes the client's session
///   token). `None` for a value that is no session of the old library (the old cookie is
///   then removed and a fresh session starts).
///
/// # Example
/// A mapping for ids that are tokens with a prefix:
/// ```
/// use session_core::{MemoryStore, SessionToken};
/// use session_http::{LegacyToken, SessionConfig};
///
/// #[derive(Debug)]
/// struct Prefixed;
/// impl LegacyToken for Prefixed {
///     fn token(&self, value: &str) -> Option<SessionToken> {
///         SessionToken::parse(value.strip_prefix("s:")?).ok()
///     }
/// }
///
/// let config = SessionConfig::new(MemoryStore::new())
///     .legacy_cookie("sid")
///     .legacy_token(Prefixed);
/// ```
pub trait LegacyToken: Send + Sync + fmt::Debug {
    /// The token of ours that the old cookie's `value` continues under.
    fn token(&self, value: &str) -> Option<SessionToken>;
}

impl<T: LegacyToken + ?Sized> LegacyToken for Arc<T> {
    fn token(&self, value: &str) -> Option<SessionToken> {
        (**self).token(value)
    }
}

/// The old library's cookie: its name, and the key it was signed or encrypted with, if any.
#[derive(Clone)]
pub(crate) struct Legacy {
    pub(crate) name: String,
    pub(crate) key: Option<(Key, Protection)>,
}

/// What reading a legacy cookie gave.
pub(crate) enum Read {
    /// A token: the response hands it over in our cookie and removes the old one.
    Token(SessionToken),
    /// Nothing usable (a malformed value): the old cookie is removed.
    Unusable,
    /// A protected cookie the key does not open: left in place (if the key is wrong,
    /// removing every old cookie would sign every user out for good; with the right key set
    /// later, they still come through).
    Unopened,
}

impl Legacy {
    pub(crate) fn read(&self, cookie: Cookie<'_>, mapping: Option<&dyn LegacyToken>) -> Read {
        // Percent-decoded, as both old libraries read their cookies (actix-web also writes
        // them encoded); a token or a base64 value holds no `%`, so this changes nothing
        // else.
        let cookie = if cookie.value().contains('%') {
            match percent_decode_str(cookie.value()).decode_utf8() {
                Ok(value) => Cookie::new(cookie.name().to_owned(), value.into_owned()),
                Err(_) => return Read::Unusable,
            }
        } else {
            cookie
        };
        let Some(opened) = opened(cookie, self.key.as_ref()) else {
            not_opened();
            return Read::Unopened;
        };
        let token = match mapping {
            Some(mapping) => mapping.token(opened.value()),
            None => parse(opened.value()),
        };
        token.map_or(Read::Unusable, Read::Token)
    }
}

/// Warns that a protected legacy cookie did not open: on the 1st, 2nd, 4th, 8th, ... time
/// in this process, so a wrong key shows at once without a line per request.
fn not_opened() {
    static SEEN: AtomicU64 = AtomicU64::new(0);
    let seen = SEEN.fetch_add(1, Ordering::Relaxed) + 1;
    if seen.is_power_of_two() {
        tracing::warn!(
            seen,
            "legacy session cookies that the configured key does not open (left in place): is it the old application's key and protection?"
        );
    }
}

impl SessionConfig {
    /// Also reads the session token from the cookie `name` of the library this application
    /// ran on before (tower-sessions: `id`), when our cookie is absent, and hands it over:
    /// the response sets our cookie with the same token and removes the old cookie (with
    /// this configuration's path and domain). Pair it with a store that imports the old
    /// library's sessions ([`Importing`](session_core::import::Importing)), so a signed-in
    /// user stays signed in across the switch. A token that names no live session (here or,
    /// by import, in the old store) is not handed over; while its check or import fails
    /// (the old store unreachable), the old cookie stays for the next request. Ours, when
    /// present, wins, and the old cookie is then only removed. Remove this setting once the
    /// old sessions have expired.
    ///
    /// This reads the old cookie unprotected, as tower-sessions writes it by default; for
    /// an application that signed or encrypted it, see
    /// [`legacy_cookie_signed`](SessionConfig::legacy_cookie_signed) and
    /// [`legacy_cookie_private`](SessionConfig::legacy_cookie_private). While an
    /// unprotected old cookie is read, [`signed`](SessionConfig::signed) and
    /// [`private`](SessionConfig::private) protect less: a raw token presented in the old
    /// cookie is accepted for any live session, and the response hands it over in a
    /// protected cookie, so rotating the key does not invalidate a token someone kept.
    ///
    /// ```
    /// # use session_core::MemoryStore;
    /// let config = session_http::SessionConfig::new(MemoryStore::new()).legacy_cookie("id");
    /// ```
    pub fn legacy_cookie(mut self, name: impl Into<String>) -> Self {
        self.cookie.legacy = Some(Legacy {
            name: name.into(),
            key: None,
        });
        self
    }

    /// As [`legacy_cookie`](SessionConfig::legacy_cookie), for an old cookie signed with
    /// `key` (tower-sessions' `SessionManagerLayer::with_signed`; the `cookie` crate's
    /// signed jar, HMAC-SHA256 of the value): a cookie whose signature does not verify
    /// counts as absent and is left in place (a wrong key must not delete every user's old
    /// cookie; the first such cookies are logged at `warn`). `key` is the old
    /// application's key, which may differ from the one that protects our cookie.
    ///
    /// ```
    /// use session_core::MemoryStore;
    /// use session_http::{Key, SessionConfig};
    /// // The old application's key, as it loads it (here a fresh one).
    /// let old_key = Key::generate();
    /// let config = SessionConfig::new(MemoryStore::new()).legacy_cookie_signed("id", old_key);
    /// ```
    pub fn legacy_cookie_signed(mut self, name: impl Into<String>, key: Key) -> Self {
        self.cookie.legacy = Some(Legacy {
            name: name.into(),
            key: Some((key, Protection::Signed)),
        });
        self
    }

    /// As [`legacy_cookie`](SessionConfig::legacy_cookie), for an old cookie encrypted with
    /// `key` (tower-sessions' `SessionManagerLayer::with_private`, actix-session's default;
    /// the `cookie` crate's private jar, AES-256-GCM with the cookie's name authenticated):
    /// a cookie that does not decrypt counts as absent and is left in place, as with
    /// [`legacy_cookie_signed`](SessionConfig::legacy_cookie_signed).
    ///
    /// ```
    /// use session_core::MemoryStore;
    /// use session_http::{Key, SessionConfig};
    /// let old_key = Key::generate();
    /// let config = SessionConfig::new(MemoryStore::new()).legacy_cookie_private("id", old_key);
    /// ```
    pub fn legacy_cookie_private(mut self, name: impl Into<String>, key: Key) -> Self {
        self.cookie.legacy = Some(Legacy {
            name: name.into(),
            key: Some((key, Protection::Private)),
        });
        self
    }

    /// How the legacy cookie's value becomes a token of ours (default: the value is a token,
    /// as tower-sessions' ids are). For a library whose session ids are not 128-bit tokens,
    /// such as actix-session's. See [`LegacyToken`] for an example.
    pub fn legacy_token(mut self, mapping: impl LegacyToken + 'static) -> Self {
        self.cookie.legacy_token = Some(Arc::new(mapping));
        self
    }
}
