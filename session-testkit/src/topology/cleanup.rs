//! Process-wide bookkeeping of everything a deployment started, so that it can be removed
//! synchronously: on `Drop` of a deployment, at process exit (a `dtor` hook, which also covers
//! `shared()` deployments held in statics and panicking tests), and at start-up for resources
//! of earlier test processes that died without cleaning up (SIGKILL).
//!
//! Ownership marks:
//! * containers and networks carry the label [`OWNER_LABEL`] = `<pid>:<process start time>`
//!   and [`RUN_LABEL`] = a run tag unique per deployment;
//! * process run directories live under [`process_base_dir`] and contain a file `owner` with the
//!   same `<pid>:<start time>` string; each node directory contains a `pid` file.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Once, OnceLock};

/// Docker label holding `<pid>:<start time>` of the test process owning a container/network.
pub(crate) const OWNER_LABEL: &str = "session-testkit.owner";
/// Docker label holding the run tag of the deployment owning a container/network.
pub(crate) const RUN_LABEL: &str = "session-testkit.run";

/// A spawned `redis-server` process, shared between a deployment and the registry.
pub(crate) type SharedChild = Arc<Mutex<Option<Child>>>;

/// Resources of one deployment.
#[derive(Default)]
struct Run {
    tag: String,
    containers: Vec<String>,
    networks: Vec<String>,
    children: Vec<SharedChild>,
    dirs: Vec<tempfile::TempDir>,
}

static RUNS: OnceLock<Mutex<HashMap<u64, Run>>> = OnceLock::new();
static NEXT_RUN: AtomicU64 = AtomicU64::new(1);

fn runs() -> MutexGuard<'static, HashMap<u64, Run>> {
    RUNS.get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner())
}

/// Locks a child slot, ignoring poisoning (a panicking test must not prevent cleanup).
pub(crate) fn lock_child(child: &SharedChild) -> MutexGuard<'_, Option<Child>> {
    child.lock().unwrap_or_else(|e| e.into_inner())
}

/// `<pid>:<start time in clock ticks>` of a process, `None` if it does not exist.
fn process_identity(pid: u32) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may contain spaces; fields follow the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    // `rest` starts at field 3 (state); start time is field 22. A zombie counts as dead.
    let mut fields = rest.split_whitespace();
    if matches!(fields.next(), Some("Z" | "X")) {
        return None;
    }
    let start = fields.nth(18)?;
    Some(format!("{pid}:{start}"))
}

/// The owner mark of this process.
pub(crate) fn owner_mark() -> &'static str {
    static MARK: OnceLock<String> = OnceLock::new();
    MARK.get_or_init(|| {
        process_identity(std::process::id()).unwrap_or_else(|| format!("{}:0", std::process::id()))
    })
}

/// Whether the process identified by an owner mark is still alive.
fn owner_alive(mark: &str) -> bool {
    let Some(pid) = mark.split(':').next().and_then(|p| p.parse::<u32>().ok()) else {
        return false;
    };
    process_identity(pid).as_deref() == Some(mark)
}

/// Directory under which the process provider creates its run directories.
pub(crate) fn process_base_dir() -> PathBuf {
    std::env::temp_dir().join("session-testkit-redis")
}

/// Registers a new deployment and returns its id and run tag.
pub(crate) fn new_run() -> (u64, String) {
    let id = NEXT_RUN.fetch_add(1, Ordering::Relaxed);
    let tag = format!(
        "st{}-{}-{}",
        std::process::id(),
        id,
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos() % 100_000)
            .unwrap_or(0)
    );
    runs().insert(
        id,
        Run {
            tag: tag.clone(),
            ..Default::default()
        },
    );
    (id, tag)
}

pub(crate) fn add_container(run: u64, id: &str) {
    if let Some(r) = runs().get_mut(&run) {
        r.containers.push(id.to_string());
    }
}

pub(crate) fn add_network(run: u64, name: &str) {
    if let Some(r) = runs().get_mut(&run) {
        r.networks.push(name.to_string());
    }
}

pub(crate) fn add_child(run: u64, child: SharedChild) {
    if let Some(r) = runs().get_mut(&run) {
        r.children.push(child);
    }
}

pub(crate) fn add_dir(run: u64, dir: tempfile::TempDir) {
    if let Some(r) = runs().get_mut(&run) {
        r.dirs.push(dir);
    }
}

