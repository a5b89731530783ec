//! [`Forms`]: which sessions a store last found hashed, so that their reads go to the hash
//! first.
//!
//! A read cannot tell a session's form before it reads ([`layout`](super::layout)): a `GET`
//! of a hashed session answers WRONGTYPE and costs a second round trip. Large sessions are
//! few, and an application server meets the same ones request after request, so the store
//! remembers the handles it found hashed. It is a hint, never trusted: a wrong one costs one
//! WRONGTYPE answer and is corrected, so servers that do not share it, or a session that
//! changed form since, read correctly all the same.

use std::collections::HashSet;
use std::sync::Mutex;

use crate::handle::SessionHandle;

use super::Handles;

/// Handles remembered at most; when full the set starts again (a miss costs a round trip).
const CAPACITY: usize = 4096;

/// The handles last seen in the hashed form.
#[derive(Debug, Default)]
pub(crate) struct Forms {
    hashed: Mutex<HashSet<SessionHandle, Handles>>,
}

impl Forms {
    /// Whether `handle` was last seen hashed.
    pub(crate) fn hashed(&self, handle: &SessionHandle) -> bool {
        self.hashed
            .lock()
            .map(|set| set.contains(handle))
            .unwrap_or(false)
    }

    /// Records the form `handle` was found in.
    pub(crate) fn found(&self, handle: SessionHandle, hashed: bool) {
        let Ok(mut set) = self.hashed.lock() else {
            return;
        };
        if !hashed {
            set.remove(&handle);
            return;
        }
        if set.len() >= CAPACITY {
            set.clear();
        }
        set.insert(handle);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token::SessionToken;

    #[test]
    fn remembers_hashed_sessions_and_forgets_when_full() {
        let forms = Forms::default();
        let first = SessionToken::generate().handle();
        assert!(!forms.hashed(&first));
        forms.found(first, true);
        assert!(forms.hashed(&first));
        forms.found(first, false);
        assert!(!forms.hashed(&first));
        forms.found(first, true);
        for _ in 0..CAPACITY {
            forms.found(SessionToken::generate().handle(), true);
        }
        assert!(!forms.hashed(&first), "the set started again when full");
    }
}
