//! The read-through migration from tower-sessions-redis-store, end to end: sessions written
//! by a tower-sessions 0.14 app on tower-sessions-redis-store 0.16 (the old app), then
//! served by apps on our layer over one real Redis (the new app), driven over HTTP.
#![cfg(feature = "tower-sessions-014")]

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::Path;
use axum::routing::{get, post};
use reqwest::StatusCode;
use session_core::import::{AfterImport, Importing};
use session_core::{Delta, SessionStore, SessionToken};
use session_redis::{RedisStore, RedisStoreBuilder, RedisTransport};
use session_testkit::http::send;
use session_testkit::topology::{self, Shape};
use session_tower::tower_sessions_compat::TowerSessionsStore;
use session_tower::tower_sessions_compat::v0_14::{RedisRecords, token_of};
use session_tower::{Key, Session, SessionError, SessionLayer};
use tower_sessions_redis_store::fred::prelude::{
    ClientLike, Config, Expiration, KeysInterface, Pool,
};

/// The old app: tower-sessions 0.14 on tower-sessions-redis-store 0.16.
mod old {
    use super::*;
    use tower_sessions::{Expiry, Session, SessionManagerLayer};

    async fn login(session: Session, Path(user): Path<String>) -> StatusCode {
        let saved = async {
            session.insert("user", &user).await?;
            session.insert("n", 0_i64).await
        };
        match saved.await {
            Ok(()) => StatusCode::OK,
            Err(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    async fn whoami(session: Session) -> String {
        match session.get::<String>("user").await {
            Ok(user) => user.unwrap_or_else(|| "none".into()),
            Err(e) => format!("error: {e}"),
        }
    }

    pub async fn serve(pool: Pool) -> SocketAddr {
        serve_on(tower_sessions_redis_store::RedisStore::new(pool)).await
    }

    fn routes() -> Router {
        Router::new()
            .route("/login/{user}", post(login))
            .route("/whoami", get(whoami))
    }

    fn layer<S: tower_sessions::SessionStore + Clone>(store: S) -> SessionManagerLayer<S> {
        SessionManagerLayer::new(store)
            .with_secure(false)
            .with_expiry(Expiry::OnInactivity(time::Duration::minutes(10)))
    }

    /// The old app's handlers over any tower-sessions store.
    pub async fn serve_on(store: impl tower_sessions::SessionStore + Clone) -> SocketAddr {
        super::listen(routes().layer(layer(store))).await
    }

    /// The old app with its cookie signed (`with_signed`) or encrypted (`with_private`).
    pub async fn serve_protected(pool: Pool, key: Key, private: bool) -> SocketAddr {
        let layer = layer(tower_sessions_redis_store::RedisStore::new(pool));
        let app = if private {
            routes().layer(layer.with_private(key))
        } else {
            routes().layer(layer.with_signed(key))
        };
        super::listen(app).await
    }
}

async fn whoami(session: Session) -> Result<String, SessionError> {
    Ok(session
        .get::<String>("user")
        .await?
        .unwrap_or_else(|| "none".into()))
}

async fn add(session: Session) -> Result<StatusCode, SessionError> {
    session.increment("n", 1).await?;
    Ok(StatusCode::OK)
}

async fn count(session: Session) -> Result<String, SessionError> {
    Ok(session.get::<i64>("n").await?.unwrap_or(-1).to_string())
}

async fn logout(session: Session) -> Result<StatusCode, SessionError> {
    session.delete().await?;
    Ok(StatusCode::OK)
}

async fn listen(app: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

/// A store of ours that imports the old app's sessions.
async fn importing(
    d: &Deployment,
    after: AfterImport,
) -> Importing<Arc<RedisStore>, RedisRecords<RedisTransport>> {
    let builder = RedisStoreBuilder::new().namespace(&d.namespace);
    let builder = match d.shape {
        Shape::Cluster => builder.topology(session_redis::Topology::Cluster(d.nodes.clone())),
        _ => builder.url(&d.nodes[0]),
    };
    let redis: Arc<RedisStore> = Arc::new(builder.build().await.expect("a Redis store"));
    Importing::new(redis.clone(), RedisRecords::new(redis)).after_import(after)
}

/// The new app: our layer over a store that imports the old app's sessions.
async fn serve_new(d: &Deployment, after: AfterImport) -> SocketAddr {
    serve_new_reading(d, after, |layer| layer.legacy_cookie("id")).await
}

/// The new app, reading the old cookie as `legacy` configures the layer.
async fn serve_new_reading(
    d: &Deployment,
    after: AfterImport,
    legacy: impl FnOnce(SessionLayer) -> SessionLayer,
) -> SocketAddr {
    let store = importing(d, after).await;
    let layer = legacy(SessionLayer::new(store).secure(false));
    let app = Router::new()
        .route("/whoami", get(whoami))
        .route("/add", post(add))
        .route("/n", get(count))
        .route("/logout", post(logout))
        .layer(layer);
    listen(app).await
}

struct Deployment {
    shape: Shape,
    /// The data nodes' URLs (standalone: one).
    nodes: Vec<String>,
    namespace: String,
    old: SocketAddr,
    /// Raw access to the Redis, to look at the old app's keys.
    pool: Pool,
}

/// A standalone Redis with the old app on it.
async fn deployment() -> Deployment {
    deployment_on(Shape::Standalone).await
}

/// A Redis of `shape` with the old app on it (tower-sessions-redis-store over fred, which
/// reaches a cluster through a `redis-cluster://` URL).
async fn deployment_on(shape: Shape) -> Deployment {
    let dep = topology::shared(shape).await.expect("a Redis deployment");
    let nodes = match shape {
        Shape::Cluster => dep.node_urls(),
        _ => vec![dep.url()],
    };
    let fred_url = match shape {
        Shape::Cluster => {
            let hosts: Vec<&str> = nodes
                .iter()
                .map(|u| u.trim_start_matches("redis://"))
                .collect();
            let extra: Vec<String> = hosts[1..].iter().map(|h| format!("node={h}")).collect();
            format!("redis-cluster://{}?{}", hosts[0], extra.join("&"))
        }
        _ => nodes[0].clone(),
    };
    let pool = Pool::new(
        Config::from_url(&fred_url).expect("a fred config"),
        None,
        None,
        None,
        1,
    )
    .expect("a fred pool");
    pool.init().await.expect("fred connects");
    let namespace = format!("mig{}", &SessionToken::generate().handle().to_hex()[..12]);
    let old = old::serve(pool.clone()).await;
    Deployment {
        shape,
        nodes,
        namespace,
        old,
        pool,
    }
}

/// Signs `user` in on the old app; the value of its `id` cookie.
async fn old_login(d: &Deployment, user: &str) -> String {
    let answer = send("POST", d.old, &format!("/login/{user}"), None).await;
    assert_eq!(answer.status, StatusCode::OK);
    answer
        .cookie_value("id")
        .expect("the old app's cookie")
        .to_owned()
}

async fn old_key_exists(d: &Deployment, id: &str) -> bool {
    let n: i64 = d.pool.exists(id).await.expect("EXISTS");
    n == 1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_signed_in_user_stays_signed_in_across_the_switch() {
    let d = deployment().await;
    let id = old_login(&d, "ann").await;
    assert_eq!(
        send("GET", d.old, "/whoami", Some(&format!("id={id}")))
            .await
            .body,
        "ann"
    );
    let new = serve_new(&d, AfterImport::Remove).await;

    // The first request with the old cookie is answered from the imported session, moves
    // the token into our cookie and removes the old one.
    let first = send("GET", new, "/whoami", Some(&format!("id={id}"))).await;
    assert_eq!((first.status, first.body.as_str()), (StatusCode::OK, "ann"));
    let ours = first
        .cookie_value("session")
        .expect("our cookie")
        .to_owned();
    let parsed: tower_sessions::session::Id = id.parse().unwrap();
    assert_eq!(ours, token_of(&parsed).expose(), "the same token");
    assert_eq!(
        first.cookie_value("id"),
        Some(""),
        "the old cookie is removed"
    );
    assert!(!old_key_exists(&d, &id).await, "the old record is removed");

    // From then on our cookie carries the session, and the old app's data came along.
    let cookie = format!("session={ours}");
    assert_eq!(send("GET", new, "/n", Some(&cookie)).await.body, "0");
    assert_eq!(
        send("POST", new, "/add", Some(&cookie)).await.status,
        StatusCode::OK
    );
    assert_eq!(send("GET", new, "/n", Some(&cookie)).await.body, "1");

    // The old cookie replayed after the import reaches the same session (it is one token).
    assert_eq!(
        send("GET", new, "/n", Some(&format!("id={id}"))).await.body,
        "1"
    );
    // A logout ends it for either cookie.
    assert_eq!(
        send("POST", new, "/logout", Some(&cookie)).await.status,
        StatusCode::OK
    );
    assert_eq!(
        send("GET", new, "/whoami", Some(&cookie)).await.body,
        "none"
    );
    assert_eq!(
        send("GET", new, "/whoami", Some(&format!("id={id}")))
            .await
            .body,
        "none"
    );
}

/// An old app that signed or encrypted its cookie: the new app reads it with the old key
/// (and only with it), and the user stays signed in.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_signed_or_private_old_cookie_is_read_with_the_old_key() {
    let d = deployment().await;
    for private in [false, true] {
        let old_key = Key::generate();
        let old_app = old::serve_protected(d.pool.clone(), old_key.clone(), private).await;
        let answer = send("POST", old_app, "/login/fay", None).await;
        assert_eq!(answer.status, StatusCode::OK);
        let protected = answer
            .cookie_value("id")
            .expect("the old app's cookie")
            .to_owned();
        // The id inside, as the old app's cookie jar reads it.
        let mut jar = cookie::CookieJar::new();
        jar.add_original(cookie::Cookie::new("id", protected.clone()));
        let id = if private {
            jar.private(&old_key).get("id")
        } else {
            jar.signed(&old_key).get("id")
        }
        .expect("the old key opens the old cookie")
        .value()
        .to_owned();
        assert_ne!(protected, id, "the old cookie is protected");
        let cookie = format!("id={protected}");
        assert_eq!(
            send("GET", old_app, "/whoami", Some(&cookie)).await.body,
            "fay"
        );

        // Read with another key, the old cookie is no session: nothing is imported, and the
        // cookie is left for a corrected key.
        let wrong = serve_new_reading(&d, AfterImport::Remove, |l| {
            l.legacy_cookie_signed("id", Key::generate())
        })
        .await;
        let answer = send("GET", wrong, "/whoami", Some(&cookie)).await;
        assert_eq!(answer.body, "none");
        assert_eq!(
            answer.cookie_value("id"),
            None,
            "a cookie the key does not open stays"
        );
        assert!(old_key_exists(&d, &id).await, "not imported");

        let key = old_key.clone();
        let new = serve_new_reading(&d, AfterImport::Remove, move |l| {
            if private {
                l.legacy_cookie_private("id", key)
            } else {
                l.legacy_cookie_signed("id", key)
            }
        })
        .await;
        let first = send("GET", new, "/whoami", Some(&cookie)).await;
        assert_eq!((first.status, first.body.as_str()), (StatusCode::OK, "fay"));
        let ours = first
            .cookie_value("session")
            .expect("our cookie")
            .to_owned();
        assert_eq!(
            ours,
            token_of(&id.parse().unwrap()).expose(),
            "the same token"
        );
        assert_eq!(
            first.cookie_value("id"),
            Some(""),
            "the old cookie is removed"
        );
        assert!(!old_key_exists(&d, &id).await, "the old record is removed");
        let ours = format!("session={ours}");
        assert_eq!(send("GET", new, "/whoami", Some(&ours)).await.body, "fay");
    }
}

/// The first requests after the switch overlap, on two instances: one imports, the others
/// use what it imported, and no increment is lost between them.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn overlapping_first_requests_import_once_and_lose_nothing() {
    overlapping_first_requests_on(Shape::Standalone).await;
}

/// The same on a 3+3 Cluster: the old records, our sessions and the import's claim live on
/// whichever node their keys hash to.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cluster_overlapping_first_requests_import_once_and_lose_nothing() {
    overlapping_first_requests_on(Shape::Cluster).await;
}

async fn overlapping_first_requests_on(shape: Shape) {
    let d = deployment_on(shape).await;
    let id = old_login(&d, "bob").await;
    let a = serve_new(&d, AfterImport::Remove).await;
    let b = serve_new(&d, AfterImport::Remove).await;
    let cookie = format!("id={id}");

    let adds = (0..20).map(|i| {
        let cookie = cookie.clone();
        let addr = if i % 2 == 0 { a } else { b };
        tokio::spawn(async move { send("POST", addr, "/add", Some(&cookie)).await })
    });
    let mut handed = Vec::new();
    for add in adds {
        let answer = add.await.unwrap();
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
        handed.push(
            answer
                .cookie_value("session")
                .expect("our cookie")
                .to_owned(),
        );
    }
    handed.dedup();
    assert_eq!(handed.len(), 1, "every response hands over the same token");

    let ours = format!("session={}", handed[0]);
    assert_eq!(send("GET", a, "/n", Some(&ours)).await.body, "20");
    assert_eq!(send("GET", b, "/whoami", Some(&ours)).await.body, "bob");
    assert!(!old_key_exists(&d, &id).await);
}

/// `AfterImport::Keep` leaves the old record for a rollback, until the session ends here.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn keep_leaves_the_old_record_for_a_rollback_until_logout() {
    let d = deployment().await;
    let id = old_login(&d, "cat").await;
    let new = serve_new(&d, AfterImport::Keep).await;
    let cookie = format!("id={id}");
    assert_eq!(send("GET", new, "/whoami", Some(&cookie)).await.body, "cat");
    assert!(old_key_exists(&d, &id).await, "kept");
    // Rolled back, the old app still serves the session (as it was at the import).
    assert_eq!(
        send("GET", d.old, "/whoami", Some(&cookie)).await.body,
        "cat"
    );

    let ours = format!("session={}", token_of(&id.parse().unwrap()).expose());
    assert_eq!(
        send("POST", new, "/logout", Some(&ours)).await.status,
        StatusCode::OK
    );
    assert!(
        !old_key_exists(&d, &id).await,
        "a logout removes the kept record"
    );
    assert_eq!(
        send("GET", new, "/whoami", Some(&cookie)).await.body,
        "none"
    );
}

/// Under `Keep`, a session that ends here by an idle expiry (no tombstone) is not imported
/// again from the record kept for a rollback, which the old app still serves, even after the
/// old app saved the record again (extending it); a record without expiry gets a mark
/// without one, and a logout removes both. (`delete_all_of` is covered on the memory store.)
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn keep_never_imports_twice() {
    keep_never_imports_twice_on(Shape::Standalone).await;
}

/// The same on a 3+3 Cluster, where the mark must share the record's slot.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cluster_keep_never_imports_twice() {
    keep_never_imports_twice_on(Shape::Cluster).await;
}

