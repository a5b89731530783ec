//! Fault injection under load: run a bounded concurrent workload while a master is killed (or
//! paused past the failure-detection timeout) and later brought back, then check what survived.
//!
//! The workload is pluggable ([`FailoverWorkload`]); [`IncrWorkload`] is the raw-client one
//! (`INCR` on keys spread over all slots, optionally followed by `WAIT`).
//!
//! # Counting under client retries
//! The redis-rs cluster client re-sends a command after an I/O error or response timeout (up to
//! its `retries` setting), so one logical operation can be applied 0..=`retries + 1` times, and
//! an operation that returned an error may still have been applied. Therefore:
//! * `attempted` counts logical operations (calls into the workload);
//! * `acknowledged` counts logical operations whose call returned a success reply;
//! * per key, the final value must lie in `0..=attempted_k * (retries + 1)`; a value above that
//!   is reported as corruption;
//! * `lost` is `max(0, acknowledged_k - final_k)` summed over keys: a lower bound on
//!   acknowledged-then-lost writes (unacknowledged or re-sent increments that did apply can
//!   mask losses, never create them).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use std::{fmt, fmt::Write as _};

use async_trait::async_trait;
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr};

use super::{NodeId, RedisDeployment, Shape, TopologyError, key_slot};

/// The fault to inject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    /// SIGKILL the victim; after the cluster healed (replica promoted) and
    /// [`FailoverConfig::outage`] passed, start it again.
    Kill,
    /// Freeze the victim for [`FailoverConfig::outage`] (should exceed the node timeout so the
    /// replica is promoted while it is frozen), then resume it.
    Pause,
}

/// Durability check after each write: `WAIT replicas timeout`, on the same node connection.
#[derive(Debug, Clone, Copy)]
pub struct WaitConfig {
    /// Number of replicas that must acknowledge.
    pub replicas: usize,
    /// `WAIT` timeout.
    pub timeout: Duration,
}

/// Parameters of [`run_failover_workload`].
#[derive(Debug, Clone)]
pub struct FailoverConfig {
    /// Number of concurrent tasks.
    pub tasks: usize,
    /// Upper bound of operations per task.
    pub max_ops_per_task: usize,
    /// Hard upper bound of the whole run (workload stops, fault is healed as far as possible).
    pub max_duration: Duration,
    /// Healthy traffic before the fault.
    pub fault_after: Duration,
    /// The fault.
    pub fault: FaultKind,
    /// Kill: how long the victim stays down after the replica took over. Pause: how long the
    /// victim stays frozen in total.
    pub outage: Duration,
    /// Traffic after healing before the workload stops.
    pub after_heal: Duration,
    /// Limit for each wait for the topology to become healthy.
    pub heal_timeout: Duration,
    /// Victim; default: the first current master.
    pub victim: Option<NodeId>,
    /// Pause between two operations of one task (keeps 2-core machines responsive).
    pub op_interval: Duration,
}

impl Default for FailoverConfig {
    fn default() -> Self {
        FailoverConfig {
            tasks: 8,
            max_ops_per_task: 20_000,
            max_duration: Duration::from_secs(60),
            fault_after: Duration::from_secs(1),
            fault: FaultKind::Kill,
            outage: Duration::from_secs(1),
            after_heal: Duration::from_secs(1),
            heal_timeout: Duration::from_secs(30),
            victim: None,
            op_interval: Duration::from_millis(2),
        }
    }
}

impl FailoverConfig {
    /// The configuration the testkit's failover checks use: 8 tasks, 1.5 s of healthy
    /// traffic, then `fault`. A killed master stays down 1 s after its replica took over; a
    /// paused one stays frozen 6 s, well past the 2 s node timeout.
    pub fn for_fault(fault: FaultKind) -> Self {
        FailoverConfig {
            max_ops_per_task: 4_000,
            fault_after: Duration::from_millis(1500),
            fault,
            outage: match fault {
                FaultKind::Kill => Duration::from_secs(1),
                FaultKind::Pause => Duration::from_secs(6),
            },
            after_heal: Duration::from_millis(1500),
            ..FailoverConfig::default()
        }
    }
}

