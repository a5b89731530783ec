//! Per-request latency on ONE real Redis (standalone, started by the testkit), in process
//! (requests through an axum router with `oneshot`, no network between client and app):
//!
//! - `baseline`: the same handlers without sessions;
//! - `ours_redis` / `ours_fred`: [`SessionLayer`] over `session_redis::RedisStore` /
//!   `session_fred::FredStore`;
//! - `tower_sessions`: tower-sessions 0.14 with `tower-sessions-redis-store` 0.16 (fred), its
//!   defaults; `tower_sessions_idle`: the same with a 30-minute `Expiry::OnInactivity`, the
//!   sliding expiry our layer keeps by default, and `always_save` (every request writes).
//!
//! Routes: `visit` reads a counter and increments it (load + save), `read` reads one
//! attribute (load only). Every request carries the cookie of an existing session (a
//! logged-in user). `visit_x16`: one iteration is 16 `visit` requests of 16 different
//! sessions, spawned and joined (throughput under concurrency).
//!
//! ```text
//! REDIS_TEST_IMAGE=session-testkit/redis:local cargo bench -p session-tower --bench vs_tower_sessions
//! ```
//! See `BENCHMARKS.md` for results.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use http::{Request, StatusCode};
use session_core::SessionStore;
use session_testkit::topology::{RedisDeployment, Shape};
use session_tower::{Session, SessionError, SessionLayer};
use tokio::task::JoinSet;
use tower::ServiceExt;
use tower_sessions_redis_store::fred::prelude::{ClientLike, Config, Pool};

/// Concurrent requests per iteration of the `visit_x16` group.
const CONCURRENCY: usize = 16;

/// Sends one request and checks it succeeded.
async fn call(router: Router, uri: &'static str, cookie: Option<&str>) {
    let mut req = Request::builder().method("GET").uri(uri);
    if let Some(cookie) = cookie {
        req = req.header(http::header::COOKIE, cookie);
    }
    let req = req.body(Body::empty()).expect("a request");
    let res = router.oneshot(req).await.expect("infallible");
    assert_eq!(res.status(), StatusCode::OK, "{uri}");
}

/// Creates a session through the router (a first `visit` without a cookie) and returns the
/// `name=value` cookie to send with later requests.
async fn new_session(router: &Router) -> String {
    let req = Request::builder()
        .uri("/visit")
        .body(Body::empty())
        .expect("a request");
    let res = router.clone().oneshot(req).await.expect("infallible");
    assert_eq!(res.status(), StatusCode::OK);
    let set_cookie = res
        .headers()
        .get(http::header::SET_COOKIE)
        .expect("a new session sets its cookie")
        .to_str()
        .expect("ascii");
    set_cookie.split(';').next().expect("name=value").to_owned()
}

// --- (a) without sessions -------------------------------------------------------------

fn baseline_router() -> Router {
    Router::new()
        .route("/visit", get(|| async { 1i64.to_string() }))
        .route("/read", get(|| async { 1i64.to_string() }))
}

// --- (b) our layer ------------------------------------------------------------------

/// Reads the counter (loading only that attribute), then increments it (a delta applied
/// when the response is produced).
async fn ours_visit(session: Session) -> Result<String, SessionError> {
    session.need(&["visits"]).await;
    let visits: i64 = session.get("visits").await?.unwrap_or(0);
    session.increment("visits", 1).await?;
    Ok((visits + 1).to_string())
}

/// Reads the counter only.
async fn ours_read(session: Session) -> Result<String, SessionError> {
    session.need(&["visits"]).await;
    let visits: i64 = session.get("visits").await?.unwrap_or(0);
    Ok(visits.to_string())
}

fn ours_router(store: Arc<dyn SessionStore>) -> Router {
    Router::new()
        .route("/visit", get(ours_visit))
        .route("/read", get(ours_read))
        .layer(SessionLayer::new(store).secure(false))
}

// --- (c) tower-sessions -------------------------------------------------------------

/// Reads the counter and writes it back incremented (the record is saved whole).
async fn ts_visit(session: tower_sessions::Session) -> Result<String, StatusCode> {
    let visits: i64 = session
        .get("visits")
        .await
        .map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)?
        .unwrap_or(0);
    session
        .insert("visits", visits + 1)
        .await
        .map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)?;
    Ok((visits + 1).to_string())
}

/// Reads the counter only.
async fn ts_read(session: tower_sessions::Session) -> Result<String, StatusCode> {
    let visits: i64 = session
        .get("visits")
        .await
        .map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)?
        .unwrap_or(0);
    Ok(visits.to_string())
}

