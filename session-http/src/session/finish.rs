//! The end of a request: saving, rotating, and deciding the cookies.

use session_core::{Error, SessionStore};

use super::{RequestSession, State};
use crate::config::{CookieLifetime, SaveFailure};

/// What the end of a request decided (see [`RequestSession::finish`]): what a framework's
/// middleware writes into the response. Its `Debug` leaves the cookies' values out: they
/// are tokens.
#[non_exhaustive]
pub struct Finished {
    /// The `Set-Cookie` header values the response carries: ours when it changes, and the
    /// legacy cookie's removal.
    pub set_cookies: Vec<String>,
    /// Why the request's changes were not saved, when they were not (logged already).
    pub error: Option<Error>,
    /// What the configuration says to do then.
    save_failure: SaveFailure,
}

impl std::fmt::Debug for Finished {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self
            .set_cookies
            .iter()
            .map(|c| c.split('=').next().unwrap_or_default())
            .collect();
        f.debug_struct("Finished")
            .field("set_cookies (names)", &names)
            .field("error", &self.error)
            .field("save_failure", &self.save_failure)
            .finish()
    }
}

impl Finished {
    /// The response that replaces the handler's, as its status and plain-text body: when
    /// the changes were not saved under [`SaveFailure::Fail`], so a client is never told
    /// "done" for a change that was lost. `None`: send the handler's response.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use session_core::{Limits, MemoryStore, Policy, SystemClock};
    /// use session_http::{RequestSession, SessionConfig};
    ///
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// // Sessions of at most 64 bytes: a save of more breaks the limit.
    /// let limits = Limits { max_session_bytes: 64, ..Limits::default() };
    /// let store = MemoryStore::with(Policy { limits, ..Policy::default() }, Arc::new(SystemClock))?;
    /// let config = Arc::new(SessionConfig::new(store));
    /// let session = RequestSession::start(&config, []);
    /// session.insert("note", &"x".repeat(100)).await?;
    /// let finished = session.finish(false).await;
    /// let (status, body) = finished.replacement().expect("the handler's response is replaced");
    /// assert_eq!(status, 400);
    /// assert!(body.starts_with("session changes were not saved"));
    /// # Ok::<_, session_core::Error>(()) }).unwrap();
    /// ```
    pub fn replacement(&self) -> Option<(u16, String)> {
        match (&self.error, self.save_failure) {
            (Some(error), SaveFailure::Fail) => {
                Some((crate::status_of(error), crate::unsaved_message(error)))
            }
            _ => None,
        }
    }
}

