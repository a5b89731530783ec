//! The client side: users logged in through `POST /login`, then `concurrency` tasks sending
//! the web-mix over loopback HTTP (reqwest, keep-alive connections), and one measurement
//! window read from Redis' own counters.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use reqwest::header::{COOKIE, SET_COOKIE};
use session_benches::bench::deploy::Target;
use tokio::task::JoinSet;

use super::Result;

/// Reads per write: each user's requests are 9 reads, then 1 read + write, over and over.
const READS_PER_WRITE: u64 = 9;

/// What one window measured.
#[derive(Debug, Clone)]
pub struct Window {
    /// Requests answered inside the window.
    pub requests: u64,
    /// The window's length.
    pub seconds: f64,
    /// Redis CPU (`used_cpu_user` + `used_cpu_sys`) spent inside the window.
    pub cpu_seconds: f64,
    /// Redis commands inside the window (`INFO commandstats`, commands run by scripts
    /// included, the benchmark's own `INFO` excluded).
    pub calls: BTreeMap<String, u64>,
}

impl Window {
    /// Requests per second.
    pub fn rate(&self) -> f64 {
        self.requests as f64 / self.seconds
    }

    /// Redis CPU per request, in microseconds.
    pub fn cpu_us(&self) -> f64 {
        self.cpu_seconds * 1e6 / self.requests.max(1) as f64
    }

    /// Redis commands per request.
    pub fn commands(&self) -> f64 {
        self.calls.values().sum::<u64>() as f64 / self.requests.max(1) as f64
    }
}

/// An HTTP client for one app: no proxy, a keep-alive connection per concurrent task,
/// dropped after 1 s idle (between two windows of the app), before any server's keep-alive
/// timeout could close it under a request (actix-web's is 5 s): every window opens its
/// connections in its warm-up, for every app alike.
pub fn http_client(concurrency: usize) -> Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(concurrency)
        .pool_idle_timeout(Duration::from_secs(1))
        .build()?)
}

/// Logs `users` users in (`POST /login`, 16 at a time) and returns their `Cookie` headers.
pub async fn log_in(
    client: &reqwest::Client,
    addr: SocketAddr,
    users: usize,
) -> Result<Vec<String>> {
    let mut cookies = Vec::with_capacity(users);
    let mut set = JoinSet::new();
    for i in 0..users {
        let request = client.post(format!("http://{addr}/login"));
        set.spawn(async move {
            let response = request.send().await?;
            if !response.status().is_success() {
                return Err(format!("login: {}", response.status()).into());
            }
            let cookie = response
                .headers()
                .get(SET_COOKIE)
                .ok_or("login set no cookie")?
                .to_str()?
                .split(';')
                .next()
                .unwrap_or_default()
                .to_owned();
            Ok::<_, super::Error>(cookie)
        });
        if set.len() == 16 || i + 1 == users {
            while let Some(done) = set.join_next().await {
                cookies.push(done??);
            }
        }
    }
    Ok(cookies)
}

/// One task: cycles over its users, one request each; every user's tenth request writes.
async fn drive(
    client: reqwest::Client,
    addr: SocketAddr,
    cookies: Vec<String>,
    stop: Arc<AtomicBool>,
    done: Arc<AtomicU64>,
) -> Result<()> {
    let (read, write) = (
        format!("http://{addr}/read"),
        format!("http://{addr}/write"),
    );
    let users = cookies.len() as u64;
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let cookie = &cookies[(n % users) as usize];
        let request = if (n / users) % (READS_PER_WRITE + 1) == READS_PER_WRITE {
            client.post(&write)
        } else {
            client.get(&read)
        };
        let response = request.header(COOKIE, cookie).send().await?;
        let status = response.status();
        // Read the body whole, so the connection goes back to the pool.
        let body = response.bytes().await?;
        if !status.is_success() {
            return Err(format!("{status}: {}", String::from_utf8_lossy(&body)).into());
        }
        done.fetch_add(1, Ordering::Relaxed);
        n += 1;
    }
    Ok(())
}

/// Runs `concurrency` tasks over `cookies` (user `u` goes to task `u % concurrency`) for
/// `warmup`, then measures `window`: requests answered, and Redis' CPU and commands.
pub async fn window(
    client: &reqwest::Client,
    addr: SocketAddr,
    cookies: &[String],
    target: &Target,
    concurrency: usize,
    warmup: Duration,
    window: Duration,
) -> Result<Window> {
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let mut tasks = JoinSet::new();
    for t in 0..concurrency {
        let mine: Vec<String> = if cookies.len() >= concurrency {
            cookies
                .iter()
                .skip(t)
                .step_by(concurrency)
                .cloned()
                .collect()
        } else {
            vec![cookies[t % cookies.len()].clone()]
        };
        let (stop, done) = (stop.clone(), done.clone());
        tasks.spawn(drive(client.clone(), addr, mine, stop, done));
    }
    tokio::time::sleep(warmup).await;
    let (before, start, from) = (
        target.snapshot().await?,
        Instant::now(),
        done.load(Ordering::Relaxed),
    );
    tokio::time::sleep(window).await;
    let (to, seconds) = (done.load(Ordering::Relaxed), start.elapsed().as_secs_f64());
    let after = target.snapshot().await?;
    stop.store(true, Ordering::Relaxed);
    while let Some(task) = tasks.join_next().await {
        task??;
    }
    let spent = before.until(&after);
    Ok(Window {
        requests: to - from,
        seconds,
        cpu_seconds: spent.cpu_seconds,
        calls: spent.calls,
    })
}