/// Runs a command synchronously, discarding its output; errors are ignored (best effort).
fn run_quiet(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

fn remove_run(run: Run) {
    for child in &run.children {
        if let Some(mut c) = lock_child(child).take() {
            let _ = c.kill(); // SIGKILL, also works on SIGSTOPped processes
            let _ = c.wait();
        }
    }
    // Containers: the ones we know, plus any container carrying the run label (covers a
    // container whose start failed half-way).
    let mut ids = run.containers.clone();
    if !run.tag.is_empty() && (!run.containers.is_empty() || !run.networks.is_empty()) {
        let filter = format!("label={RUN_LABEL}={}", run.tag);
        if let Some(out) = run_quiet("docker", &["ps", "-aq", "--filter", &filter]) {
            ids.extend(out.split_whitespace().map(str::to_string));
        }
    }
    ids.sort();
    ids.dedup();
    if !ids.is_empty() {
        let mut args = vec!["rm", "-f", "-v"];
        args.extend(ids.iter().map(String::as_str));
        let _ = run_quiet("docker", &args);
    }
    for net in &run.networks {
        let _ = run_quiet("docker", &["network", "rm", net]);
    }
    drop(run.dirs); // TempDir removes the directories
}

/// Removes everything registered for `run` (synchronously).
pub(crate) fn cleanup_run(run: u64) {
    let taken = runs().remove(&run);
    if let Some(r) = taken {
        remove_run(r);
    }
}

/// Removes everything still registered (process exit).
pub(crate) fn cleanup_all() {
    let all: Vec<Run> = runs().drain().map(|(_, r)| r).collect();
    for r in all {
        remove_run(r);
    }
}

#[dtor::dtor(unsafe)]
fn cleanup_at_exit() {
    cleanup_all();
}

/// Removes containers and networks left by dead test processes (once per process).
pub(crate) fn reap_stale_docker() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let fmt = format!("{{{{.ID}}}} {{{{.Label \"{OWNER_LABEL}\"}}}}");
        let filter = format!("label={OWNER_LABEL}");
        if let Some(out) = run_quiet(
            "docker",
            &["ps", "-a", "--filter", &filter, "--format", &fmt],
        ) {
            let dead: Vec<&str> = out
                .lines()
                .filter_map(|l| l.split_once(' '))
                .filter(|(_, owner)| !owner_alive(owner))
                .map(|(id, _)| id)
                .collect();
            if !dead.is_empty() {
                let mut args = vec!["rm", "-f", "-v"];
                args.extend(dead);
                let _ = run_quiet("docker", &args);
            }
        }
        let fmt = format!("{{{{.Name}}}} {{{{.Label \"{OWNER_LABEL}\"}}}}");
        if let Some(out) = run_quiet(
            "docker",
            &["network", "ls", "--filter", &filter, "--format", &fmt],
        ) {
            for (name, owner) in out.lines().filter_map(|l| l.split_once(' ')) {
                if !owner_alive(owner) {
                    let _ = run_quiet("docker", &["network", "rm", name]);
                }
            }
        }
    });
}

/// Kills `redis-server` processes and removes run directories left by dead test processes
/// (once per process). A run directory is stale only when the process named in its `owner`
/// file (pid and start time) no longer exists, so runs of live test processes are never
/// touched.
pub(crate) fn reap_stale_processes() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let Ok(entries) = std::fs::read_dir(process_base_dir()) else {
            return;
        };
        for entry in entries.flatten() {
            let dir = entry.path();
            let Ok(owner) = std::fs::read_to_string(dir.join("owner")) else {
                continue;
            };
            if owner_alive(owner.trim()) {
                continue;
            }
            kill_pids_under(&dir);
            let _ = std::fs::remove_dir_all(&dir);
        }
    });
}

/// Kills the servers of a dead run's node directories. A pid is only trusted while the
/// process still runs in that node directory (servers are started with it as their working
/// directory): a pid reused since, even by a server of another live test run, is left alone.
fn kill_pids_under(dir: &Path) {
    let Ok(nodes) = std::fs::read_dir(dir) else {
        return;
    };
    for node in nodes.flatten() {
        let Ok(pid) = std::fs::read_to_string(node.path().join("pid")) else {
            continue;
        };
        let pid = pid.trim();
        let in_node_dir = std::fs::read_link(format!("/proc/{pid}/cwd"))
            .ok()
            .zip(std::fs::canonicalize(node.path()).ok())
            .is_some_and(|(cwd, node_dir)| cwd == node_dir);
        let is_server = std::fs::read(format!("/proc/{pid}/cmdline"))
            .map(|c| {
                let c = String::from_utf8_lossy(&c);
                c.contains("redis") || c.contains("valkey")
            })
            .unwrap_or(false);
        if in_node_dir && is_server {
            let _ = run_quiet("kill", &["-KILL", pid]);
        }
    }
}
