//! The middleware over real HTTP: two actix-web servers running the example shop on
//! loopback ports share one Redis, and a real HTTP client sends overlapping requests of
//! one user across both; plus rotation, logout in flight, expiry and stale cookies.

#[path = "../examples/common/shop_app.rs"]
mod shop_app;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;
use session_core::{Policy, SessionStore, SessionToken};
use session_redis::RedisStoreBuilder;
use session_testkit::http::{Reply, send};
use session_testkit::topology::{self, Shape};

/// Serves the shop over `store` on a free loopback port, in an actix-web server of one
/// worker on a thread of its own (actix-web runs its own runtime), until the test process
/// ends.
fn serve(store: Arc<dyn SessionStore>) -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            actix_web::HttpServer::new(move || {
                actix_web::App::new()
                    .wrap(shop_app::middleware(shop_app::config(store.clone())))
                    .configure(shop_app::routes)
            })
            .workers(1)
            .listen(listener)
            .expect("listens")
            .run()
            .await
        })
    });
    addr
}

/// Two shop servers with stores of their own on one Redis, and a store to look into it.
async fn two_instances(policy: Policy) -> (SocketAddr, SocketAddr, Arc<dyn SessionStore>) {
    let dep = topology::shared(Shape::Standalone)
        .await
        .expect("a Redis deployment");
    let namespace = format!("actix{}", &SessionToken::generate().handle().to_hex()[..12]);
    let store = || async {
        let store = RedisStoreBuilder::new()
            .url(&dep.url())
            .namespace(&namespace)
            .policy(policy.clone())
            .build()
            .await
            .expect("a Redis store");
        Arc::new(store) as Arc<dyn SessionStore>
    };
    let look = store().await;
    (serve(store().await), serve(store().await), look)
}

/// The `Cookie` header for the session cookie a reply set.
fn session_cookie(reply: &Reply) -> String {
    let c = reply
        .cookie("session")
        .unwrap_or_else(|| panic!("no session cookie in {reply:?}"));
    assert!(!c.value().is_empty(), "a removal, not a session: {reply:?}");
    format!("session={}", c.value())
}

