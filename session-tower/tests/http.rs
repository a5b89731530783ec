//! The layer over real HTTP: two instances of the example shop on loopback ports sharing one
//! Redis (standalone and Cluster), driven with overlapping requests of one user; plus cookie
//! attributes, rotation, malformed cookies, round-trip counts and store failures.

#[path = "../examples/common/shop_app.rs"]
mod shop_app;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use reqwest::StatusCode;
use session_core::{
    Applied, Created, Delta, Error, MemoryStore, NewSession, Policy, Result, SessionHandle,
    SessionRecord, SessionStore, SessionToken,
};
use session_redis::RedisStoreBuilder;
use session_testkit::http::{Reply, send};
use session_testkit::topology::{self, Shape};
use session_tower::{CookieLifetime, Key, SameSite, SaveFailure, SessionLayer};

/// Serves `layer`'s shop on a free loopback port (until the test's runtime ends).
async fn serve(layer: SessionLayer) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, shop_app::router(layer))
            .await
            .unwrap();
    });
    addr
}

/// A Redis store on the shared deployment of `t`, in a namespace of its own.
async fn redis_store(t: Shape, namespace: &str, policy: Policy) -> Arc<dyn SessionStore> {
    let dep = topology::shared(t).await.expect("a Redis deployment");
    let builder = RedisStoreBuilder::new().namespace(namespace).policy(policy);
    let builder = match t {
        Shape::Cluster => builder.topology(session_redis::Topology::Cluster(dep.node_urls())),
        _ => builder.url(&dep.url()),
    };
    Arc::new(builder.build().await.expect("a Redis store"))
}

fn namespace() -> String {
    format!("tower{}", &SessionToken::generate().handle().to_hex()[..12])
}

/// Two shop instances with stores of their own on one Redis.
async fn two_instances(
    t: Shape,
    policy: Policy,
) -> (SocketAddr, SocketAddr, Arc<dyn SessionStore>) {
    let ns = namespace();
    let a = redis_store(t, &ns, policy.clone()).await;
    let b = redis_store(t, &ns, policy).await;
    let addr_a = serve(shop_app::layer(a.clone())).await;
    let addr_b = serve(shop_app::layer(b)).await;
    (addr_a, addr_b, a)
}

/// The `Cookie` header for the session cookie a reply set.
fn session_cookie(reply: &Reply) -> String {
    let c = reply
        .cookie("session")
        .unwrap_or_else(|| panic!("no session cookie in {reply:?}"));
    assert!(!c.value().is_empty(), "a removal, not a session: {reply:?}");
    format!("session={}", c.value())
}

