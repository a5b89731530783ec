//! `Importing` over the memory store, with a source that counts what it is asked.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use session_core::import::{AfterImport, Importing, Source};
use session_core::{
    Delta, ManualClock, MemoryStore, NewSession, Policy, Result, SessionStore, SessionToken,
    Timestamp,
};

/// An old store: sessions by token, with a count of fetches.
#[derive(Debug, Default, Clone)]
struct Old {
    sessions: Arc<Mutex<HashMap<SessionToken, i64>>>,
    /// Tokens marked imported: still held, never fetched again.
    imported: Arc<Mutex<HashSet<SessionToken>>>,
    fetches: Arc<Mutex<usize>>,
}

impl Old {
    fn with(token: &SessionToken, n: i64) -> Self {
        let old = Old::default();
        old.sessions.lock().unwrap().insert(token.clone(), n);
        old
    }

    fn holds(&self, token: &SessionToken) -> bool {
        self.sessions.lock().unwrap().contains_key(token)
    }
}

impl Source for Old {
    async fn fetch(&self, token: &SessionToken) -> Result<Option<NewSession>> {
        *self.fetches.lock().unwrap() += 1;
        let n = self.sessions.lock().unwrap().get(token).copied();
        let n = n.filter(|_| !self.imported.lock().unwrap().contains(token));
        // Let overlapping callers interleave between the fetch and the create.
        tokio::task::yield_now().await;
        Ok(match n {
            Some(n) => Some(NewSession::new().put("n", &n)?),
            None => None,
        })
    }

    async fn remove(&self, token: &SessionToken) -> Result<bool> {
        Ok(self.sessions.lock().unwrap().remove(token).is_some())
    }