/// Milliseconds `key` has left (-1: no expiry, -2: no key).
async fn pttl(d: &Deployment, key: &str) -> i64 {
    d.pool.pttl(key).await.expect("PTTL")
}

async fn keep_never_imports_twice_on(shape: Shape) {
    let d = deployment_on(shape).await;
    let id = old_login(&d, "gus").await;
    let mark = format!("{{{id}}}:imported");
    let store = importing(&d, AfterImport::Keep).await;
    let new = serve_new_reading(&d, AfterImport::Keep, |l| l.legacy_cookie("id")).await;
    let cookie = format!("id={id}");
    assert_eq!(send("GET", new, "/whoami", Some(&cookie)).await.body, "gus");
    assert!(old_key_exists(&d, &id).await, "kept");
    let thirty_days = 30 * 24 * 3600 * 1000;
    assert!(
        pttl(&d, &mark).await > thirty_days - 60_000,
        "marked for 30 days"
    );

    // A rollback: the old app saves the record again, which extends it; the mark outlives it.
    let answer = send("POST", d.old, "/login/gus", Some(&cookie)).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert!(pttl(&d, &mark).await > pttl(&d, &id).await);

    // The session idles out here (a second's timeout), which leaves no tombstone.
    let token = token_of(&id.parse().unwrap());
    let idle = Delta::new().set_idle_timeout(std::time::Duration::from_secs(1));
    store.store().apply(&token, &idle).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1_200)).await;
    assert!(
        store.store().load(&token).await.unwrap().is_none(),
        "expired"
    );
    for cookie in [cookie.clone(), format!("session={}", token.expose())] {
        assert_eq!(
            send("GET", new, "/whoami", Some(&cookie)).await.body,
            "none",
            "{cookie}: not imported again"
        );
    }
    assert_eq!(
        send("GET", d.old, "/whoami", Some(&cookie)).await.body,
        "gus",
        "the old app still serves it"
    );

    // A record without expiry: a mark without one, and a logout here removes both.
    let id = old_login(&d, "hal").await;
    let mark = format!("{{{id}}}:imported");
    let _: i64 = d.pool.persist(&id).await.expect("PERSIST");
    let cookie = format!("id={id}");
    assert_eq!(send("GET", new, "/whoami", Some(&cookie)).await.body, "hal");
    assert_eq!(pttl(&d, &mark).await, -1, "no expiry");
    let ours = format!("session={}", token_of(&id.parse().unwrap()).expose());
    let answer = send("POST", new, "/logout", Some(&ours)).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!((pttl(&d, &id).await, pttl(&d, &mark).await), (-2, -2));
}