async fn cart_adds_and_increments_lose_nothing(t: Shape) {
    let (a, b, _) = two_instances(t, Policy::default()).await;
    let first = send("POST", a, "/counter", None).await;
    assert_eq!(first.status, StatusCode::OK);
    let cookie = session_cookie(&first);

    // Different cart items added at once through both instances: each add is an `update`
    // of one JSON value, so a lost update would drop an item.
    let adds = (0..24).map(|i| {
        let cookie = cookie.clone();
        let addr = if i % 2 == 0 { a } else { b };
        tokio::spawn(
            async move { send("POST", addr, &format!("/cart/item{i}"), Some(&cookie)).await },
        )
    });
    // Blind increments at once through both instances.
    let counts = (0..40).map(|i| {
        let cookie = cookie.clone();
        let addr = if i % 2 == 0 { a } else { b };
        tokio::spawn(async move { send("POST", addr, "/counter", Some(&cookie)).await })
    });
    let handles: Vec<_> = adds.chain(counts).collect();
    for h in handles {
        let reply = h.await.unwrap();
        assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
        assert!(
            reply.cookie("session").is_none(),
            "no new cookie: {reply:?}"
        );
    }
    let mut cart: Vec<String> = send("GET", b, "/cart", Some(&cookie)).await.json();
    cart.sort();
    let mut want: Vec<String> = (0..24).map(|i| format!("item{i}")).collect();
    want.sort();
    assert_eq!(cart, want, "every concurrent cart add landed");
    let counter: i64 = send("GET", a, "/counter", Some(&cookie)).await.json();
    assert_eq!(counter, 41, "every concurrent increment counted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn standalone_two_instances_lose_no_concurrent_change() {
    cart_adds_and_increments_lose_nothing(Shape::Standalone).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cluster_two_instances_lose_no_concurrent_change() {
    cart_adds_and_increments_lose_nothing(Shape::Cluster).await;
}

/// Logout on one instance is seen by the other at once, and a request that read the session
/// before the logout and writes after it does not bring the session back.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn logout_is_seen_everywhere_and_not_undone_by_a_request_in_flight() {
    let (a, b, store) = two_instances(Shape::Standalone, Policy::default()).await;
    let anon = session_cookie(&send("POST", a, "/counter", None).await);
    let login = send("POST", a, "/login/alice", Some(&anon)).await;
    let cookie = session_cookie(&login);
    assert_eq!(
        send("GET", b, "/me", Some(&cookie))
            .await
            .json::<Option<String>>()
            .as_deref(),
        Some("alice")
    );

    // In flight on B: reads now, writes (update of the cart) 800 ms later.
    let slow = {
        let cookie = cookie.clone();
        tokio::spawn(async move { send("POST", b, "/cart/late?delay_ms=800", Some(&cookie)).await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let logout = send("POST", a, "/logout", Some(&cookie)).await;
    assert_eq!(logout.status, StatusCode::OK);
    let removal = logout.cookie("session").expect("the cookie is removed");
    assert_eq!(removal.value(), "");
    assert_eq!(removal.max_age(), Some(cookie::time::Duration::ZERO));

    // Seen by the other instance at once.
    let me = send("GET", b, "/me", Some(&cookie)).await;
    assert_eq!(me.json::<Option<String>>(), None);
    assert!(
        me.cookie("session").is_some_and(|c| c.value().is_empty()),
        "stale cookie removed"
    );

    // The request in flight finishes in a fresh, anonymous session; the old one stays dead.
    let late = slow.await.unwrap();
    assert_eq!(late.status, StatusCode::OK, "{late:?}");
    let fresh = session_cookie(&late);
    assert_ne!(fresh, cookie);
    for c in [&cookie, &anon] {
        assert_eq!(
            send("GET", a, "/me", Some(c))
                .await
                .json::<Option<String>>(),
            None
        );
        let token: SessionToken = c.trim_start_matches("session=").parse().unwrap();
        assert!(
            store.load_read_only(&token).await.unwrap().is_none(),
            "not resurrected"
        );
    }
    assert_eq!(
        send("GET", b, "/me", Some(&fresh))
            .await
            .json::<Option<String>>(),
        None
    );
    assert_eq!(
        send("GET", b, "/cart", Some(&fresh))
            .await
            .json::<Vec<String>>(),
        vec!["late"]
    );
}

/// Login rotates the token; the old cookie forwards only within the grace period.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn login_rotates_and_the_old_cookie_works_only_within_the_grace_period() {
    let policy = Policy {
        rotate_grace: Duration::from_millis(1500),
        ..Policy::default()
    };
    let (a, b, _) = two_instances(Shape::Standalone, policy).await;
    let old = session_cookie(&send("POST", a, "/cart/apple", None).await);
    let login = send("POST", a, "/login/bob", Some(&old)).await;
    assert_eq!(login.status, StatusCode::OK);
    let new = session_cookie(&login);
    assert_ne!(new, old, "a fresh token at login");

    // Within the grace period the old cookie reaches the rotated session, on either instance.
    let me: Option<String> = send("GET", b, "/me", Some(&old)).await.json();
    assert_eq!(me.as_deref(), Some("bob"));
    assert_eq!(
        send("POST", b, "/counter", Some(&old)).await.status,
        StatusCode::OK
    );
    assert_eq!(
        send("GET", a, "/counter", Some(&new)).await.json::<i64>(),
        1,
        "landed in the new session"
    );

    tokio::time::sleep(Duration::from_millis(1800)).await;
    let after = send("GET", b, "/me", Some(&old)).await;
    assert_eq!(
        after.json::<Option<String>>(),
        None,
        "the old token is dead after the grace"
    );
    assert_eq!(
        send("GET", b, "/me", Some(&new))
            .await
            .json::<Option<String>>()
            .as_deref(),
        Some("bob")
    );
    assert_eq!(
        send("GET", a, "/cart", Some(&new))
            .await
            .json::<Vec<String>>(),
        vec!["apple"]
    );
}

/// A login submitted several times at once (a double click, several tabs), on two
/// instances: one response sets the new cookie, the others succeed without touching it,
/// and nobody is logged out: the old cookie forwards, the new one holds the login.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_double_submitted_login_rotates_once_and_logs_nobody_out() {
    let (a, b, _) = two_instances(Shape::Standalone, Policy::default()).await;
    let old = session_cookie(&send("POST", a, "/cart/apple", None).await);
    let logins = (0..8).map(|i| {
        let old = old.clone();
        async move {
            send(
                "POST",
                if i % 2 == 0 { a } else { b },
                "/login/bob",
                Some(&old),
            )
            .await
        }
    });
    let replies = futures_join_all(logins).await;
    assert!(
        replies.iter().all(|r| r.status == StatusCode::OK),
        "{replies:?}"
    );
    let new: Vec<String> = replies
        .iter()
        .filter(|r| r.cookie("session").is_some())
        .map(session_cookie)
        .collect();
    assert_eq!(new.len(), 1, "one new cookie: {replies:?}");
    assert_ne!(new[0], old);
    for cookie in [&old, &new[0]] {
        let me: Option<String> = send("GET", b, "/me", Some(cookie)).await.json();
        assert_eq!(me.as_deref(), Some("bob"));
    }
    assert_eq!(
        send("GET", a, "/cart", Some(&new[0]))
            .await
            .json::<Vec<String>>(),
        vec!["apple"]
    );
}

/// Runs the futures concurrently on the test's runtime and returns their outputs in order.
async fn futures_join_all<F>(futures: impl Iterator<Item = F>) -> Vec<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.expect("the request task"));
    }
    out
}

