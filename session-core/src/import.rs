//! Read-through migration: sessions that another library stored come into a store of ours
//! one at a time, as their clients present them, so switching stores logs nobody out.
//!
//! [`Importing`] wraps a store. When an operation finds no session under a token, it asks a
//! [`Source`] (the other library's storage) for one, creates it under the same token with
//! [`SessionStore::create_with_token`], and runs the operation again. However many requests
//! with that token overlap, exactly one creates the session; the others find it taken and
//! use it, so no duplicate session exists and no change made through one of them is lost.
//!
//! A source's copy is removed once imported ([`AfterImport::Remove`], the default), so an
//! old cookie cannot bring a session back after a logout, a rotation or an expiry here.
//! Every delete and rotation here removes the source's copy as well (one more command each),
//! which also covers a removal at import that failed, for a source that finds its copy from
//! the token alone.
//!
//! [`AfterImport::Keep`] leaves the copy until its own expiry, for rolling back to the old
//! application, and marks it imported ([`Source::mark_imported`]), so it is not imported
//! twice while the mark lives: a session that ends here (a logout, a rotation, an idle
//! expiry, or [`delete_all_of`](SessionStore::delete_all_of)) stays ended, whatever cookie
//! comes back. A logout or rotation also removes the copy (where the source finds it from
//! the token). The mark is written after the create (a mark first would turn a request
//! overlapping the import away); if writing it fails, the error is logged and that copy
//! stays importable until a logout here removes it, or, for a source that cannot find it
//! from the token, until it expires.
//!
//! # Cost
//! Nothing for a read or write of a session that exists here; a delete or rotation costs
//! one more command (the source's removal). A miss (a client presenting a token this store
//! does not know) costs one read of the source and a second try of the operation; an import
//! adds the create and the source's removal (or its mark), once per session.
//!
//! A source's session that this store's limits refuse, or that cannot be read, is not
//! imported: the error is logged and the client starts a fresh session, rather than being
//! answered an error on every request until the source's copy expires.

use std::fmt;

use async_trait::async_trait;

use crate::delta::{Applied, Delta};
use crate::error::{Error, Result};
use crate::handle::SessionHandle;
use crate::policy::Policy;
use crate::session::{NewSession, SessionRecord, SessionSummary};
use crate::store::{Created, SessionStore};
use crate::token::SessionToken;

/// Another library's session storage, read through when a token is unknown here.
///
/// # Obligations
/// - [`fetch`](Source::fetch): the live session the source keeps under `token`, as a new
///   session of ours (attributes as JSON, which typed reads expect), or `None` when it has
///   none, or one past its own expiry. It must not change the source.
/// - [`remove`](Source::remove): remove that session from the source; whether there was
///   one. Removing an absent session is not an error.
/// - [`mark_imported`](Source::mark_imported), needed for [`AfterImport::Keep`] only (it is
///   called there instead of `remove`): leave the session readable by the old application,
///   but make `fetch` answer `None` for it from then on, for as long as the copy may live
///   (the old application may extend it). Marking an absent session is not an error. The
///   default answers [`Error::Unsupported`], which `Importing` logs at `error` on every
///   import under `Keep`.
///
/// A source whose ids are not 128-bit tokens needs the HTTP layer to map its cookie's value
/// to a token and to remember which id a token came from, as session-actix's import from
/// actix-session does; such a source finds its copy only where that mapping is known.
///
/// # Example
/// A source that knows one session, over a memory store:
/// ```
/// use session_core::{MemoryStore, NewSession, Result, SessionStore, SessionToken};
/// use session_core::import::{Importing, Source};
///
/// #[derive(Debug)]
/// struct OldStore(SessionToken);
///
/// impl Source for OldStore {
///     async fn fetch(&self, token: &SessionToken) -> Result<Option<NewSession>> {
///         Ok((*token == self.0).then(|| NewSession::new().put_bytes("user", b"\"ann\"".to_vec())))
///     }
///     async fn remove(&self, token: &SessionToken) -> Result<bool> {
///         Ok(*token == self.0)
///     }
///     // No `mark_imported`: this source is for `AfterImport::Remove` only.
/// }
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let old = SessionToken::generate();
/// let store = Importing::new(MemoryStore::new(), OldStore(old.clone()));
/// let session = store.load(&old).await?.expect("imported");
/// assert_eq!(session.get::<String>("user")?.as_deref(), Some("ann"));
/// assert!(store.load(&SessionToken::generate()).await?.is_none());
/// # Ok::<_, session_core::Error>(()) }).unwrap();
/// ```
pub trait Source: Send + Sync + fmt::Debug {
    /// The live session the source keeps under `token`, as a new session of ours.
    fn fetch(
        &self,
        token: &SessionToken,
    ) -> impl Future<Output = Result<Option<NewSession>>> + Send;

