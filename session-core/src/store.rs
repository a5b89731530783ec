//! The `SessionStore` trait: what every backend promises.

use async_trait::async_trait;

use crate::delta::{Applied, Delta};
use crate::error::Result;
use crate::handle::SessionHandle;
use crate::policy::Policy;
use crate::session::{NewSession, SessionRecord, SessionSummary};
use crate::token::SessionToken;

/// A freshly created session and the token that names it.
#[derive(Debug, Clone)]
pub struct Created {
    /// The token to hand to the client (for example in a cookie).
    pub token: SessionToken,
    /// The session at version 1.
    pub session: SessionRecord,
}

/// A store of sessions: the contract of `docs/semantics.md` (in the repository) as a trait.
///
/// Every method is atomic for the session it names and costs one round trip to the backend
/// unless its docs say otherwise. "Live" below means: created, not deleted, not expired (idle
/// timeout or deadline, on the store's clock), or reached through a rotated token within its
/// grace period. Methods that take a token follow a rotated token's forward.
///
/// The checks happen in a fixed order, so every store gives the same error for the same bad
/// request: input (before any I/O), then existence, then guards, then operations, then the
/// resulting size (see [`model`](crate::model)).
///
/// `session-testkit` has a conformance suite that checks all of this against a store.
///
/// # Implementing
///
/// A store that keeps sessions in some map can lean on [`Model`](crate::Model), which
/// implements every rule; this one wraps it in a lock and reads the wall clock:
///
/// ```
/// use std::sync::Mutex;
/// use async_trait::async_trait;
/// use session_core::*;
///
/// #[derive(Debug, Default)]
/// struct Tiny(Mutex<Model>);
///
/// impl Tiny {
///     fn now() -> Timestamp { SystemClock.now() }
///     fn model(&self) -> std::sync::MutexGuard<'_, Model> { self.0.lock().unwrap() }
/// }
///
/// #[async_trait]
/// impl SessionStore for Tiny {
///     fn policy(&self) -> Policy { self.model().policy().clone() }
///     async fn create(&self, new: NewSession) -> Result<Created> {
///         loop {
///             let token = SessionToken::generate();
///             if let Some(session) = self.model().create(Self::now(), token.handle(), new.clone())? {
///                 return Ok(Created { token, session });
///             }
///         }
///     }
///     async fn load(&self, t: &SessionToken) -> Result<Option<SessionRecord>> {
///         Ok(self.model().load(Self::now(), &t.handle()))
///     }
///     async fn load_read_only(&self, t: &SessionToken) -> Result<Option<SessionRecord>> {
///         Ok(self.model().load_read_only(Self::now(), &t.handle()))
///     }
///     async fn load_some(&self, t: &SessionToken, names: &[&str]) -> Result<Option<SessionRecord>> {
///         self.model().load_some(Self::now(), &t.handle(), names)
///     }
///     async fn apply(&self, t: &SessionToken, delta: &Delta) -> Result<Applied> {
///         self.model().apply(Self::now(), &t.handle(), delta)
///     }
///     async fn touch(&self, t: &SessionToken) -> Result<()> {
///         self.model().touch(Self::now(), &t.handle())
///     }
///     async fn delete(&self, t: &SessionToken) -> Result<bool> {
///         Ok(self.model().delete(Self::now(), &t.handle()))
///     }
///     async fn rotate(&self, t: &SessionToken) -> Result<SessionToken> {
///         loop {
///             let new = SessionToken::generate();
///             if self.model().rotate(Self::now(), &t.handle(), new.handle())?.is_some() {
///                 return Ok(new);
///             }
///         }
///     }
///     async fn sessions_of(&self, principal: &str) -> Result<Vec<SessionHandle>> {
///         self.model().sessions_of(Self::now(), principal)
///     }
///     async fn delete_all_of(&self, principal: &str) -> Result<usize> {
///         self.model().delete_all_of(Self::now(), principal)
///     }
/// }
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let store = Tiny::default();
/// let created = store.create(NewSession::new()).await?;
/// store.apply(&created.token, &Delta::new().increment("n", 2)).await?;
/// let session = store.load(&created.token).await?.unwrap();
/// assert_eq!(session.get::<i64>("n")?, Some(2));
/// # Ok::<_, Error>(()) }).unwrap();
/// ```
#[async_trait]
pub trait SessionStore: Send + Sync + std::fmt::Debug {
    /// The behaviour knobs this store runs with (limits, grace periods, touch interval).
    fn policy(&self) -> Policy;

