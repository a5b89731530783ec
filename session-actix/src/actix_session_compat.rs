//! Migration from actix-session's Redis store: its sessions come into a store of ours as
//! their clients present them, so switching to this crate signs nobody out.
//!
//! actix-session keeps a session as JSON under its session key, a 64-character string held
//! (encrypted, by default) in the client's `id` cookie. That key is no 128-bit token, so an
//! imported session continues under a token derived from it: HMAC-SHA256 of the key under a
//! subkey of the application's cookie `Key` (HKDF-SHA256 of its master key, for this use
//! alone). Every instance derives the same token (overlapping first requests meet in one
//! session, imported once, so every instance must run with the same key through the
//! migration), and nobody who knows the Redis keys but not the application's key can.
//! [`RedisRecords`] is both halves of the hand-over:
//! - the [`LegacyToken`] that turns the old cookie's session key
//!   into that token ([`SessionConfig::legacy_token`](session_http::SessionConfig::legacy_token));
//! - the [`Source`] that [`Importing`](session_core::import::Importing) reads the session
//!   from, by the key it remembers for the token: in memory, on the instance that read the
//!   old cookie, until the import is settled (the newest 16,384 keys at most).
//!
//! The old cookie must be read protected, as actix-session wrote it
//! ([`legacy_cookie_private`](session_http::SessionConfig::legacy_cookie_private), or
//! `legacy_cookie_signed` for `CookieContentSecurity::Signed`): only values of actix-session's
//! form (64 ASCII letters and digits) are taken, but an unprotected cookie would let a
//! client name any such key.
//!
//! ```no_run
//! use std::sync::Arc;
//! use session_actix::actix_session_compat::RedisRecords;
//! use session_actix::{Key, SessionConfig, SessionMiddleware};
//! use session_core::import::Importing;
//! use session_redis::RedisStoreBuilder;
//!
//! # async fn run(actix_master_key: &[u8]) -> session_core::Result<()> {
//! // The key actix-session's SessionMiddleware had: actix-web's `Key` is the cookie crate's
//! // (another version), and `Key::from(old.master())` carries it over.
//! let old_key = Key::from(actix_master_key);
//! let redis = Arc::new(RedisStoreBuilder::new().url("redis://127.0.0.1:6379").build().await?);
//! let old = RedisRecords::new(redis.clone(), &old_key);
//! let config = SessionConfig::new(Importing::new(redis, old.clone()))
//!     .legacy_cookie_private("id", old_key) // actix-session's cookie: name `id`, private
//!     .legacy_token(old);
//! let middleware = SessionMiddleware::from(config);
//! # Ok(()) }
//! ```
//!
//! # Limits
//! - Each value comes over as the JSON text actix-session stored, so `get::<T>` reads what
//!   `actix_session::Session::insert` wrote. The imported session takes this store's idle
//!   timeout; it has no principal.
//! - The session key behind a token is known only to the instance that read the old cookie,
//!   until the import is settled. The old record is removed (or marked,
//!   [`AfterImport::Keep`](session_core::import::AfterImport::Keep)) there, at the import;
//!   a logout or login later, through our cookie, ends or moves the session here but cannot
//!   reach the old record. If that removal failed (logged at `error`), the record stays
//!   importable with the old cookie until it expires.
//! - Use [`AfterImport::Remove`](session_core::import::AfterImport::Remove) (the default).
//!   `Keep` offers no rollback here: the client's new cookie carries the derived token,
//!   which actix-session cannot read, and the old cookie is removed once handed over.
//! - A response hands the token over only once the session was found or imported; when the
//!   import fails (the old store unreachable), the old cookie stays for the next request.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hkdf::Hkdf;
use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use session_core::import::Source;
use session_core::redis::source::{DEFAULT_MARK_FOR, SourceKeys};
use session_core::redis::{Store, Transport};
use session_core::{Error, NewSession, Result, SessionHandle, SessionToken};
use session_http::{Key, LegacyToken};
use sha2::Sha256;

/// Session keys remembered at most (of requests that presented an old cookie and have not
/// settled their import); when full, the oldest goes.
const PENDING_CAPACITY: usize = 16 * 1024;

/// The length of actix-session's session keys (`generate_session_key`: 64 alphanumerics).
const KEY_LEN: usize = 64;

/// HKDF's `info`: the subkey is for this derivation alone; the version changes only with
/// the derivation (every instance must derive alike through a migration).
const SUBKEY_INFO: &[u8] = b"session-actix: token of an actix-session session key, v1";

