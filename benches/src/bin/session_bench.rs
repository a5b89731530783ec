//! `session-bench`: the benchmark report against the raw clients and today's session stores.
//!
//! Runs, in one process and against the same Redis, our two stores, the raw redis-rs and
//! fred clients (the floor), the two peer Redis session stores (tower-sessions,
//! actix-session) and the compatibility store (tower-sessions' interface over ours) through a matrix of workloads, session sizes and concurrency, on
//! standalone Redis and a Redis Cluster; measures Redis CPU, commands and round trips per
//! request cycle, memory per session and lost updates; judges the targets; writes a
//! Markdown report and prints it. Exits with 1 if one of our stores lost an acknowledged
//! update (or a topology could not be run), 2 on bad arguments.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use session_benches::bench::deploy::Target;
use session_benches::bench::plan::{Plan, Size, SubjectKind, Timing, Workload};
use session_benches::bench::report::{self, RunInfo};
use session_benches::bench::suite::{self, Results};
use session_benches::bench::{BenchError, Result};
use session_core::SessionToken;
use session_testkit::topology::{Provider, Shape};

const DEFAULT_OUT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/REPORT.md");

/// Benchmarks our session stores against the raw clients and today's Redis session stores.
#[derive(Debug, Parser)]
#[command(
    name = "session-bench",
    version,
    about = "Benchmarks our session stores against the raw redis-rs/fred clients and \
             tower-sessions / actix-session on the same Redis, and writes a Markdown report.",
    long_about = "Benchmarks our session stores (ours-redis, ours-fred) against the raw redis-rs \
                  and fred clients doing the minimal commands on the same layout (the \
                  floor), the script floor (raw redis-rs saving through a one-line script, the \
                  floor of any store whose saves check a condition atomically) and the Redis \
                  session stores in use today (tower-sessions-redis-store 0.16, actix-session \
                  0.11), in one process against the same Redis; and session-tower's \
                  compatibility store (tower-sessions' SessionStore over our redis-rs and fred \
                  stores: tower-sessions-compat, tower-sessions-compat-fred) against \
                  tower-sessions-redis-store.\n\n\
                  For every cell (subject x workload x session size x concurrent tasks) it \
                  reports ops/s and p50/p99 latency, and ratios ours/raw and ours/peer; per \
                  subject and size the Redis memory per session (MEMORY USAGE) and the Redis \
                  server CPU, commands and round trips per operation of load, cycle, narrow \
                  cycle and the web-mix workloads (INFO cpu, INFO commandstats); and the \
                  lost-update comparison (many tasks each changing their own attribute of one \
                  session at once). It judges the performance targets (benches/README.md) \
                  from these numbers.\n\n\
                  With no --url it starts throwaway Redis itself through the testkit: standalone \
                  and a 3-master/3-replica cluster, as local redis-server processes when \
                  redis-server is on PATH (container networking costs CPU), else Docker \
                  containers (REDIS_TEST_IMAGE). SESSION_TESTKIT_REDIS overrides the choice.\n\n\
                  Writes the report to --out and prints it. Exit status: 0 done, 1 one of our \
                  stores lost an acknowledged update, a step of our stores or the floors failed \
                  (setup, a cell or an operation in one, a cost, memory or lost-update run), or \
                  a topology could not be run, 2 bad arguments."
)]
struct Args {
    /// Topologies to start (ignored with --url, whose URL decides).
    #[arg(long, value_enum, default_value_t = TopologyArg::Both)]
    topology: TopologyArg,
    /// Benchmark an existing Redis instead of starting one: `redis://[user:pass@]host:port` or
    /// `redis+cluster://h1:p1,h2:p2`. Only keys under this run's random prefixes (and the
    /// tower-sessions record ids it creates) are written, and they are removed afterwards.
    /// It runs CONFIG RESETSTAT on the masters (zeroing their command statistics).
    #[arg(long)]
    url: Option<String>,
    /// How to start Redis without --url: `auto` prefers local redis-server processes, then
    /// containers; SESSION_TESTKIT_REDIS, when set, decides in `auto`.
    #[arg(long, value_enum, default_value_t = ProviderArg::Auto)]
    provider: ProviderArg,
    /// Where to write the Markdown report.
    #[arg(long, default_value = DEFAULT_OUT)]
    out: PathBuf,
    /// A small run (CI smoke test): tasks 1 and 16, sizes 1 and 100x1k, 100 ms cells, 200 ms
    /// cost runs, 2 lost-update rounds, every subject but tower-sessions-compat-fred.
    /// Explicit flags still win.
    #[arg(long)]
    quick: bool,
    /// Subjects, comma-separated (default: all; with --quick all but
    /// tower-sessions-compat-fred).
    #[arg(long, value_enum, value_delimiter = ',')]
    subjects: Vec<SubjectKind>,
    /// Workloads, comma-separated (default: all).
    #[arg(long, value_enum, value_delimiter = ',')]
    workloads: Vec<Workload>,
    /// Session sizes, comma-separated: 1 (one 32-byte attribute), 10x100, 100x1k (default: all).
    #[arg(long, value_enum, value_delimiter = ',')]
    sizes: Vec<Size>,
    /// Concurrent tasks per cell, comma-separated (default: 1,16,256).
    #[arg(long, value_delimiter = ',')]
    concurrency: Vec<usize>,
    /// Measured time per cell in ms (default 500, quick 100).
    #[arg(long)]
    measure_ms: Option<u64>,
    /// Warm-up per cell in ms (default 100, quick 30).
    #[arg(long)]
    warmup_ms: Option<u64>,
    /// At most this many operations per cell, warm-up included.
    #[arg(long, default_value_t = 250_000)]
    max_ops: u64,
    /// Time of each Redis-cost run (CPU, commands, round trips per cycle) in ms (default 3000,
    /// quick 200). The Redis CPU targets rest on one such run per subject, and one subject's
    /// 1 s runs differed by up to 40 % between runs.
    #[arg(long)]
    cost_ms: Option<u64>,
    /// Concurrent tasks of the cost runs.
    #[arg(long, default_value_t = 16)]
    cost_tasks: usize,
    /// Concurrent cycles of the lost-update comparison, comma-separated (default: 32,256).
    #[arg(long, value_delimiter = ',')]
    lost_tasks: Vec<usize>,
    /// Rounds of each lost-update run (default 5, quick 2).
    #[arg(long)]
    lost_rounds: Option<usize>,
    /// Extra rounds of the cells the throughput targets are judged on (load and web-mix on 1
    /// and 10x100; cycle on 1 and 100x1k; narrow cycle and apply on 100x1k; at the largest
    /// task count), all subjects
    /// taking turns, after the full matrix. Targets then use the median of every round of a
    /// cell (the matrix's and these), which a single noisy window moves less (default 4,
    /// quick 0).
    #[arg(long)]
    target_repeats: Option<usize>,
    /// Do not print the report on stdout (it is still written to --out).
    #[arg(long)]
    quiet: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum TopologyArg {
    Standalone,
    Cluster,
    Both,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ProviderArg {
    Auto,
    Processes,
    Containers,
}

fn or<T: Clone>(given: &[T], default: &[T]) -> Vec<T> {
    if given.is_empty() {
        default.to_vec()
    } else {
        given.to_vec()
    }
}

fn plan(args: &Args) -> Result<Plan> {
    let q = args.quick;
    let plan = Plan {
        subjects: or(
            &args.subjects,
            if q {
                &SubjectKind::QUICK
            } else {
                &SubjectKind::ALL
            },
        ),
        workloads: or(&args.workloads, &Workload::ALL),
        sizes: or(
            &args.sizes,
            if q {
                &[Size::One, Size::Hundred]
            } else {
                &Size::ALL
            },
        ),
        concurrency: or(&args.concurrency, if q { &[1, 16] } else { &[1, 16, 256] }),
        timing: Timing {
            warmup: Duration::from_millis(args.warmup_ms.unwrap_or(if q { 30 } else { 100 })),
            measure: Duration::from_millis(args.measure_ms.unwrap_or(if q { 100 } else { 500 })),
            max_ops: args.max_ops,
        },
        cost_time: Duration::from_millis(args.cost_ms.unwrap_or(if q { 200 } else { 3000 })),
        cost_tasks: args.cost_tasks,
        lost_tasks: or(&args.lost_tasks, &[32, 256]),
        lost_rounds: args.lost_rounds.unwrap_or(if q { 2 } else { 5 }),
        target_repeats: args.target_repeats.unwrap_or(if q { 0 } else { 4 }),
    };
    let mut subjects = plan.subjects.clone();
    subjects.sort();
    subjects.dedup();
    if plan.concurrency.contains(&0) || plan.lost_tasks.contains(&0) || plan.cost_tasks == 0 {
        return Err(BenchError::Invalid("task counts must be at least 1".into()));
    }
    if plan.timing.measure.is_zero() || plan.cost_time.is_zero() || plan.timing.max_ops == 0 {
        return Err(BenchError::Invalid(
            "--measure-ms, --cost-ms and --max-ops must be positive".into(),
        ));
    }
    if plan.lost_rounds == 0 {
        return Err(BenchError::Invalid(
            "--lost-rounds must be at least 1".into(),
        ));
    }
    Ok(Plan { subjects, ..plan })
}

fn provider(arg: ProviderArg) -> Result<Provider> {
    let from_env = || Provider::from_env().map_err(|e| BenchError::Deployment(e.to_string()));
    match arg {
        ProviderArg::Processes => Ok(Provider::Processes),
        ProviderArg::Containers => Ok(Provider::Containers),
        ProviderArg::Auto => {
            let set = std::env::var("SESSION_TESTKIT_REDIS").is_ok_and(|v| !v.trim().is_empty());
            if !set && Provider::Processes.is_available() {
                Ok(Provider::Processes)
            } else {
                from_env()
            }
        }
    }
}

fn command(program: &str, args: &[&str]) -> Option<String> {
    let out = std::process::Command::new(program)
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

fn commit() -> String {
    match command("git", &["rev-parse", "--short", "HEAD"]) {
        Some(hash) => match command("git", &["status", "--porcelain"]) {
            Some(changes) if !changes.is_empty() => format!("{hash} + uncommitted changes"),
            _ => hash,
        },
        None => "unknown (git not available)".into(),
    }
}

fn date() -> String {
    let now = time::OffsetDateTime::now_utc();
    format!(
        "{}-{:02}-{:02} {:02}:{:02} UTC",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute()
    )
}

/// The load average (1, 5, 15 min), on Linux.
fn load_average() -> Option<String> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    Some(
        text.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" "),
    )
}

/// A short random part for this run's key prefixes.
fn run_id() -> String {
    SessionToken::generate().as_bytes()[..3]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

async fn run(args: &Args, plan: &Plan) -> Result<(Vec<Results>, Vec<(String, String)>)> {
    let mut results = Vec::new();
    let mut failures = Vec::new();
    let run = run_id();
    let topologies: Vec<Shape> = match (&args.url, args.topology) {
        (Some(_), _) => vec![Shape::Standalone],
        (None, TopologyArg::Standalone) => vec![Shape::Standalone],
        (None, TopologyArg::Cluster) => vec![Shape::Cluster],
        (None, TopologyArg::Both) => vec![Shape::Standalone, Shape::Cluster],
    };
    let bar = ProgressBar::new(suite::steps(plan) * topologies.len() as u64);
    bar.set_style(
        ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    let provider = if args.url.is_none() {
        Some(provider(args.provider)?)
    } else {
        None
    };
    for topology in topologies {
        let label = format!("{topology:?}").to_lowercase();
        bar.set_message(format!("{label}: starting Redis"));
        let target = match (&args.url, provider) {
            (Some(url), _) => Target::connect(url).await,
            (None, Some(provider)) => Target::start(topology, provider).await,
            (None, None) => Err(BenchError::Invalid("no Redis".into())),
        };
        let target = match target {
            Ok(target) => target,
            Err(e) => {
                bar.println(format!("{label}: cannot run: {e}"));
                failures.push((label, e.to_string()));
                continue;
            }
        };
        match suite::run(plan, &target, &run, &bar).await {
            Ok(r) => results.push(r),
            Err(e) => {
                bar.println(format!("{label}: failed: {e}"));
                failures.push((label, e.to_string()));
            }
        }
    }
    bar.finish_and_clear();
    Ok((results, failures))
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> ExitCode {
    let args = Args::parse();
    let plan = match plan(&args) {
        Ok(plan) => plan,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let started = Instant::now();
    let load_at_start = load_average();
    let (results, failures) = match run(&args, &plan).await {
        Ok(done) => done,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(1);
        }
    };
    let info = RunInfo {
        date: date(),
        commit: commit(),
        cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
        arguments: std::env::args().skip(1).collect::<Vec<_>>().join(" "),
        elapsed: started.elapsed(),
        failures: failures.clone(),
        load: (load_at_start, load_average()),
    };
    let text = report::render(&info, &plan, &results);
    if let Err(e) = std::fs::write(&args.out, &text) {
        eprintln!("cannot write {}: {e}", args.out.display());
        return ExitCode::from(1);
    }
    if !args.quiet {
        println!("{text}");
    }
    eprintln!(
        "report written to {} ({:.0} s)",
        args.out.display(),
        started.elapsed().as_secs_f64()
    );
    let lost: u64 = results
        .iter()
        .flat_map(|r| &r.lost)
        .filter(|l| l.subject.is_ours())
        .filter_map(|l| l.lost.as_ref().ok())
        .map(|l| l.lost)
        .sum();
    if lost > 0 {
        eprintln!("FAILED: our stores lost {lost} acknowledged update(s)");
        return ExitCode::from(1);
    }
    let failed: usize = results.iter().map(Results::failures_outside_peers).sum();
    if failed > 0 {
        eprintln!(
            "FAILED: {failed} step(s) of our stores or the floors failed (setup, cells, cost, \
             memory or lost-update runs; see the report)"
        );
        return ExitCode::from(1);
    }
    if !failures.is_empty() {
        eprintln!(
            "FAILED: {} topology run(s) did not complete",
            failures.len()
        );
        return ExitCode::from(1);
    }
    ExitCode::SUCCESS
}