    /// Removes the session under `token` from the source; whether there was one.
    fn remove(&self, token: &SessionToken) -> impl Future<Output = Result<bool>> + Send;

    /// Marks the session under `token` imported: the old application still reads it, but
    /// [`fetch`](Source::fetch) no longer returns it. Only [`AfterImport::Keep`] calls it.
    fn mark_imported(&self, token: &SessionToken) -> impl Future<Output = Result<()>> + Send {
        let _ = token;
        async { Err(Error::Unsupported("Source::mark_imported")) }
    }
}

/// What becomes of the source's copy once a session is imported.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum AfterImport {
    /// Removed at once: an old cookie can never revive a session ended here.
    #[default]
    Remove,
    /// Kept until its own expiry, for a rollback to the old application (which then sees
    /// the session as it was at import), and marked imported
    /// ([`Source::mark_imported`]), so it is not imported again while the mark lives. A
    /// delete or rotation here removes it, where the source finds it from the token. For a
    /// short window only: changes made here after the import are not in it.
    Keep,
}

/// A store that imports a session from a [`Source`] when a token is unknown to it. See the
/// [module docs](self).
///
/// ```
/// use session_core::import::{AfterImport, Importing, Source};
/// use session_core::{MemoryStore, NewSession, Result, SessionStore, SessionToken};
///
/// /// An old store that knows nothing (a stand-in for tower-sessions-redis-store).
/// #[derive(Debug)]
/// struct Empty;
/// impl Source for Empty {
///     async fn fetch(&self, _: &SessionToken) -> Result<Option<NewSession>> { Ok(None) }
///     async fn remove(&self, _: &SessionToken) -> Result<bool> { Ok(false) }
///     async fn mark_imported(&self, _: &SessionToken) -> Result<()> { Ok(()) } // nothing to mark
/// }
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// // Keep the old records for a rollback window.
/// let store = Importing::new(MemoryStore::new(), Empty).after_import(AfterImport::Keep);
/// let created = store.create(NewSession::new()).await?; // new sessions are ours alone
/// assert!(store.store().load(&created.token).await?.is_some());
/// # Ok::<_, session_core::Error>(()) }).unwrap();
/// ```
#[derive(Debug, Clone)]
pub struct Importing<S, L> {
    store: S,
    source: L,
    after: AfterImport,
}

impl<S: SessionStore, L: Source> Importing<S, L> {
    /// Wraps `store`; sessions unknown to it are looked up in `source`, and the source's copy
    /// is removed once imported.
    pub fn new(store: S, source: L) -> Self {
        Importing {
            store,
            source,
            after: AfterImport::Remove,
        }
    }

    /// What becomes of the source's copy once imported (default [`AfterImport::Remove`]).
    pub fn after_import(mut self, after: AfterImport) -> Self {
        self.after = after;
        self
    }

    /// The wrapped store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// Imports the session the source keeps under `token`, if it keeps one. Whether the
    /// operation that missed should run again: always, because a concurrent request may
    /// have imported (and removed the source's copy) between the miss and the fetch.
    #[tracing::instrument(level = "debug", name = "session.import", skip_all, fields(handle = %token.handle()))]
    async fn import(&self, token: &SessionToken) -> Result<()> {
        let fetched = match self.source.fetch(token).await {
            Ok(fetched) => fetched,
            Err(error) if unimportable(&error) => {
                tracing::error!(handle = %token.handle(), %error, "the source's session cannot be read; the client starts a fresh session");
                return Ok(());
            }
            Err(error) => return Err(error),
        };
        let Some(new) = fetched else {
            return Ok(());
        };
        match self.store.create_with_token(token, new).await {
            Ok(Some(_)) => {
                tracing::info!(handle = %token.handle(), "session imported from the source");
                let settled = match self.after {
                    AfterImport::Remove => self.source.remove(token).await.map(drop),
                    AfterImport::Keep => self.source.mark_imported(token).await,
                };
                if let Err(error) = settled {
                    // The session is imported. A copy left behind is removed by the next
                    // delete or rotation here; until then a session that ends here without
                    // one could be imported from it again.
                    tracing::error!(handle = %token.handle(), %error, after = ?self.after, "imported session neither removed from the source nor marked imported");
                }
            }
            Ok(None) => tracing::debug!("session imported by a concurrent request"),
            // A session this store's limits refuse (too large, a bad name): answering the
            // error on every request of the client would lock it out until the source's
            // copy expires, so it starts afresh, and the loss is logged.
            Err(error) if unimportable(&error) => {
                tracing::error!(handle = %token.handle(), %error, "the source's session breaks this store's limits; the client starts a fresh session");
            }
            Err(error) => return Err(error),
        }
        Ok(())
    }
}