/// tower-sessions' defaults (`Expiry` unset: the record is saved only when modified, so a
/// read is one `GET` and never extends the session), or, with `idle`, a 30-minute
/// `Expiry::OnInactivity` like our default idle timeout, with `always_save` so that the
/// record's expiry in Redis slides too (every request saves the record, so a read is
/// `GET` + `SET`, as our touching load also writes the last access).
fn tower_sessions_router(pool: Pool, idle: bool) -> Router {
    let store = tower_sessions_redis_store::RedisStore::new(pool);
    let mut layer = tower_sessions::SessionManagerLayer::new(store).with_secure(false);
    if idle {
        layer = layer
            .with_expiry(tower_sessions::Expiry::OnInactivity(
                tower_sessions::cookie::time::Duration::minutes(30),
            ))
            .with_always_save(true);
    }
    Router::new()
        .route("/visit", get(ts_visit))
        .route("/read", get(ts_read))
        .layer(layer)
}

// --- the benchmark ------------------------------------------------------------------

/// One contender: its router, the cookie of one session, and 16 more for `visit_x16`.
struct Case {
    name: &'static str,
    router: Router,
    cookie: Option<String>,
    cookies: Vec<Option<String>>,
}

async fn case(name: &'static str, router: Router, sessions: bool) -> Case {
    let mut cookies = Vec::with_capacity(CONCURRENCY);
    for _ in 0..CONCURRENCY {
        cookies.push(if sessions {
            Some(new_session(&router).await)
        } else {
            None
        });
    }
    let cookie = if sessions {
        Some(new_session(&router).await)
    } else {
        None
    };
    Case {
        name,
        router,
        cookie,
        cookies,
    }
}

fn vs_tower_sessions(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");

    let (deployment, cases) = rt.block_on(async {
        let deployment = RedisDeployment::start(Shape::Standalone)
            .await
            .expect("a standalone Redis (Docker or redis-server; see session-testkit)");
        let url = deployment.url();

        let redis_store = session_redis::RedisStoreBuilder::new()
            .url(&url)
            .namespace("bench-redis")
            .build()
            .await
            .expect("a RedisStore");
        let fred_store = session_fred::FredStoreBuilder::new()
            .url(&url)
            .namespace("bench-fred")
            .pool_size(1)
            .build()
            .await
            .expect("a FredStore");
        // One fred client, like our FredStore (and like redis-rs's one multiplexed connection).
        let pool = Pool::new(
            Config::from_url(&url).expect("a fred config"),
            None,
            None,
            None,
            1,
        )
        .expect("a fred pool");
        let _connection = pool.init().await.expect("fred connects");

        let cases = vec![
            case("baseline", baseline_router(), false).await,
            case("ours_redis", ours_router(Arc::new(redis_store)), true).await,
            case("ours_fred", ours_router(Arc::new(fred_store)), true).await,
            case(
                "tower_sessions",
                tower_sessions_router(pool.clone(), false),
                true,
            )
            .await,
            case(
                "tower_sessions_idle",
                tower_sessions_router(pool, true),
                true,
            )
            .await,
        ];
        (deployment, cases)
    });

    for route in ["visit", "read"] {
        let uri: &'static str = if route == "visit" { "/visit" } else { "/read" };
        let mut group = c.benchmark_group(route);
        group
            .sample_size(20)
            .warm_up_time(Duration::from_secs(1))
            .measurement_time(Duration::from_secs(3));
        for case in &cases {
            group.bench_function(BenchmarkId::from_parameter(case.name), |b| {
                b.to_async(&rt)
                    .iter(|| call(case.router.clone(), uri, case.cookie.as_deref()))
            });
        }
        group.finish();
    }

    let mut group = c.benchmark_group("visit_x16");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    for case in &cases {
        group.bench_function(BenchmarkId::from_parameter(case.name), |b| {
            b.to_async(&rt).iter(|| async {
                let mut set = JoinSet::new();
                for cookie in &case.cookies {
                    let router = case.router.clone();
                    let cookie = cookie.clone();
                    set.spawn(async move { call(router, "/visit", cookie.as_deref()).await });
                }
                while let Some(done) = set.join_next().await {
                    done.expect("a request task");
                }
            })
        });
    }
    group.finish();

    drop(cases);
    drop(deployment);
}

criterion_group!(benches, vs_tower_sessions);
criterion_main!(benches);