fn memory() -> Arc<dyn SessionStore> {
    Arc::new(MemoryStore::new())
}

#[tokio::test]
async fn default_cookie_attributes_and_no_cookie_without_a_write() {
    let addr = serve(SessionLayer::new(memory())).await;
    // Nothing touched, nothing read from a store, or only read: no cookie.
    assert!(
        send("GET", addr, "/ping", None)
            .await
            .set_cookies
            .is_empty()
    );
    let read = send("GET", addr, "/counter", None).await;
    assert_eq!((read.json::<i64>(), read.set_cookies.len()), (0, 0));
    // A write creates the session and sets the cookie.
    let reply = send("POST", addr, "/counter", None).await;
    let c = reply.cookie("session").expect("a cookie");
    assert_eq!(c.value().len(), 22);
    assert_eq!(c.path(), Some("/"));
    assert_eq!(c.http_only(), Some(true));
    assert_eq!(c.secure(), Some(true));
    assert_eq!(c.same_site(), Some(SameSite::Lax));
    assert_eq!(c.max_age(), None, "a browser-session cookie");
    assert_eq!(c.domain(), None);
    // An existing session is not re-sent (browser-session cookie).
    let again = send("POST", addr, "/counter", Some(&session_cookie(&reply))).await;
    assert!(again.set_cookies.is_empty());
    assert_eq!(
        send("GET", addr, "/counter", Some(&session_cookie(&reply)))
            .await
            .json::<i64>(),
        2
    );
}