/// Errors that say the source's session can never be imported (as opposed to a store that
/// is down for now).
fn unimportable(error: &Error) -> bool {
    matches!(
        error,
        Error::Corrupt(_)
            | Error::LimitExceeded { .. }
            | Error::InvalidInput(_)
            | Error::Encode { .. }
    )
}

/// Runs `$op` on the store; on a miss, imports and runs it once more.
macro_rules! read_through {
    ($self:ident, $token:ident, $op:expr, miss: $miss:pat) => {{
        match $op {
            $miss => {
                $self.import($token).await?;
                $op
            }
            other => other,
        }
    }};
}

#[async_trait]
impl<S: SessionStore, L: Source> SessionStore for Importing<S, L> {
    fn policy(&self) -> Policy {
        self.store.policy()
    }

    async fn create(&self, new: NewSession) -> Result<Created> {
        self.store.create(new).await
    }

    async fn create_with_token(
        &self,
        token: &SessionToken,
        new: NewSession,
    ) -> Result<Option<Created>> {
        self.store.create_with_token(token, new).await
    }

    async fn load(&self, token: &SessionToken) -> Result<Option<SessionRecord>> {
        read_through!(self, token, self.store.load(token).await, miss: Ok(None))
    }

    async fn load_read_only(&self, token: &SessionToken) -> Result<Option<SessionRecord>> {
        read_through!(self, token, self.store.load_read_only(token).await, miss: Ok(None))
    }

    async fn load_some(
        &self,
        token: &SessionToken,
        names: &[&str],
    ) -> Result<Option<SessionRecord>> {
        read_through!(self, token, self.store.load_some(token, names).await, miss: Ok(None))
    }

    async fn apply(&self, token: &SessionToken, delta: &Delta) -> Result<Applied> {
        read_through!(self, token, self.store.apply(token, delta).await, miss: Err(Error::NotFound { .. }))
    }

    async fn touch(&self, token: &SessionToken) -> Result<()> {
        read_through!(self, token, self.store.touch(token).await, miss: Err(Error::NotFound { .. }))
    }

    /// Deletes the session wherever it lives: the source's copy first (if that fails,
    /// nothing changed), then the session here. A logout that comes before any import
    /// leaves a tombstone here, so a request that fetched the source's copy just before
    /// cannot import it afterwards.
    async fn delete(&self, token: &SessionToken) -> Result<bool> {
        let there = self.source.remove(token).await?;
        let here = self.store.delete(token).await?;
        if there && !here {
            // Claim the token and end it (or end what a concurrent import just created):
            // the tombstone refuses any import still in flight.
            if self
                .store
                .create_with_token(token, NewSession::new())
                .await?
                .is_none()
            {
                tracing::debug!("a concurrent import landed first; ending it");
            }
            self.store.delete(token).await?;
        }
        Ok(here || there)
    }

    /// Rotates the session (imported first if need be), then removes the source's copy
    /// under the old token, so it can never be imported again once the forward ends (the
    /// old token could be one an attacker planted). A failure of that removal is logged,
    /// not answered: the login stands.
    async fn rotate(&self, token: &SessionToken) -> Result<SessionToken> {
        let new = read_through!(self, token, self.store.rotate(token).await, miss: Err(Error::NotFound { .. }))?;
        if let Err(error) = self.source.remove(token).await {
            tracing::error!(handle = %token.handle(), %error, "the source's copy of a rotated session was not removed");
        }
        Ok(new)
    }

    /// The principal's sessions here; sessions not imported yet have no principal index.
    async fn sessions_of(&self, principal: &str) -> Result<Vec<SessionHandle>> {
        self.store.sessions_of(principal).await
    }

    /// Ends the principal's sessions here; sessions not imported yet are not reached.
    async fn delete_all_of(&self, principal: &str) -> Result<usize> {
        self.store.delete_all_of(principal).await
    }

    /// The principal's sessions here, as [`sessions_of`](SessionStore::sessions_of).
    async fn summaries_of(&self, principal: &str) -> Result<Vec<SessionSummary>> {
        self.store.summaries_of(principal).await
    }
}
