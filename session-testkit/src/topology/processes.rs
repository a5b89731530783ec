//! The process provider: `redis-server` (or `valkey-server`) from `PATH` on free loopback
//! ports, each node in its own directory under a per-deployment temporary directory.

use std::collections::HashSet;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use super::cleanup::{self, SharedChild, lock_child};
use super::{
    Node, NodeHandle, Shape, Started, TopologyError, TopologyOptions, common_server_args,
    poll_until, sentinel_conf,
};

/// A `redis-server` process of a deployment.
pub(crate) struct ProcessNode {
    dir: PathBuf,
    args: Vec<String>,
    port: u16,
    child: SharedChild,
}

/// The server and client programs the provider runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Binaries {
    /// `redis-server` or `valkey-server`.
    pub(crate) server: &'static str,
    /// `redis-cli` or `valkey-cli` (cluster creation only).
    pub(crate) cli: &'static str,
}

fn runs(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The variable naming the server program to run instead of the one found on `PATH` (CI
/// runs the suites on a `valkey-server` unpacked next to Debian's `redis-server`).
pub const SERVER_VARIABLE: &str = "SESSION_TESTKIT_SERVER";

/// The programs: the server [`SERVER_VARIABLE`] names, else on `PATH` `redis-server`, else
/// `valkey-server` (a drop-in fork some distributions ship instead), each with the client of
/// its family when present. Looked up once per process.
pub(crate) fn binaries() -> Option<Binaries> {
    static FOUND: OnceLock<Option<Binaries>> = OnceLock::new();
    *FOUND.get_or_init(|| {
        let families = [
            ("redis-server", "redis-cli"),
            ("valkey-server", "valkey-cli"),
        ];
        let named = std::env::var(SERVER_VARIABLE)
            .ok()
            .filter(|s| !s.is_empty())
            // Read once and kept for the process, as the programs found on `PATH` are.
            .map(|s| &*Box::leak(s.into_boxed_str()));
        let (server, own_cli) = match named {
            Some(server) if runs(server) => (server, families[0].1),
            Some(_) => return None,
            None => families.into_iter().find(|(server, _)| runs(server))?,
        };
        let cli = std::iter::once(own_cli)
            .chain(families.iter().map(|(_, cli)| *cli))
            .find(|cli| runs(cli))
            .unwrap_or(own_cli);
        Some(Binaries { server, cli })
    })
}

/// Why [`binaries`] found no server, in one line.
pub(crate) fn no_server() -> String {
    match std::env::var(SERVER_VARIABLE) {
        Ok(named) if !named.is_empty() => {
            format!("{SERVER_VARIABLE} names `{named}`, which does not run `--version`")
        }
        _ => "neither `redis-server` nor `valkey-server` is on PATH".to_string(),
    }
}

/// The one command that would add Redis on this machine, for messages that say what is
/// missing: the system's package manager if we know it, else the download page.
pub(crate) fn install_command() -> &'static str {
    // PATH, and the usual places in case PATH is trimmed (as in CI jobs or sandboxes).
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dirs: Vec<std::path::PathBuf> = std::env::split_paths(&path)
        .chain(["/usr/bin", "/usr/local/bin", "/opt/homebrew/bin"].map(Into::into))
        .collect();
    let has = |program: &str| dirs.iter().any(|dir| dir.join(program).is_file());
    if has("apt-get") {
        "sudo apt-get install redis-server"
    } else if has("brew") {
        "brew install redis"
    } else if has("dnf") {
        "sudo dnf install redis"
    } else if has("apk") {
        "sudo apk add redis"
    } else {
        "install redis-server from https://redis.io/downloads/"
    }
}

/// Ports handed out by this process (never handed out twice).
static USED_PORTS: Mutex<Option<HashSet<u16>>> = Mutex::new(None);

/// A free loopback port (bind-then-release). With `bus`, also `port + 10000` must be free.
fn free_port(bus: bool) -> Result<u16, TopologyError> {
    for _ in 0..500 {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        if bus && (port >= 55535 || TcpListener::bind(("127.0.0.1", port + 10000)).is_err()) {
            continue;
        }
        let mut used = USED_PORTS.lock().unwrap_or_else(|e| e.into_inner());
        if used.get_or_insert_with(HashSet::new).insert(port) {
            return Ok(port);
        }
    }
    Err(TopologyError::Process("no free loopback port found".into()))
}

fn log_tail(dir: &Path) -> String {
    let text = std::fs::read_to_string(dir.join("redis.log")).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(8)..].join("\n")
}

