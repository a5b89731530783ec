//! What a tower-sessions request costs Redis through the compatibility store, side by side
//! with tower-sessions-redis-store: the same tower-sessions 0.14 app (`SessionManagerLayer`,
//! a handler that reads a counter and writes it back, so every request loads and saves the
//! record), driven in process with `oneshot`, sequentially, on one session each.
//!
//! For each store it prints Redis commands per request (`INFO commandstats` after `CONFIG
//! RESETSTAT`, Lua's inner calls included) and Redis CPU per request (`INFO cpu`), as the
//! median of `ROUNDS` windows.
//!
//! ```sh
//! redis-server --port 6391 --save '' --appendonly no --daemonize yes
//! cargo run --release -p session-tower --features tower-sessions-014 --example compat_cost -- \
//!     redis://127.0.0.1:6391 2000
//! ```

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use http::{Request, StatusCode};
use session_core::SessionStore;
use session_redis::RedisStoreBuilder;
use session_tower::tower_sessions_compat::TowerSessionsStore;
use tower::ServiceExt;
use tower_sessions::{Expiry, Session, SessionManagerLayer};
use tower_sessions_redis_store::fred::prelude::{ClientLike, Config, Pool};
use tower_sessions_redis_store::fred::types::{ClusterHash, CustomCommand};

const ROUNDS: usize = 5;

type Error = Box<dyn std::error::Error + Send + Sync>;

async fn visit(session: Session) -> Result<String, StatusCode> {
    let n: i64 = session
        .get("n")
        .await
        .map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)?
        .unwrap_or(0);
    session
        .insert("n", n + 1)
        .await
        .map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)?;
    Ok((n + 1).to_string())
}

fn app<S: tower_sessions::SessionStore + Clone>(store: S) -> Router {
    let layer = SessionManagerLayer::new(store)
        .with_secure(false)
        .with_expiry(Expiry::OnInactivity(time::Duration::minutes(30)));
    Router::new().route("/visit", get(visit)).layer(layer)
}

async fn call(app: &Router, cookie: Option<&str>) -> Result<Option<String>, Error> {
    let mut req = Request::get("/visit");
    if let Some(c) = cookie {
        req = req.header(http::header::COOKIE, c);
    }
    let res = app.clone().oneshot(req.body(Body::empty())?).await?;
    if res.status() != StatusCode::OK {
        return Err(format!("status {}", res.status()).into());
    }
    Ok(res
        .headers()
        .get(http::header::SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(str::to_owned))
}

async fn info(admin: &Pool, section: &str) -> Result<String, Error> {
    let cmd = CustomCommand::new_static("INFO", ClusterHash::Random, false);
    Ok(admin.custom::<String, _>(cmd, vec![section]).await?)
}

fn cpu_us(info: &str) -> f64 {
    info.lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(':')?;
            matches!(k, "used_cpu_user" | "used_cpu_sys").then(|| v.trim().parse::<f64>().ok())?
        })
        .sum::<f64>()
        * 1e6
}

fn calls(info: &str) -> u64 {
    info.lines()
        .filter_map(|l| {
            l.split_once("calls=")?
                .1
                .split(',')
                .next()?
                .parse::<u64>()
                .ok()
        })
        .sum()
}

/// Median commands and CPU µs per request of `requests` requests, over `ROUNDS` windows.
async fn measure(app: &Router, admin: &Pool, requests: usize) -> Result<(f64, f64), Error> {
    let cookie = call(app, None)
        .await?
        .ok_or("a new session sets its cookie")?;
    let (mut commands, mut cpu) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        let reset = CustomCommand::new_static("CONFIG", ClusterHash::Random, false);
        let () = admin.custom(reset, vec!["RESETSTAT"]).await?;
        let before = cpu_us(&info(admin, "cpu").await?);
        for _ in 0..requests {
            call(app, Some(&cookie)).await?;
        }
        let after = cpu_us(&info(admin, "cpu").await?);
        // The INFO and CONFIG calls of the window itself are not requests.
        let window = calls(&info(admin, "commandstats").await?).saturating_sub(2);
        commands.push(window as f64 / requests as f64);
        cpu.push((after - before) / requests as f64);
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    Ok((median(&mut commands), median(&mut cpu)))
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let url = args
        .first()
        .map_or("redis://127.0.0.1:6379", String::as_str);
    let requests: usize = args.get(1).map_or(Ok(2000), |n| n.parse())?;

    let admin = Pool::new(Config::from_url(url)?, None, None, None, 1)?;
    admin.init().await?;
    let pool = Pool::new(Config::from_url(url)?, None, None, None, 1)?;
    pool.init().await?;
    let ours: Arc<dyn SessionStore> = Arc::new(
        RedisStoreBuilder::new()
            .url(url)
            .namespace("compatcost")
            .build()
            .await?,
    );

    let subjects = [
        (
            "tower-sessions-redis-store",
            app(tower_sessions_redis_store::RedisStore::new(pool)),
        ),
        (
            "compatibility store (redis-rs)",
            app(TowerSessionsStore::new(ours)),
        ),
    ];
    println!("{requests} requests per window, median of {ROUNDS} windows");
    println!(
        "{:<32} {:>18} {:>20}",
        "store", "commands/request", "Redis CPU µs/request"
    );
    for (name, app) in &subjects {
        let (commands, cpu) = measure(app, &admin, requests).await?;
        println!("{name:<32} {commands:>18.2} {cpu:>20.1}");
    }
    Ok(())
}
