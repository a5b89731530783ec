//! The tower-sessions adapter (feature `tower-sessions`): whole records over our stores.
#![cfg(feature = "tower-sessions-015")]

use std::collections::HashMap;
use std::sync::Arc;

use session_core::{Delta, MemoryStore, SessionStore};
use session_tower::tower_sessions_compat::{TowerSessionsStore, id_of, token_of};
use time::{Duration, OffsetDateTime};
use tower_sessions_core::SessionStore as _;
use tower_sessions_core::session::{Id, Record};

fn record(data: &[(&str, serde_json::Value)]) -> Record {
    Record {
        id: Id::default(),
        data: data
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect::<HashMap<_, _>>(),
        expiry_date: OffsetDateTime::now_utc() + Duration::minutes(10),
    }
}

#[tokio::test]
async fn records_round_trip_and_ids_are_tokens() {
    let ours = Arc::new(MemoryStore::new());
    let store = TowerSessionsStore::new(ours.clone());
    let mut rec = record(&[("user", "alice".into()), ("n", 1.into())]);
    store.create(&mut rec).await.unwrap();
    let token = token_of(&rec.id);
    assert_eq!(
        rec.id.to_string(),
        token.expose(),
        "same text form as a cookie"
    );
    assert_eq!(id_of(&token), rec.id);

    let session = ours
        .load(&token)
        .await
        .unwrap()
        .expect("created in our store");
    assert_eq!(
        session.get::<String>("user").unwrap().as_deref(),
        Some("alice")
    );
    let idle = session.idle_timeout.as_secs();
    assert!(
        (590..=600).contains(&idle),
        "idle timeout from the expiry date: {idle}"
    );

    // A whole-record save: changed values put, missing ones removed, unchanged ones left.
    ours.apply(&token, &Delta::new().increment("n", 5))
        .await
        .unwrap();
    let mut loaded = store.load(&rec.id).await.unwrap().expect("loaded");
    assert_eq!(loaded.data["n"], serde_json::json!(6));
    loaded.data.remove("user");
    loaded.data.insert("theme".into(), "dark".into());
    store.save(&loaded).await.unwrap();
    let after = ours.load(&token).await.unwrap().unwrap();
    assert_eq!(after.get::<String>("user").unwrap(), None);
    assert_eq!(
        after.get::<String>("theme").unwrap().as_deref(),
        Some("dark")
    );
    assert_eq!(after.get::<i64>("n").unwrap(), Some(6));

    // Deleted sessions are gone and a late save does not bring them back.
    store.delete(&rec.id).await.unwrap();
    assert!(store.load(&rec.id).await.unwrap().is_none());
    store.save(&loaded).await.unwrap();
    assert!(
        ours.load(&token).await.unwrap().is_none(),
        "not resurrected"
    );
    assert!(store.load(&Id::default()).await.unwrap().is_none());
}
