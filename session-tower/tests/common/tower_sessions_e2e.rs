// The end-to-end tests of the compatibility store, written once for both tower-sessions
// lines: the including file names the line (`tower_sessions`, `tower_sessions_compat_line`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::Path;
use axum::routing::{get, post};
use reqwest::StatusCode;
use reqwest::header::{COOKIE, SET_COOKIE};
use session_core::{Policy, SessionStore, SessionToken};
use session_redis::RedisStoreBuilder;
use session_testkit::topology::{self, Shape};
use session_tower::tower_sessions_compat::TowerSessionsStore;
use tower_sessions::{Expiry, Session, SessionManagerLayer};
use tower_sessions_compat_line::token_of;

async fn set(session: Session, Path((key, value)): Path<(String, i64)>) -> StatusCode {
    match session.insert(&key, value).await {
        Ok(()) => StatusCode::OK,
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

async fn read(session: Session, Path(key): Path<String>) -> String {
    match session.get::<i64>(&key).await {
        Ok(Some(v)) => v.to_string(),
        Ok(None) => "none".into(),
        Err(e) => format!("error: {e}"),
    }
}

/// Reads the session, waits `ms`, then sets `key`: two of these with different waits
/// overlap for certain, and the longer one saves last.
async fn slow_set(
    session: Session,
    Path((key, value, ms)): Path<(String, i64, u64)>,
) -> StatusCode {
    if session.get::<i64>("base").await.is_err() {
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    tokio::time::sleep(Duration::from_millis(ms)).await;
    set(session, Path((key, value))).await
}

async fn cycle(session: Session) -> StatusCode {
    match session.cycle_id().await {
        Ok(()) => StatusCode::OK,
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

async fn flush(session: Session) -> StatusCode {
    match session.flush().await {
        Ok(()) => StatusCode::OK,
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// An app of tower-sessions handlers over `store`, served on a free loopback port.
async fn serve(store: TowerSessionsStore, expiry: Expiry) -> SocketAddr {
    let layer = SessionManagerLayer::new(store)
        .with_secure(false)
        .with_expiry(expiry);
    let app = Router::new()
        .route("/set/{key}/{value}", post(set))
        .route("/slow-set/{key}/{value}/{ms}", post(slow_set))
        .route("/get/{key}", get(read))
        .route("/cycle", post(cycle))
        .route("/flush", post(flush))
        .layer(layer);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

/// Two app instances, each with a store of its own, on one Redis and one namespace; and a
/// store to look into Redis.
async fn two_instances(expiry: Expiry) -> (SocketAddr, SocketAddr, Arc<dyn SessionStore>) {
    let dep = topology::shared(Shape::Standalone)
        .await
        .expect("a Redis deployment");
    let namespace = format!("tsc{}", &SessionToken::generate().handle().to_hex()[..12]);
    let store = || async {
        let store = RedisStoreBuilder::new()
            .url(&dep.url())
            .namespace(&namespace)
            .policy(Policy::default())
            .build()
            .await
            .expect("a Redis store");
        Arc::new(store) as Arc<dyn SessionStore>
    };
    let look = store().await;
    let a = serve(TowerSessionsStore::new(store().await), expiry).await;
    let b = serve(TowerSessionsStore::new(store().await), expiry).await;
    (a, b, look)
}

/// Sends a request; returns the status, the body and the `id` cookie it sets, if any.
async fn send(
    method: &str,
    addr: SocketAddr,
    path: &str,
    cookie: Option<&str>,
) -> (StatusCode, String, Option<String>) {
    let client = reqwest::Client::new();
    let url = format!("http://{addr}{path}");
    let mut req = match method {
        "POST" => client.post(url),
        _ => client.get(url),
    };
    if let Some(c) = cookie {
        req = req.header(COOKIE, format!("id={c}"));
    }
    let res = req.send().await.expect("a response");
    let set = res
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| cookie::Cookie::parse(v.to_str().ok()?.to_owned()).ok())
        .find(|c| c.name() == "id" && !c.value().is_empty())
        .map(|c| c.value().to_owned());
    let status = res.status();
    (status, res.text().await.unwrap_or_default(), set)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn create_load_modify_cycle_and_flush_across_two_instances() {
    let inactivity = Expiry::OnInactivity(time::Duration::minutes(10));
    let (a, b, look) = two_instances(inactivity).await;

    let (status, _, cookie) = send("POST", a, "/set/n/1", None).await;
    assert_eq!(status, StatusCode::OK);
    let first = cookie.expect("a new session's cookie");
    // The cookie tower-sessions sets names a session of our store, by the same 128 bits.
    let id: tower_sessions::session::Id = first.parse().expect("a tower-sessions id");
    let stored = look
        .load(&token_of(&id))
        .await
        .unwrap()
        .expect("in our store");
    assert_eq!(stored.get::<i64>("n").unwrap(), Some(1));

    assert_eq!(send("GET", b, "/get/n", Some(&first)).await.1, "1");
    assert_eq!(
        send("POST", b, "/set/m/2", Some(&first)).await.0,
        StatusCode::OK
    );
    assert_eq!(send("GET", a, "/get/m", Some(&first)).await.1, "2");
    assert_eq!(send("GET", a, "/get/n", Some(&first)).await.1, "1");

    // cycle_id: a new id with the same data; the old one is gone.
    let (status, _, cookie) = send("POST", a, "/cycle", Some(&first)).await;
    assert_eq!(status, StatusCode::OK);
    let second = cookie.expect("the new id's cookie");
    assert_ne!(second, first);
    assert_eq!(send("GET", b, "/get/n", Some(&second)).await.1, "1");
    assert_eq!(send("GET", b, "/get/m", Some(&second)).await.1, "2");
    assert_eq!(send("GET", b, "/get/n", Some(&first)).await.1, "none");

    // flush: the session ends everywhere.
    assert_eq!(
        send("POST", b, "/flush", Some(&second)).await.0,
        StatusCode::OK
    );
    assert_eq!(send("GET", a, "/get/n", Some(&second)).await.1, "none");
    let id: tower_sessions::session::Id = second.parse().unwrap();
    assert!(look.load(&token_of(&id)).await.unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn expiry_on_inactivity_and_at_a_date() {
    let inactivity = Expiry::OnInactivity(time::Duration::seconds(2));
    let at = Expiry::AtDateTime(time::OffsetDateTime::now_utc() + time::Duration::seconds(3));
    for expiry in [inactivity, at] {
        let (a, b, _) = two_instances(expiry).await;
        let (_, _, cookie) = send("POST", a, "/set/n/1", None).await;
        let cookie = cookie.expect("a session");
        assert_eq!(
            send("GET", b, "/get/n", Some(&cookie)).await.1,
            "1",
            "{expiry:?}"
        );
        tokio::time::sleep(Duration::from_millis(3500)).await;
        assert_eq!(
            send("GET", b, "/get/n", Some(&cookie)).await.1,
            "none",
            "{expiry:?}: expired"
        );
    }
}

/// Overlapping requests of one user through the compatibility store: tower-sessions saves
/// whole records, so what survives is last-writer-wins per attribute (the limits the module
/// documents); the store must still answer every request, keep the session readable, and
/// never keep a value nobody wrote.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn overlapping_requests_stay_consistent() {
    let inactivity = Expiry::OnInactivity(time::Duration::minutes(10));
    let (a, b, _) = two_instances(inactivity).await;
    let (_, _, cookie) = send("POST", a, "/set/base/0", None).await;
    let cookie = cookie.expect("a session");

    let writes = (0..20).map(|i| {
        let cookie = cookie.clone();
        let addr = if i % 2 == 0 { a } else { b };
        tokio::spawn(
            async move { send("POST", addr, &format!("/set/k{i}/{i}"), Some(&cookie)).await },
        )
    });
    for write in writes {
        assert_eq!(write.await.unwrap().0, StatusCode::OK);
    }
    let mut kept = 0;
    for i in 0..20 {
        match send("GET", a, &format!("/get/k{i}"), Some(&cookie))
            .await
            .1
            .as_str()
        {
            "none" => {}
            value => {
                assert_eq!(value, i.to_string(), "k{i} holds what its request wrote");
                kept += 1;
            }
        }
    }
    assert!(kept >= 1, "the last writer's change is kept");
    eprintln!("overlapping whole-record saves through tower-sessions 0.14: {kept} of 20 kept");
}

/// Two requests that overlap on different app instances and change different attributes:
/// each save writes only what its request changed, so both changes are kept (the whole
/// records tower-sessions' own stores write would keep only the last).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn overlapping_changes_to_different_attributes_on_two_instances_both_land() {
    let inactivity = Expiry::OnInactivity(time::Duration::minutes(10));
    let (a, b, _) = two_instances(inactivity).await;
    let (_, _, cookie) = send("POST", a, "/set/base/0", None).await;
    let cookie = cookie.expect("a session");
    for round in 0..3 {
        let (x_path, y_path) = (
            format!("/slow-set/x{round}/1/200"),
            format!("/slow-set/y{round}/2/600"),
        );
        let (x, y) = tokio::join!(
            send("POST", a, &x_path, Some(&cookie)),
            send("POST", b, &y_path, Some(&cookie)),
        );
        assert_eq!((x.0, y.0), (StatusCode::OK, StatusCode::OK));
        assert_eq!(
            send("GET", a, &format!("/get/x{round}"), Some(&cookie))
                .await
                .1,
            "1"
        );
        assert_eq!(
            send("GET", b, &format!("/get/y{round}"), Some(&cookie))
                .await
                .1,
            "2"
        );
    }
}
