//! The per-request session handle, framework-neutral: a framework crate starts one per
//! request from the request's `Cookie` headers, hands it to handlers, and finishes it when
//! the response is produced.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use session_core::{
    Deadline, Delta, Error, MAX_COUNTER, NewSession, Op, Reader, Result, SessionHandle,
    SessionStore, SessionStoreExt, SessionSummary, SessionToken, Timestamp, parse_counter,
};
use tokio::sync::Mutex;

mod finish;
mod save;

pub use finish::Finished;

use crate::config::{Presented, SessionConfig};

/// The session of one request, as a framework's middleware hands it to handlers (in
/// `session-tower`, the axum extractor `Session`; in `session-actix`, the actix-web
/// extractor `Session`; both dereference to this).
///
/// - Nothing is read until a method needs stored data; the first such call loads the session
///   in one round trip (a touching [`load`](session_core::SessionStore::load), or
///   [`load_some`](session_core::SessionStore::load_some) of the names declared with
///   [`RequestSession::need`] or [`SessionConfig::need`]).
/// - Writes ([`insert`](RequestSession::insert), [`remove`](RequestSession::remove),
///   [`increment`](RequestSession::increment), principal, timeouts) are recorded as one
///   [`Delta`] and applied once, when the response is produced, in one round trip. A request
///   that writes without reading does not load at all (the delta carries a touch, so the
///   blind write also slides the idle expiry). A request that only reads never writes.
///   The whole record is never written back, so overlapping requests of one user that change
///   different attributes both land.
/// - Reads see the request's own pending writes.
/// - [`update`](RequestSession::update) is read-modify-write that loses nothing under concurrency;
///   it is applied at once. [`delete`](RequestSession::delete) (logout) is applied at once, too.
///   [`rotate`](RequestSession::rotate) (login) happens when the response is produced.
///
/// Clones share the same state. Changes made after the response was produced are dropped
/// (with a warning).
#[derive(Clone)]
pub struct RequestSession {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for RequestSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestSession").finish_non_exhaustive()
    }
}

struct Inner {
    config: Arc<SessionConfig>,
    state: Mutex<State>,
}

/// A change the request made to one attribute and has not saved yet, for read-your-writes.
#[derive(Debug, Clone)]
enum Pending {
    Put(Vec<u8>),
    Removed,
    Added(i64),
}

#[derive(Debug, Default)]
struct State {
    /// The token of the session this request works on, if any.
    token: Option<SessionToken>,
    /// A token came in the request but named no live session (or was malformed).
    stale_cookie: bool,
    /// The token came in the legacy cookie: the response hands it over in ours.
    from_legacy: bool,
    /// The legacy cookie came in the request: the response removes it.
    legacy_cookie: bool,
    /// The snapshot, once loaded (`Some(None)`: there is no live session).
    loaded: Option<Option<session_core::SessionRecord>>,
    /// Attributes present in the snapshot (`None`: all of them).
    loaded_names: Option<BTreeSet<String>>,
    /// Names to load with `load_some` instead of a full load.
    need: Option<Vec<String>>,
    /// The changes to apply at response time.
    pending: Vec<Op>,
    overlay: BTreeMap<String, Pending>,
    /// The session was touched (loaded or written) in this request.
    touched: bool,
    /// A new token the client must receive (a created or rotated session).
    new_token: bool,
    rotate: bool,
    deleted: bool,
    finished: bool,
    /// The idle timeout as far as known (for a persistent cookie's Max-Age).
    idle_timeout: Option<Duration>,
    /// Principal as set in this request (`Some(None)`: cleared).
    principal: Option<Option<String>>,
}