/// The outcome of one logical operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpOutcome {
    /// Success reply (and the durability check, if any, passed).
    Acknowledged,
    /// Success reply for the write, but the durability check (e.g. `WAIT`) did not confirm it.
    AcknowledgedNotDurable,
    /// Error (or timeout); the write may or may not have been applied.
    Failed,
}

/// Result of [`FailoverWorkload::verify`].
#[derive(Debug, Clone, Default)]
pub struct WorkloadCheck {
    /// Keys (or items) read back.
    pub keys_checked: usize,
    /// Reads that failed even after retrying.
    pub read_failures: usize,
    /// Lower bound of acknowledged writes that are gone.
    pub lost_acknowledged: u64,
    /// Lower bound of acknowledged *and durably confirmed* writes that are gone (without a
    /// durability check every acknowledgement counts as confirmed).
    pub lost_durable: u64,
    /// Keys whose value is impossible (more than could have been applied).
    pub corrupted_keys: usize,
    /// Sum of applied writes found (e.g. sum of final counter values).
    pub applied_total: u64,
    /// Free-form details (first problems found).
    pub details: String,
}

/// A workload run by [`run_failover_workload`]. Implementations must bound each operation
/// (client timeouts) so that the run ends.
#[async_trait]
pub trait FailoverWorkload: Send + Sync + 'static {
    /// Performs logical operation `op` of task `task`.
    async fn operation(&self, task: usize, op: usize) -> OpOutcome;
    /// After healing: reads everything back and compares it with what was acknowledged.
    async fn verify(&self) -> Result<WorkloadCheck, TopologyError>;
    /// A short description for the report.
    fn describe(&self) -> String;
}

/// What happened during a run.
#[derive(Debug, Clone)]
pub struct FailoverReport {
    /// Workload description.
    pub workload: String,
    /// Injected fault.
    pub fault: FaultKind,
    /// The victim node.
    pub victim: NodeId,
    /// Logical operations issued.
    pub attempted: u64,
    /// Operations acknowledged (including durably confirmed ones).
    pub acknowledged: u64,
    /// Of `acknowledged`, those whose durability check did not confirm.
    pub acknowledged_not_durable: u64,
    /// Operations that returned an error.
    pub errors: u64,
    /// Operations acknowledged after the topology was healed again.
    pub acknowledged_after_heal: u64,
    /// Fault injection -> a healthy topology without the victim (replica promoted).
    pub time_to_failover: Option<Duration>,
    /// Fault injection -> healthy again with the victim back.
    pub time_to_heal: Duration,
    /// Fault injection -> the last failed operation (how long clients saw errors).
    pub errors_until: Option<Duration>,
    /// Whole run.
    pub total: Duration,
    /// The verification after healing.
    pub check: WorkloadCheck,
}

impl FailoverReport {
    /// `attempted == acknowledged + errors` and `acknowledged_not_durable <= acknowledged`.
    pub fn is_consistent(&self) -> bool {
        self.attempted == self.acknowledged + self.errors
            && self.acknowledged_not_durable <= self.acknowledged
            && self.acknowledged_after_heal <= self.acknowledged
    }
}

impl fmt::Display for FailoverReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} / {:?} {}: attempted {} acked {} (not durable {}, after heal {}) errors {} | \
             lost acked >= {} lost durable >= {} corrupted keys {} read failures {} | \
             failover {:?} heal {:?} errors until {:?} total {:?}",
            self.workload,
            self.fault,
            self.victim,
            self.attempted,
            self.acknowledged,
            self.acknowledged_not_durable,
            self.acknowledged_after_heal,
            self.errors,
            self.check.lost_acknowledged,
            self.check.lost_durable,
            self.check.corrupted_keys,
            self.check.read_failures,
            self.time_to_failover,
            self.time_to_heal,
            self.errors_until,
            self.total
        )
    }
}

#[derive(Default)]
struct Counters {
    attempted: AtomicU64,
    acked: AtomicU64,
    not_durable: AtomicU64,
    errors: AtomicU64,
    acked_after_heal: AtomicU64,
    /// Microseconds since start of the last error.
    last_error_us: AtomicU64,
}