/// A logout that is the first request after the switch ends the old session too.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_first_request_that_logs_out_ends_the_old_session() {
    let d = deployment().await;
    let id = old_login(&d, "dan").await;
    let new = serve_new(&d, AfterImport::Remove).await;
    let cookie = format!("id={id}");
    let answer = send("POST", new, "/logout", Some(&cookie)).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.cookie_value("id"), Some(""));
    assert!(!old_key_exists(&d, &id).await);
    assert_eq!(
        send("GET", new, "/whoami", Some(&cookie)).await.body,
        "none"
    );
    assert_eq!(
        send("GET", d.old, "/whoami", Some(&cookie)).await.body,
        "none"
    );
}

/// An old cookie that names no record (expired, or never issued) starts a fresh session:
/// no error page, and the old cookie goes.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_unknown_old_cookie_starts_fresh() {
    let d = deployment().await;
    let new = serve_new(&d, AfterImport::Remove).await;
    let unknown = tower_sessions::session::Id::default().to_string();
    for cookie in [format!("id={unknown}"), "id=not-a-token".to_owned()] {
        let answer = send("GET", new, "/whoami", Some(&cookie)).await;
        assert_eq!(
            (answer.status, answer.body.as_str()),
            (StatusCode::OK, "none")
        );
        assert_eq!(answer.cookie_value("id"), Some(""), "{cookie}: removed");
        assert!(
            answer.cookie_value("session").is_none_or(str::is_empty),
            "{cookie}: no session handed out"
        );
    }
}