/// actix-session's Redis store as an import source, and the mapping of its session keys to
/// tokens of ours. See the [module docs](self).
pub struct RedisRecords<T> {
    redis: Arc<Store<T>>,
    mac: Hmac<Sha256>,
    prefix: String,
    mark_for: Duration,
    pending: Arc<Mutex<Pending>>,
}

/// Session keys by the handle of their token, oldest first.
#[derive(Default)]
struct Pending {
    keys: HashMap<SessionHandle, (String, u64)>,
    order: VecDeque<(SessionHandle, u64)>,
    next: u64,
}

impl Pending {
    fn insert(&mut self, handle: SessionHandle, session_key: String) {
        while !self.keys.contains_key(&handle) && self.keys.len() >= PENDING_CAPACITY {
            let Some((old, seq)) = self.order.pop_front() else {
                break;
            };
            // An entry inserted again since has a later number and stays.
            if self.keys.get(&old).is_some_and(|(_, s)| *s == seq) {
                self.keys.remove(&old);
            }
        }
        self.next += 1;
        self.keys.insert(handle, (session_key, self.next));
        self.order.push_back((handle, self.next));
        // Settled entries leave the map, not the queue: keep the queue bounded too.
        if self.order.len() > 2 * PENDING_CAPACITY {
            let keys = &self.keys;
            self.order
                .retain(|(h, seq)| keys.get(h).is_some_and(|(_, s)| s == seq));
        }
    }
}

/// A handle on the same source: the clone in the configuration and the one in the store
/// share the remembered session keys.
impl<T> Clone for RedisRecords<T> {
    fn clone(&self) -> Self {
        RedisRecords {
            redis: self.redis.clone(),
            mac: self.mac.clone(),
            prefix: self.prefix.clone(),
            mark_for: self.mark_for,
            pending: self.pending.clone(),
        }
    }
}

/// Session keys are secrets: never shown.
impl<T> fmt::Debug for RedisRecords<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisRecords")
            .field("prefix", &self.prefix)
            .field("mark_for", &self.mark_for)
            .finish_non_exhaustive()
    }
}

/// The keyed hash that turns session keys into tokens: HMAC-SHA256 under a subkey of `key`.
fn token_mac(key: &Key) -> Hmac<Sha256> {
    // HMAC pads a key shorter than its block with zeros, so the 32-byte subkey in a zeroed
    // 64-byte block is the same key, and `new` (unlike `new_from_slice`) cannot fail.
    let mut block = [0u8; 64];
    // 32 bytes is far below HKDF-SHA256's limit (255 × 32): `expand` cannot fail.
    let _ = Hkdf::<Sha256>::new(None, key.master()).expand(SUBKEY_INFO, &mut block[..32]);
    <Hmac<Sha256> as KeyInit>::new(&block.into())
}

/// The token `session_key` continues under.
fn derive(mac: &Hmac<Sha256>, session_key: &str) -> SessionToken {
    let mut mac = mac.clone();
    mac.update(session_key.as_bytes());
    let digest = mac.finalize().into_bytes();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    SessionToken::from_bytes(bytes)
}

/// Whether `value` has the form of actix-session's session keys.
fn is_session_key(value: &str) -> bool {
    value.len() == KEY_LEN && value.bytes().all(|b| b.is_ascii_alphanumeric())
}

impl<T: Transport> RedisRecords<T> {
    /// actix-session's sessions on `redis`'s server, under their session keys with no prefix
    /// (its default `cache_keygen`); tokens derived under `key`, the application's cookie
    /// key (the one actix-session's middleware had).
    pub fn new(redis: Arc<Store<T>>, key: &Key) -> Self {
        RedisRecords {
            redis,
            mac: token_mac(key),
            prefix: String::new(),
            mark_for: DEFAULT_MARK_FOR,
            pending: Arc::default(),
        }
    }

    /// A prefix in front of every session key (for a `cache_keygen` that added one).
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// How long the mark of a record imported under
    /// [`AfterImport::Keep`](session_core::import::AfterImport::Keep) lives at least (default
    /// 30 days), beyond the record's own expiry at the import.
    pub fn mark_for(mut self, at_least: Duration) -> Self {
        self.mark_for = at_least;
        self
    }