/// Runs `workload` with `cfg.tasks` concurrent tasks while the fault described by `cfg` is
/// injected into `dep` and healed; then verifies. Works with every topology whose provider
/// supports fault controls (the raw [`IncrWorkload`] needs a cluster).
pub async fn run_failover_workload(
    dep: &RedisDeployment,
    cfg: FailoverConfig,
    workload: Arc<dyn FailoverWorkload>,
) -> Result<FailoverReport, TopologyError> {
    let start = Instant::now();
    let hard_deadline = start + cfg.max_duration;
    let victim = match cfg.victim {
        Some(v) => v,
        None => *dep
            .masters()
            .await?
            .first()
            .ok_or_else(|| TopologyError::Config("no master".into()))?,
    };
    let counters = Arc::new(Counters::default());
    let stop = Arc::new(AtomicBool::new(false));
    let healed = Arc::new(AtomicBool::new(false));
    let mut handles = Vec::new();
    for task in 0..cfg.tasks {
        let (w, c, stop, healed) = (
            workload.clone(),
            counters.clone(),
            stop.clone(),
            healed.clone(),
        );
        let (max_ops, interval) = (cfg.max_ops_per_task, cfg.op_interval);
        handles.push(tokio::spawn(async move {
            for op in 0..max_ops {
                if stop.load(Ordering::Relaxed) || Instant::now() >= hard_deadline {
                    break;
                }
                c.attempted.fetch_add(1, Ordering::Relaxed);
                let after_heal = healed.load(Ordering::Relaxed);
                match w.operation(task, op).await {
                    OpOutcome::Acknowledged => {
                        c.acked.fetch_add(1, Ordering::Relaxed);
                    }
                    OpOutcome::AcknowledgedNotDurable => {
                        c.acked.fetch_add(1, Ordering::Relaxed);
                        c.not_durable.fetch_add(1, Ordering::Relaxed);
                    }
                    OpOutcome::Failed => {
                        c.errors.fetch_add(1, Ordering::Relaxed);
                        c.last_error_us
                            .fetch_max(start.elapsed().as_micros() as u64, Ordering::Relaxed);
                        continue;
                    }
                }
                if after_heal {
                    c.acked_after_heal.fetch_add(1, Ordering::Relaxed);
                }
                if !interval.is_zero() {
                    tokio::time::sleep(interval).await;
                }
            }
        }));
    }

    // The fault timeline. Errors here are kept until the tasks are stopped.
    let timeline = async {
        tokio::time::sleep(cfg.fault_after).await;
        let fault_at = Instant::now();
        let mut failover_at = None;
        match cfg.fault {
            FaultKind::Kill => {
                dep.kill(victim).await?;
                dep.wait_healthy(cfg.heal_timeout).await?;
                failover_at = Some(fault_at.elapsed());
                tokio::time::sleep(cfg.outage).await;
                dep.start_node(victim).await?;
            }
            FaultKind::Pause => {
                dep.pause(victim).await?;
                let res = if dep.topology() == Shape::Standalone {
                    tokio::time::sleep(cfg.outage).await;
                    Ok(())
                } else {
                    dep.wait_healthy(cfg.outage.max(cfg.heal_timeout)).await
                };
                if res.is_ok() {
                    failover_at = Some(fault_at.elapsed());
                }
                let left = cfg.outage.saturating_sub(fault_at.elapsed());
                tokio::time::sleep(left).await;
                dep.resume(victim).await?;
                res?;
            }
        }
        dep.wait_healthy(cfg.heal_timeout).await?;
        let heal = fault_at.elapsed();
        healed.store(true, Ordering::Relaxed);
        tokio::time::sleep(cfg.after_heal).await;
        Ok::<_, TopologyError>((fault_at, failover_at, heal))
    };
    let timeline = tokio::time::timeout(cfg.max_duration, timeline).await;
    stop.store(true, Ordering::Relaxed);
    for h in handles {
        // Each operation is bounded by client timeouts; allow a generous margin.
        let _ = tokio::time::timeout(Duration::from_secs(30), h).await;
    }
    // Make sure the victim is back even if the timeline failed half-way.
    if let Ok(state) = dep.node_state(victim) {
        match state {
            super::NodeState::Paused => dep.resume(victim).await?,
            super::NodeState::Stopped => dep.start_node(victim).await?,
            super::NodeState::Running => {}
        }
    }
    let (fault_at, failover_at, heal) = timeline.map_err(|_| TopologyError::Timeout {
        what: "failover timeline".into(),
        after: cfg.max_duration,
    })??;
    dep.wait_healthy(cfg.heal_timeout).await?;
    let check = workload.verify().await?;
    let last_err = counters.last_error_us.load(Ordering::Relaxed);
    let fault_offset = fault_at.duration_since(start);
    let errors_until = (counters.errors.load(Ordering::Relaxed) > 0)
        .then(|| Duration::from_micros(last_err).saturating_sub(fault_offset));
    Ok(FailoverReport {
        workload: workload.describe(),
        fault: cfg.fault,
        victim,
        attempted: counters.attempted.load(Ordering::Relaxed),
        acknowledged: counters.acked.load(Ordering::Relaxed),
        acknowledged_not_durable: counters.not_durable.load(Ordering::Relaxed),
        errors: counters.errors.load(Ordering::Relaxed),
        acknowledged_after_heal: counters.acked_after_heal.load(Ordering::Relaxed),
        time_to_failover: failover_at,
        time_to_heal: heal,
        errors_until,
        total: start.elapsed(),
        check,
    })
}

