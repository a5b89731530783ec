//! What a loaded session looks like, and what creating one takes.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{Error, Result};
use crate::handle::SessionHandle;
use crate::time::Timestamp;

/// One attribute: its bytes and the session version at which it was last written.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Attribute {
    /// The value. Typed access ([`SessionRecord::get`]) reads it as JSON. `Bytes`, so a store
    /// hands out a slice of what it read without copying it, and a clone costs no copy.
    pub value: Bytes,
    /// The session version that last wrote it: the basis of
    /// [`Delta::if_attribute_version`](crate::Delta::if_attribute_version).
    pub version: u64,
}

/// A snapshot of a session as a store returned it: a record, not the per-request handle a
/// web framework gives handlers (`session_tower::Session`), which loads one lazily and
/// records the request's changes.
///
/// Changing a snapshot changes nothing in the store: changes are made by applying a
/// [`Delta`](crate::Delta). After [`load_some`](crate::SessionStore::load_some) the
/// `attributes` and `damaged` hold only the names asked for (those that exist).
///
/// Damage is reported at the smallest unit that holds it. Damage to the session as a whole
/// (a record that cannot be read) makes every operation on it fail with
/// [`Error::Corrupt`](crate::Error::Corrupt). Damage to one attribute's stored bytes (written
/// by someone other than a store) leaves the session usable: the attribute is listed in
/// `damaged` instead of `attributes`, reading it with [`get`](SessionRecord::get) fails with
/// `Corrupt`, and every store rejects a delta that names it, so it is never overwritten.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SessionRecord {
    /// The storage handle (safe to log).
    pub handle: SessionHandle,
    /// Starts at 1, +1 for every applied delta.
    pub version: u64,
    /// When the session was created.
    pub created_at: Timestamp,
    /// The last touch (a load, an explicit touch, or a delta's `touch`).
    pub last_access: Timestamp,
    /// Idle time after which the session expires.
    pub idle_timeout: Duration,
    /// Absolute expiry, if any.
    pub deadline: Option<Timestamp>,
    /// The user the session belongs to, if any.
    pub principal: Option<String>,
    /// Attributes by name.
    pub attributes: BTreeMap<String, Attribute>,
    /// Attributes whose stored bytes a store could not read, by name (a name that is not
    /// UTF-8 appears with replacement characters), with what is wrong. Empty unless
    /// something other than a store wrote into the session.
    pub damaged: BTreeMap<String, String>,
}

impl SessionRecord {
    /// The instant the session expires: idle expiry or the deadline, whichever is first.
    /// At that instant it is already gone.
    pub fn expires_at(&self) -> Timestamp {
        let idle = self.last_access.saturating_add(self.idle_timeout);
        match self.deadline {
            Some(deadline) => idle.min(deadline),
            None => idle,
        }
    }

    /// The raw bytes of an attribute; `None` when absent, and for a
    /// [damaged](SessionRecord::damaged) one, which has no usable bytes ([`get`](SessionRecord::get)
    /// tells the two apart).
    pub fn get_bytes(&self, name: &str) -> Option<&[u8]> {
        self.attributes.get(name).map(|a| &a.value[..])
    }

    /// An attribute decoded from JSON; `Ok(None)` when absent, [`Error::Corrupt`] when its
    /// stored bytes are [damaged](SessionRecord::damaged).
    ///
    /// ```
    /// # use session_core::{MemoryStore, NewSession, SessionStore};
    /// # tokio_test_block_on(async {
    /// let store = MemoryStore::new();
    /// let created = store.create(NewSession::new().put("cart", &vec!["apple"])?).await?;
    /// let cart: Option<Vec<String>> = created.session.get("cart")?;
    /// assert_eq!(cart, Some(vec!["apple".to_string()]));
    /// # Ok::<_, session_core::Error>(()) });
    /// # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
    /// #     tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(f)
    /// # }
    /// ```
    pub fn get<T: DeserializeOwned>(&self, name: &str) -> Result<Option<T>> {
        if let Some(what) = self.damaged.get(name) {
            return Err(Error::Corrupt(format!("attribute {name:?}: {what}")));
        }
        self.get_bytes(name)
            .map(|bytes| {
                serde_json::from_slice(bytes).map_err(|source| Error::Decode {
                    name: name.to_owned(),
                    source,
                })
            })
            .transpose()
    }

    /// The version at which an attribute was last written.
    pub fn attribute_version(&self, name: &str) -> Option<u64> {
        self.attributes.get(name).map(|a| a.version)
    }

    /// Bytes counted against [`Limits::max_session_bytes`](crate::Limits): names plus
    /// values.
    pub fn size(&self) -> usize {
        self.attributes
            .iter()
            .map(|(n, a)| n.len() + a.value.len())
            .sum()
    }
}

