//! Migration path: tower-sessions' `SessionStore` over any of our stores, for both lines of
//! tower-sessions: 0.15 (feature `tower-sessions-015`, also called `tower-sessions`;
//! module `v0_15`) and 0.14, the line that tower-sessions-redis-store 0.16 users run
//! (feature `tower-sessions-014`; module `v0_14`). One [`TowerSessionsStore`] implements
//! each enabled line's trait; the two lines' traits and records are the same, so one
//! implementation serves both.
//!
//! An application on tower-sessions can switch its storage to a [`SessionStore`] of this
//! workspace (memory, Redis, Redis Cluster) without touching its handlers: wrap the store in
//! [`TowerSessionsStore`] and pass it to tower-sessions' `SessionManagerLayer`. Cookies keep
//! working across the switch of handlers later, because a tower-sessions `Id` and a
//! [`SessionToken`](session_core::SessionToken) are the same 128 bits with the same text form.
//!
//! # Limits
//! tower-sessions writes whole records, so this adapter can only do what it is asked:
//! - `save` compares the record with the latest record this store's `load` handed out for
//!   that session (usually the request's own load; without one, with the session as stored
//!   now, one more read) and applies one delta: a put of every attribute that differs, a
//!   removal of every attribute the record lacks. When each request's save follows its own
//!   load on its store (a user's requests in sequence, or overlapping requests on different
//!   app instances), a save writes only what its request changed, so requests that change
//!   different attributes keep each other's changes, where tower-sessions' own stores keep
//!   only the last record. Requests that overlap on one store, or change the same
//!   attribute, overwrite each other (last writer wins) as with tower-sessions' stores, and
//!   a read-modify-write of one value (a counter, a cart) is never atomic. Attribute
//!   merging without lost updates needs this crate's own
//!   [`SessionLayer`](crate::SessionLayer) (deltas, `update`).
//! - The record's `expiry_date` becomes the idle timeout (clamped to 1 s..=400 days),
//!   measured on the application server's clock, which tower-sessions requires; the store's
//!   clock then enforces it. It is written when it changes by more than a second;
//!   `OnInactivity` slides through the store's touching load (once per touch interval), not
//!   through a rewrite on every save.
//! - A deleted or expired session is never written back: `save` then drops the changes
//!   (logged at `warn`) instead of recreating it, unlike tower-sessions' own stores.
//! - Values must be JSON (tower-sessions' data model); a non-JSON attribute written by other
//!   code makes `load` fail with a decode error.
//!
//! # Cost
//! A request that loads and saves (tower-sessions 0.14, `OnInactivity`, a small session) is
//! 4 Redis commands through this store over redis-rs (a `GET`, then the `replace` script
//! and its `GET` and `SET`) against tower-sessions-redis-store's 2 (`GET`, `SET`), and
//! 1.05–1.19× its Redis CPU per request (three runs of `examples/compat_cost.rs`, medians
//! of 5 windows of 2,000 sequential requests each). Before the save compared with the
//! request's own load it was 6.4 commands and 2.05×.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use session_core::{SessionHandle, SessionRecord, SessionStore};

/// Records loaded at most; when full the map starts again (a miss costs one read at save).
const LOADED_CAPACITY: usize = 1024;

/// A tower-sessions store over one of ours. See the [module docs](self) for its limits.
#[derive(Debug, Clone)]
pub struct TowerSessionsStore {
    store: Arc<dyn SessionStore>,
    loaded: Arc<Mutex<HashMap<SessionHandle, Loaded>>>,
}

/// A record as `load` handed it to tower-sessions: what `save` compares the record with.
#[derive(Debug)]
struct Loaded {
    /// Attribute values as stored (JSON bytes; `Bytes` shares the loaded record's buffer,
    /// so remembering a load copies no value).
    values: BTreeMap<String, Bytes>,
    idle_timeout: Duration,
}

impl Loaded {
    fn of(session: &SessionRecord) -> Self {
        Loaded {
            values: session
                .attributes
                .iter()
                .map(|(name, a)| (name.clone(), a.value.clone()))
                .collect(),
            idle_timeout: session.idle_timeout,
        }
    }
}

impl TowerSessionsStore {
    /// Wraps `store` (by value, or shared: an `Arc<S>` is a store too).
    pub fn new(store: impl SessionStore + 'static) -> Self {
        TowerSessionsStore {
            store: Arc::new(store),
            loaded: Arc::default(),
        }
    }

    /// Remembers what `load` handed out for `handle`.
    fn remember(&self, handle: SessionHandle, session: &SessionRecord) {
        if let Ok(mut loaded) = self.loaded.lock() {
            if loaded.len() >= LOADED_CAPACITY {
                loaded.clear();
            }
            loaded.insert(handle, Loaded::of(session));
        }
    }

    /// What `load` handed out for `handle`, forgotten here (a save makes it stale).
    fn take(&self, handle: &SessionHandle) -> Option<Loaded> {
        self.loaded.lock().ok()?.remove(handle)
    }
}

