//! The Docker provider: containers are started with testcontainers; fault controls and cleanup
//! use the `docker` CLI, so nothing depends on the tokio runtime that started them.

use std::collections::HashMap;
use std::process::Stdio;
use std::sync::Mutex;
use std::time::Duration;

use testcontainers::core::WaitFor;
use testcontainers::runners::AsyncRunner;
use testcontainers::{GenericImage, ImageExt};

use super::cleanup::{self, OWNER_LABEL, RUN_LABEL};
use super::{
    Node, NodeHandle, Provider, Shape, Started, TopologyError, TopologyOptions, common_server_args,
    sentinel_conf,
};

const DOCKER_TIMEOUT: Duration = Duration::from_secs(60);

/// A container of a deployment.
pub(crate) struct ContainerNode {
    id: String,
    network: String,
    port: u16,
}

/// Runs `docker <args>` (bounded), returning trimmed stdout.
pub(crate) async fn docker(args: &[&str]) -> Result<String, TopologyError> {
    let mut cmd = tokio::process::Command::new("docker");
    cmd.args(args).stdin(Stdio::null()).kill_on_drop(true);
    let out = tokio::time::timeout(DOCKER_TIMEOUT, cmd.output())
        .await
        .map_err(|_| TopologyError::Timeout {
            what: format!("docker {}", args.join(" ")),
            after: DOCKER_TIMEOUT,
        })?
        .map_err(|e| TopologyError::Docker(format!("cannot run docker: {e}")))?;
    if !out.status.success() {
        return Err(TopologyError::Docker(format!(
            "docker {} failed: {}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim(),
            String::from_utf8_lossy(&out.stdout).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// The image when `REDIS_TEST_IMAGE` is unset: the official one.
const DEFAULT_IMAGE: &str = "redis:7.4";
/// Bound for the quick Docker questions of the probe (`docker info`, `docker image inspect`).
const PROBE_TIMEOUT: Duration = Duration::from_secs(15);
/// Bound for the probe's one pull. Failures without a registry (no such host, connection
/// refused, unknown image, rate limit) come back at once; this only cuts a pull that hangs
/// on a black-holed network, so `auto` falls back within a minute instead of several.
const PULL_TIMEOUT: Duration = Duration::from_secs(60);

/// `REDIS_TEST_IMAGE` (`name[:tag]`), or the official image when unset or empty.
pub(crate) fn image_spec() -> String {
    std::env::var("REDIS_TEST_IMAGE")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| DEFAULT_IMAGE.into())
}

/// An image spec split into (name, tag), tag `latest` when absent.
fn split_image(spec: &str) -> (String, String) {
    match spec.rsplit_once(':') {
        Some((name, tag)) if !tag.contains('/') => (name.to_string(), tag.to_string()),
        _ => (spec.to_string(), "latest".into()),
    }
}

/// `docker <args>` run synchronously within `limit`: `Ok(stdout)` on success, else the first
/// line docker wrote to stderr (or that it did not run or finish). Synchronous because the
/// provider choice is made outside of any runtime too; output goes through files so a chatty
/// pull cannot block on a full pipe while we wait.
fn docker_sync(args: &[&str], limit: Duration) -> Result<String, String> {
    let out = tempfile::tempfile().map_err(|e| format!("cannot create a temporary file: {e}"))?;
    let err = tempfile::tempfile().map_err(|e| format!("cannot create a temporary file: {e}"))?;
    let (mut out_r, mut err_r) = (
        out.try_clone().map_err(|e| e.to_string())?,
        err.try_clone().map_err(|e| e.to_string())?,
    );
    let mut child = std::process::Command::new("docker")
        .args(args)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .map_err(|e| format!("cannot run docker: {e}"))?;
    let deadline = std::time::Instant::now() + limit;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if std::time::Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(50))
            }
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "`docker {}` did not finish within {limit:?}",
                    args.join(" ")
                ));
            }
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("waiting for docker: {e}"));
            }
        }
    };
    let read = |f: &mut std::fs::File| {
        use std::io::{Read, Seek};
        let mut text = String::new();
        let _ = f.seek(std::io::SeekFrom::Start(0));
        let _ = f.read_to_string(&mut text);
        text
    };
    if status.success() {
        Ok(read(&mut out_r).trim().to_string())
    } else {
        let text = read(&mut err_r);
        let line = text
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .unwrap_or("no message");
        Err(line.to_string())
    }
}