#[tokio::test]
async fn configured_cookie_attributes_and_persistent_max_age() {
    let layer = SessionLayer::new(memory())
        .cookie_name("sid")
        .domain("shop.example")
        .path("/")
        .secure(false)
        .http_only(false)
        .same_site(Some(SameSite::Strict))
        .lifetime(CookieLifetime::Persistent);
    let addr = serve(layer).await;
    let reply = send("POST", addr, "/counter", None).await;
    let c = reply.cookie("sid").expect("a cookie named sid");
    assert_eq!(c.domain(), Some("shop.example"));
    assert_eq!(c.secure(), None);
    assert_eq!(c.http_only(), None);
    assert_eq!(c.same_site(), Some(SameSite::Strict));
    assert_eq!(
        c.max_age(),
        Some(cookie::time::Duration::minutes(30)),
        "the idle timeout"
    );
    // A persistent cookie slides with every request that touches the session.
    let header = format!("sid={}", c.value());
    let read = send("GET", addr, "/counter", Some(&header)).await;
    assert_eq!(read.json::<i64>(), 1);
    assert_eq!(
        read.cookie("sid").map(|c| c.value().to_owned()),
        Some(c.value().to_owned())
    );
    assert!(
        send("GET", addr, "/ping", Some(&header))
            .await
            .set_cookies
            .is_empty()
    );
}

#[tokio::test]
async fn malformed_and_unknown_cookies_start_fresh_sessions() {
    let store = memory();
    let addr = serve(shop_app::layer(store.clone())).await;
    let known = session_cookie(&send("POST", addr, "/counter", None).await);
    let unknown = format!("session={}", SessionToken::generate().expose());
    for bad in [
        "session=garbage",
        "session=",
        "session=AAAAAAAAAAAAAAAAAAAAAB",
        "session=!!!!",
        "session=a b c",
        unknown.as_str(),
    ] {
        let read = send("GET", addr, "/counter", Some(bad)).await;
        assert_eq!(read.status, StatusCode::OK, "{bad}: {read:?}");
        assert_eq!(read.json::<i64>(), 0, "{bad}");
        assert!(
            read.cookie("session").is_some_and(|c| c.value().is_empty()),
            "{bad}: removed"
        );
        let write = send("POST", addr, "/counter", Some(bad)).await;
        assert_eq!(write.status, StatusCode::OK, "{bad}: {write:?}");
        let fresh = session_cookie(&write);
        assert_ne!(fresh, known);
        assert_eq!(
            send("GET", addr, "/counter", Some(&fresh))
                .await
                .json::<i64>(),
            1
        );
    }
    assert_eq!(
        send("GET", addr, "/counter", Some(&known))
            .await
            .json::<i64>(),
        1
    );
}

#[tokio::test]
async fn signed_cookies_reject_tampering() {
    let key = Key::generate();
    let addr = serve(SessionLayer::new(memory()).secure(false).signed(key)).await;
    let reply = send("POST", addr, "/counter", None).await;
    let signed = reply.cookie("session").unwrap().value().to_owned();
    assert!(signed.len() > 22, "value carries a signature");
    let good = format!("session={signed}");
    assert_eq!(
        send("GET", addr, "/counter", Some(&good))
            .await
            .json::<i64>(),
        1
    );
    // The bare token (signature stripped) and a tampered signature start fresh sessions.
    let bare = format!("session={}", &signed[signed.len() - 22..]);
    let mut tampered = signed.clone().into_bytes();
    tampered[0] = if tampered[0] == b'A' { b'B' } else { b'A' };
    let tampered = format!("session={}", String::from_utf8(tampered).unwrap());
    for bad in [bare, tampered] {
        assert_eq!(
            send("GET", addr, "/counter", Some(&bad))
                .await
                .json::<i64>(),
            0,
            "{bad}"
        );
    }
}

/// A store whose backend is down.
#[derive(Debug)]
struct DownStore;

fn down() -> Error {
    Error::backend(std::io::Error::new(
        std::io::ErrorKind::ConnectionRefused,
        "store down",
    ))
}

#[async_trait]
impl SessionStore for DownStore {
    fn policy(&self) -> Policy {
        Policy::default()
    }
    async fn create(&self, _: NewSession) -> Result<Created> {
        Err(down())
    }
    async fn load(&self, _: &SessionToken) -> Result<Option<SessionRecord>> {
        Err(down())
    }
    async fn load_read_only(&self, _: &SessionToken) -> Result<Option<SessionRecord>> {
        Err(down())
    }
    async fn load_some(&self, _: &SessionToken, _: &[&str]) -> Result<Option<SessionRecord>> {
        Err(down())
    }
    async fn apply(&self, _: &SessionToken, _: &Delta) -> Result<Applied> {
        Err(down())
    }
    async fn touch(&self, _: &SessionToken) -> Result<()> {
        Err(down())
    }
    async fn delete(&self, _: &SessionToken) -> Result<bool> {
        Err(down())
    }
    async fn rotate(&self, _: &SessionToken) -> Result<SessionToken> {
        Err(down())
    }
    async fn sessions_of(&self, _: &str) -> Result<Vec<SessionHandle>> {
        Err(down())
    }
    async fn delete_all_of(&self, _: &str) -> Result<usize> {
        Err(down())
    }
}