/// A session's metadata without its attributes: one line of a "your devices" page, as
/// [`summaries_of`](crate::SessionStore::summaries_of) lists a principal's live sessions.
///
/// It carries no attributes because such a page needs none, and a listing should not hand
/// on what sessions hold (carts, tokens of other services; on Redis a small session is
/// still read whole, one `GET`, and its attributes dropped). The
/// [`handle`](SessionSummary::handle) names the session without being a credential (it
/// cannot be turned back into the token), so it is safe to show.
///
/// `#[non_exhaustive]` so that fields can be added (say, the principal) without breaking
/// code that reads these: outside this crate a summary is made from a record
/// (`SessionSummary::from(&record)`), never as a struct literal.
///
/// ```
/// use session_core::{MemoryStore, NewSession, SessionStore};
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let store = MemoryStore::new();
/// let phone = store.create(NewSession::new().principal("ann")).await?;
/// store.create(NewSession::new().principal("ann")).await?;
/// let devices = store.summaries_of("ann").await?;
/// assert_eq!(devices.len(), 2);
/// let this = devices.iter().find(|d| d.handle == phone.token.handle()).unwrap();
/// assert_eq!(this.created_at, phone.session.created_at);
/// assert!(this.expires_at > this.last_access);
/// # Ok::<_, session_core::Error>(()) }).unwrap();
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SessionSummary {
    /// The storage handle (safe to log and to show).
    pub handle: SessionHandle,
    /// Starts at 1, +1 for every applied delta.
    pub version: u64,
    /// When the session was created.
    pub created_at: Timestamp,
    /// The last touch (a load, an explicit touch, or a delta's `touch`).
    pub last_access: Timestamp,
    /// The instant the session expires, as of this read: the earlier of `last_access +
    /// idle_timeout` and the `deadline` ([`SessionRecord::expires_at`]). Given ready-made so
    /// that a page need not repeat the rule; a later touch moves it.
    pub expires_at: Timestamp,
    /// Idle time after which the session expires.
    pub idle_timeout: Duration,
    /// Absolute expiry, if any.
    pub deadline: Option<Timestamp>,
}

impl From<&SessionRecord> for SessionSummary {
    /// The record's metadata, with its expiry instant computed by
    /// [`SessionRecord::expires_at`]. Every store builds its summaries this way, so a summary
    /// and a [`load_read_only`](crate::SessionStore::load_read_only) of the same session
    /// state agree field by field.
    fn from(record: &SessionRecord) -> Self {
        SessionSummary {
            handle: record.handle,
            version: record.version,
            created_at: record.created_at,
            last_access: record.last_access,
            expires_at: record.expires_at(),
            idle_timeout: record.idle_timeout,
            deadline: record.deadline,
        }
    }
}

/// When a session ends regardless of activity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Deadline {
    /// No absolute deadline: only the idle timeout applies.
    #[default]
    Never,
    /// At this instant on the store's clock.
    At(Timestamp),
    /// This long after the store applies the operation (read on the store's clock, so an
    /// application server's skew does not matter).
    In(Duration),
}

impl Deadline {
    /// The absolute instant, given the store's `now`.
    pub fn resolve(self, now: Timestamp) -> Option<Timestamp> {
        match self {
            Deadline::Never => None,
            Deadline::At(t) => Some(t),
            Deadline::In(d) => Some(now.saturating_add(d)),
        }
    }
}

/// What [`create`](crate::SessionStore::create) makes.
///
/// ```
/// use std::time::Duration;
/// use session_core::{Deadline, NewSession};
///
/// let new = NewSession::new()
///     .put("theme", &"dark")?
///     .put_bytes("raw", vec![1, 2, 3])
///     .idle_timeout(Duration::from_secs(900))
///     .deadline(Deadline::In(Duration::from_secs(12 * 3600)))
///     .principal("alice");
/// # Ok::<_, session_core::Error>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewSession {
    /// Initial attributes, written at version 1. A repeated name keeps the last value.
    pub attributes: Vec<(String, Vec<u8>)>,
    /// Idle timeout; the store's [`Policy::default_idle_timeout`](crate::Policy) if `None`.
    pub idle_timeout: Option<Duration>,
    /// Absolute deadline.
    pub deadline: Deadline,
    /// Owner, indexed for [`sessions_of`](crate::SessionStore::sessions_of).
    pub principal: Option<String>,
}

impl NewSession {
    /// An empty session with the store's default idle timeout.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an attribute encoded as JSON.
    pub fn put<T: Serialize + ?Sized>(self, name: impl Into<String>, value: &T) -> Result<Self> {
        let name = name.into();
        let bytes = crate::delta::encode_json(&name, value)?;
        Ok(self.put_bytes(name, bytes))
    }

    /// Adds an attribute as raw bytes.
    pub fn put_bytes(mut self, name: impl Into<String>, value: impl Into<Vec<u8>>) -> Self {
        self.attributes.push((name.into(), value.into()));
        self
    }

    /// Sets the idle timeout.
    pub fn idle_timeout(mut self, d: Duration) -> Self {
        self.idle_timeout = Some(d);
        self
    }

    /// Sets the absolute deadline.
    pub fn deadline(mut self, deadline: Deadline) -> Self {
        self.deadline = deadline;
        self
    }

    /// Sets the principal.
    pub fn principal(mut self, principal: impl Into<String>) -> Self {
        self.principal = Some(principal.into());
        self
    }
}
