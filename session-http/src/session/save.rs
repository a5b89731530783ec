//! Saving a request's changes: one delta, or a create when there is no session yet.

use std::collections::BTreeMap;

use session_core::{
    Delta, Error, MAX_COUNTER, NewSession, Op, Result, SessionStore, SessionToken, parse_counter,
};

use super::{RequestSession, State};

impl RequestSession {
    /// Creates a session from `new`, remembering its token for the response cookie.
    pub(super) async fn create(&self, state: &mut State, new: NewSession) -> Result<SessionToken> {
        let created = self.inner.config.store.create(new).await?;
        tracing::debug!(handle = %created.token.handle(), "session created");
        state.token = Some(created.token.clone());
        state.new_token = true;
        state.touched = true;
        state.rotate = false;
        state.idle_timeout = Some(created.session.idle_timeout);
        state.loaded = Some(Some(created.session));
        state.loaded_names = None;
        Ok(created.token)
    }

    /// Applies the pending changes: one `apply` to the current session, or one `create` (plus
    /// an `apply` of what `create` cannot express) for a new one.
    pub(super) async fn save_pending(&self, state: &mut State) -> Result<()> {
        if state.pending.is_empty() {
            return Ok(());
        }
        let ops = std::mem::take(&mut state.pending);
        state.overlay.clear();
        state.principal = None;
        if let Some(token) = state.token.clone() {
            let mut delta = Delta::from_parts(Vec::new(), ops.clone());
            if !state.touched {
                delta = delta.touch();
            }
            match self.inner.config.store.apply(&token, &delta).await {
                Ok(_) => {
                    state.touched = true;
                    state.invalidate();
                    return Ok(());
                }
                Err(Error::NotFound { .. }) => {
                    tracing::debug!("session gone at save; the changes start a fresh session");
                    state.stale_cookie = true;
                    state.token = None;
                }
                Err(error) => return Err(error),
            }
        }
        let (new, rest) = fold_into_new(ops);
        let token = self.create(state, new).await?;
        if !rest.is_empty() {
            self.inner
                .config
                .store
                .apply(&token, &Delta::from_parts(Vec::new(), rest))
                .await?;
        }
        state.invalidate();
        Ok(())
    }
}

/// Splits the operations of a new session into what [`NewSession`] can hold and the rest (to
/// apply after `create`), keeping their effect: the longest prefix that folds goes into
/// `NewSession`.
fn fold_into_new(ops: Vec<Op>) -> (NewSession, Vec<Op>) {
    let mut attrs: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut new = NewSession::new();
    let mut rest = Vec::new();
    let mut iter = ops.into_iter();
    for op in iter.by_ref() {
        match op {
            Op::Put { name, value } => {
                attrs.insert(name, value);
            }
            Op::Remove { name } => {
                attrs.remove(&name);
            }
            Op::Increment { name, by } => {
                let start = match attrs.get(&name) {
                    None => Some(0),
                    Some(v) => parse_counter(v),
                };
                match start.and_then(|s| s.checked_add(by)) {
                    Some(n) if (-MAX_COUNTER..=MAX_COUNTER).contains(&n) => {
                        attrs.insert(name, n.to_string().into_bytes());
                    }
                    _ => {
                        rest.push(Op::Increment { name, by });
                        break;
                    }
                }
            }
            Op::SetIdleTimeout(d) => new.idle_timeout = Some(d),
            Op::SetDeadline(d) => new.deadline = d,
            Op::SetPrincipal(p) => new.principal = p,
            Op::Touch => {}
        }
    }
    rest.extend(iter);
    new.attributes = attrs.into_iter().collect();
    (new, rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_session_ops_fold_until_one_cannot() {
        let ops = vec![
            Op::Put {
                name: "a".into(),
                value: b"1".to_vec(),
            },
            Op::Increment {
                name: "a".into(),
                by: 2,
            },
            Op::Increment {
                name: "n".into(),
                by: 5,
            },
            Op::Remove {
                name: "gone".into(),
            },
            Op::SetPrincipal(Some("alice".into())),
            Op::Put {
                name: "text".into(),
                value: b"\"x\"".to_vec(),
            },
            Op::Increment {
                name: "text".into(),
                by: 1,
            },
            Op::Touch,
        ];
        let (new, rest) = fold_into_new(ops);
        assert_eq!(
            new.attributes,
            vec![
                ("a".to_owned(), b"3".to_vec()),
                ("n".to_owned(), b"5".to_vec()),
                ("text".to_owned(), b"\"x\"".to_vec()),
            ]
        );
        assert_eq!(new.principal.as_deref(), Some("alice"));
        assert_eq!(
            rest,
            vec![
                Op::Increment {
                    name: "text".into(),
                    by: 1
                },
                Op::Touch
            ]
        );
    }
}