#[tokio::test]
async fn an_unavailable_store_gives_the_configured_failure() {
    let cookie = format!("session={}", SessionToken::generate().expose());
    let fail = serve(shop_app::layer(Arc::new(DownStore))).await;
    // A blind write fails at save time: the handler's 200 is replaced.
    let reply = send("POST", fail, "/counter", Some(&cookie)).await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(
        reply.body.contains("session changes were not saved"),
        "{reply:?}"
    );
    // A read fails in the handler (SessionError → 500).
    let reply = send("GET", fail, "/me", Some(&cookie)).await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(reply.body.contains("backend error"), "{reply:?}");
    // A route that does not touch the session is not affected.
    assert_eq!(
        send("GET", fail, "/ping", Some(&cookie)).await.status,
        StatusCode::OK
    );

    let lenient =
        serve(shop_app::layer(Arc::new(DownStore)).on_save_failure(SaveFailure::LogAndContinue))
            .await;
    let reply = send("POST", lenient, "/counter", Some(&cookie)).await;
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (StatusCode::OK, "counted")
    );
}

/// Counts the store calls the layer makes.
#[derive(Debug, Default)]
struct Counting {
    inner: MemoryStore,
    creates: AtomicUsize,
    loads: AtomicUsize,
    load_somes: AtomicUsize,
    applies: AtomicUsize,
}

impl Counting {
    fn take(&self) -> [usize; 4] {
        [&self.creates, &self.loads, &self.load_somes, &self.applies]
            .map(|c| c.swap(0, Ordering::SeqCst))
    }
}

#[async_trait]
impl SessionStore for Counting {
    fn policy(&self) -> Policy {
        self.inner.policy()
    }
    async fn create(&self, new: NewSession) -> Result<Created> {
        self.creates.fetch_add(1, Ordering::SeqCst);
        self.inner.create(new).await
    }
    async fn load(&self, t: &SessionToken) -> Result<Option<SessionRecord>> {
        self.loads.fetch_add(1, Ordering::SeqCst);
        self.inner.load(t).await
    }
    async fn load_read_only(&self, t: &SessionToken) -> Result<Option<SessionRecord>> {
        self.loads.fetch_add(1, Ordering::SeqCst);
        self.inner.load_read_only(t).await
    }
    async fn load_some(&self, t: &SessionToken, names: &[&str]) -> Result<Option<SessionRecord>> {
        self.load_somes.fetch_add(1, Ordering::SeqCst);
        self.inner.load_some(t, names).await
    }
    async fn apply(&self, t: &SessionToken, d: &Delta) -> Result<Applied> {
        self.applies.fetch_add(1, Ordering::SeqCst);
        self.inner.apply(t, d).await
    }
    async fn touch(&self, t: &SessionToken) -> Result<()> {
        self.inner.touch(t).await
    }
    async fn delete(&self, t: &SessionToken) -> Result<bool> {
        self.inner.delete(t).await
    }
    async fn rotate(&self, t: &SessionToken) -> Result<SessionToken> {
        self.inner.rotate(t).await
    }
    async fn sessions_of(&self, p: &str) -> Result<Vec<SessionHandle>> {
        self.inner.sessions_of(p).await
    }
    async fn delete_all_of(&self, p: &str) -> Result<usize> {
        self.inner.delete_all_of(p).await
    }
    async fn summaries_of(&self, p: &str) -> Result<Vec<session_core::SessionSummary>> {
        self.inner.summaries_of(p).await
    }
}