    /// The keys of the record behind `token`, if this instance read its cookie and has not
    /// settled its import.
    fn keys(&self, token: &SessionToken) -> Option<SourceKeys> {
        let pending = self.pending.lock().ok()?;
        let (session_key, _) = pending.keys.get(&token.handle())?;
        Some(SourceKeys::of(format!("{}{session_key}", self.prefix)))
    }

    /// Forgets the session key behind `token`: its import is settled.
    fn settled(&self, token: &SessionToken) {
        if let Ok(mut pending) = self.pending.lock() {
            pending.keys.remove(&token.handle());
        }
    }
}

impl<T: Transport> LegacyToken for RedisRecords<T> {
    fn token(&self, value: &str) -> Option<SessionToken> {
        if !is_session_key(value) {
            return None;
        }
        let token = derive(&self.mac, value);
        if let Ok(mut pending) = self.pending.lock() {
            pending.insert(token.handle(), value.to_owned());
        }
        Some(token)
    }
}

impl<T: Transport> Source for RedisRecords<T> {
    async fn fetch(&self, token: &SessionToken) -> Result<Option<NewSession>> {
        let Some(keys) = self.keys(token) else {
            return Ok(None);
        };
        let Some(bytes) = keys.read(&self.redis).await? else {
            self.settled(token);
            return Ok(None);
        };
        // actix-session's state: each value is the JSON text of what was inserted.
        let state: HashMap<String, String> = serde_json::from_slice(&bytes).map_err(|e| {
            Error::Corrupt(format!("actix-session record of {}: {e}", token.handle()))
        })?;
        let mut new = NewSession::new();
        for (name, json) in state {
            new = new.put_bytes(name, json.into_bytes());
        }
        Ok(Some(new))
    }

    async fn remove(&self, token: &SessionToken) -> Result<bool> {
        let Some(keys) = self.keys(token) else {
            return Ok(false);
        };
        let removed = keys.remove(&self.redis).await?;
        self.settled(token);
        Ok(removed)
    }

    async fn mark_imported(&self, token: &SessionToken) -> Result<()> {
        let Some(keys) = self.keys(token) else {
            return Err(Error::Backend(
                "the actix-session key of an imported session was forgotten before its mark".into(),
            ));
        };
        keys.mark_imported(&self.redis, self.mark_for).await?;
        self.settled(token);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The derivation pinned: a change would split every migrating session in a rolling
    /// upgrade. The expected token was computed apart from this code (Python's `hmac` and
    /// `hashlib`, HKDF by RFC 5869).
    #[test]
    fn the_derivation_is_pinned() {
        let key = Key::from(&[7u8; 64]);
        let session_key = "a".repeat(32) + &"B".repeat(16) + "0123456789abcdef";
        let token = derive(&token_mac(&key), &session_key);
        assert_eq!(hex(token.as_bytes()), EXPECTED);
        let other = derive(&token_mac(&Key::from(&[8u8; 64])), &session_key);
        assert_ne!(other, token, "another key, another token");
    }

    const EXPECTED: &str = "ca9990b49db2733921203307dba9d9a4";

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn only_actix_sessions_keys_are_taken() {
        let key = "Ab3".repeat(21) + "x";
        assert!(is_session_key(&key));
        for bad in [
            "",
            "short",
            &format!("{key}y"),
            &format!("{}!", &key[..63]),
            &format!("{}é", &key[..62]),
        ] {
            assert!(!is_session_key(bad), "{bad}");
        }
    }

    #[test]
    fn the_oldest_pending_key_goes_first() {
        let mut pending = Pending::default();
        let handles: Vec<SessionHandle> = (0..PENDING_CAPACITY + 1)
            .map(|_| SessionToken::generate().handle())
            .collect();
        for (i, h) in handles.iter().enumerate() {
            pending.insert(*h, i.to_string());
        }
        assert_eq!(pending.keys.len(), PENDING_CAPACITY);
        assert!(!pending.keys.contains_key(&handles[0]), "the oldest went");
        assert!(
            pending.keys.contains_key(&handles[PENDING_CAPACITY]),
            "the newest stays"
        );
        assert!(pending.order.len() <= 2 * PENDING_CAPACITY);
        // A key presented again at capacity evicts nobody.
        pending.insert(handles[PENDING_CAPACITY], "again".into());
        assert_eq!(pending.keys.len(), PENDING_CAPACITY);
        assert!(
            pending.keys.contains_key(&handles[1]),
            "the next oldest stays"
        );
    }
}