/// `Ok` when Docker answers and `image` is present locally or one bounded pull fetches it,
/// else why not (one line). Cached per image for the life of the process: every test of a
/// binary asks, and a failed pull must not be repeated by each of them.
pub(crate) fn usable(image: &str) -> Result<(), String> {
    static PROBED: Mutex<Option<HashMap<String, Result<(), String>>>> = Mutex::new(None);
    // Held during the probe, so concurrent callers wait for the one probe.
    let mut probed = PROBED.lock().unwrap_or_else(|e| e.into_inner());
    probed
        .get_or_insert_with(HashMap::new)
        .entry(image.to_string())
        .or_insert_with(|| probe(image))
        .clone()
}

fn probe(image: &str) -> Result<(), String> {
    docker_sync(&["info", "--format", "{{.ServerVersion}}"], PROBE_TIMEOUT)
        .map_err(|e| format!("Docker does not answer: {e}"))?;
    let (name, tag) = split_image(image);
    let reference = format!("{name}:{tag}");
    if docker_sync(
        &["image", "inspect", "--format", "{{.Id}}", &reference],
        PROBE_TIMEOUT,
    )
    .is_ok()
    {
        return Ok(());
    }
    docker_sync(&["pull", "--quiet", &reference], PULL_TIMEOUT)
        .map(drop)
        .map_err(|e| format!("image {reference} is not present locally and cannot be pulled: {e}"))
}

async fn container_ip(id: &str, network: &str) -> Result<String, TopologyError> {
    let fmt = format!("{{{{(index .NetworkSettings.Networks \"{network}\").IPAddress}}}}");
    let ip = docker(&["inspect", "-f", &fmt, id]).await?;
    if ip.is_empty() {
        return Err(TopologyError::Docker(format!(
            "container {id} has no IP on {network}"
        )));
    }
    Ok(ip)
}

struct Ctx<'a> {
    run: u64,
    tag: &'a str,
    network: String,
    image: (String, String),
}

impl Ctx<'_> {
    /// Starts one container with testcontainers, registers it for cleanup and returns it with
    /// its IP. The `ContainerAsync` is forgotten on purpose: its `Drop` needs a live tokio
    /// runtime; cleanup is done by the registry with the docker CLI instead.
    async fn start(
        &self,
        name: &str,
        cmd: Vec<String>,
        ready: &str,
        port: u16,
        copy: Option<(&str, Vec<u8>)>,
    ) -> Result<(ContainerNode, String), TopologyError> {
        let mut req = GenericImage::new(self.image.0.clone(), self.image.1.clone())
            .with_wait_for(WaitFor::message_on_stdout(ready))
            .with_cmd(cmd)
            .with_network(self.network.clone())
            .with_container_name(format!("{}-{name}", self.tag))
            .with_label(OWNER_LABEL, cleanup::owner_mark())
            .with_label(RUN_LABEL, self.tag)
            .with_startup_timeout(Duration::from_secs(60));
        if let Some((target, bytes)) = copy {
            req = req.with_copy_to(target.to_string(), bytes);
        }
        let container = req.start().await?;
        let id = container.id().to_string();
        cleanup::add_container(self.run, &id);
        std::mem::forget(container);
        let ip = container_ip(&id, &self.network).await?;
        Ok((
            ContainerNode {
                id,
                network: self.network.clone(),
                port,
            },
            ip,
        ))
    }
}