impl RequestSession {
    /// The session of a request that came with these `Cookie` header values (as text; a
    /// value that is not text is left out by the caller), under `config`. Nothing is read
    /// until a handler needs stored data. A framework's middleware calls this once per
    /// request, and [`finish`](RequestSession::finish) when the response is produced.
    pub fn start<'h>(
        config: &Arc<SessionConfig>,
        cookie_headers: impl IntoIterator<Item = &'h str>,
    ) -> Self {
        let presented = config.cookie.token_from(cookie_headers);
        RequestSession::new(config.clone(), presented)
    }

    fn new(config: Arc<SessionConfig>, presented: Presented) -> Self {
        let need = config.need.clone();
        let state = State {
            token: presented.token,
            stale_cookie: presented.stale,
            from_legacy: presented.from_legacy,
            legacy_cookie: presented.legacy,
            need,
            ..State::default()
        };
        RequestSession {
            inner: Arc::new(Inner {
                config,
                state: Mutex::new(state),
            }),
        }
    }

    /// A session handle outside any middleware, over `store`, for the session `token`
    /// names (`None`: no session yet; one is created when a change is saved). It behaves as
    /// a handler's session does, with the default [`SessionConfig`], and
    /// [`save`](RequestSession::save) ends it as a middleware ends a request. For unit tests
    /// of handlers without a server or Redis, and for background jobs that change a
    /// session.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use session_core::MemoryStore;
    /// use session_http::RequestSession;
    ///
    /// async fn add_to_cart(session: &RequestSession, item: &str) -> session_core::Result<()> {
    ///     let mut cart: Vec<String> = session.get_or_default("cart").await?;
    ///     cart.push(item.to_owned());
    ///     session.insert("cart", &cart).await
    /// }
    ///
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let store = Arc::new(MemoryStore::new());
    /// let session = RequestSession::detached(store.clone(), None);
    /// add_to_cart(&session, "apple").await?;
    /// let token = session.save().await?.expect("a session was created");
    ///
    /// // The next request of the same client.
    /// let next = RequestSession::detached(store, Some(token));
    /// assert_eq!(next.get::<Vec<String>>("cart").await?, Some(vec!["apple".to_owned()]));
    /// # Ok::<_, session_core::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn detached(store: impl SessionStore + 'static, token: Option<SessionToken>) -> Self {
        let presented = Presented {
            token,
            ..Presented::default()
        };
        RequestSession::new(Arc::new(SessionConfig::new(store)), presented)
    }

    /// Ends the session as a middleware ends a request: applies the pending changes (one round
    /// trip) and a requested rotation. Returns the token the client holds from now on
    /// (`None`: there is no session, or it was deleted). Changes made after this are
    /// dropped, as after a response.
    pub async fn save(&self) -> Result<Option<SessionToken>> {
        let finished = self.finish(false).await;
        if let Some(error) = finished.error {
            return Err(error);
        }
        Ok(self.inner.state.lock().await.token.clone())
    }

    /// Declares which attributes this request needs, so the first access loads only those
    /// (one [`load_some`](session_core::SessionStore::load_some) round trip) instead of the
    /// whole session. Call it before the first read; a read of an undeclared attribute then
    /// costs one more round trip. Has no effect after the session was loaded.
    pub async fn need(&self, names: &[&str]) {
        let mut state = self.inner.state.lock().await;
        if state.loaded.is_none() {
            state.need = Some(names.iter().map(|n| (*n).to_owned()).collect());
        }
    }

    /// An attribute decoded from JSON; `Ok(None)` when absent (or when there is no session).
    pub async fn get<T: DeserializeOwned>(&self, name: &str) -> Result<Option<T>> {
        match self.get_bytes(name).await? {
            None => Ok(None),
            Some(bytes) => {
                serde_json::from_slice(&bytes)
                    .map(Some)
                    .map_err(|source| Error::Decode {
                        name: name.to_owned(),
                        source,
                    })
            }
        }
    }

    /// An attribute's raw bytes; `Ok(None)` when absent.
    pub async fn get_bytes(&self, name: &str) -> Result<Option<Vec<u8>>> {
        let mut state = self.inner.state.lock().await;
        let base = match state.overlay.get(name) {
            Some(Pending::Put(v)) => return Ok(Some(v.clone())),
            Some(Pending::Removed) => return Ok(None),
            Some(Pending::Added(_)) | None => {
                self.ensure_loaded(&mut state, Some(name)).await?;
                state
                    .snapshot()
                    .and_then(|s| s.get_bytes(name).map(<[u8]>::to_vec))
            }
        };
        match state.overlay.get(name) {
            Some(Pending::Added(n)) => {
                let start = match &base {
                    None => 0,
                    Some(bytes) => match parse_counter(bytes) {
                        Some(v) => v,
                        None => return Ok(base),
                    },
                };
                Ok(Some(start.saturating_add(*n).to_string().into_bytes()))
            }
            _ => Ok(base),
        }
    }

    /// Sets an attribute to `value` as JSON, applied at response time.
    pub async fn insert<T: Serialize + ?Sized>(&self, name: &str, value: &T) -> Result<()> {
        let bytes = serde_json::to_vec(value).map_err(|source| Error::Encode {
            name: name.to_owned(),
            source,
        })?;
        self.insert_bytes(name, bytes).await
    }

    /// Sets an attribute to raw bytes, applied at response time.
    pub async fn insert_bytes(&self, name: &str, value: impl Into<Vec<u8>>) -> Result<()> {
        session_core::validate_name(name)?;
        let value = value.into();
        self.record(
            Op::Put {
                name: name.to_owned(),
                value: value.clone(),
            },
            Some((name, Pending::Put(value))),
        )
        .await;
        Ok(())
    }

    /// Removes an attribute, at response time.
    pub async fn remove(&self, name: &str) -> Result<()> {
        session_core::validate_name(name)?;
        self.record(
            Op::Remove {
                name: name.to_owned(),
            },
            Some((name, Pending::Removed)),
        )
        .await;
        Ok(())
    }

    /// An attribute decoded from JSON, or `T::default()` when absent (or when there is no
    /// session): `session.get_or_default::<Vec<String>>("cart")`.
    pub async fn get_or_default<T: DeserializeOwned + Default>(&self, name: &str) -> Result<T> {
        Ok(self.get(name).await?.unwrap_or_default())
    }

    /// Removes an attribute at response time and returns what it held (decoded from JSON),
    /// as tower-sessions' `remove` does. It reads first (a load, unless the session is
    /// loaded already); a value that does not decode as `T` is an error, and nothing is
    /// removed. Between the read and the save another request may change the attribute;
    /// the removal still lands. For "remove only if it is still what I read", use
    /// [`update`](RequestSession::update) with a version guard.
    pub async fn take<T: DeserializeOwned>(&self, name: &str) -> Result<Option<T>> {
        let value = self.get(name).await?;
        if value.is_some() {
            // Absent: nothing to remove, and no session is created for it.
            self.remove(name).await?;
        }
        Ok(value)
    }

    /// Removes every attribute at response time; the session itself, its principal and
    /// timeouts stay (use [`delete`](RequestSession::delete) to end it). It loads the whole session
    /// to learn the names, and removes those (and what this request added): an attribute
    /// another request adds meanwhile survives, and damaged attributes are kept, as every
    /// delta keeps them (see the contract in `docs/semantics.md`).
    pub async fn clear(&self) -> Result<()> {
        let mut state = self.inner.state.lock().await;
        for name in self.present_names(&mut state).await? {
            Self::record_locked(
                &mut state,
                Op::Remove { name: name.clone() },
                Some((&name, Pending::Removed)),
            );
        }
        Ok(())
    }

    /// Whether the session holds no attribute, counting this request's pending changes
    /// (loads the whole session if needed). No session at all is empty.
    pub async fn is_empty(&self) -> Result<bool> {
        let mut state = self.inner.state.lock().await;
        Ok(self.present_names(&mut state).await?.is_empty())
    }

    /// The attributes the session holds as this request sees it: the stored ones (a full
    /// load, one more round trip when only [`need`](RequestSession::need)ed names were loaded) with
    /// this request's puts, increments and removals over them.
    async fn present_names(&self, state: &mut State) -> Result<BTreeSet<String>> {
        if state.loaded.is_none() {
            // Every name is needed: one full load rather than `load_some` and then another.
            state.need = None;
        }
        self.ensure_loaded(state, None).await?;
        if state.loaded_names.is_some()
            && let Some(token) = state.token.clone()
        {
            let full = self.inner.config.store.load(&token).await?;
            state.loaded_names = None;
            self.loaded(state, full);
        }
        let mut names: BTreeSet<String> = state
            .snapshot()
            .map(|s| s.attributes.keys().cloned().collect())
            .unwrap_or_default();
        for (name, pending) in &state.overlay {
            match pending {
                Pending::Removed => names.remove(name),
                Pending::Put(_) | Pending::Added(_) => names.insert(name.clone()),
            };
        }
        Ok(names)
    }

    /// Adds `by` to a decimal integer attribute (absent counts as 0), at response time,
    /// atomically in the store: concurrent increments from other requests are all counted.
    /// No load needed. A non-integer value makes the save fail with
    /// [`Error::TypeMismatch`].
    pub async fn increment(&self, name: &str, by: i64) -> Result<()> {
        session_core::validate_name(name)?;
        if !(-MAX_COUNTER..=MAX_COUNTER).contains(&by) {
            return Err(Error::Overflow {
                name: name.to_owned(),
            });
        }
        let mut state = self.inner.state.lock().await;
        let merged = match state.overlay.get(name) {
            None => Pending::Added(by),
            Some(Pending::Added(n)) => Pending::Added(n.saturating_add(by)),
            Some(Pending::Removed) => Pending::Put(by.to_string().into_bytes()),
            Some(Pending::Put(v)) => match parse_counter(v) {
                Some(n) => Pending::Put(n.saturating_add(by).to_string().into_bytes()),
                None => Pending::Put(v.clone()),
            },
        };
        Self::record_locked(
            &mut state,
            Op::Increment {
                name: name.to_owned(),
                by,
            },
            Some((name, merged)),
        );
        Ok(())
    }

    /// The principal (the logged-in user), as stored or as set by this request.
    pub async fn principal(&self) -> Result<Option<String>> {
        let mut state = self.inner.state.lock().await;
        if let Some(p) = &state.principal {
            return Ok(p.clone());
        }
        self.ensure_loaded(&mut state, None).await?;
        Ok(state.snapshot().and_then(|s| s.principal.clone()))
    }

    /// Sets the principal, at response time (at login, together with [`RequestSession::rotate`]).
    pub async fn set_principal(&self, principal: &str) -> Result<()> {
        session_core::validate_principal(principal)?;
        let mut state = self.inner.state.lock().await;
        state.principal = Some(Some(principal.to_owned()));
        Self::record_locked(
            &mut state,
            Op::SetPrincipal(Some(principal.to_owned())),
            None,
        );
        Ok(())
    }

    /// Clears the principal, at response time.
    pub async fn clear_principal(&self) {
        let mut state = self.inner.state.lock().await;
        state.principal = Some(None);
        Self::record_locked(&mut state, Op::SetPrincipal(None), None);
    }

    /// Changes the idle timeout, at response time (a persistent cookie's `Max-Age` follows).
    pub async fn set_idle_timeout(&self, idle: Duration) -> Result<()> {
        session_core::validate_idle_timeout(idle)?;
        let mut state = self.inner.state.lock().await;
        state.idle_timeout = Some(idle);
        Self::record_locked(&mut state, Op::SetIdleTimeout(idle), None);
        Ok(())
    }

    /// Sets the absolute deadline, at response time.
    pub async fn set_deadline(&self, deadline: Deadline) {
        self.record(Op::SetDeadline(deadline), None).await;
    }

    /// The idle timeout of the stored session (loads it if needed); `None` without a session.
    pub async fn idle_timeout(&self) -> Result<Option<Duration>> {
        let mut state = self.inner.state.lock().await;
        if let Some(idle) = state.idle_timeout {
            return Ok(Some(idle));
        }
        self.ensure_loaded(&mut state, None).await?;
        Ok(state.snapshot().map(|s| s.idle_timeout))
    }

    /// The absolute deadline of the stored session, if it has one (loads it if needed; a
    /// deadline set by this request shows after it is saved).
    pub async fn deadline(&self) -> Result<Option<Timestamp>> {
        let mut state = self.inner.state.lock().await;
        self.ensure_loaded(&mut state, None).await?;
        Ok(state.snapshot().and_then(|s| s.deadline))
    }

    /// When the stored session expires (idle expiry or deadline, whichever is first; loads
    /// it if needed); `None` without a session.
    pub async fn expires_at(&self) -> Result<Option<Timestamp>> {
        let mut state = self.inner.state.lock().await;
        self.ensure_loaded(&mut state, None).await?;
        Ok(state
            .snapshot()
            .map(session_core::SessionRecord::expires_at))
    }

    /// The storage handle of the current session (safe to log; loads it if needed).
    pub async fn handle(&self) -> Result<Option<SessionHandle>> {
        let mut state = self.inner.state.lock().await;
        self.ensure_loaded(&mut state, None).await?;
        Ok(state.token.as_ref().map(SessionToken::handle))
    }

    /// "Your devices": every live session of this session's principal (this one included,
    /// once saved), with when it was created, last used and expires, for a page where the
    /// user sees where they are signed in; [`handle`](RequestSession::handle) tells which
    /// one is this. Empty when nobody is signed in. One read of the principal's index and
    /// one per session ([`summaries_of`](SessionStore::summaries_of)); nothing is touched.
    ///
    /// ```
    /// use session_core::MemoryStore;
    /// use session_http::RequestSession;
    ///
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let store = std::sync::Arc::new(MemoryStore::new());
    /// for _ in 0..2 {
    ///     let login = RequestSession::detached(store.clone(), None);
    ///     login.set_principal("ann").await?;
    ///     login.save().await?;
    /// }
    /// let devices = RequestSession::detached(store, None);
    /// assert!(devices.devices().await?.is_empty(), "nobody is signed in here");
    /// devices.set_principal("ann").await?;
    /// assert_eq!(devices.devices().await?.len(), 2);
    /// # Ok::<_, session_core::Error>(()) }).unwrap();
    /// ```
    pub async fn devices(&self) -> Result<Vec<SessionSummary>> {
        match self.principal().await? {
            Some(principal) => self.inner.config.store.summaries_of(&principal).await,
            None => Ok(Vec::new()),
        }
    }

    /// Read-modify-write that loses no concurrent change, applied at once with
    /// [`SessionStoreExt::update`]: `f` reads through a [`Reader`], the delta it returns is
    /// applied guarded on exactly what it read, and on a conflict it runs again on fresh data.
    /// `f` may run several times; retries follow [`SessionConfig::retry`].
    ///
    /// This request's pending changes are saved first, so `f` sees them. Without a live
    /// session, one is created first (and its cookie sent with the response).
    pub async fn update<F>(&self, f: F) -> Result<session_core::Applied>
    where
        F: FnMut(&Reader<'_>) -> Result<Delta> + Send,
    {
        let mut state = self.inner.state.lock().await;
        self.save_pending(&mut state).await?;
        let store = &self.inner.config.store;
        let token = match state.token.clone() {
            Some(token) => token,
            None => self.create(&mut state, NewSession::new()).await?,
        };
        let mut f = f;
        let retry = self.inner.config.retry;
        let mut result = store.update_with(&token, retry, &mut f).await;
        if matches!(result, Err(Error::NotFound { .. })) {
            // Deleted (logout elsewhere) or expired meanwhile: never recreated; the change
            // starts a fresh session instead.
            tracing::debug!("session gone during update; the change starts a fresh session");
            state.stale_cookie = true;
            state.token = None;
            let token = self.create(&mut state, NewSession::new()).await?;
            result = store.update_with(&token, retry, &mut f).await;
        }
        state.invalidate();
        if result.is_ok() {
            state.touched = true;
        }
        result
    }

    /// Moves the session to a new token when the response is produced (session-fixation
    /// defence: call it at login, after [`RequestSession::set_principal`]). The old token forwards
    /// to the new session for the store's [`Policy::rotate_grace`](session_core::Policy),
    /// so requests already in flight still land. A session created in this request already
    /// has a fresh token and is not rotated.
    pub async fn rotate(&self) {
        self.inner.state.lock().await.rotate = true;
    }

    /// Deletes the session now (logout): every server sees it gone at once, a request in
    /// flight cannot write it back, and the response removes the cookie. Pending changes of
    /// this request are dropped; changes made after this start a new session.
    pub async fn delete(&self) -> Result<()> {
        let mut state = self.inner.state.lock().await;
        state.drop_pending();
        // The token stays until the delete succeeded: after a failure the response neither
        // removes the cookie nor hands over a legacy one, so the client can log out again.
        if let Some(token) = state.token.clone() {
            self.inner.config.store.delete(&token).await?;
            tracing::debug!(handle = %token.handle(), "session deleted");
        }
        Self::ended(&mut state);
        Ok(())
    }

    /// This request's view once its session ended: no token, nothing pending, and a cookie
    /// removal in the response.
    fn ended(state: &mut State) {
        state.drop_pending();
        state.token = None;
        state.deleted = true;
        state.new_token = false;
        state.loaded = Some(None);
        state.loaded_names = None;
    }

    /// Logs the user out everywhere: deletes every live session of this session's principal
    /// (on every device, this one included) at once, and the response removes the cookie.
    /// Returns how many sessions ended. Without a principal (nobody is logged in), it ends
    /// this session alone, as [`delete`](RequestSession::delete) does.
    pub async fn log_out_everywhere(&self) -> Result<usize> {
        let principal = self.principal().await?;
        let store = &self.inner.config.store;
        let mut state = self.inner.state.lock().await;
        let mut ended = match &principal {
            Some(principal) => store.delete_all_of(principal).await?,
            None => 0,
        };
        // This session too, also when its principal was set in this request and is not in
        // the principal's index yet (a session already ended above is not counted twice).
        if let Some(token) = state.token.clone() {
            ended += usize::from(store.delete(&token).await?);
        }
        tracing::debug!(ended, "logged out everywhere");
        Self::ended(&mut state);
        Ok(ended)
    }

    async fn record(&self, op: Op, overlay: Option<(&str, Pending)>) {
        let mut state = self.inner.state.lock().await;
        Self::record_locked(&mut state, op, overlay);
    }

    fn record_locked(state: &mut State, op: Op, overlay: Option<(&str, Pending)>) {
        if state.finished {
            tracing::warn!("session changed after the response was produced; change dropped");
            return;
        }
        if let Some((name, pending)) = overlay {
            state.overlay.insert(name.to_owned(), pending);
        }
        state.pending.push(op);
    }

    async fn ensure_loaded(&self, state: &mut State, name: Option<&str>) -> Result<()> {
        let store = &self.inner.config.store;
        let Some(token) = state.token.clone() else {
            if state.loaded.is_none() {
                state.loaded = Some(None);
            }
            return Ok(());
        };
        match (&state.loaded, &state.loaded_names, name) {
            (None, _, _) => {
                let session = match state.need.clone() {
                    None => store.load(&token).await?,
                    Some(mut names) => {
                        if let Some(name) = name
                            && !names.iter().any(|n| n == name)
                        {
                            names.push(name.to_owned());
                        }
                        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
                        state.loaded_names = Some(names.iter().cloned().collect());
                        store.load_some(&token, &refs).await?
                    }
                };
                self.loaded(state, session);
            }
            (Some(Some(_)), Some(names), Some(name)) if !names.contains(name) => {
                tracing::debug!(name, "attribute not declared with need(): one more load");
                let extra = store.load_some(&token, &[name]).await?;
                match extra {
                    None => self.loaded(state, None),
                    Some(extra) => {
                        if let Some(Some(session)) = &mut state.loaded {
                            session.attributes.extend(extra.attributes);
                            session.damaged.extend(extra.damaged);
                        }
                        if let Some(names) = &mut state.loaded_names {
                            names.insert(name.to_owned());
                        }
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn loaded(&self, state: &mut State, session: Option<session_core::SessionRecord>) {
        match &session {
            Some(s) => {
                state.touched = true;
                state.idle_timeout.get_or_insert(s.idle_timeout);
            }
            None => {
                tracing::debug!("session cookie names no live session; starting a fresh one");
                state.token = None;
                state.stale_cookie = true;
                state.loaded_names = None;
            }
        }
        state.loaded = Some(session);
    }
}

impl State {
    /// Drops the request's unsaved changes and rotation (after a delete, or a handler's
    /// server error).
    fn drop_pending(&mut self) {
        self.pending.clear();
        self.overlay.clear();
        self.principal = None;
        self.rotate = false;
    }

    fn snapshot(&self) -> Option<&session_core::SessionRecord> {
        self.loaded.as_ref().and_then(Option::as_ref)
    }

    /// Forgets the snapshot after a write, so later reads see the stored state.
    fn invalidate(&mut self) {
        if self.token.is_some() {
            self.loaded = None;
            self.loaded_names = None;
        }
    }
}