/// The implementation of one tower-sessions line's `SessionStore`, written once: `$core` is
/// that line's tower-sessions-core.
macro_rules! tower_sessions_line {
    ($core:ident, $line:ident) => {
        use std::collections::HashMap;
        use std::sync::Arc;
        use std::time::Duration;

        use async_trait::async_trait;
        use session_core::import::Source;
        use session_core::redis::source::{DEFAULT_MARK_FOR, SourceKeys};
        use session_core::redis::{Store, Transport};
        use session_core::{Delta, Error, MAX_IDLE_TIMEOUT, NewSession, SessionToken};
        use time::OffsetDateTime;
        use $core::session::{Id, Record};
        use $core::session_store;

        use super::TowerSessionsStore;

        /// The token with the same 128 bits as a tower-sessions id (and the same text form
        /// in a cookie).
        pub fn token_of(id: &Id) -> SessionToken {
            SessionToken::from_bytes(id.0.to_le_bytes())
        }

        /// The tower-sessions id with the same 128 bits as a token.
        pub fn id_of(token: &SessionToken) -> Id {
            Id(i128::from_le_bytes(*token.as_bytes()))
        }

        fn backend(error: Error) -> session_store::Error {
            match error {
                Error::Encode { .. } => session_store::Error::Encode(error.to_string()),
                Error::Decode { .. } => session_store::Error::Decode(error.to_string()),
                other => session_store::Error::Backend(other.to_string()),
            }
        }

        fn idle_until(expiry: OffsetDateTime) -> Duration {
            let left = expiry - OffsetDateTime::now_utc();
            let left = Duration::try_from(left).unwrap_or(Duration::ZERO);
            left.clamp(Duration::from_secs(1), MAX_IDLE_TIMEOUT)
        }

        fn encode(value: &serde_json::Value) -> session_store::Result<Vec<u8>> {
            serde_json::to_vec(value).map_err(|e| session_store::Error::Encode(e.to_string()))
        }

        /// The sessions tower-sessions-redis-store keeps (a MessagePack `Record` of this
        /// line under `{prefix}{id}`, expiring with the record), as a
        /// [`Source`](session_core::import::Source) of the read-through migration
        /// ([`Importing`](session_core::import::Importing)): a client whose cookie names one
        /// keeps its session, under the same token, when the application moves to a store of
        /// ours. Read and removed through `redis`, a store of ours on the Redis that holds
        /// them (its client, topology and retry policy; any namespace).
        ///
        /// The imported session takes the idle timeout of the store's policy: a record's
        /// `expiry_date` does not say whether it came from `OnInactivity` or `AtDateTime`.
        /// A record past its `expiry_date` is not imported. Under
        /// [`AfterImport::Keep`](session_core::import::AfterImport::Keep) an imported record
        /// is marked by a key beside it (`<record key>:imported`, its key wrapped in `{..}`
        /// if it has no hash tag, so the mark shares its Cluster slot), living as long as the
        /// record and at least [`mark_for`](Self::mark_for), which a fetch reads in the same
        /// round trip.
        ///
        /// ```no_run
        /// use std::sync::Arc;
        /// use session_core::import::Importing;
        /// use session_redis::RedisStoreBuilder;
        /// # async fn demo() -> session_core::Result<()> {
        /// let redis = Arc::new(RedisStoreBuilder::new().url("redis://127.0.0.1:6379").build().await?);
        #[doc = concat!("let legacy = session_tower::tower_sessions_compat::", stringify!($line), "::RedisRecords::new(redis.clone());")]
        /// let store = Importing::new(redis, legacy);
        /// let layer = session_tower::SessionLayer::new(store).legacy_cookie("id");
        /// # Ok(()) }
        /// ```
        #[derive(Debug, Clone)]
        pub struct RedisRecords<T> {
            redis: Arc<Store<T>>,
            prefix: String,
            mark_for: Duration,
        }

        impl<T: Transport> RedisRecords<T> {
            /// The records on `redis`'s server, under their ids with no prefix (as
            /// tower-sessions-redis-store writes them).
            pub fn new(redis: Arc<Store<T>>) -> Self {
                RedisRecords {
                    redis,
                    prefix: String::new(),
                    mark_for: DEFAULT_MARK_FOR,
                }
            }

            /// A prefix in front of every id (for a deployment that added one).
            pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
                self.prefix = prefix.into();
                self
            }

            /// How long the mark of a record imported under
            /// [`AfterImport::Keep`](session_core::import::AfterImport::Keep) lives at least
            /// (default 30 days), beyond the record's own expiry at the import. The old
            /// application extends a record whenever it saves it, during a rollback say;
            /// a record extended past its mark can be imported again. Set it to the longest
            /// the old application could keep a record alive, if that is longer.
            pub fn mark_for(mut self, at_least: Duration) -> Self {
                self.mark_for = at_least;
                self
            }

            /// The record's keys: they hold the token itself, so they are never logged.
            fn keys(&self, token: &SessionToken) -> SourceKeys {
                SourceKeys::of(format!("{}{}", self.prefix, id_of(token)))
            }
        }

        impl<T: Transport> Source for RedisRecords<T> {
            async fn fetch(&self, token: &SessionToken) -> session_core::Result<Option<NewSession>> {
                let Some(bytes) = self.keys(token).read(&self.redis).await? else {
                    return Ok(None);
                };
                let record: Record = rmp_serde::from_slice(&bytes).map_err(|e| {
                    Error::Corrupt(format!("tower-sessions record of {}: {e}", token.handle()))
                })?;
                if record.id != id_of(token) || record.expiry_date <= OffsetDateTime::now_utc() {
                    return Ok(None);
                }
                let mut new = NewSession::new();
                for (name, value) in &record.data {
                    let bytes = serde_json::to_vec(value).map_err(|source| Error::Encode {
                        name: name.clone(),
                        source,
                    })?;
                    new = new.put_bytes(name.clone(), bytes);
                }
                Ok(Some(new))
            }

            async fn remove(&self, token: &SessionToken) -> session_core::Result<bool> {
                self.keys(token).remove(&self.redis).await
            }

            async fn mark_imported(&self, token: &SessionToken) -> session_core::Result<()> {
                self.keys(token).mark_imported(&self.redis, self.mark_for).await
            }
        }

        #[async_trait]
        impl $core::SessionStore for TowerSessionsStore {
            async fn create(&self, record: &mut Record) -> session_store::Result<()> {
                let mut new = NewSession::new().idle_timeout(idle_until(record.expiry_date));
                for (name, value) in &record.data {
                    new = new.put_bytes(name.clone(), encode(value)?);
                }
                let created = self.store.create(new).await.map_err(backend)?;
                record.id = id_of(&created.token);
                Ok(())
            }

            async fn save(&self, record: &Record) -> session_store::Result<()> {
                let token = token_of(&record.id);
                let handle = token.handle();
                // The base the record is compared with: what this store's `load` handed
                // out (the request's own load: then only what the request changed is
                // written, and a concurrent change to another attribute survives), else
                // the session as stored now (one more read).
                let (base, touch) = match self.take(&handle) {
                    Some(loaded) => (loaded, false),
                    None => match self.store.load_read_only(&token).await.map_err(backend)? {
                        Some(current) => (super::Loaded::of(&current), true),
                        None => {
                            tracing::warn!(%handle, "tower-sessions save of a session that is gone; not recreated");
                            return Ok(());
                        }
                    },
                };
                let mut delta = Delta::new();
                for name in base.values.keys() {
                    if !record.data.contains_key(name) {
                        delta = delta.remove(name.clone());
                    }
                }
                for (name, value) in &record.data {
                    let bytes = encode(value)?;
                    if base.values.get(name).map(|b| b.as_ref()) != Some(bytes.as_slice()) {
                        delta = delta.put_bytes(name.clone(), bytes);
                    }
                }
                // The idle timeout is written when the record's expiry asks for another
                // one (by more than a second: `OnInactivity` asks for the same one on every
                // save); the load already slid the expiry, as the store's touch policy says.
                let idle = idle_until(record.expiry_date);
                if idle.abs_diff(base.idle_timeout) > Duration::from_secs(1) {
                    delta = delta.set_idle_timeout(idle);
                }
                if touch {
                    delta = delta.touch();
                }
                if delta.is_empty() {
                    return Ok(());
                }
                match self.store.apply(&token, &delta).await {
                    Ok(_) => Ok(()),
                    Err(Error::NotFound { handle }) => {
                        tracing::warn!(%handle, "tower-sessions save of a session that is gone; not recreated");
                        Ok(())
                    }
                    Err(error) => Err(backend(error)),
                }
            }

            async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
                let token = token_of(id);
                let Some(session) = self.store.load(&token).await.map_err(backend)? else {
                    return Ok(None);
                };
                self.remember(token.handle(), &session);
                let mut data = HashMap::with_capacity(session.attributes.len());
                for name in session.attributes.keys() {
                    let value: Option<serde_json::Value> = session.get(name).map_err(backend)?;
                    data.extend(value.map(|v| (name.clone(), v)));
                }
                Ok(Some(Record {
                    id: *id,
                    data,
                    expiry_date: OffsetDateTime::from(session.expires_at().to_system_time()),
                }))
            }

            async fn delete(&self, id: &Id) -> session_store::Result<()> {
                let token = token_of(id);
                self.take(&token.handle());
                self.store.delete(&token).await.map_err(backend)?;
                Ok(())
            }
        }
    };
}

/// tower-sessions 0.15 (tower-sessions-core 0.15).
#[cfg(feature = "tower-sessions-015")]
pub mod v0_15 {
    tower_sessions_line!(tower_sessions_core, v0_15);
}

/// tower-sessions 0.14 (tower-sessions-core 0.14), the line tower-sessions-redis-store 0.16
/// implements.
#[cfg(feature = "tower-sessions-014")]
pub mod v0_14 {
    tower_sessions_line!(tower_sessions_core_014, v0_14);
}

#[cfg(feature = "tower-sessions-015")]
pub use v0_15::{id_of, token_of};
