//! Migration path: tower-sessions' `SessionStore` over any of our stores, for both lines of
//! tower-sessions: 0.15 (feature `tower-sessions-015`, also called `tower-sessions`;
//! module [`v0_15`]) and 0.14, the line that tower-sessions-redis-store 0.16 users run
//! (feature `tower-sessions-014`; module [`v0_14`]). One [`TowerSessionsStore`] implements
//! each enabled line's trait; the two lines' traits and records are the same, so one
//! implementation serves both.
//!
//! An application on tower-sessions can switch its storage to a [`SessionStore`] of this
//! workspace (memory, Redis, Redis Cluster) without touching its handlers: wrap the store in
//! [`TowerSessionsStore`] and pass it to tower-sessions' `SessionManagerLayer`. Cookies keep
//! working across the switch of handlers later, because a tower-sessions `Id` and a
//! [`SessionToken`] are the same 128 bits with the same text form.
//!
//! # Limits
//! tower-sessions writes whole records, so this adapter can only do what it is asked:
//! - `save` reads the stored attributes (one round trip, without touching) and applies one
//!   delta that puts every attribute whose value differs and removes every attribute the
//!   record lacks. Two overlapping requests of one user therefore still overwrite each other
//!   (last writer wins) for attributes both hold; only attributes the request left unchanged
//!   are spared. Attribute merging without lost updates needs this crate's own
//!   [`SessionLayer`](crate::SessionLayer) (deltas, `update`).
//! - The record's `expiry_date` becomes the idle timeout (clamped to 1 s..=400 days),
//!   measured on the application server's clock, which tower-sessions requires; the store's
//!   clock then enforces it.
//! - A deleted or expired session is never written back: `save` then drops the changes
//!   (logged at `warn`) instead of recreating it, unlike tower-sessions' own stores.
//! - Values must be JSON (tower-sessions' data model); a non-JSON attribute written by other
//!   code makes `load` fail with a decode error.

use std::sync::Arc;

use session_core::SessionStore;

/// A tower-sessions store over one of ours. See the [module docs](self) for its limits.
#[derive(Debug, Clone)]
pub struct TowerSessionsStore {
    store: Arc<dyn SessionStore>,
}

impl TowerSessionsStore {
    /// Wraps `store` (by value, or shared: an `Arc<S>` is a store too).
    pub fn new(store: impl SessionStore + 'static) -> Self {
        TowerSessionsStore {
            store: Arc::new(store),
        }
    }
}

/// The implementation of one tower-sessions line's `SessionStore`, written once: `$core` is
/// that line's tower-sessions-core.
macro_rules! tower_sessions_line {
    ($core:ident) => {
        use std::collections::HashMap;
        use std::time::Duration;

        use async_trait::async_trait;
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
                let Some(current) = self.store.load_read_only(&token).await.map_err(backend)?
                else {
                    tracing::warn!(handle = %token.handle(), "tower-sessions save of a session that is gone; not recreated");
                    return Ok(());
                };
                let mut delta = Delta::new();
                for name in current.attributes.keys() {
                    if !record.data.contains_key(name) {
                        delta = delta.remove(name.clone());
                    }
                }
                for (name, value) in &record.data {
                    let bytes = encode(value)?;
                    if current.get_bytes(name) != Some(bytes.as_slice()) {
                        delta = delta.put_bytes(name.clone(), bytes);
                    }
                }
                let delta = delta
                    .set_idle_timeout(idle_until(record.expiry_date))
                    .touch();
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
                let Some(session) = self.store.load(&token_of(id)).await.map_err(backend)? else {
                    return Ok(None);
                };
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
                self.store.delete(&token_of(id)).await.map_err(backend)?;
                Ok(())
            }
        }
    };
}

/// tower-sessions 0.15 (tower-sessions-core 0.15).
#[cfg(feature = "tower-sessions-015")]
pub mod v0_15 {
    tower_sessions_line!(tower_sessions_core);
}

/// tower-sessions 0.14 (tower-sessions-core 0.14), the line tower-sessions-redis-store 0.16
/// implements.
#[cfg(feature = "tower-sessions-014")]
pub mod v0_14 {
    tower_sessions_line!(tower_sessions_core_014);
}

#[cfg(feature = "tower-sessions-015")]
pub use v0_15::{id_of, token_of};
