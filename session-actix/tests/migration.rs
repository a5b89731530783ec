//! The read-through migration from actix-session's Redis store, end to end: sessions written
//! by an actix-web app on actix-session 0.11 (the old app, its private `id` cookie), then
//! served by apps on this crate over one real Redis (the new app), driven over HTTP.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use actix_web::{App, HttpResponse, HttpServer, web};
use redis::AsyncCommands;
use reqwest::StatusCode;
use session_actix::actix_session_compat::RedisRecords;
use session_actix::{Key, Session, SessionConfig, SessionError, SessionMiddleware};
use session_core::import::{AfterImport, Importing};
use session_core::{Delta, SessionStore, SessionToken};
use session_redis::{RedisStore, RedisStoreBuilder, RedisTransport};
use session_testkit::http::send;
use session_testkit::topology::{self, Shape};

/// Runs `app` (built on the server's own thread) on a free loopback port, in an actix-web
/// server of one worker on a thread of its own, until the test process ends.
fn serve<F, Fut>(make: F) -> SocketAddr
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = Box<dyn Fn(&mut web::ServiceConfig) + Send + Sync>>,
{
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            let configure: Arc<dyn Fn(&mut web::ServiceConfig) + Send + Sync> =
                Arc::from(make().await);
            HttpServer::new(move || {
                let configure = configure.clone();
                App::new().configure(move |c| configure(c))
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

/// The old app: actix-session 0.11's middleware over its Redis store, its defaults (a
/// private cookie `id` under `key`).
mod old {
    use super::*;
    use actix_session::storage::RedisSessionStore;
    use actix_session::{Session, SessionMiddleware};

    async fn login(session: Session, user: web::Path<String>) -> HttpResponse {
        let saved = session
            .insert("user", user.into_inner())
            .and_then(|()| session.insert("n", 0_i64));
        match saved {
            Ok(()) => HttpResponse::Ok().finish(),
            Err(e) => HttpResponse::InternalServerError().body(e.to_string()),
        }
    }

    async fn whoami(session: Session) -> String {
        match session.get::<String>("user") {
            Ok(user) => user.unwrap_or_else(|| "none".into()),
            Err(e) => format!("error: {e}"),
        }
    }

    pub fn serve(url: String, master: Vec<u8>) -> SocketAddr {
        super::serve(move || async move {
            let store = RedisSessionStore::new(url)
                .await
                .expect("actix-session's store");
            let key = actix_web::cookie::Key::from(&master);
            Box::new(move |c: &mut web::ServiceConfig| {
                c.service(
                    web::scope("")
                        .wrap(
                            SessionMiddleware::builder(store.clone(), key.clone())
                                .cookie_secure(false)
                                .build(),
                        )
                        .route("/login/{user}", web::post().to(login))
                        .route("/whoami", web::get().to(whoami)),
                );
            }) as Box<dyn Fn(&mut web::ServiceConfig) + Send + Sync>
        })
    }
}

async fn whoami(session: Session) -> Result<String, SessionError> {
    Ok(session
        .get::<String>("user")
        .await?
        .unwrap_or_else(|| "none".into()))
}

async fn add(session: Session) -> Result<HttpResponse, SessionError> {
    session.increment("n", 1).await?;
    Ok(HttpResponse::Ok().finish())
}

async fn count(session: Session) -> Result<String, SessionError> {
    Ok(session.get::<i64>("n").await?.unwrap_or(-1).to_string())
}

async fn logout(session: Session) -> Result<HttpResponse, SessionError> {
    session.delete().await?;
    Ok(HttpResponse::Ok().finish())
}

/// A login: the session moves to a fresh token.
async fn login(session: Session) -> Result<HttpResponse, SessionError> {
    session.rotate().await;
    Ok(HttpResponse::Ok().finish())
}

type Old = RedisRecords<RedisTransport>;

/// A store of ours that imports the old app's sessions, and the source it reads them from.
async fn importing(
    d: &Deployment,
    key: &Key,
    after: AfterImport,
) -> (Importing<Arc<RedisStore>, Old>, Old) {
    let redis = Arc::new(
        RedisStoreBuilder::new()
            .url(&d.url)
            .namespace(&d.namespace)
            .build()
            .await
            .expect("a Redis store"),
    );
    let old = RedisRecords::new(redis.clone(), key);
    (Importing::new(redis, old.clone()).after_import(after), old)
}

/// The new app: this crate's middleware over a store that imports the old app's sessions,
/// reading the old cookie with `key`.
fn serve_new(d: &Deployment, key: Key, after: AfterImport) -> SocketAddr {
    let (url, namespace) = (d.url.clone(), d.namespace.clone());
    serve(move || async move {
        let d = Deployment::at(url, namespace);
        let (store, old) = importing(&d, &key, after).await;
        let config = SessionConfig::new(store)
            .secure(false)
            .legacy_cookie_private("id", key)
            .legacy_token(old);
        let middleware = SessionMiddleware::from(config);
        Box::new(move |c: &mut web::ServiceConfig| {
            c.service(
                web::scope("")
                    .wrap(middleware.clone())
                    .route("/whoami", web::get().to(whoami))
                    .route("/add", web::post().to(add))
                    .route("/n", web::get().to(count))
                    .route("/logout", web::post().to(logout))
                    .route("/login", web::post().to(login)),
            );
        }) as Box<dyn Fn(&mut web::ServiceConfig) + Send + Sync>
    })
}

struct Deployment {
    url: String,
    namespace: String,
}

impl Deployment {
    fn at(url: String, namespace: String) -> Self {
        Deployment { url, namespace }
    }
}

/// A standalone Redis, a namespace of our own on it, the old app and its key.
async fn deployment() -> (Deployment, SocketAddr, Vec<u8>) {
    let dep = topology::shared(Shape::Standalone)
        .await
        .expect("a Redis deployment");
    let namespace = format!(
        "actixmig{}",
        &SessionToken::generate().handle().to_hex()[..12]
    );
    let master = Key::generate().master().to_vec();
    let old = old::serve(dep.url(), master.clone());
    (Deployment::at(dep.url(), namespace), old, master)
}

/// Signs `user` in on the old app: its `id` cookie, and the session key inside it (the
/// Redis key of the old record), as actix-session's cookie jar reads it.
async fn old_login(old: SocketAddr, master: &[u8], user: &str) -> (String, String) {
    let answer = send("POST", old, &format!("/login/{user}"), None).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    let value = answer
        .cookie_value("id")
        .expect("the old app's cookie")
        .to_owned();
    // actix-web writes it percent-encoded (and reads it decoded).
    let decoded = cookie::Cookie::parse_encoded(format!("id={value}")).expect("a cookie");
    let jar = cookie::CookieJar::new();
    let session_key = jar
        .private(&Key::from(master))
        .decrypt(decoded)
        .expect("the old key opens the old cookie")
        .value()
        .to_owned();
    (format!("id={value}"), session_key)
}

/// Milliseconds `key` has left on the Redis at `url` (-2: no key).
async fn pttl(url: &str, key: &str) -> i64 {
    let client = redis::Client::open(url).expect("a redis-rs client");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("connects");
    conn.pttl(key).await.expect("PTTL")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_signed_in_actix_session_user_stays_signed_in_across_the_switch() {
    let (d, old, master) = deployment().await;
    let (cookie, session_key) = old_login(old, &master, "ann").await;
    assert_eq!(send("GET", old, "/whoami", Some(&cookie)).await.body, "ann");
    assert!(pttl(&d.url, &session_key).await > 0, "the old record");
    let new = serve_new(&d, Key::from(&master), AfterImport::Remove);

    // The first request with the old cookie is answered from the imported session, sets
    // our cookie and removes the old one and its record.
    let first = send("GET", new, "/whoami", Some(&cookie)).await;
    assert_eq!((first.status, first.body.as_str()), (StatusCode::OK, "ann"));
    let ours = format!(
        "session={}",
        first.cookie_value("session").expect("our cookie")
    );
    assert_eq!(
        first.cookie_value("id"),
        Some(""),
        "the old cookie is removed"
    );
    assert_eq!(
        pttl(&d.url, &session_key).await,
        -2,
        "the old record is removed"
    );

    // Values came over as actix-session stored them (JSON), and the session is ours now.
    assert_eq!(send("GET", new, "/n", Some(&ours)).await.body, "0");
    assert_eq!(
        send("POST", new, "/add", Some(&ours)).await.status,
        StatusCode::OK
    );
    assert_eq!(send("GET", new, "/n", Some(&ours)).await.body, "1");
    // The old cookie replayed reaches the same session (the same derived token).
    assert_eq!(send("GET", new, "/n", Some(&cookie)).await.body, "1");
    // A logout ends it for either cookie.
    assert_eq!(
        send("POST", new, "/logout", Some(&ours)).await.status,
        StatusCode::OK
    );
    assert_eq!(send("GET", new, "/whoami", Some(&ours)).await.body, "none");
    assert_eq!(
        send("GET", new, "/whoami", Some(&cookie)).await.body,
        "none"
    );
}

/// The first requests after the switch overlap on two instances: one imports, the others
/// use what it imported, and no increment is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn overlapping_first_requests_import_once_and_lose_nothing() {
    let (d, old, master) = deployment().await;
    let (cookie, session_key) = old_login(old, &master, "bob").await;
    let a = serve_new(&d, Key::from(&master), AfterImport::Remove);
    let b = serve_new(&d, Key::from(&master), AfterImport::Remove);
    let adds = (0..20).map(|i| {
        let cookie = cookie.clone();
        let addr = if i % 2 == 0 { a } else { b };
        tokio::spawn(async move { send("POST", addr, "/add", Some(&cookie)).await })
    });
    let mut handed = Vec::new();
    for add in adds.collect::<Vec<_>>() {
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
    assert_eq!(pttl(&d.url, &session_key).await, -2);
}

/// Under `Keep` the old record stays, marked: a session that idles out here is not imported
/// again. (No rollback comes of it for actix-session: the client's old cookie is removed at
/// the hand-over, and ours carries a token actix-session cannot read.)
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn keep_leaves_the_old_record_and_never_imports_twice() {
    let (d, old, master) = deployment().await;
    let (cookie, session_key) = old_login(old, &master, "cat").await;
    let key = Key::from(&master);
    let new = serve_new(&d, key.clone(), AfterImport::Keep);
    let first = send("GET", new, "/whoami", Some(&cookie)).await;
    assert_eq!(first.body, "cat");
    let ours = format!(
        "session={}",
        first.cookie_value("session").expect("our cookie")
    );
    assert!(pttl(&d.url, &session_key).await > 0, "kept");
    let mark = format!("{{{session_key}}}:imported");
    assert!(
        pttl(&d.url, &mark).await > pttl(&d.url, &session_key).await,
        "marked"
    );

    // The session idles out here (a second's timeout), which leaves no tombstone.
    let (store, _) = importing(&d, &key, AfterImport::Keep).await;
    let token: SessionToken = ours.trim_start_matches("session=").parse().unwrap();
    let idle = Delta::new().set_idle_timeout(Duration::from_secs(1));
    store.store().apply(&token, &idle).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    for cookie in [cookie.as_str(), ours.as_str()] {
        assert_eq!(
            send("GET", new, "/whoami", Some(cookie)).await.body,
            "none",
            "{cookie}: not imported again"
        );
    }
    assert!(pttl(&d.url, &session_key).await > 0, "still kept");
}

/// A first request that logs in (rotates) or logs out settles the import on the instance
/// that read the old cookie: the old record goes either way.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_first_request_that_logs_in_or_out_removes_the_old_record() {
    let (d, old, master) = deployment().await;
    let new = serve_new(&d, Key::from(&master), AfterImport::Remove);

    let (cookie, session_key) = old_login(old, &master, "eve").await;
    let answer = send("POST", new, "/login", Some(&cookie)).await;
    assert_eq!(answer.status, StatusCode::OK);
    let ours = format!(
        "session={}",
        answer.cookie_value("session").expect("a new token")
    );
    assert_eq!(answer.cookie_value("id"), Some(""));
    assert_eq!(
        pttl(&d.url, &session_key).await,
        -2,
        "removed at the import"
    );
    assert_eq!(send("GET", new, "/whoami", Some(&ours)).await.body, "eve");
    // The old cookie's token forwards to the login's session, as any rotated token does
    // for the store's rotate grace (requests in flight land).
    assert_eq!(send("GET", new, "/whoami", Some(&cookie)).await.body, "eve");

    let (cookie, session_key) = old_login(old, &master, "fay").await;
    let answer = send("POST", new, "/logout", Some(&cookie)).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.cookie_value("id"), Some(""));
    assert_eq!(pttl(&d.url, &session_key).await, -2);
    assert_eq!(
        send("GET", new, "/whoami", Some(&cookie)).await.body,
        "none"
    );
}

/// An old cookie the configured key does not open is no session, and is left in place; a
/// cookie that names no record starts fresh and is removed.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_wrong_key_imports_nothing_and_an_unknown_session_starts_fresh() {
    let (d, old, master) = deployment().await;
    let (cookie, session_key) = old_login(old, &master, "dan").await;
    let wrong = serve_new(&d, Key::generate(), AfterImport::Remove);
    let answer = send("GET", wrong, "/whoami", Some(&cookie)).await;
    assert_eq!(
        (answer.status, answer.body.as_str()),
        (StatusCode::OK, "none")
    );
    assert_eq!(answer.cookie_value("id"), None, "left for a corrected key");
    assert!(pttl(&d.url, &session_key).await > 0, "not imported");

    let new = serve_new(&d, Key::from(&master), AfterImport::Remove);
    let mut jar = cookie::CookieJar::new();
    jar.private_mut(&Key::from(&master))
        .add(cookie::Cookie::new("id", "x".repeat(64)));
    let unknown = format!("id={}", jar.get("id").unwrap().value());
    let answer = send("GET", new, "/whoami", Some(&unknown)).await;
    assert_eq!(
        (answer.status, answer.body.as_str()),
        (StatusCode::OK, "none")
    );
    assert_eq!(answer.cookie_value("id"), Some(""), "removed");
    assert!(
        answer.cookie_value("session").is_none_or(str::is_empty),
        "no session handed out"
    );
}