pub(crate) async fn start(
    topology: Shape,
    options: &TopologyOptions,
    run: u64,
    tag: &str,
) -> Result<Started, TopologyError> {
    // One clear line when Docker or the image is missing, instead of testcontainers' error
    // after a network was created; cached, so this costs nothing after the provider choice.
    let image = image_spec();
    usable(&image).map_err(|reason| TopologyError::ProviderUnavailable {
        provider: Provider::Containers,
        reason,
    })?;
    cleanup::reap_stale_docker();
    let network = format!("{tag}-net");
    let owner = format!("{OWNER_LABEL}={}", cleanup::owner_mark());
    let run_label = format!("{RUN_LABEL}={tag}");
    docker(&[
        "network", "create", "--label", &owner, "--label", &run_label, &network,
    ])
    .await?;
    cleanup::add_network(run, &network);
    let ctx = Ctx {
        run,
        tag,
        network,
        image: split_image(&image),
    };
    const READY: &str = "Ready to accept connections";
    let server_cmd = |extra: &[String]| -> Vec<String> {
        let mut c = vec!["redis-server".to_string(), "--port".into(), "6379".into()];
        c.extend(common_server_args(topology, options));
        c.extend(extra.iter().cloned());
        c
    };
    let mut nodes = Vec::new();
    let mut sentinels = Vec::new();
    match topology {
        Shape::Standalone => {
            let (c, ip) = ctx
                .start("redis", server_cmd(&[]), READY, 6379, None)
                .await?;
            nodes.push(Node::new(format!("{ip}:6379"), NodeHandle::Container(c)));
        }
        Shape::Cluster => {
            let mut started = Vec::new();
            for i in 0..6 {
                started.push(
                    ctx.start(&format!("node{i}"), server_cmd(&[]), READY, 6379, None)
                        .await?,
                );
            }
            let mut args: Vec<String> = vec![
                "exec".into(),
                started[0].0.id.clone(),
                "redis-cli".into(),
                "--cluster".into(),
                "create".into(),
            ];
            args.extend(started.iter().map(|(_, ip)| format!("{ip}:6379")));
            args.extend([
                "--cluster-replicas".into(),
                "1".into(),
                "--cluster-yes".into(),
            ]);
            let refs: Vec<&str> = args.iter().map(String::as_str).collect();
            docker(&refs).await?;
            for (c, ip) in started {
                nodes.push(Node::new(format!("{ip}:6379"), NodeHandle::Container(c)));
            }
        }
        Shape::Sentinel => {
            let (m, mip) = ctx
                .start("master", server_cmd(&[]), READY, 6379, None)
                .await?;
            let replica_args = ["--replicaof".to_string(), mip.clone(), "6379".into()];
            let (r, rip) = ctx
                .start("replica", server_cmd(&replica_args), READY, 6379, None)
                .await?;
            nodes.push(Node::new(format!("{mip}:6379"), NodeHandle::Container(m)));
            nodes.push(Node::new(format!("{rip}:6379"), NodeHandle::Container(r)));
            let conf = format!(
                "port 26379\ndir /data\n{}",
                sentinel_conf(options, &mip, 6379)
            );
            for i in 0..3 {
                let name = ["sentinel0", "sentinel1", "sentinel2"][i];
                let cmd = vec![
                    "redis-server".to_string(),
                    "/data/sentinel.conf".into(),
                    "--sentinel".into(),
                ];
                let (s, sip) = ctx
                    .start(
                        name,
                        cmd,
                        "+monitor master",
                        26379,
                        Some(("/data/sentinel.conf", conf.clone().into_bytes())),
                    )
                    .await?;
                sentinels.push(Node::new(format!("{sip}:26379"), NodeHandle::Container(s)));
            }
        }
    }
    Ok(Started { nodes, sentinels })
}

impl ContainerNode {
    pub(crate) async fn kill(&self) -> Result<(), TopologyError> {
        docker(&["kill", &self.id]).await.map(drop)
    }

    pub(crate) async fn stop(&self) -> Result<(), TopologyError> {
        docker(&["stop", "-t", "10", &self.id]).await.map(drop)
    }

    /// Starts the stopped container; returns its (possibly new) `ip:port`.
    pub(crate) async fn start(&self) -> Result<String, TopologyError> {
        docker(&["start", &self.id]).await?;
        let ip = container_ip(&self.id, &self.network).await?;
        Ok(format!("{ip}:{}", self.port))
    }

    pub(crate) async fn pause(&self) -> Result<(), TopologyError> {
        docker(&["pause", &self.id]).await.map(drop)
    }

    pub(crate) async fn unpause(&self) -> Result<(), TopologyError> {
        docker(&["unpause", &self.id]).await.map(drop)
    }
}