    /// Creates a session under a fresh token and returns it at version 1.
    ///
    /// Must only write to a free key: on the (astronomically unlikely) collision with any
    /// existing session, tombstone or forward, pick another token. Rejects invalid input
    /// (names, sizes, idle timeout, principal, a deadline already passed) with nothing
    /// written. A session with a principal is added to that principal's index.
    async fn create(&self, new: NewSession) -> Result<Created>;

    /// Creates a session under `token`, a token the client already holds, as
    /// [`create`](SessionStore::create) does; `Ok(None)` when the token's key is taken in any
    /// state (a live session, a tombstone, a forward), with nothing written.
    ///
    /// For importing a session from another store under the token its client presents:
    /// however many requests with that token try at once, exactly one creates the session,
    /// and the others find it taken and load it. A store that cannot check and create in one
    /// step keeps the default, [`Error::Unsupported`](crate::Error::Unsupported).
    async fn create_with_token(
        &self,
        token: &SessionToken,
        new: NewSession,
    ) -> Result<Option<Created>> {
        let _ = (token, new);
        Err(crate::Error::Unsupported("create_with_token"))
    }

    /// The live session, touched: its last access becomes now (unless the last touch is
    /// younger than [`Policy::touch_interval`]), which slides its idle expiry. `None` if
    /// absent, expired, deleted, or a rotated token past its grace. Must never return a
    /// session past its expiry instant, even if the backend has not evicted it yet.
    async fn load(&self, token: &SessionToken) -> Result<Option<SessionRecord>>;

    /// Like [`SessionStore::load`] but writes nothing (no touch).
    async fn load_read_only(&self, token: &SessionToken) -> Result<Option<SessionRecord>>;

    /// Like [`SessionStore::load`] (touch included), but returns the metadata and only the
    /// named attributes that exist, so a request needing one attribute of a large session
    /// transfers one attribute.
    async fn load_some(
        &self,
        token: &SessionToken,
        names: &[&str],
    ) -> Result<Option<SessionRecord>>;

    /// Applies a delta atomically, all-or-nothing: guards first, then operations in order.
    ///
    /// Must never recreate a session that is absent, expired or deleted
    /// ([`Error::NotFound`](crate::Error::NotFound)). A failed guard applies nothing and
    /// returns [`Error::Conflict`](crate::Error::Conflict) with the current version. A
    /// non-empty delta increments the session version by one and stamps every attribute it
    /// writes with the new version. An empty delta writes nothing.
    async fn apply(&self, token: &SessionToken, delta: &Delta) -> Result<Applied>;

    /// Touches the session unconditionally (idle expiry slides);
    /// [`Error::NotFound`](crate::Error::NotFound) if there is no live session.
    async fn touch(&self, token: &SessionToken) -> Result<()>;

    /// Deletes the session (through a forward, the session it leads to). It stays a
    /// tombstone for [`Policy::delete_grace`], so a request still in flight cannot write it
    /// back; then it disappears. Returns whether a live session was deleted.
    async fn delete(&self, token: &SessionToken) -> Result<bool>;

    /// Moves the session to a new token (session-fixation defence, at login), content and
    /// versions unchanged; the rotation counts as activity (last access = now). For [`Policy::rotate_grace`] the old token forwards (loads see the
    /// new session, applies land in it); then it is dead. Must stay correct under concurrent
    /// applies through the old token: none may be lost or land only in the old session.
    async fn rotate(&self, token: &SessionToken) -> Result<SessionToken>;

    /// Handles of the principal's live sessions (order unspecified). The index may hold stale
    /// entries; they are never returned and may be pruned by this call.
    async fn sessions_of(&self, principal: &str) -> Result<Vec<SessionHandle>>;

    /// The principal's live sessions with their metadata (order unspecified): what a "your
    /// devices" page shows, without loading each session and its attributes.
    ///
    /// Lists exactly the sessions [`sessions_of`](SessionStore::sessions_of) would: live ones
    /// only, never one past its expiry instant (even if the backend has not evicted it
    /// yet), and never a stale index entry (which may be pruned by this call). Each
    /// summary is the session as [`load_read_only`](SessionStore::load_read_only) would
    /// return it at that moment ([`SessionSummary::from`] its record). Writes nothing to a
    /// session: no touch, so listing does not slide any session's expiry. Validates input as
    /// `sessions_of` does, with the same error (an empty principal is
    /// [`Error::InvalidInput`](crate::Error::InvalidInput)), before any I/O.
    ///
    /// The list is not a snapshot of one instant: each session is read on its own (on Redis
    /// one round trip for the index, then one per session). A store that cannot list its
    /// sessions this way keeps the default, [`Error::Unsupported`](crate::Error::Unsupported).
    async fn summaries_of(&self, principal: &str) -> Result<Vec<SessionSummary>> {
        let _ = principal;
        Err(crate::Error::Unsupported("summaries_of"))
    }

