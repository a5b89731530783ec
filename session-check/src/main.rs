//! `session-check`: does each session store keep the contract, here and now?
//!
//! With no arguments it starts throwaway Redis deployments (containers where Docker works and
//! the image is present or can be pulled, else local `redis-server` processes, else it checks
//! the memory store alone and names the command that would install Redis),
//! runs the conformance suite, model equivalence and the linearizability check for every
//! store and topology, prints a progress bar and a result table, and exits non-zero on any
//! failure. `--url` checks an existing Redis instead, inside random namespaces it removes
//! afterwards.

use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use session_core::redis::Durability;
use session_core::redis::Settings;
use session_core::{Policy, Result};
use session_fred::{FredStoreBuilder, FredTransport};
use session_redis::{RedisStoreBuilder, RedisTransport};
use session_testkit::conformance::{self, MemoryFactory, StoreFactory};
use session_testkit::failover::StoreWorkload;
use session_testkit::redis_factory::{Connect, RedisFactory, Servers};
use session_testkit::topology::{
    self, FailoverConfig, FaultKind, Provider, ProviderChoice, ProviderRequest, RedisDeployment,
    TopologyError, run_failover_workload,
};

/// Checks session stores against the contract of `docs/semantics.md`.
#[derive(Debug, Parser)]
#[command(
    name = "session-check",
    version,
    about = "Checks that session stores keep the contract: conformance suite, model equivalence and \
             linearizability of concurrent histories, on throwaway or existing Redis.",
    long_about = "Checks that session stores keep the contract: the conformance suite (a case \
                  per behaviour), model equivalence against the core model, and linearizability \
                  of generated concurrent histories, for the memory store and the Redis stores \
                  (redis-rs, fred) on standalone Redis, Redis Cluster (3+3) and Sentinel.\n\n\
                  With no arguments it starts throwaway Redis deployments itself (containers when \
                  Docker answers and the image, REDIS_TEST_IMAGE or redis:7.4, is present or can be \
                  pulled, else local redis-server or valkey-server processes), or checks the \
                  memory store alone when neither is available and names the command that would \
                  install Redis; it says which it took. --provider (or SESSION_TESTKIT_REDIS) asks \
                  for one provider instead, and fails in one line if it cannot be used. It shows \
                  progress, prints a table (store x topology: cases passed, equivalence, \
                  histories checked, unknown verdicts, calls/s) and exits with 1 on any failure \
                  or when it checked less than asked (Redis could not be started), 2 on bad \
                  arguments."
)]
struct Args {
    /// Stores to check (repeat the flag for several); default: all.
    #[arg(long = "store", value_enum)]
    stores: Vec<StoreKind>,
    /// Redis topologies to start (repeat for several); default: all. Ignored with --url.
    #[arg(long = "topology", value_enum)]
    topologies: Vec<TopologyKind>,
    /// Check an existing Redis instead of starting one: `redis://[user:pass@]host:port`,
    /// `redis+cluster://h1:p1,h2:p2` or `redis+sentinel://s1:p1,s2:p2/master`. Only keys in
    /// random namespaces of this run are written, and they are removed at the end.
    #[arg(long)]
    url: Option<String>,
    /// How to start Redis without --url: `auto` takes containers when Docker answers and the
    /// image is present or can be pulled, else local redis-server processes, else checks the
    /// memory store alone. Default: SESSION_TESTKIT_REDIS, else auto.
    #[arg(long, value_enum)]
    provider: Option<ProviderKind>,
    /// Also inject faults into a Redis Cluster (a master killed, and one paused past the node
    /// timeout, with and without WAIT) and report lost acknowledged writes. Needs a started
    /// cluster (not --url).
    #[arg(long)]
    faults: bool,
    /// Generated concurrent histories per store and topology.
    #[arg(long, default_value_t = 16)]
    histories: u32,
    /// Generated sequential workloads per store and topology (model equivalence).
    #[arg(long, default_value_t = 24)]
    sequences: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum StoreKind {
    /// The in-memory store.
    Memory,
    /// The store over redis-rs.
    RedisRs,
    /// The store over fred.
    Fred,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ProviderKind {
    /// Containers, else processes, else the memory store alone.
    Auto,
    /// Docker containers (image: REDIS_TEST_IMAGE, default redis:7.4).
    Containers,
    /// Local redis-server (or valkey-server) processes on loopback ports.
    Processes,
}

impl From<ProviderKind> for ProviderRequest {
    fn from(p: ProviderKind) -> Self {
        match p {
            ProviderKind::Auto => ProviderRequest::Auto,
            ProviderKind::Containers => ProviderRequest::Exactly(Provider::Containers),
            ProviderKind::Processes => ProviderRequest::Exactly(Provider::Processes),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum TopologyKind {
    Standalone,
    Cluster,
    Sentinel,
}

impl From<TopologyKind> for topology::Shape {
    fn from(t: TopologyKind) -> Self {
        match t {
            TopologyKind::Standalone => topology::Shape::Standalone,
            TopologyKind::Cluster => topology::Shape::Cluster,
            TopologyKind::Sentinel => topology::Shape::Sentinel,
        }
    }
}

/// Every namespace this run used, for the cleanup after `--url`.
#[derive(Clone, Default)]
struct Namespaces(Arc<Mutex<Vec<String>>>);

impl Namespaces {
    fn remember(&self, settings: &Settings) {
        self.0
            .lock()
            .expect("lock")
            .push(settings.namespace.to_string());
    }
}

/// Connects the redis-rs store.
#[derive(Clone, Default)]
struct RedisRs(Namespaces);

#[async_trait::async_trait]
impl Connect for RedisRs {
    type Transport = RedisTransport;
    async fn transport(&self, settings: &Settings) -> Result<RedisTransport> {
        self.0.remember(settings);
        RedisStoreBuilder::from_settings(settings.clone())
            .build_transport()
            .await
    }
}

/// Connects the fred store.
#[derive(Clone, Default)]
struct Fred(Namespaces);

#[async_trait::async_trait]
impl Connect for Fred {
    type Transport = FredTransport;
    async fn transport(&self, settings: &Settings) -> Result<FredTransport> {
        self.0.remember(settings);
        FredStoreBuilder::from_settings(settings.clone())
            .build_transport()
            .await
    }
}

/// One line of the result table.
struct Row {
    store: &'static str,
    topology: String,
    cases: (usize, usize),
    equivalence: std::result::Result<(), String>,
    histories: conformance::HistoryStats,
    failures: Vec<String>,
    /// Not checked: its Redis could not be started (the reason is printed once, below the
    /// table).
    no_redis: bool,
}

impl Row {
    fn passed(&self) -> bool {
        self.failures.is_empty() && !self.no_redis
    }

    /// A row for a store that could not be checked because Redis did not start.
    fn no_redis(store: &'static str, topology: String) -> Row {
        Row {
            store,
            topology,
            cases: (0, 0),
            equivalence: Ok(()),
            histories: conformance::HistoryStats::default(),
            failures: Vec::new(),
            no_redis: true,
        }
    }
}

async fn check<F: StoreFactory>(
    store: &'static str,
    topology: String,
    factory: Arc<F>,
    args: &Args,
    bar: &ProgressBar,
) -> Row {
    bar.set_message(format!("{store} on {topology}: conformance"));
    let outcomes = conformance::run_all(factory.clone(), |c| {
        bar.inc(1);
        bar.set_message(format!("{store} on {topology}: {}", c.name));
    })
    .await;
    let mut failures: Vec<String> = outcomes
        .iter()
        .filter_map(|c| {
            c.failure
                .as_ref()
                .map(|f| format!("{}: {}", c.name, first_line(f)))
        })
        .collect();
    bar.set_message(format!("{store} on {topology}: model equivalence"));
    let (f, sequences) = (factory.clone(), args.sequences);
    let equivalence =
        tokio::task::spawn_blocking(move || conformance::check_model_equivalence(&*f, sequences))
            .await
            .unwrap_or_else(|e| Err(e.to_string()));
    bar.inc(1);
    bar.set_message(format!("{store} on {topology}: concurrent histories"));
    let (f, histories) = (factory.clone(), args.histories);
    let stats = tokio::task::spawn_blocking(move || conformance::check_histories(&*f, histories))
        .await
        .unwrap_or_default();
    bar.inc(1);
    if let Err(e) = &equivalence {
        failures.push(format!("model equivalence: {e}"));
    }
    if let Some(e) = &stats.failure {
        failures.push(format!("concurrency: {e}"));
    }
    let passed = outcomes.iter().filter(|c| c.failure.is_none()).count();
    Row {
        store,
        topology,
        cases: (passed, outcomes.len()),
        equivalence,
        histories: stats,
        failures,
        no_redis: false,
    }
}

fn store_name(store: StoreKind) -> &'static str {
    match store {
        StoreKind::Memory => "memory",
        StoreKind::RedisRs => "redis-rs",
        StoreKind::Fred => "fred",
    }
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or(s)
}

/// Where Redis comes from for this run.
enum Source {
    /// Deployments the program starts (provider as chosen by the testkit, and why).
    Started(ProviderChoice),
    /// An existing deployment.
    External(Arc<RedisDeployment>),
    /// None: the memory store only; why, and what would add Redis.
    None(TopologyError),
}

/// What to run the Redis stores on: a topology's name and how to get its deployment.
enum Target {
    /// Started by this program, one topology at a time (so two cores are not shared by all
    /// three deployments), and removed after its checks.
    Start(topology::Shape, Provider),
    /// The --url deployment.
    Given(Arc<RedisDeployment>),
}

async fn external(url: &str) -> std::result::Result<Arc<RedisDeployment>, String> {
    let parsed = session_redis::Topology::from_url(url).map_err(|e| e.to_string())?;
    let (t, urls, master) = match parsed {
        session_redis::Topology::Standalone(u) => (topology::Shape::Standalone, vec![u], None),
        session_redis::Topology::Cluster(urls) => (topology::Shape::Cluster, urls, None),
        session_redis::Topology::Sentinel { sentinels, master } => {
            (topology::Shape::Sentinel, sentinels, Some(master))
        }
    };
    RedisDeployment::external(t, urls, master)
        .await
        .map(Arc::new)
        .map_err(|e| e.to_string())
}

/// Removes every key of the namespaces this run used (only with --url: started deployments
/// are thrown away whole).
async fn clean_up(
    dep: &RedisDeployment,
    namespaces: &[String],
) -> std::result::Result<usize, redis::RedisError> {
    let mut removed = 0;
    let nodes = dep
        .masters()
        .await
        .map_err(|e| redis::RedisError::from((redis::ErrorKind::Io, "masters", e.to_string())))?;
    for node in nodes {
        let url = dep.node_url(node).map_err(|e| {
            redis::RedisError::from((redis::ErrorKind::Io, "node url", e.to_string()))
        })?;
        let client = redis::Client::open(url.as_str())?;
        let mut con = client.get_multiplexed_async_connection().await?;
        for ns in namespaces {
            let mut cursor = 0u64;
            loop {
                let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                    .arg(cursor)
                    .arg("MATCH")
                    .arg(format!("{ns}:*"))
                    .arg("COUNT")
                    .arg(500)
                    .query_async(&mut con)
                    .await?;
                for key in keys {
                    let n: usize = redis::cmd("DEL").arg(&key).query_async(&mut con).await?;
                    removed += n;
                }
                if next == 0 {
                    break;
                }
                cursor = next;
            }
        }
    }
    Ok(removed)
}

async fn faults<C: Connect>(name: &str, connect: &C, dep: &RedisDeployment) -> Vec<String> {
    let mut lines = Vec::new();
    for fault in [FaultKind::Kill, FaultKind::Pause] {
        for wait in [false, true] {
            let mut settings = session_testkit::redis_factory::settings_for(dep, Policy::default());
            settings.response_timeout = Duration::from_secs(1);
            if wait {
                settings.durability = Some(Durability {
                    replicas: 1,
                    timeout: Duration::from_millis(500),
                });
            }
            let result = async {
                let store = Arc::new(connect.store(settings).await.map_err(|e| e.to_string())?);
                let workload = Arc::new(
                    StoreWorkload::prepare(store, 32)
                        .await
                        .map_err(|e| e.to_string())?,
                );
                let cfg = FailoverConfig::for_fault(fault);
                let report = run_failover_workload(dep, cfg, workload)
                    .await
                    .map_err(|e| e.to_string())?;
                dep.wait_healthy(Duration::from_secs(30))
                    .await
                    .map_err(|e| e.to_string())?;
                Ok::<_, String>(report)
            }
            .await;
            lines.push(match result {
                // "corrupted" counts sessions whose counter exceeds the increments sent (a
                // double apply), whose version is out of step with it (a torn write), or
                // that vanished.
                Ok(r) => format!(
                    "{name:<9} {:<6} {:<8} acked {:>6} (not durable {:>4})  errors {:>4}  \
                     acked lost {:>3} (durable lost {:>3})  corrupted {}  \
                     failover {}  errors until {}  serving again: {}",
                    format!("{fault:?}"),
                    if wait { "WAIT 1" } else { "no WAIT" },
                    r.acknowledged,
                    r.acknowledged_not_durable,
                    r.errors,
                    r.check.lost_acknowledged,
                    r.check.lost_durable,
                    r.check.corrupted_keys,
                    seconds(r.time_to_failover),
                    seconds(r.errors_until),
                    if r.acknowledged_after_heal > 0 {
                        "yes"
                    } else {
                        "NO"
                    },
                ),
                Err(e) => format!("{name:<9} {fault:?}: failed: {e}"),
            });
        }
    }
    lines
}

/// A duration as seconds with one decimal, `-` when there was none.
fn seconds(d: Option<Duration>) -> String {
    d.map_or_else(|| "-".to_owned(), |d| format!("{:.1} s", d.as_secs_f64()))
}

fn print_table(rows: &[Row], elapsed: Duration) {
    println!(
        "\n{:<10} {:<11} {:>8} {:>12} {:>10} {:>8} {:>10}  result",
        "store", "topology", "cases", "equivalence", "histories", "unknown", "calls/s"
    );
    for r in rows {
        if r.no_redis {
            println!(
                "{:<10} {:<11} {:>8} {:>12} {:>10} {:>8} {:>10}  NO REDIS",
                r.store, r.topology, "-", "-", "-", "-", "-"
            );
            continue;
        }
        let rate = r.histories.calls as f64 / r.histories.elapsed.as_secs_f64().max(1e-9);
        println!(
            "{:<10} {:<11} {:>8} {:>12} {:>10} {:>8} {:>10.0}  {}",
            r.store,
            r.topology,
            format!("{}/{}", r.cases.0, r.cases.1),
            if r.equivalence.is_ok() {
                "ok"
            } else {
                "FAILED"
            },
            r.histories.histories,
            r.histories.unknown,
            rate,
            if r.passed() { "PASS" } else { "FAIL" }
        );
    }
    for r in rows.iter().filter(|r| !r.passed() && !r.no_redis) {
        println!("\n{} on {}:", r.store, r.topology);
        for f in &r.failures {
            println!("  - {f}");
        }
    }
    println!("\nchecked in {:.1} s", elapsed.as_secs_f64());
}

#[tokio::main(flavor = "multi_thread", worker_threads = 4)]
async fn main() -> ExitCode {
    let args = Args::parse();
    let started = Instant::now();
    let stores = if args.stores.is_empty() {
        vec![StoreKind::Memory, StoreKind::RedisRs, StoreKind::Fred]
    } else {
        args.stores.clone()
    };
    let topologies = if args.topologies.is_empty() {
        vec![
            TopologyKind::Standalone,
            TopologyKind::Cluster,
            TopologyKind::Sentinel,
        ]
    } else {
        args.topologies.clone()
    };

    let source = match &args.url {
        Some(url) => match external(url).await {
            Ok(dep) => Source::External(dep),
            Err(e) => {
                eprintln!("cannot use {url}: {e}");
                return ExitCode::from(2);
            }
        },
        None => {
            let request = match args.provider {
                Some(p) => ProviderRequest::from(p),
                None => match ProviderRequest::from_env() {
                    Ok(r) => r,
                    Err(e) => {
                        eprintln!("session-check: {e}");
                        return ExitCode::from(2);
                    }
                },
            };
            match ProviderChoice::for_request(request) {
                Ok(choice) => Source::Started(choice),
                // Nothing usable and nothing asked for: check what can be checked.
                Err(e @ TopologyError::NoProvider(_)) => Source::None(e),
                // An explicit choice that cannot be met: one line, nothing else.
                Err(e) => {
                    eprintln!("session-check: cannot start Redis: {e}");
                    return ExitCode::FAILURE;
                }
            }
        }
    };
    let redis_stores = stores.iter().filter(|s| **s != StoreKind::Memory).count();
    let targets: Vec<(String, Target)> = match &source {
        Source::External(dep) => vec![(
            format!("{:?}", dep.topology()).to_lowercase() + " (url)",
            Target::Given(dep.clone()),
        )],
        Source::Started(choice) if redis_stores > 0 => topologies
            .iter()
            .map(|t| {
                (
                    format!("{t:?}").to_lowercase(),
                    Target::Start((*t).into(), choice.provider),
                )
            })
            .collect(),
        Source::Started(_) | Source::None(_) => Vec::new(),
    };
    match &source {
        Source::Started(choice) => println!("Redis: throwaway deployments, {choice}"),
        Source::External(d) => println!("Redis: existing {:?} deployment", d.topology()),
        Source::None(_) => println!("Redis: none available; checking the memory store only"),
    }

    let per_check = conformance::cases::<MemoryFactory>().len() as u64 + 2;
    let checks =
        u64::from(stores.contains(&StoreKind::Memory)) + (redis_stores * targets.len()) as u64;
    let bar = ProgressBar::new(checks * per_check);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} {elapsed_precise} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );

    let mut rows = Vec::new();
    if stores.contains(&StoreKind::Memory) {
        rows.push(check("memory", "-".into(), Arc::new(MemoryFactory), &args, &bar).await);
    }
    let namespaces = Namespaces::default();
    // Topologies whose Redis did not start, grouped by reason, so each reason is said once.
    let mut not_started: Vec<(String, Vec<String>)> = Vec::new();
    for (name, target) in &targets {
        let dep = match target {
            Target::Given(dep) => dep.clone(),
            Target::Start(t, provider) => {
                bar.set_message(format!("starting Redis: {name}"));
                match RedisDeployment::start_with(*t, *provider).await {
                    Ok(dep) => Arc::new(dep),
                    Err(e) => {
                        let reason = e.to_string();
                        match not_started.iter_mut().find(|(r, _)| *r == reason) {
                            Some((_, names)) => names.push(name.clone()),
                            None => not_started.push((reason, vec![name.clone()])),
                        }
                        for store in [StoreKind::RedisRs, StoreKind::Fred] {
                            if stores.contains(&store) {
                                bar.inc(per_check);
                                rows.push(Row::no_redis(store_name(store), name.clone()));
                            }
                        }
                        continue;
                    }
                }
            }
        };
        let servers = Servers::Given(dep);
        if stores.contains(&StoreKind::RedisRs) {
            let factory = Arc::new(RedisFactory {
                servers: servers.clone(),
                connect: RedisRs(namespaces.clone()),
            });
            rows.push(check("redis-rs", name.clone(), factory, &args, &bar).await);
        }
        if stores.contains(&StoreKind::Fred) {
            let factory = Arc::new(RedisFactory {
                servers: servers.clone(),
                connect: Fred(namespaces.clone()),
            });
            rows.push(check("fred", name.clone(), factory, &args, &bar).await);
        }
        // A started deployment is removed here, when its last handle (in the factories) goes.
    }
    bar.finish_and_clear();
    print_table(&rows, started.elapsed());
    for (reason, names) in &not_started {
        println!("cannot start Redis ({}): {reason}", names.join(", "));
    }
    if let Source::None(e) = &source {
        println!("cannot start Redis: {e}");
    }

    // Checked less than asked (Redis stores, but no Redis) is a failure too.
    let mut ok =
        rows.iter().all(Row::passed) && !(matches!(source, Source::None(_)) && redis_stores > 0);
    if let Source::External(dep) = &source {
        let used = namespaces.0.lock().expect("lock").clone();
        match clean_up(dep, &used).await {
            Ok(n) => println!("removed {n} keys of this run's {} namespaces", used.len()),
            Err(e) => println!("cleanup failed: {e}"),
        }
    }
    if args.faults {
        match (&source, redis_stores > 0) {
            (Source::Started(choice), true) => {
                println!("\nfault injection on a 3+3 cluster (8 tasks, 32 sessions):");
                match RedisDeployment::start_with(topology::Shape::Cluster, choice.provider).await {
                    Ok(dep) => {
                        let mut lines = Vec::new();
                        if stores.contains(&StoreKind::RedisRs) {
                            lines.extend(faults("redis-rs", &RedisRs::default(), &dep).await);
                        }
                        if stores.contains(&StoreKind::Fred) {
                            lines.extend(faults("fred", &Fred::default(), &dep).await);
                        }
                        ok &= lines
                            .iter()
                            .all(|l| !l.contains("failed") && !l.contains("NO"));
                        lines.iter().for_each(|l| println!("  {l}"));
                    }
                    Err(e) => {
                        println!("  could not start a cluster: {e}");
                        ok = false;
                    }
                }
            }
            _ => println!("\n--faults needs a started cluster and a Redis store: skipped"),
        }
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
