//! Web-mix through the HTTP layer: one web app on actix-web and on axum, each over our
//! middleware and over the peer's, in one process against one standalone Redis started by
//! session-testkit, driven with real HTTP over loopback by a reqwest client.
//!
//! | framework | peer | ours |
//! |---|---|---|
//! | actix-web 4 | actix-session 0.11 `RedisSessionStore` | session-actix over `session_redis::RedisStore` |
//! | axum 0.8 | tower-sessions 0.14 + tower-sessions-redis-store 0.16 | session-tower over `session_redis::RedisStore` |
//!
//! plus `session-actix, private cookie`: ours on actix-web with an encrypted cookie, as
//! actix-session always has (for reading its ratio; not the comparison itself).
//!
//! Each app keeps the idle expiry sliding as its docs configure it (see `actix_apps.rs` and
//! `axum_apps.rs`). `--users` users log in (`POST /login` writes `--attrs` attributes of
//! `--value-bytes`); then `--concurrency` client tasks cycle over them, each user's
//! requests being 9 reads of one attribute (`GET /read`) then one read + write of it
//! (`POST /write`). Every app runs one server thread for HTTP (`server.rs`); the client
//! runs on a 2-thread tokio runtime.
//!
//! `--rounds` rounds, each running every app once for `--warmup-ms` + `--window-ms` (each
//! round starting with the next app, so noise is shared); per window: requests/s, Redis CPU
//! per request (`INFO cpu`) and Redis commands per request (`INFO commandstats`, commands
//! run by scripts included). The table shows the medians of the rounds and ours / peer of
//! the medians; the ratios of each round follow it.
//!
//! ```sh
//! cargo run --release -p session-benches --example http_web_mix   # about 1 minute
//! ```
//!
//! Redis comes from the testkit: local `redis-server` processes when available (or as
//! `SESSION_TESTKIT_REDIS` says); it is stopped at the end.

mod actix_apps;
mod axum_apps;
mod client;
mod server;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use session_benches::bench::deploy::Target;
use session_testkit::topology::{Provider, Shape};

use client::Window;
use server::Server;

type Error = Box<dyn std::error::Error + Send + Sync>;
type Result<T> = std::result::Result<T, Error>;

/// The attribute every read reads and every write changes.
const CHANGED: &str = "a0";

/// What a login writes: `names`, each set to `value`.
struct Mix {
    names: Vec<String>,
    value: String,
}

/// The value a write stores in place of `old`: as long, the other letter.
fn changed(old: &str) -> String {
    let letter = if old.starts_with('x') { "y" } else { "x" };
    letter.repeat(old.len())
}

/// The apps: framework, subject, ours.
const SUBJECTS: [(&str, &str, bool); 5] = [
    ("actix-web", "actix-session", false),
    ("actix-web", "session-actix", true),
    ("actix-web", "session-actix, private cookie", true),
    ("axum", "tower-sessions", false),
    ("axum", "session-tower", true),
];

#[derive(Parser, Debug)]
#[command(about = "web-mix through actix-web and axum: our middleware against the peers'")]
struct Args {
    /// Rounds; each runs every app for one window.
    #[arg(long, default_value_t = 10)]
    rounds: usize,
    /// Measured window per app and round, in milliseconds.
    #[arg(long, default_value_t = 1000)]
    window_ms: u64,
    /// Unmeasured warm-up before each window (it opens the client's connections again), in
    /// milliseconds.
    #[arg(long, default_value_t = 250)]
    warmup_ms: u64,
    /// Users (sessions) per app.
    #[arg(long, default_value_t = 64)]
    users: usize,
    /// Concurrent client tasks per app.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Attributes a login writes.
    #[arg(long, default_value_t = 10)]
    attrs: usize,
    /// Bytes of each attribute's value.
    #[arg(long, default_value_t = 100)]
    value_bytes: usize,
}

/// One app under test, as the client sees it.
struct App {
    framework: &'static str,
    name: &'static str,
    /// Ours (compared with the framework's peer) or the peer.
    ours: bool,
    addr: SocketAddr,
    client: reqwest::Client,
    cookies: Vec<String>,
    windows: Vec<Window>,
}