/// One round trip to read, one to write; blind writes do not load; reads never write.
#[tokio::test]
async fn round_trips_per_request() {
    let store = Arc::new(Counting::default());
    let addr = serve(shop_app::layer(store.clone())).await;
    // [creates, loads, load_somes, applies]
    let cookie = session_cookie(&send("POST", addr, "/counter", None).await);
    assert_eq!(
        store.take(),
        [1, 0, 0, 0],
        "a new session: one create with the increment"
    );
    send("POST", addr, "/counter", Some(&cookie)).await;
    assert_eq!(
        store.take(),
        [0, 0, 0, 1],
        "a blind write: one apply, no load"
    );
    assert_eq!(
        send("GET", addr, "/counter", Some(&cookie))
            .await
            .json::<i64>(),
        2
    );
    assert_eq!(
        store.take(),
        [0, 0, 1, 0],
        "a read of a declared attribute: one load_some"
    );
    assert_eq!(
        send("GET", addr, "/me", Some(&cookie))
            .await
            .json::<Option<String>>(),
        None
    );
    assert_eq!(store.take(), [0, 1, 0, 0], "a read: one load, no write");
    send("GET", addr, "/ping", Some(&cookie)).await;
    assert_eq!(store.take(), [0, 0, 0, 0], "no access, no I/O");
    send("POST", addr, "/cart/pear", Some(&cookie)).await;
    assert_eq!(
        store.take(),
        [0, 1, 0, 1],
        "update: one load and one guarded apply"
    );
    let touched = store
        .inner
        .load_read_only(&cookie[8..].parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        touched.get::<Vec<String>>("cart").unwrap(),
        Some(vec!["pear".to_owned()])
    );
}

/// A handler reads its own pending writes, and metadata setters reach the store in the one
/// apply at response time.
#[tokio::test]
async fn handlers_read_their_own_writes_and_set_metadata() {
    use axum::routing::post;
    use session_core::Deadline;
    use session_tower::SessionError;

    async fn handler(session: session_tower::Session) -> Result<&'static str, SessionError> {
        session.insert("a", &1).await?;
        assert_eq!(session.get::<i64>("a").await?, Some(1));
        session.increment("n", 2).await?;
        session.increment("n", 3).await?;
        assert_eq!(
            session.get::<i64>("n").await?,
            Some(7),
            "stored 2 plus pending 5"
        );
        session.remove("gone").await?;
        assert_eq!(session.get::<String>("gone").await?, None);
        session.set_idle_timeout(Duration::from_secs(600)).await?;
        assert_eq!(
            session.idle_timeout().await?,
            Some(Duration::from_secs(600))
        );
        session
            .set_deadline(Deadline::In(Duration::from_secs(3600)))
            .await;
        session.set_principal("carol").await?;
        assert_eq!(session.principal().await?.as_deref(), Some("carol"));
        assert!(session.handle().await?.is_some());
        assert!(session.expires_at().await?.is_some());
        assert!(
            session.insert_bytes("", b"x".to_vec()).await.is_err(),
            "bad name: typed error"
        );
        Ok("ok")
    }

    let store = Arc::new(MemoryStore::new());
    let token = store
        .create(
            NewSession::new()
                .put("n", &2)
                .unwrap()
                .put("gone", "x")
                .unwrap(),
        )
        .await
        .unwrap()
        .token;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new()
        .route("/", post(handler))
        .layer(SessionLayer::new(store.clone()));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let reply = send(
        "POST",
        addr,
        "/",
        Some(&format!("session={}", token.expose())),
    )
    .await;
    assert_eq!((reply.status, reply.body.as_str()), (StatusCode::OK, "ok"));
    let s = store.load_read_only(&token).await.unwrap().unwrap();
    assert_eq!(s.get::<i64>("a").unwrap(), Some(1));
    assert_eq!(s.get::<i64>("n").unwrap(), Some(7));
    assert_eq!(s.get::<String>("gone").unwrap(), None);
    assert_eq!(s.idle_timeout, Duration::from_secs(600));
    assert!(s.deadline.is_some());
    assert_eq!(s.principal.as_deref(), Some("carol"));
    assert_eq!(s.version, 2, "one apply for the whole request");
}