impl ProcessNode {
    fn spawn(&self) -> Result<(), TopologyError> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("redis.log"))?;
        let server = binaries().map_or("redis-server", |b| b.server);
        let child = Command::new(server)
            .args(&self.args)
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .map_err(|e| TopologyError::Process(format!("cannot run {server}: {e}")))?;
        std::fs::write(self.dir.join("pid"), child.id().to_string())?;
        *lock_child(&self.child) = Some(child);
        Ok(())
    }

    /// Spawns and waits until it answers PING; `Ok(false)` if it exited early (e.g. port taken).
    async fn spawn_and_wait(&self) -> Result<bool, TopologyError> {
        self.spawn()?;
        let url = format!("redis://127.0.0.1:{}", self.port);
        let res = poll_until(
            &format!("redis-server on port {} to start", self.port),
            Duration::from_secs(20),
            Duration::from_millis(50),
            || async {
                let exited = lock_child(&self.child)
                    .as_mut()
                    .map(|c| matches!(c.try_wait(), Ok(Some(_))))
                    .unwrap_or(true);
                if exited {
                    return Ok(Some(false));
                }
                match super::query::<String>(&url, &redis::cmd("PING")).await {
                    Ok(_) => Ok(Some(true)),
                    Err(e) => Err(e.to_string()),
                }
            },
        )
        .await?;
        if !res {
            lock_child(&self.child).take();
        }
        Ok(res)
    }

    pub(crate) fn kill(&self) -> Result<(), TopologyError> {
        if let Some(mut c) = lock_child(&self.child).take() {
            c.kill()?;
            c.wait()?;
        }
        Ok(())
    }

    pub(crate) async fn stop(&self) -> Result<(), TopologyError> {
        let pid = lock_child(&self.child).as_ref().map(|c| c.id());
        if let Some(pid) = pid {
            let _ = signal(pid, "-TERM").await;
            let exited = poll_until(
                "redis-server to exit",
                Duration::from_secs(10),
                Duration::from_millis(50),
                || async {
                    Ok(lock_child(&self.child)
                        .as_mut()
                        .map(|c| matches!(c.try_wait(), Ok(Some(_))))
                        .unwrap_or(true)
                        .then_some(()))
                },
            )
            .await;
            if exited.is_err() {
                return self.kill();
            }
            lock_child(&self.child).take();
        }
        Ok(())
    }

    pub(crate) async fn start(&self) -> Result<(), TopologyError> {
        // The port may briefly be unavailable; retry a few times.
        for _ in 0..5 {
            if self.spawn_and_wait().await? {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        Err(TopologyError::Process(format!(
            "redis-server on port {} did not restart:\n{}",
            self.port,
            log_tail(&self.dir)
        )))
    }

    pub(crate) async fn signal(&self, sig: &str) -> Result<(), TopologyError> {
        let pid = lock_child(&self.child)
            .as_ref()
            .map(|c| c.id())
            .ok_or_else(|| TopologyError::Process("node is not running".into()))?;
        signal(pid, sig).await
    }
}

async fn signal(pid: u32, sig: &str) -> Result<(), TopologyError> {
    let status = tokio::process::Command::new("kill")
        .args([sig, &pid.to_string()])
        .stdin(Stdio::null())
        .status()
        .await?;
    if status.success() {
        Ok(())
    } else {
        Err(TopologyError::Process(format!("kill {sig} {pid} failed")))
    }
}

/// Builds a node's `redis-server` arguments from its port and directory.
type ArgsFn<'a> = dyn Fn(u16, &Path) -> Result<Vec<String>, TopologyError> + Send + Sync + 'a;

struct Ctx {
    run: u64,
    root: PathBuf,
}

impl Ctx {
    /// Creates the node directory and starts `redis-server`, retrying with another port if the
    /// chosen one was taken in the meantime. `make_args(port, dir)` builds the argument list.
    async fn start_node(
        &self,
        name: &str,
        bus: bool,
        make_args: &ArgsFn<'_>,
    ) -> Result<ProcessNode, TopologyError> {
        let dir = self.root.join(name);
        std::fs::create_dir_all(&dir)?;
        for _ in 0..5 {
            let port = free_port(bus)?;
            let node = ProcessNode {
                dir: dir.clone(),
                args: make_args(port, &dir)?,
                port,
                child: Arc::new(Mutex::new(None)),
            };
            cleanup::add_child(self.run, node.child.clone());
            if node.spawn_and_wait().await? {
                return Ok(node);
            }
        }
        Err(TopologyError::Process(format!(
            "redis-server {name} did not start:\n{}",
            log_tail(&dir)
        )))
    }
}

async fn redis_cli(args: &[String]) -> Result<String, TopologyError> {
    let cli = binaries().map_or("redis-cli", |b| b.cli);
    let mut cmd = tokio::process::Command::new(cli);
    cmd.args(args).stdin(Stdio::null()).kill_on_drop(true);
    let limit = Duration::from_secs(60);
    let out = tokio::time::timeout(limit, cmd.output())
        .await
        .map_err(|_| TopologyError::Timeout {
            what: format!("{cli} --cluster create"),
            after: limit,
        })?
        .map_err(|e| TopologyError::Process(format!("cannot run {cli}: {e}")))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if !out.status.success() {
        return Err(TopologyError::Process(format!("{cli} failed: {text}")));
    }
    Ok(text)
}

pub(crate) async fn start(
    topology: Shape,
    options: &TopologyOptions,
    run: u64,
) -> Result<Started, TopologyError> {
    // One clear line when no server is installed, before directories are made.
    if binaries().is_none() {
        return Err(TopologyError::ProviderUnavailable {
            provider: super::Provider::Processes,
            reason: no_server(),
        });
    }
    cleanup::reap_stale_processes();
    let base = cleanup::process_base_dir();
    std::fs::create_dir_all(&base)?;
    let tmp = tempfile::Builder::new()
        .prefix(&format!("run-{}-", std::process::id()))
        .tempdir_in(&base)?;
    std::fs::write(tmp.path().join("owner"), cleanup::owner_mark())?;
    let ctx = Ctx {
        run,
        root: tmp.path().to_path_buf(),
    };
    cleanup::add_dir(run, tmp);

    let server = |extra: Vec<String>| {
        move |port: u16, dir: &Path| -> Result<Vec<String>, TopologyError> {
            let mut a = vec![
                "--port".to_string(),
                port.to_string(),
                "--bind".into(),
                "127.0.0.1".into(),
                "--dir".into(),
                dir.display().to_string(),
            ];
            a.extend(common_server_args(topology, options));
            a.extend(extra.iter().cloned());
            Ok(a)
        }
    };
    let addr = |p: &ProcessNode| format!("127.0.0.1:{}", p.port);
    let mut nodes = Vec::new();
    let mut sentinels = Vec::new();
    match topology {
        Shape::Standalone => {
            let n = ctx.start_node("node0", false, &server(vec![])).await?;
            nodes.push(Node::new(addr(&n), NodeHandle::Process(n)));
        }
        Shape::Cluster => {
            let mut started = Vec::new();
            for i in 0..6 {
                started.push(
                    ctx.start_node(&format!("node{i}"), true, &server(vec![]))
                        .await?,
                );
            }
            let mut args: Vec<String> = vec!["--cluster".into(), "create".into()];
            args.extend(started.iter().map(addr));
            args.extend([
                "--cluster-replicas".into(),
                "1".into(),
                "--cluster-yes".into(),
            ]);
            redis_cli(&args).await?;
            for n in started {
                nodes.push(Node::new(addr(&n), NodeHandle::Process(n)));
            }
        }
        Shape::Sentinel => {
            let m = ctx.start_node("node0", false, &server(vec![])).await?;
            let mport = m.port;
            let r = ctx
                .start_node(
                    "node1",
                    false,
                    &server(vec![
                        "--replicaof".into(),
                        "127.0.0.1".into(),
                        mport.to_string(),
                    ]),
                )
                .await?;
            nodes.push(Node::new(addr(&m), NodeHandle::Process(m)));
            nodes.push(Node::new(addr(&r), NodeHandle::Process(r)));
            for i in 0..3 {
                let make = |port: u16, dir: &Path| -> Result<Vec<String>, TopologyError> {
                    let conf = dir.join("sentinel.conf");
                    std::fs::write(
                        &conf,
                        format!(
                            "port {port}\nbind 127.0.0.1\ndir {}\n{}",
                            dir.display(),
                            sentinel_conf(options, "127.0.0.1", mport)
                        ),
                    )?;
                    Ok(vec![conf.display().to_string(), "--sentinel".into()])
                };
                let s = ctx
                    .start_node(&format!("sentinel{i}"), false, &make)
                    .await?;
                sentinels.push(Node::new(addr(&s), NodeHandle::Process(s)));
            }
        }
    }
    Ok(Started { nodes, sentinels })
}
