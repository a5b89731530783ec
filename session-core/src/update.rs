//! `update`: read-modify-write that loses nothing, on any store.
//!
//! The closure reads through a [`Reader`], which records what it looked at; the delta it
//! returns is applied guarded on exactly that. Attributes read individually get attribute
//! guards (concurrent changes to other attributes do not conflict); reading the metadata or
//! iterating all attributes guards the whole session version. On a conflict the session is
//! read again and the closure runs again, after a jittered backoff.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use async_trait::async_trait;
use serde::de::DeserializeOwned;

use crate::delta::{Applied, Delta, Guard};
use crate::error::{Error, Result};
use crate::session::{Attribute, SessionRecord};
use crate::store::SessionStore;
use crate::time::Timestamp;
use crate::token::SessionToken;

/// How [`SessionStoreExt::update`] retries on conflict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included. Default 10.
    pub max_attempts: u32,
    /// Upper bound of the first backoff; it doubles each retry. Default 2 ms.
    pub base_delay: Duration,
    /// Cap of the backoff. Default 200 ms.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 10,
            base_delay: Duration::from_millis(2),
            max_delay: Duration::from_millis(200),
        }
    }
}

impl RetryPolicy {
    /// The delay before retry number `retry` (1-based): uniform in `0..=min(max, base*2^(retry-1))`
    /// ("full jitter", so contending writers spread out instead of colliding again).
    pub fn backoff(&self, retry: u32) -> Duration {
        let ceiling = self
            .base_delay
            .saturating_mul(1u32 << retry.saturating_sub(1).min(20))
            .min(self.max_delay);
        let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(rand::random_range(0..=nanos))
    }
}

/// A session as seen by an `update` closure; remembers what was read.
#[derive(Debug)]
pub struct Reader<'a> {
    session: &'a SessionRecord,
    names: RefCell<BTreeSet<String>>,
    whole: Cell<bool>,
}

impl<'a> Reader<'a> {
    /// Wraps a loaded session.
    pub fn new(session: &'a SessionRecord) -> Self {
        Reader {
            session,
            names: RefCell::default(),
            whole: Cell::new(false),
        }
    }

    fn mark(&self, name: &str) {
        self.names.borrow_mut().insert(name.to_owned());
    }

    /// An attribute decoded from JSON (guarded by its version, or its absence).
    pub fn get<T: DeserializeOwned>(&self, name: &str) -> Result<Option<T>> {
        self.mark(name);
        self.session.get(name)
    }

    /// An attribute's bytes (guarded by its version, or its absence).
    pub fn get_bytes(&self, name: &str) -> Option<&'a [u8]> {
        self.mark(name);
        self.session.get_bytes(name)
    }

    /// Whether an attribute exists (guarded by its version, or its absence).
    pub fn contains(&self, name: &str) -> bool {
        self.mark(name);
        self.session.attributes.contains_key(name)
    }

    /// The whole session, metadata included: guards the whole session version.
    pub fn session(&self) -> &'a SessionRecord {
        self.whole.set(true);
        self.session
    }

    /// All attributes: guards the whole session version.
    pub fn attributes(&self) -> &'a BTreeMap<String, Attribute> {
        &self.session().attributes
    }

    /// The principal: guards the whole session version.
    pub fn principal(&self) -> Option<&'a str> {
        self.session().principal.as_deref()
    }

    /// The expiry instant: guards the whole session version.
    pub fn expires_at(&self) -> Timestamp {
        self.session().expires_at()
    }

    /// The guards that protect exactly what was read.
    pub fn guards(&self) -> Vec<Guard> {
        if self.whole.get() {
            return vec![Guard::SessionVersion(self.session.version)];
        }
        self.names
            .borrow()
            .iter()
            .map(|name| match self.session.attribute_version(name) {
                Some(version) => Guard::AttributeVersion {
                    name: name.clone(),
                    version,
                },
                None => Guard::Absent { name: name.clone() },
            })
            .collect()
    }
}

/// Read-modify-write on any [`SessionStore`].
#[async_trait]
pub trait SessionStoreExt: SessionStore {
    /// Loads the session, lets `f` build a delta from what it read, and applies the delta
    /// guarded on exactly what `f` read; on conflict, reloads and retries with the default
    /// [`RetryPolicy`]. See [`SessionStoreExt::update_with`].
    ///
    /// ```
    /// use session_core::{Delta, MemoryStore, NewSession, SessionStore, SessionStoreExt};
    ///
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let store = MemoryStore::new();
    /// let token = store.create(NewSession::new()).await?.token;
    /// // A cart held in one JSON value: concurrent adds must not erase each other.
    /// store
    ///     .update(&token, |s| {
    ///         let mut cart: Vec<String> = s.get("cart")?.unwrap_or_default();
    ///         cart.push("apple".into());
    ///         Delta::new().put("cart", &cart)
    ///     })
    ///     .await?;
    /// let cart: Option<Vec<String>> = store.load(&token).await?.unwrap().get("cart")?;
    /// assert_eq!(cart, Some(vec!["apple".to_string()]));
    /// # Ok::<_, session_core::Error>(()) }).unwrap();
    /// ```
    async fn update<F>(&self, token: &SessionToken, f: F) -> Result<Applied>
    where
        F: FnMut(&Reader<'_>) -> Result<Delta> + Send,
    {
        self.update_with(token, RetryPolicy::default(), f).await
    }

    /// [`SessionStoreExt::update`] with an explicit retry policy.
    ///
    /// `f` may run several times and must not have side effects beyond building the delta.
    /// An error from `f` stops the update and is returned. When `f` returns an empty delta,
    /// nothing is written. After `max_attempts` conflicts, returns the last
    /// [`Error::Conflict`]. A session that is not live gives [`Error::NotFound`].
    async fn update_with<F>(
        &self,
        token: &SessionToken,
        retry: RetryPolicy,
        mut f: F,
    ) -> Result<Applied>
    where
        F: FnMut(&Reader<'_>) -> Result<Delta> + Send,
    {
        let handle = token.handle();
        let mut attempt = 1;
        loop {
            let session = self.load(token).await?.ok_or(Error::NotFound { handle })?;
            let delta = {
                let reader = Reader::new(&session);
                let delta = f(&reader)?;
                if delta.is_empty() {
                    return Ok(Applied {
                        version: session.version,
                        increments: Vec::new(),
                    });
                }
                reader.guards().into_iter().fold(delta, Delta::guard)
            };
            match self.apply(token, &delta).await {
                Err(Error::Conflict { current_version }) if attempt < retry.max_attempts => {
                    tracing::debug!(%handle, attempt, current_version, "update conflicted, retrying");
                    tokio::time::sleep(retry.backoff(attempt)).await;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }
}

impl<S: SessionStore + ?Sized> SessionStoreExt for S {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_stays_within_its_ceiling() {
        let policy = RetryPolicy::default();
        for retry in 1..40 {
            let ceiling = (policy.base_delay * 2u32.pow((retry - 1).min(20))).min(policy.max_delay);
            for _ in 0..20 {
                assert!(policy.backoff(retry) <= ceiling);
            }
        }
    }
}