#[derive(Default)]
struct KeyStats {
    attempted: AtomicU64,
    acked: AtomicU64,
    durable: AtomicU64,
}

/// Raw-client workload: `INCR` on `keys` keys spread over the slots, through
/// `redis::cluster_async`; with [`WaitConfig`], `INCR` and `WAIT` are sent as one pipeline, which
/// the cluster client routes to the key's master on one connection, so `WAIT` covers the write.
pub struct IncrWorkload {
    seeds: Vec<String>,
    con: ClusterConnection,
    keys: Vec<String>,
    stats: Vec<KeyStats>,
    wait: Option<WaitConfig>,
    retries: u32,
}

impl IncrWorkload {
    /// Client retries used by the workload connection (see the module docs for what they mean
    /// for counting).
    pub const RETRIES: u32 = 2;

    /// Connects to the cluster `dep` and prepares `keys` keys named `{prefix}:{i}` (no hash
    /// tags, so they spread over all masters). Keys are deleted first.
    pub async fn new(
        dep: &RedisDeployment,
        prefix: &str,
        keys: usize,
        wait: Option<WaitConfig>,
    ) -> Result<Arc<Self>, TopologyError> {
        if dep.topology() != Shape::Cluster {
            return Err(TopologyError::Unsupported {
                operation: "IncrWorkload (needs a cluster)",
                provider: dep.provider(),
                topology: dep.topology(),
            });
        }
        let seeds = dep.node_urls();
        let response = Duration::from_millis(1000) + wait.map(|w| w.timeout).unwrap_or_default();
        let client = ClusterClientBuilder::new(seeds.clone())
            .connection_timeout(Duration::from_millis(500))
            .response_timeout(response)
            .overall_response_timeout(Some(response * 3))
            .retries(Self::RETRIES)
            .min_retry_wait(50)
            .max_retry_wait(500)
            .build()?;
        let mut con = client.get_async_connection().await?;
        let keys: Vec<String> = (0..keys).map(|i| format!("{prefix}:{i}")).collect();
        for k in &keys {
            let _: () = redis::cmd("DEL").arg(k).query_async(&mut con).await?;
        }
        Ok(Arc::new(IncrWorkload {
            seeds,
            con,
            stats: keys.iter().map(|_| KeyStats::default()).collect(),
            keys,
            wait,
            retries: Self::RETRIES,
        }))
    }

    /// The cluster slot of every key (for callers that want to know which keys a victim owns).
    pub fn key_slots(&self) -> Vec<u16> {
        self.keys.iter().map(|k| key_slot(k.as_bytes())).collect()
    }
}

