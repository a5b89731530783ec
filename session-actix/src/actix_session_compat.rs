//! Migration from actix-session's Redis store: its sessions come into a store of ours as
//! their clients present them, so switching to this crate signs nobody out.
//!
//! actix-session keeps a session as JSON under its session key, a 64-character string held
//! (encrypted, by default) in the client's `id` cookie. That key is no 128-bit token, so an
//! imported session continues under a token derived from it: HMAC-SHA256 of the key under
//! the application's cookie `Key`, the same on every instance (overlapping first requests
//! meet in one session, imported once) and unknown to anyone who knows the Redis keys but
//! not the application's key. [`RedisSessions`] is both halves of the hand-over:
//! - the [`LegacyToken`] that turns the old cookie's session key
//!   into that token ([`SessionConfig::legacy_token`](session_http::SessionConfig::legacy_token));
//! - the [`Source`] that [`Importing`](session_core::import::Importing) reads the session
//!   from, by the key it remembers for the token (in memory, for the request that presented
//!   the old cookie).
//!
//! ```no_run
//! use std::sync::Arc;
//! use session_actix::actix_session_compat::RedisSessions;
//! use session_actix::{Key, SessionConfig, SessionMiddleware};
//! use session_core::import::Importing;
//! use session_redis::RedisStoreBuilder;
//!
//! # async fn run(actix_master_key: &[u8]) -> session_core::Result<()> {
//! // The key actix-session's SessionMiddleware had: actix-web's `Key` is the cookie crate's
//! // (another version), and `Key::from(old.master())` carries it over.
//! let old_key = Key::from(actix_master_key);
//! let redis = Arc::new(RedisStoreBuilder::new().url("redis://127.0.0.1:6379").build().await?);
//! let old = RedisSessions::new(redis.clone(), &old_key);
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
//!   for that request. A removal or a mark of the old record
//!   ([`AfterImport`](session_core::import::AfterImport)) happens there, at the import or
//!   at a logout or login in the same request; a later logout through our cookie, on any
//!   instance, ends the session here but does not reach the old record (which is already
//!   removed, or marked so that it is not imported again).

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use session_core::import::Source;
use session_core::redis::source::{DEFAULT_MARK_FOR, SourceKeys};
use session_core::redis::{Store, Transport};
use session_core::{Error, NewSession, Result, SessionHandle, SessionToken};
use session_http::{Key, LegacyToken};
use sha2::Sha256;

/// Session keys remembered at most (those of requests that presented an old cookie); when
/// full the map starts again. A key forgotten between a request's cookie and its import
/// makes that client start a fresh session.
const PENDING_CAPACITY: usize = 16 * 1024;

/// The longest session key actix-session accepts.
const MAX_KEY_LEN: usize = 4064;

/// Separates this derivation from any other use of the application's key.
const LABEL: &[u8] = b"session-actix: actix-session key\0";

/// actix-session's Redis store as an import source, and the mapping of its session keys to
/// tokens of ours. See the [module docs](self).
pub struct RedisSessions<T> {
    redis: Arc<Store<T>>,
    mac: Hmac<Sha256>,
    prefix: String,
    mark_for: Duration,
    /// Session keys by the handle of their token.
    pending: Arc<Mutex<HashMap<SessionHandle, String>>>,
}

/// A handle on the same source: the clone in the configuration and the one in the store
/// share the remembered session keys.
impl<T> Clone for RedisSessions<T> {
    fn clone(&self) -> Self {
        RedisSessions {
            redis: self.redis.clone(),
            mac: self.mac.clone(),
            prefix: self.prefix.clone(),
            mark_for: self.mark_for,
            pending: self.pending.clone(),
        }
    }
}

/// Session keys are secrets: never shown.
impl<T> fmt::Debug for RedisSessions<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisSessions")
            .field("prefix", &self.prefix)
            .field("mark_for", &self.mark_for)
            .finish_non_exhaustive()
    }
}

impl<T: Transport> RedisSessions<T> {
    /// actix-session's sessions on `redis`'s server, under their session keys with no prefix
    /// (its default `cache_keygen`); tokens derived under `key`, the application's cookie
    /// key (the one actix-session's middleware had).
    pub fn new(redis: Arc<Store<T>>, key: &Key) -> Self {
        // HMAC pads a key shorter than its block with zeros, so the padded block is the
        // same key (and this cannot fail, unlike `new_from_slice`).
        let mut block = [0u8; 64];
        let signing = key.signing();
        let len = signing.len().min(block.len());
        block[..len].copy_from_slice(&signing[..len]);
        let mac = <Hmac<Sha256> as KeyInit>::new(&block.into());
        RedisSessions {
            redis,
            mac,
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
    /// 30 days), beyond the record's own expiry at the import: actix-session extends a
    /// record whenever it saves it, during a rollback say.
    pub fn mark_for(mut self, at_least: Duration) -> Self {
        self.mark_for = at_least;
        self
    }

    /// The token a session key continues under.
    fn derive(&self, session_key: &str) -> SessionToken {
        let mut mac = self.mac.clone();
        mac.update(LABEL);
        mac.update(session_key.as_bytes());
        let digest = mac.finalize().into_bytes();
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&digest[..16]);
        SessionToken::from_bytes(bytes)
    }

    /// The keys of the record behind `token`, if this instance read its cookie.
    fn keys(&self, token: &SessionToken) -> Option<SourceKeys> {
        let pending = self.pending.lock().ok()?;
        let session_key = pending.get(&token.handle())?;
        Some(SourceKeys::of(format!("{}{session_key}", self.prefix)))
    }
}

impl<T: Transport> LegacyToken for RedisSessions<T> {
    fn token(&self, value: &str) -> Option<SessionToken> {
        if value.is_empty() || value.len() > MAX_KEY_LEN {
            return None;
        }
        let token = self.derive(value);
        if let Ok(mut pending) = self.pending.lock() {
            if pending.len() >= PENDING_CAPACITY {
                pending.clear();
            }
            pending.insert(token.handle(), value.to_owned());
        }
        Some(token)
    }
}

impl<T: Transport> Source for RedisSessions<T> {
    async fn fetch(&self, token: &SessionToken) -> Result<Option<NewSession>> {
        let Some(keys) = self.keys(token) else {
            return Ok(None);
        };
        let Some(bytes) = keys.read(&self.redis).await? else {
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
        match self.keys(token) {
            Some(keys) => keys.remove(&self.redis).await,
            None => Ok(false),
        }
    }

    async fn mark_imported(&self, token: &SessionToken) -> Result<()> {
        match self.keys(token) {
            Some(keys) => keys.mark_imported(&self.redis, self.mark_for).await,
            None => Err(Error::Backend(
                "the actix-session key of an imported session was forgotten before its mark".into(),
            )),
        }
    }
}