/// The testkit's provider: local processes unless `SESSION_TESTKIT_REDIS` says otherwise.
fn provider() -> Result<Provider> {
    let set = std::env::var("SESSION_TESTKIT_REDIS").is_ok_and(|v| !v.trim().is_empty());
    if !set && Provider::Processes.is_available() {
        Ok(Provider::Processes)
    } else {
        Ok(Provider::from_env()?)
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    match n {
        0 => f64::NAN,
        _ if n % 2 == 1 => values[n / 2],
        _ => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

/// Starts the apps (into `servers`, so that they are stopped whatever happens) and logs
/// their users in.
async fn start(
    servers: &mut Vec<Server>,
    target: &Target,
    args: &Args,
    mix: &Arc<Mix>,
) -> Result<Vec<App>> {
    let url = &target.url;
    let mut apps = Vec::new();
    for (framework, name, ours) in SUBJECTS {
        let server = match name {
            "actix-session" => actix_apps::peer(url.clone(), mix.clone()).await?,
            "session-actix" => {
                actix_apps::ours(url.clone(), "http-actix", mix.clone(), false).await?
            }
            "session-actix, private cookie" => {
                actix_apps::ours(url.clone(), "http-actix-private", mix.clone(), true).await?
            }
            "tower-sessions" => axum_apps::peer(url.clone(), mix.clone()).await?,
            _ => axum_apps::ours(url.clone(), "http-axum", mix.clone()).await?,
        };
        let addr = server.addr;
        servers.push(server);
        let client = client::http_client(args.concurrency)?;
        let cookies = client::log_in(&client, addr, args.users).await?;
        apps.push(App {
            framework,
            name,
            ours,
            addr,
            client,
            cookies,
            windows: Vec::new(),
        });
    }
    Ok(apps)
}

async fn measure(apps: &mut [App], target: &Target, args: &Args) -> Result<()> {
    let (warmup, length) = (
        Duration::from_millis(args.warmup_ms),
        Duration::from_millis(args.window_ms),
    );
    for round in 0..args.rounds {
        for i in 0..apps.len() {
            let app = &mut apps[(round + i) % apps.len()];
            let w = client::window(
                &app.client,
                app.addr,
                &app.cookies,
                target,
                args.concurrency,
                warmup,
                length,
            )
            .await
            .map_err(|e| format!("{} / {}: {e}", app.framework, app.name))?;
            eprintln!(
                "round {}: {:<10} {:<30} {:>8.0} req/s  {:>6.2} µs Redis CPU/req  {:>5.2} cmds/req",
                round + 1,
                app.framework,
                app.name,
                w.rate(),
                w.cpu_us(),
                w.commands()
            );
            app.windows.push(w);
        }
    }
    Ok(())
}

/// The medians of an app's windows: requests/s, Redis CPU µs/request, commands/request.
fn medians(app: &App) -> (f64, f64, f64) {
    let of = |f: fn(&Window) -> f64| median(app.windows.iter().map(f).collect());
    (of(Window::rate), of(Window::cpu_us), of(Window::commands))
}

fn report(apps: &[App], args: &Args, version: &str, elapsed: Duration) {
    println!(
        "\nRedis {version} (standalone, testkit); {} rounds of {} ms (+{} ms warm-up) per app; \
         {} users, {} concurrent client tasks; sessions of {} x {} B; run took {:.0} s\n",
        args.rounds,
        args.window_ms,
        args.warmup_ms,
        args.users,
        args.concurrency,
        args.attrs,
        args.value_bytes,
        elapsed.as_secs_f64()
    );
    println!(
        "| framework | subject | requests/s | Redis CPU µs/request | commands/request | ours / peer: requests/s, Redis CPU/request |"
    );
    println!("|---|---|---:|---:|---:|---|");
    for app in apps {
        let (rate, cpu, commands) = medians(app);
        let ratio = match apps
            .iter()
            .find(|p| p.framework == app.framework && !p.ours)
        {
            Some(peer) if app.ours => {
                let (peer_rate, peer_cpu, _) = medians(peer);
                format!("{:.2}×, {:.2}×", rate / peer_rate, cpu / peer_cpu)
            }
            _ => "(peer)".into(),
        };
        println!(
            "| {} | {} | {rate:.0} | {cpu:.2} | {commands:.2} | {ratio} |",
            app.framework, app.name
        );
    }
    println!("\nours / peer within each round (the same round's windows):");
    for app in apps.iter().filter(|a| a.ours) {
        let Some(peer) = apps
            .iter()
            .find(|p| p.framework == app.framework && !p.ours)
        else {
            continue;
        };
        let paired = |f: fn(&Window) -> f64| -> Vec<String> {
            let pairs = app.windows.iter().zip(&peer.windows);
            pairs.map(|(o, p)| format!("{:.2}", f(o) / f(p))).collect()
        };
        println!(
            "- {} / {}: requests/s {}; Redis CPU/request {}",
            app.name,
            peer.name,
            paired(Window::rate).join(", "),
            paired(Window::cpu_us).join(", ")
        );
    }
    println!("\nRedis commands per request, over all rounds:");
    for app in apps {
        let requests: u64 = app.windows.iter().map(|w| w.requests).sum();
        let mut calls: BTreeMap<&str, u64> = BTreeMap::new();
        for w in &app.windows {
            for (command, n) in &w.calls {
                *calls.entry(command).or_default() += n;
            }
        }
        let list: Vec<String> = calls
            .iter()
            .map(|(c, n)| format!("{c} {:.3}", *n as f64 / requests.max(1) as f64))
            .collect();
        println!("- {} / {}: {}", app.framework, app.name, list.join(", "));
    }
}

fn main() -> Result<()> {
    let args = Args::parse();
    if args.rounds == 0 || args.users == 0 || args.concurrency == 0 || args.attrs == 0 {
        return Err("--rounds, --users, --concurrency and --attrs must be at least 1".into());
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let began = Instant::now();
        let target = Target::start(Shape::Standalone, provider()?).await?;
        let version = target.redis_version().await?;
        let mix = Arc::new(Mix {
            names: (0..args.attrs).map(|i| format!("a{i}")).collect(),
            value: "x".repeat(args.value_bytes),
        });
        let mut servers = Vec::new();
        let outcome = async {
            let mut apps = start(&mut servers, &target, &args, &mix).await?;
            measure(&mut apps, &target, &args).await?;
            Ok::<_, Error>(apps)
        }
        .await;
        // Servers first (their Redis connections would retry a stopped Redis), then Redis.
        for server in servers {
            server.stop().await;
        }
        drop(target);
        report(&outcome?, &args, &version, began.elapsed());
        Ok(())
    })
}
