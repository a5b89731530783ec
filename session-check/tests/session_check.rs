//! The check program on machines missing parts of the set-up, run as a user would: it takes
//! what works and says which, names what is missing in one line, and never panics.
//! Needs `redis-server` (or `valkey-server`) on `PATH` for the fallback case, as the README's
//! set-up says; the others hide it.

use std::path::PathBuf;
use std::process::{Command, Output};

/// An image no registry has, so its pull fails wherever the test runs.
const UNPULLABLE: &str = "session-testkit/no-such-image-ever-published:never";

/// A directory to use as the whole `PATH`: `docker` (when installed) and nothing else, so
/// Docker still answers but no Redis server can be found. Removed on drop.
struct DockerOnlyPath(PathBuf);

impl DockerOnlyPath {
    fn new(name: &str) -> DockerOnlyPath {
        let dir =
            std::env::temp_dir().join(format!("session-check-test-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("a temporary directory");
        let path = std::env::var_os("PATH").unwrap_or_default();
        if let Some(docker) = std::env::split_paths(&path)
            .map(|d| d.join("docker"))
            .find(|d| d.is_file())
        {
            std::os::unix::fs::symlink(docker, dir.join("docker")).expect("a symlink to docker");
        }
        DockerOnlyPath(dir)
    }
}

impl Drop for DockerOnlyPath {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn session_check(args: &[&str], env: &[(&str, &std::ffi::OsStr)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_session-check"));
    cmd.args(args)
        .env_remove("SESSION_TESTKIT_REDIS")
        .env("REDIS_TEST_IMAGE", UNPULLABLE)
        // A panic would print a backtrace: the output below must have none.
        .env("RUST_BACKTRACE", "1");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("session-check runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn without_any_redis_it_checks_the_memory_store_and_says_what_is_missing() {
    let path = DockerOnlyPath::new("no-redis");
    let out = session_check(
        &["--histories", "2", "--sequences", "2"],
        &[("PATH", path.0.as_os_str())],
    );
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    let all = format!("stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(!all.contains("panicked"), "{all}");
    assert!(!all.contains("stack backtrace"), "{all}");
    // It checked less than asked (the Redis stores): exit status 1.
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(
        stdout.contains("Redis: none available; checking the memory store only"),
        "{all}"
    );
    let memory = stdout
        .lines()
        .find(|l| l.starts_with("memory "))
        .unwrap_or_else(|| panic!("a memory row: {all}"));
    assert!(memory.ends_with("PASS"), "{memory}");
    let missing: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("cannot start Redis"))
        .collect();
    let [line] = missing.as_slice() else {
        panic!("exactly one line saying why: {all}");
    };
    assert!(
        line.contains("neither `redis-server` nor `valkey-server` is on PATH"),
        "{line}"
    );
    assert!(line.contains("To add Redis: "), "{line}");
}

#[test]
fn only_the_memory_store_asked_is_a_pass_without_redis() {
    let path = DockerOnlyPath::new("memory-only");
    let out = session_check(
        &["--store", "memory", "--histories", "2", "--sequences", "2"],
        &[("PATH", path.0.as_os_str())],
    );
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{all}");
}

#[test]
fn an_explicit_provider_that_cannot_be_met_fails_in_one_line() {
    let path = DockerOnlyPath::new("explicit");
    for (args, env) in [
        (vec!["--provider", "containers"], vec![]),
        (
            vec!["--provider", "processes"],
            vec![("PATH", path.0.as_os_str())],
        ),
        (
            vec![],
            vec![("SESSION_TESTKIT_REDIS", std::ffi::OsStr::new("containers"))],
        ),
    ] {
        let out = session_check(&args, &env);
        let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
        let all = format!("{args:?}\nstdout:\n{stdout}\nstderr:\n{stderr}");
        assert_eq!(out.status.code(), Some(1), "{all}");
        assert!(stdout.is_empty(), "{all}");
        let lines: Vec<&str> = stderr.lines().collect();
        let [line] = lines.as_slice() else {
            panic!("exactly one line: {all}");
        };
        assert!(
            line.starts_with("session-check: cannot start Redis: the ")
                && line.contains(" provider was requested but cannot be used: "),
            "{all}"
        );
    }
}

#[test]
fn an_image_that_cannot_be_pulled_falls_back_to_local_processes() {
    let out = session_check(
        &[
            "--store",
            "redis-rs",
            "--topology",
            "standalone",
            "--histories",
            "2",
            "--sequences",
            "2",
        ],
        &[],
    );
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    let all = format!("stdout:\n{stdout}\nstderr:\n{stderr}");
    assert_eq!(out.status.code(), Some(0), "{all}");
    assert!(
        stdout.contains("Redis: throwaway deployments, processes (auto; containers: "),
        "{all}"
    );
    let row = stdout
        .lines()
        .find(|l| l.starts_with("redis-rs "))
        .unwrap_or_else(|| panic!("a redis-rs row: {all}"));
    assert!(row.contains("standalone") && row.ends_with("PASS"), "{row}");
}