impl RequestSession {
    /// Ends the request, once: saves the pending changes, runs the rotation a handler asked
    /// for, and decides the cookie. Every decision about the end of a request is made here;
    /// a framework's middleware only writes the result into the response.
    ///
    /// `failed`: the handler answered with a server error (5xx). Its pending changes and
    /// rotation are then dropped, as tower-sessions drops its save, unless configured with
    /// [`save_on_server_error`](crate::SessionConfig::save_on_server_error).
    /// What was applied at once ([`update`](RequestSession::update), [`delete`](RequestSession::delete))
    /// stays applied, and its cookie is still sent.
    pub async fn finish(&self, failed: bool) -> Finished {
        let mut state = self.inner.state.lock().await;
        state.finished = true;
        if failed && !self.inner.config.save_on_server_error {
            if !state.pending.is_empty() || state.rotate {
                tracing::debug!(
                    changes = state.pending.len(),
                    rotate = state.rotate,
                    "the handler answered with a server error: session changes not saved"
                );
            }
            state.drop_pending();
        }
        let mut outcome = self.save_pending(&mut state).await;
        // Set when another request rotated the token first: its response carries the new
        // cookie, which this one must not overwrite with the old token.
        let mut leave_cookie = false;
        if outcome.is_ok()
            && state.rotate
            && !state.new_token
            && let Some(old) = state.token.clone()
        {
            outcome = match self.inner.config.store.rotate(&old).await {
                Ok(new) => {
                    tracing::debug!(old = %old.handle(), new = %new.handle(), "session rotated");
                    state.token = Some(new);
                    state.new_token = true;
                    Ok(())
                }
                Err(Error::Rotated { successor }) => {
                    // A concurrent request (a double-submitted login, another tab) rotated
                    // it first and sends the client the new token; this response leaves the
                    // cookie alone, and the old token forwards until then.
                    tracing::debug!(old = %old.handle(), %successor, "session rotated by another request");
                    leave_cookie = true;
                    Ok(())
                }
                Err(Error::NotFound { .. }) => {
                    // Deleted or expired meanwhile: nothing to rotate, the cookie goes.
                    tracing::debug!(old = %old.handle(), "session gone before rotation");
                    state.token = None;
                    state.stale_cookie = true;
                    Ok(())
                }
                Err(error) => Err(error),
            };
        }
        if outcome.is_ok()
            && state.from_legacy
            && !state.touched
            && !state.deleted
            && let Some(token) = state.token.clone()
        {
            // The token came in the legacy cookie and nothing checked it: it goes into our
            // cookie only if it names a live session (importing it, through an importing
            // store). Once per client: from then on it comes in our cookie.
            match self.inner.config.store.load_read_only(&token).await {
                Ok(Some(_)) => state.touched = true,
                Ok(None) => {
                    state.token = None;
                    state.stale_cookie = true;
                }
                // Nothing of this request is lost (it changed nothing), so its response
                // stands; the legacy cookie stays for the next request to try again.
                Err(error) => {
                    tracing::warn!(%error, "legacy session could not be checked; the old cookie stays")
                }
            }
        }
        // A legacy token that no step of this request found live (the check or the import
        // failed) is not handed over, and the legacy cookie stays: the next request tries
        // again. Handing it over would leave the client a token that only the old cookie
        // can still lead to its session (one mapped by `legacy_token` needs the old value).
        let unconfirmed = state.from_legacy
            && !state.touched
            && !state.deleted
            && !state.new_token
            && state.token.is_some();
        if unconfirmed {
            tracing::debug!("legacy session not confirmed live; the old cookie stays");
            state.from_legacy = false;
            leave_cookie = true;
        }
        let mut set_cookies = Vec::new();
        if !leave_cookie {
            set_cookies.extend(self.cookie_change(&state));
        }
        // When another request rotated the session, the legacy cookie stays until that
        // request's response hands over the new token: this client keeps a token that
        // forwards in the meantime.
        if state.legacy_cookie && !leave_cookie {
            set_cookies.extend(self.inner.config.cookie.remove_legacy_cookie());
        }
        let save_failure = self.inner.config.save_failure;
        if let Err(error) = &outcome {
            match save_failure {
                SaveFailure::Fail => {
                    tracing::error!(%error, "session changes not saved; failing the request")
                }
                SaveFailure::LogAndContinue => {
                    tracing::error!(%error, "session changes not saved; continuing as configured")
                }
            }
        }
        Finished {
            set_cookies,
            error: outcome.err(),
            save_failure,
        }
    }

    /// The `Set-Cookie` value at the end of a request: a new token (created or rotated), a
    /// token that came in the legacy cookie, a persistent cookie's refreshed `Max-Age`
    /// after a touch, or a removal once the session is gone (deleted, or the cookie named
    /// none).
    fn cookie_change(&self, state: &State) -> Option<String> {
        let config = &self.inner.config;
        let idle = || {
            state
                .idle_timeout
                .unwrap_or_else(|| config.store.policy().default_idle_timeout)
        };
        match (&state.token, state.new_token) {
            (Some(token), true) => Some(config.cookie.set_cookie(token, idle())),
            (Some(token), false) if state.from_legacy => {
                Some(config.cookie.set_cookie(token, idle()))
            }
            (Some(token), false)
                if config.cookie.lifetime == CookieLifetime::Persistent && state.touched =>
            {
                Some(config.cookie.set_cookie(token, idle()))
            }
            (None, _) if state.deleted || state.stale_cookie => Some(config.cookie.remove_cookie()),
            _ => None,
        }
    }
}