#[async_trait]
impl FailoverWorkload for IncrWorkload {
    async fn operation(&self, task: usize, op: usize) -> OpOutcome {
        let idx = (task.wrapping_mul(7919) + op) % self.keys.len();
        let key = &self.keys[idx];
        let stats = &self.stats[idx];
        stats.attempted.fetch_add(1, Ordering::Relaxed);
        let mut con = self.con.clone();
        match self.wait {
            None => match redis::cmd("INCR")
                .arg(key)
                .query_async::<i64>(&mut con)
                .await
            {
                Ok(_) => {
                    stats.acked.fetch_add(1, Ordering::Relaxed);
                    stats.durable.fetch_add(1, Ordering::Relaxed);
                    OpOutcome::Acknowledged
                }
                Err(_) => OpOutcome::Failed,
            },
            Some(w) => {
                let mut pipe = redis::pipe();
                pipe.cmd("INCR")
                    .arg(key)
                    .cmd("WAIT")
                    .arg(w.replicas)
                    .arg(w.timeout.as_millis() as u64);
                match pipe.query_async::<(i64, i64)>(&mut con).await {
                    Ok((_, replicas)) => {
                        stats.acked.fetch_add(1, Ordering::Relaxed);
                        if replicas >= w.replicas as i64 {
                            stats.durable.fetch_add(1, Ordering::Relaxed);
                            OpOutcome::Acknowledged
                        } else {
                            OpOutcome::AcknowledgedNotDurable
                        }
                    }
                    Err(_) => OpOutcome::Failed,
                }
            }
        }
    }

    async fn verify(&self) -> Result<WorkloadCheck, TopologyError> {
        // A fresh client: the slot map of the workload connection may be stale.
        let client = ClusterClientBuilder::new(self.seeds.clone())
            .connection_timeout(Duration::from_secs(1))
            .response_timeout(Duration::from_secs(2))
            .retries(5)
            .min_retry_wait(100)
            .max_retry_wait(1000)
            .build()?;
        let mut con = client.get_async_connection().await?;
        let mut check = WorkloadCheck {
            keys_checked: self.keys.len(),
            ..Default::default()
        };
        for (key, stats) in self.keys.iter().zip(&self.stats) {
            let mut value = None;
            for _ in 0..10 {
                // Read from the master explicitly.
                let route = RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(
                    Route::new(key_slot(key.as_bytes()), SlotAddr::Master),
                ));
                match con
                    .route_command(redis::cmd("GET").arg(key).clone(), route)
                    .await
                {
                    Ok(v) => {
                        value = Some(
                            redis::from_redis_value::<Option<u64>>(v)
                                .map_err(redis::RedisError::from)?
                                .unwrap_or(0),
                        );
                        break;
                    }
                    Err(_) => tokio::time::sleep(Duration::from_millis(300)).await,
                }
            }
            let Some(v) = value else {
                check.read_failures += 1;
                let _ = writeln!(check.details, "{key}: read failed");
                continue;
            };
            let attempted = stats.attempted.load(Ordering::Relaxed);
            let acked = stats.acked.load(Ordering::Relaxed);
            let durable = stats.durable.load(Ordering::Relaxed);
            check.applied_total += v;
            check.lost_acknowledged += acked.saturating_sub(v);
            check.lost_durable += durable.saturating_sub(v);
            if v > attempted * (u64::from(self.retries) + 1) {
                check.corrupted_keys += 1;
                let _ = writeln!(
                    check.details,
                    "{key}: value {v} > attempted {attempted} x {}",
                    self.retries + 1
                );
            }
            if acked > v && check.details.len() < 2000 {
                let _ = writeln!(
                    check.details,
                    "{key}: acked {acked} durable {durable} final {v}"
                );
            }
        }
        Ok(check)
    }

    fn describe(&self) -> String {
        match self.wait {
            None => format!("INCR x{} keys", self.keys.len()),
            Some(w) => format!(
                "INCR+WAIT {} {:?} x{} keys",
                w.replicas,
                w.timeout,
                self.keys.len()
            ),
        }
    }
}

/// Convenience: [`run_failover_workload`] with a fresh [`IncrWorkload`] of `keys` keys.
pub async fn run_raw_incr_failover(
    dep: &RedisDeployment,
    cfg: FailoverConfig,
    keys: usize,
    wait: Option<WaitConfig>,
) -> Result<FailoverReport, TopologyError> {
    let prefix = format!(
        "failover-{:?}-{}",
        cfg.fault,
        if wait.is_some() { "wait" } else { "nowait" }
    );
    let workload = IncrWorkload::new(dep, &prefix, keys, wait).await?;
    run_failover_workload(dep, cfg, workload).await
}