    /// Deletes every live session of the principal ("log out everywhere"); returns how many.
    async fn delete_all_of(&self, principal: &str) -> Result<usize>;
}

/// A shared store is a store, so everything that takes `impl SessionStore` (a framework
/// layer, say) takes a store by value, an `Arc<MemoryStore>` or an `Arc<dyn SessionStore>`
/// alike.
///
/// Written out rather than through `#[async_trait]`: each method hands back the inner
/// store's boxed future instead of boxing a second one around it, so sharing a store adds
/// no allocation to a call.
impl<S: SessionStore + ?Sized> SessionStore for std::sync::Arc<S> {
    fn policy(&self) -> Policy {
        (**self).policy()
    }

    fn create<'s, 'f>(&'s self, new: NewSession) -> Boxed<'f, Created>
    where
        's: 'f,
        Self: 'f,
    {
        (**self).create(new)
    }

    fn create_with_token<'s, 't, 'f>(
        &'s self,
        token: &'t SessionToken,
        new: NewSession,
    ) -> Boxed<'f, Option<Created>>
    where
        's: 'f,
        't: 'f,
        Self: 'f,
    {
        (**self).create_with_token(token, new)
    }

    fn load<'s, 't, 'f>(&'s self, token: &'t SessionToken) -> Boxed<'f, Option<SessionRecord>>
    where
        's: 'f,
        't: 'f,
        Self: 'f,
    {
        (**self).load(token)
    }

    fn load_read_only<'s, 't, 'f>(
        &'s self,
        token: &'t SessionToken,
    ) -> Boxed<'f, Option<SessionRecord>>
    where
        's: 'f,
        't: 'f,
        Self: 'f,
    {
        (**self).load_read_only(token)
    }

    fn load_some<'s, 't, 'n, 'm, 'f>(
        &'s self,
        token: &'t SessionToken,
        names: &'n [&'m str],
    ) -> Boxed<'f, Option<SessionRecord>>
    where
        's: 'f,
        't: 'f,
        'n: 'f,
        'm: 'f,
        Self: 'f,
    {
        (**self).load_some(token, names)
    }

    fn apply<'s, 't, 'd, 'f>(
        &'s self,
        token: &'t SessionToken,
        delta: &'d Delta,
    ) -> Boxed<'f, Applied>
    where
        's: 'f,
        't: 'f,
        'd: 'f,
        Self: 'f,
    {
        (**self).apply(token, delta)
    }

    fn touch<'s, 't, 'f>(&'s self, token: &'t SessionToken) -> Boxed<'f, ()>
    where
        's: 'f,
        't: 'f,
        Self: 'f,
    {
        (**self).touch(token)
    }

    fn delete<'s, 't, 'f>(&'s self, token: &'t SessionToken) -> Boxed<'f, bool>
    where
        's: 'f,
        't: 'f,
        Self: 'f,
    {
        (**self).delete(token)
    }

    fn rotate<'s, 't, 'f>(&'s self, token: &'t SessionToken) -> Boxed<'f, SessionToken>
    where
        's: 'f,
        't: 'f,
        Self: 'f,
    {
        (**self).rotate(token)
    }

    fn sessions_of<'s, 'p, 'f>(&'s self, principal: &'p str) -> Boxed<'f, Vec<SessionHandle>>
    where
        's: 'f,
        'p: 'f,
        Self: 'f,
    {
        (**self).sessions_of(principal)
    }

    fn summaries_of<'s, 'p, 'f>(&'s self, principal: &'p str) -> Boxed<'f, Vec<SessionSummary>>
    where
        's: 'f,
        'p: 'f,
        Self: 'f,
    {
        (**self).summaries_of(principal)
    }

    fn delete_all_of<'s, 'p, 'f>(&'s self, principal: &'p str) -> Boxed<'f, usize>
    where
        's: 'f,
        'p: 'f,
        Self: 'f,
    {
        (**self).delete_all_of(principal)
    }
}

/// The future of a [`SessionStore`] method, as `#[async_trait]` declares it.
type Boxed<'f, T> = std::pin::Pin<Box<dyn std::future::Future<Output = Result<T>> + Send + 'f>>;