fn token_of(cookie: &str) -> SessionToken {
    cookie.trim_start_matches("session=").parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_overlapping_cart_adds_over_two_servers_keep_fifty_items() {
    let (a, b, _) = two_instances(Policy::default()).await;
    let cookie = session_cookie(&send("POST", a, "/counter", None).await);
    let adds = (0..50).map(|i| {
        let cookie = cookie.clone();
        let addr = if i % 2 == 0 { a } else { b };
        tokio::spawn(
            async move { send("POST", addr, &format!("/cart/item{i}"), Some(&cookie)).await },
        )
    });
    for add in adds.collect::<Vec<_>>() {
        let reply = add.await.unwrap();
        assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
        assert!(
            reply.cookie("session").is_none(),
            "no new cookie: {reply:?}"
        );
    }
    let mut cart: Vec<String> = send("GET", b, "/cart", Some(&cookie)).await.json();
    cart.sort();
    let mut want: Vec<String> = (0..50).map(|i| format!("item{i}")).collect();
    want.sort();
    assert_eq!(cart, want, "every overlapping add landed");
}

/// A logout while adds are in flight: the adds that read before it and write after it do
/// not bring the session back; the old cookie never sees a live session again.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_logout_while_adds_are_in_flight_leaves_the_old_cookie_dead() {
    let (a, b, look) = two_instances(Policy::default()).await;
    let anon = session_cookie(&send("POST", a, "/cart/first", None).await);
    let cookie = session_cookie(&send("POST", a, "/login/alice", Some(&anon)).await);
    let in_flight: Vec<_> = (0..6)
        .map(|i| {
            let cookie = cookie.clone();
            let addr = if i % 2 == 0 { a } else { b };
            tokio::spawn(async move {
                send(
                    "POST",
                    addr,
                    &format!("/cart/late{i}?delay_ms=600"),
                    Some(&cookie),
                )
                .await
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let logout = send("POST", b, "/logout", Some(&cookie)).await;
    assert_eq!(logout.status, StatusCode::OK);
    assert_eq!(logout.cookie("session").map(|c| c.value()), Some(""));
    for late in in_flight {
        let late = late.await.unwrap();
        assert_eq!(late.status, StatusCode::OK, "{late:?}");
        assert_ne!(
            session_cookie(&late),
            cookie,
            "a fresh session, not the old one"
        );
    }
    for c in [&cookie, &anon] {
        let me = send("GET", a, "/me", Some(c)).await;
        assert_eq!(me.json::<Option<String>>(), None);
        assert!(
            look.load_read_only(&token_of(c)).await.unwrap().is_none(),
            "not revived"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn login_rotates_the_token_and_keeps_the_cart() {
    let (a, b, _) = two_instances(Policy::default()).await;
    let old = session_cookie(&send("POST", a, "/cart/apple", None).await);
    send("POST", b, "/cart/pear", Some(&old)).await;
    let login = send("POST", b, "/login/bob", Some(&old)).await;
    assert_eq!(login.status, StatusCode::OK);
    let new = session_cookie(&login);
    assert_ne!(new, old, "a fresh token at login");
    let cart: Vec<String> = send("GET", a, "/cart", Some(&new)).await.json();
    assert_eq!(cart, vec!["apple", "pear"]);
    let me: Option<String> = send("GET", a, "/me", Some(&new)).await.json();
    assert_eq!(me.as_deref(), Some("bob"));
}

/// An expired session, a malformed cookie and a foreign one (a token this store never
/// issued) each start a fresh session: never an error page, and the stale cookie goes.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn expired_malformed_and_foreign_cookies_start_fresh() {
    let policy = Policy {
        default_idle_timeout: Duration::from_secs(1),
        ..Policy::default()
    };
    let (a, b, _) = two_instances(policy).await;
    let cookie = session_cookie(&send("POST", a, "/cart/apple", None).await);
    assert_eq!(
        send("GET", b, "/cart", Some(&cookie))
            .await
            .json::<Vec<String>>(),
        vec!["apple"]
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let foreign = format!("session={}", SessionToken::generate().expose());
    for stale in [cookie.as_str(), "session=not-a-token", foreign.as_str()] {
        let reply = send("GET", b, "/cart", Some(stale)).await;
        assert_eq!(reply.status, StatusCode::OK, "{stale}: {reply:?}");
        assert_eq!(reply.json::<Vec<String>>(), Vec::<String>::new(), "{stale}");
        assert_eq!(
            reply.cookie("session").map(|c| c.value()),
            Some(""),
            "{stale}: the stale cookie is removed"
        );
        let write = send("POST", a, "/cart/pear", Some(stale)).await;
        assert_eq!(write.status, StatusCode::OK);
        let fresh = session_cookie(&write);
        assert_ne!(fresh, stale, "a new session");
        assert_eq!(
            send("GET", b, "/cart", Some(&fresh))
                .await
                .json::<Vec<String>>(),
            vec!["pear"]
        );
    }
}

/// A handler on a route the middleware does not wrap gets a `500` that says why; a
/// handler's session error gets the one policy's status (a stored value read as the wrong
/// type is the handler's mistake: `500`, with a body that names the error).
#[actix_web::test]
async fn a_missing_middleware_and_a_handlers_session_error_answer_with_the_policy() {
    use actix_web::{App, test, web};
    use session_actix::{Session, SessionError, SessionMiddleware};

    async fn wrong_type(session: Session) -> Result<String, SessionError> {
        session.insert("n", "not a number").await?;
        Ok(session.get::<i64>("n").await?.unwrap_or(0).to_string())
    }

    let app = test::init_service(
        App::new()
            .service(web::scope("/bare").route("/x", web::get().to(wrong_type)))
            .service(
                web::scope("/wrapped")
                    .wrap(SessionMiddleware::new(session_core::MemoryStore::new()))
                    .route("/x", web::get().to(wrong_type)),
            ),
    )
    .await;
    let bare = test::call_service(&app, test::TestRequest::get().uri("/bare/x").to_request()).await;
    assert_eq!(bare.status().as_u16(), 500);
    let body = test::read_body(bare).await;
    assert_eq!(body, "no SessionMiddleware wraps this route");

    let wrapped = test::call_service(
        &app,
        test::TestRequest::get().uri("/wrapped/x").to_request(),
    )
    .await;
    assert_eq!(wrapped.status().as_u16(), 500);
    assert!(
        wrapped.headers().get("set-cookie").is_none(),
        "a 5xx saves nothing"
    );
    let body = test::read_body(wrapped).await;
    assert!(
        body.starts_with(b"session error: could not decode attribute"),
        "{body:?}"
    );
}