/// Handlers that stay on tower-sessions can move their storage first: the compatibility
/// store over an importing store serves the old app's sessions under the same `id` cookie.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tower_sessions_handlers_on_our_store_keep_the_old_sessions() {
    let d = deployment().await;
    let id = old_login(&d, "eve").await;
    let store = importing(&d, AfterImport::Remove).await;
    let moved = old::serve_on(TowerSessionsStore::new(store)).await;
    let cookie = format!("id={id}");
    assert_eq!(
        send("GET", moved, "/whoami", Some(&cookie)).await.body,
        "eve"
    );
    assert!(!old_key_exists(&d, &id).await, "imported");
    assert_eq!(
        send("GET", moved, "/whoami", Some(&cookie)).await.body,
        "eve"
    );
}

/// A prefix with a brace puts a record's mark in another Cluster slot: the mark is then read,
/// written and removed in batches of its own, and still keeps a kept record from a second
/// import.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cluster_a_mark_apart_from_its_record_still_works() {
    use session_core::import::Source;
    let d = deployment_on(Shape::Cluster).await;
    let id = old_login(&d, "ida").await;
    let prefix = "a}b:";
    let key = format!("{prefix}{id}");
    let bytes: Vec<u8> = d.pool.get(&id).await.expect("GET");
    let _: () = d
        .pool
        .set(&key, bytes, Some(Expiration::EX(600)), None, false)
        .await
        .expect("SET");
    let mark = format!("{{{key}}}:imported");
    let store = importing(&d, AfterImport::Keep).await;
    let records = || RedisRecords::new(store.store().clone()).prefix(prefix);
    let source = records();
    let store = Importing::new(store.store().clone(), records()).after_import(AfterImport::Keep);
    let token = token_of(&id.parse().unwrap());

    // Not the record without the prefix: that one is left alone.
    let _: i64 = d.pool.del(&id).await.expect("DEL");
    let session = store.load(&token).await.unwrap().expect("imported");
    assert_eq!(
        session.get::<String>("user").unwrap().as_deref(),
        Some("ida")
    );
    assert!(pttl(&d, &mark).await > 0, "marked, apart");
    assert!(source.fetch(&token).await.unwrap().is_none(), "not again");
    assert!(source.remove(&token).await.unwrap(), "the record was there");
    assert_eq!((pttl(&d, &key).await, pttl(&d, &mark).await), (-2, -2));
}