    async fn mark_imported(&self, token: &SessionToken) -> Result<()> {
        self.imported.lock().unwrap().insert(token.clone());
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn overlapping_writes_through_an_old_token_import_once_and_all_land() {
    let token = SessionToken::generate();
    let old = Old::with(&token, 100);
    let store = Arc::new(Importing::new(MemoryStore::new(), old.clone()));
    let adds = (0..16).map(|_| {
        let (store, token) = (store.clone(), token.clone());
        tokio::spawn(async move { store.apply(&token, &Delta::new().increment("n", 1)).await })
    });
    for add in adds {
        add.await.unwrap().unwrap();
    }
    let session = store.load(&token).await.unwrap().expect("imported");
    assert_eq!(session.get::<i64>("n").unwrap(), Some(116));
    assert!(!old.holds(&token), "removed once imported");
}

#[tokio::test]
async fn keep_leaves_the_old_copy_until_a_rotation_or_delete_here() {
    let token = SessionToken::generate();
    let old = Old::with(&token, 1);
    let store = Importing::new(MemoryStore::new(), old.clone()).after_import(AfterImport::Keep);
    assert!(store.load(&token).await.unwrap().is_some());
    assert!(old.holds(&token), "kept");

    // Rotation (login): the old token's copy goes, so it can never be imported again.
    let rotated = store.rotate(&token).await.unwrap();
    assert!(!old.holds(&token));
    assert_eq!(
        store
            .load(&rotated)
            .await
            .unwrap()
            .unwrap()
            .get::<i64>("n")
            .unwrap(),
        Some(1)
    );

    let other = SessionToken::generate();
    old.sessions.lock().unwrap().insert(other.clone(), 2);
    assert!(store.touch(&other).await.is_ok(), "imported on touch");
    assert!(store.delete(&other).await.unwrap());
    assert!(!old.holds(&other), "a logout removes the kept copy");
    assert!(store.load(&other).await.unwrap().is_none());
}

/// Under `Keep`, a session that ends here without a delete of its token (log out
/// everywhere, once its tombstone has gone; an idle expiry) is not imported again from the
/// copy kept for a rollback.
#[tokio::test]
async fn keep_never_imports_a_session_twice() {
    let clock = ManualClock::new(Timestamp::from_millis(1_000_000));
    let policy = Policy {
        delete_grace: Duration::from_secs(1),
        ..Policy::default()
    };
    let here = MemoryStore::with(policy, Arc::new(clock.clone())).unwrap();
    let old = Old::default();
    let store = Importing::new(here, old.clone()).after_import(AfterImport::Keep);

    // Log out everywhere, then past the tombstone's grace.
    let token = SessionToken::generate();
    old.sessions.lock().unwrap().insert(token.clone(), 1);
    store
        .apply(&token, &Delta::new().set_principal("ann"))
        .await
        .unwrap();
    assert_eq!(store.delete_all_of("ann").await.unwrap(), 1);
    clock.advance(Duration::from_secs(2));
    assert!(store.load(&token).await.unwrap().is_none(), "stays ended");
    assert!(old.holds(&token), "the copy stays for a rollback");

    // An idle expiry.
    let token = SessionToken::generate();
    old.sessions.lock().unwrap().insert(token.clone(), 2);
    assert!(store.load(&token).await.unwrap().is_some(), "imported");
    clock.advance(Policy::default().default_idle_timeout + Duration::from_secs(1));
    assert!(
        store.store().load(&token).await.unwrap().is_none(),
        "expired"
    );
    assert!(
        store.load(&token).await.unwrap().is_none(),
        "not imported again"
    );
    assert!(old.holds(&token));
}

#[tokio::test]
async fn a_delete_before_any_import_ends_the_old_session() {
    let token = SessionToken::generate();
    let old = Old::with(&token, 1);
    let store = Importing::new(MemoryStore::new(), old.clone());
    assert!(store.delete(&token).await.unwrap(), "there was one, there");
    assert!(!old.holds(&token));
    assert!(store.load(&token).await.unwrap().is_none());
    assert_eq!(
        *old.fetches.lock().unwrap(),
        1,
        "the load after the delete asked"
    );
}

#[tokio::test]
async fn an_unknown_token_stays_unknown_and_a_known_one_costs_no_fetch() {
    let old = Old::default();
    let store = Importing::new(MemoryStore::new(), old.clone());
    let unknown = SessionToken::generate();
    assert!(store.load(&unknown).await.unwrap().is_none());
    assert!(store.load_some(&unknown, &["n"]).await.unwrap().is_none());
    assert!(matches!(
        store.apply(&unknown, &Delta::new().increment("n", 1)).await,
        Err(session_core::Error::NotFound { .. })
    ));

    assert_eq!(
        *old.fetches.lock().unwrap(),
        3,
        "each miss asked the source"
    );

    let created = store.create(NewSession::new()).await.unwrap();
    store.load(&created.token).await.unwrap().expect("ours");
    store
        .apply(&created.token, &Delta::new().increment("n", 1))
        .await
        .unwrap();
    assert_eq!(
        *old.fetches.lock().unwrap(),
        3,
        "a known session costs no fetch"
    );
}

/// A source whose fetch waits at a gate after reading, so a test can run another request
/// between a fetch and the create that follows it.
#[derive(Debug, Clone)]
struct Gated {
    old: Old,
    fetched: Arc<tokio::sync::Notify>,
    gate: Arc<tokio::sync::Notify>,
}

impl Source for Gated {
    async fn fetch(&self, token: &SessionToken) -> Result<Option<NewSession>> {
        let fetched = self.old.fetch(token).await;
        self.fetched.notify_one();
        self.gate.notified().await;
        fetched
    }

    async fn remove(&self, token: &SessionToken) -> Result<bool> {
        self.old.remove(token).await
    }

    async fn mark_imported(&self, token: &SessionToken) -> Result<()> {
        self.old.mark_imported(token).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_logout_between_an_imports_fetch_and_its_create_wins() {
    let token = SessionToken::generate();
    let source = Gated {
        old: Old::with(&token, 1),
        fetched: Arc::default(),
        gate: Arc::default(),
    };
    let store = Arc::new(Importing::new(MemoryStore::new(), source.clone()));
    let load = {
        let (store, token) = (store.clone(), token.clone());
        tokio::spawn(async move { store.load(&token).await })
    };
    source.fetched.notified().await;
    // The logout: nothing here yet, the source's copy removed, the token claimed and ended.
    assert!(store.delete(&token).await.unwrap());
    // The import that fetched before the logout now finds the token taken (a tombstone),
    // and its second try of the load finds no live session.
    source.gate.notify_one();
    assert!(load.await.unwrap().unwrap().is_none(), "the logout stands");
    // Looked at in the wrapped store: through `Importing` a miss would fetch (and wait at
    // the gate) again.
    assert!(
        store
            .store()
            .load_read_only(&token)
            .await
            .unwrap()
            .is_none()
    );
}

/// A source's session that breaks this store's limits is not imported: the client starts
/// afresh instead of getting an error on every request.
#[tokio::test]
async fn an_unimportable_session_is_a_miss_not_an_error() {
    #[derive(Debug)]
    struct BadName;
    impl Source for BadName {
        async fn fetch(&self, _: &SessionToken) -> Result<Option<NewSession>> {
            Ok(Some(NewSession::new().put_bytes("", b"1".to_vec())))
        }
        async fn remove(&self, _: &SessionToken) -> Result<bool> {
            Ok(false)
        }
    }
    let store = Importing::new(MemoryStore::new(), BadName);
    assert!(
        store
            .load(&SessionToken::generate())
            .await
            .unwrap()
            .is_none()
    );
}
