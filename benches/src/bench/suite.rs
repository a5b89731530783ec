//! One topology's whole run: build every subject against the same Redis, then measure cell
//! by cell with all subjects back to back (the starting subject rotates), so drift of a
//! shared, busy machine spreads over every subject instead of favouring whichever ran
//! first; then the Redis costs, memory and the lost-update comparison; then remove every
//! key the run wrote.

use indicatif::ProgressBar;

use super::actix;
use super::cost::Cost;
use super::deploy::Target;
use super::error::Result;
use super::lost::Lost;
use super::ours;
use super::plan::{COST_WORKLOADS, Plan, Size, SubjectKind, TARGET_CELLS, Workload};
use super::raw_fred;
use super::raw_redis::{self, Save};
use super::runner::CellStats;
use super::subject::{Bench, Erased, Support};
use super::targets::target_tasks;
use super::tower;

/// What a cell produced.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// Measured.
    Measured(CellStats),
    /// The subject's narrow cycle is its cycle (see the cycle cell).
    AsCycle,
    /// The subject cannot run it, and why.
    NotApplicable(String),
    /// The cell failed as a whole (for example, preparing sessions failed).
    Failed(String),
}

/// One measured cell.
#[derive(Debug, Clone)]
pub struct Cell {
    /// Which subject.
    pub subject: SubjectKind,
    /// Which workload.
    pub workload: Workload,
    /// Session size.
    pub size: Size,
    /// Concurrent tasks.
    pub tasks: usize,
    /// Result.
    pub outcome: Outcome,
}

impl Cell {
    /// Whether this is a measurement of that cell.
    fn is(&self, subject: SubjectKind, workload: Workload, size: Size, tasks: usize) -> bool {
        self.subject == subject
            && self.workload == workload
            && self.size == size
            && self.tasks == tasks
    }
}

/// One cost run.
#[derive(Debug, Clone)]
pub struct CostRow {
    /// Which subject.
    pub subject: SubjectKind,
    /// Cycle or narrow cycle.
    pub workload: Workload,
    /// Session size.
    pub size: Size,
    /// Result.
    pub cost: Result<Cost, String>,
}

/// Memory of one session.
#[derive(Debug, Clone)]
pub struct MemoryRow {
    /// Which subject.
    pub subject: SubjectKind,
    /// Session size.
    pub size: Size,
    /// `MEMORY USAGE` in bytes.
    pub bytes: Result<u64, String>,
}

/// One lost-update run.
#[derive(Debug, Clone)]
pub struct LostRow {
    /// Which subject.
    pub subject: SubjectKind,
    /// Concurrent cycles per round.
    pub tasks: usize,
    /// Result.
    pub lost: Result<Lost, String>,
}

/// Everything measured on one topology.
#[derive(Debug, Clone)]
pub struct Results {
    /// `standalone` or `cluster`.
    pub topology: &'static str,
    /// Where Redis came from.
    pub source: String,
    /// Redis version.
    pub redis_version: String,
    /// Master addresses.
    pub masters: Vec<String>,
    /// Per subject: available, or why not.
    pub subjects: Vec<(SubjectKind, Result<(), String>)>,
    /// Throughput cells.
    pub cells: Vec<Cell>,
    /// Further rounds of the target cells ([`Plan::target_repeats`]).
    pub repeats: Vec<Cell>,
    /// Cost runs.
    pub costs: Vec<CostRow>,
    /// Memory per session.
    pub memory: Vec<MemoryRow>,
    /// Lost-update runs.
    pub lost: Vec<LostRow>,
    /// The masters' CPU while idle, in ms per second of wall time (background work).
    pub idle_cpu_ms_per_s: Option<f64>,
    /// Keys removed at the end (the run's own).
    pub cleaned: usize,
    /// Wall time of this topology's run.
    pub elapsed: std::time::Duration,
}

/// The key prefix of `kind` in this run (tower-sessions' keys have none: it names keys by
/// record id only; the run deletes those it created).
fn namespace(kind: SubjectKind, run: &str) -> Option<String> {
    let short = match kind {
        SubjectKind::OursRedis => "or",
        SubjectKind::OursFred => "of",
        SubjectKind::RawRedis => "rr",
        SubjectKind::RawFred => "rf",
        SubjectKind::ScriptFloor => "sf",
        SubjectKind::CheckFloor => "cf",
        SubjectKind::ActixSession => "ac",
        SubjectKind::TowerSessionsCompat => "tc",
        SubjectKind::TowerSessionsCompatFred => "tf",
        SubjectKind::TowerSessions => return None,
    };
    Some(format!("sb{run}{short}"))
}

async fn build(kind: SubjectKind, target: &Target, run: &str) -> Result<Box<dyn Bench>> {
    let ns = namespace(kind, run).unwrap_or_default();
    let url = target.url.as_str();
    Ok(match kind {
        SubjectKind::OursRedis => Erased::boxed(kind, ours::redis(url, &ns).await?),
        SubjectKind::OursFred => Erased::boxed(kind, ours::fred(url, &ns).await?),
        SubjectKind::RawRedis => {
            Erased::boxed(kind, raw_redis::connect(url, &ns, Save::Plain).await?)
        }
        SubjectKind::ScriptFloor => {
            Erased::boxed(kind, raw_redis::connect(url, &ns, Save::Script).await?)
        }
        SubjectKind::CheckFloor => {
            Erased::boxed(kind, raw_redis::connect(url, &ns, Save::Checked).await?)
        }
        SubjectKind::RawFred => Erased::boxed(kind, raw_fred::connect(url, &ns).await?),
        SubjectKind::TowerSessions => Erased::boxed(kind, tower::peer(url, kind.name()).await?),
        SubjectKind::TowerSessionsCompat => {
            Erased::boxed(kind, tower::compat_redis(url, &ns, kind.name()).await?)
        }
        SubjectKind::TowerSessionsCompatFred => {
            Erased::boxed(kind, tower::compat_fred(url, &ns, kind.name()).await?)
        }
        SubjectKind::ActixSession => {
            Erased::boxed(kind, actix::connect(url, &format!("{ns}:")).await?)
        }
    })
}

/// Steps [`run`] reports to the progress bar for `plan`.
pub fn steps(plan: &Plan) -> u64 {
    let n = plan.subjects.len() as u64;
    let sizes = plan.sizes.len() as u64;
    let cells = plan.workloads.len() as u64 * sizes * plan.concurrency.len() as u64 * n;
    let repeats = (plan.target_repeats * TARGET_CELLS.len()) as u64 * n;
    let costs = (COST_WORKLOADS.len() as u64 + 1) * sizes * n;
    cells + repeats + costs + plan.lost_tasks.len() as u64 * n
}

/// Runs `plan` on `target`; `run` is this run's random key prefix part.
pub async fn run(plan: &Plan, target: &Target, run: &str, bar: &ProgressBar) -> Result<Results> {
    let started = std::time::Instant::now();
    let topology = target.label;
    let mut results = Results::new(
        topology,
        target.source.clone(),
        target.redis_version().await?,
        target.masters(),
    );
    let mut benches: Vec<Box<dyn Bench>> = Vec::new();
    for &kind in &plan.subjects {
        bar.set_message(format!("{topology}: connecting {}", kind.name()));
        match build(kind, target, run).await {
            Ok(bench) => {
                benches.push(bench);
                results.subjects.push((kind, Ok(())));
            }
            Err(e) => results.subjects.push((kind, Err(e.to_string()))),
        }
    }
    let unavailable: Vec<(SubjectKind, String)> = results
        .subjects
        .iter()
        .filter_map(|(k, r)| r.as_ref().err().map(|e| (*k, format!("n/a: {e}"))))
        .collect();

    // Memory per session.
    for &size in &plan.sizes {
        for bench in &benches {
            bar.set_message(format!(
                "{topology}: memory {} {}",
                bench.kind().name(),
                size.name()
            ));
            let bytes = bench.memory(target, size).await.map_err(|e| e.to_string());
            results.memory.push(MemoryRow {
                subject: bench.kind(),
                size,
                bytes,
            });
        }
    }

    // Throughput cells, all subjects back to back.
    let mut index = 0usize;
    for &size in &plan.sizes {
        for &workload in &plan.workloads {
            for &tasks in &plan.concurrency {
                for (kind, why) in &unavailable {
                    results.cells.push(Cell {
                        subject: *kind,
                        workload,
                        size,
                        tasks,
                        outcome: Outcome::NotApplicable(why.clone()),
                    });
                    bar.inc(1);
                }
                for i in 0..benches.len() {
                    let bench = &benches[(i + index) % benches.len()];
                    bar.set_message(format!(
                        "{topology}: {} {} x{tasks} {}",
                        workload.name(),
                        size.name(),
                        bench.kind().name()
                    ));
                    let outcome = match bench.support(workload) {
                        Support::Native => {
                            match bench
                                .measure(target, workload, size, tasks, plan.timing)
                                .await
                            {
                                Ok(stats) => Outcome::Measured(stats),
                                Err(e) => Outcome::Failed(e.to_string()),
                            }
                        }
                        Support::AsCycle => Outcome::AsCycle,
                        Support::Unsupported(why) => Outcome::NotApplicable(why.to_owned()),
                    };
                    results.cells.push(Cell {
                        subject: bench.kind(),
                        workload,
                        size,
                        tasks,
                        outcome,
                    });
                    bar.inc(1);
                }
                index += 1;
            }
        }
    }

    // The target cells again, every subject in turn each round (starting with another one
    // each time), so each target's ratio is a ratio of medians over windows spread across
    // the run instead of two single 500 ms windows.
    let t = target_tasks(plan);
    for round in 0..plan.target_repeats {
        for (workload, size) in TARGET_CELLS {
            let planned = plan.workloads.contains(&workload) && plan.sizes.contains(&size);
            for i in 0..benches.len() {
                bar.inc(1);
                let bench = &benches[(i + round) % benches.len()];
                if !planned || bench.support(workload) != Support::Native {
                    continue;
                }
                bar.set_message(format!(
                    "{topology}: target cell again ({}/{}): {} {} x{t} {}",
                    round + 1,
                    plan.target_repeats,
                    workload.name(),
                    size.name(),
                    bench.kind().name()
                ));
                let outcome = match bench.measure(target, workload, size, t, plan.timing).await {
                    Ok(stats) => Outcome::Measured(stats),
                    Err(e) => Outcome::Failed(e.to_string()),
                };
                results.repeats.push(Cell {
                    subject: bench.kind(),
                    workload,
                    size,
                    tasks: t,
                    outcome,
                });
            }
        }
        bar.inc((TARGET_CELLS.len() * unavailable.len()) as u64);
    }

    // The servers' background CPU, for reading the cost runs.
    bar.set_message(format!("{topology}: idle server CPU"));
    results.idle_cpu_ms_per_s = idle_cpu(target).await.ok();

    // Redis cost per operation of the cost workloads a subject has (a narrow cycle only
    // where it is native).
    for &size in &plan.sizes {
        for workload in COST_WORKLOADS {
            for bench in &benches {
                bar.inc(1);
                let skip = match bench.support(workload) {
                    Support::Native => false,
                    Support::AsCycle => true,
                    Support::Unsupported(_) => true,
                };
                if skip {
                    continue;
                }
                bar.set_message(format!(
                    "{topology}: Redis cost of {} {} {}",
                    workload.name(),
                    size.name(),
                    bench.kind().name()
                ));
                let cost = bench
                    .cost(target, workload, size, plan.cost_tasks, plan.cost_time)
                    .await
                    .map_err(|e| e.to_string());
                results.costs.push(CostRow {
                    subject: bench.kind(),
                    workload,
                    size,
                    cost,
                });
            }
        }
        bar.inc((benches.len() + (COST_WORKLOADS.len() + 1) * unavailable.len()) as u64);
    }

    // Lost updates.
    for &tasks in &plan.lost_tasks {
        for bench in &benches {
            bar.set_message(format!(
                "{topology}: lost updates, {tasks} tasks, {}",
                bench.kind().name()
            ));
            let lost = bench
                .lost(target, tasks, plan.lost_rounds)
                .await
                .map_err(|e| e.to_string());
            results.lost.push(LostRow {
                subject: bench.kind(),
                tasks,
                lost,
            });
            bar.inc(1);
        }
        bar.inc(unavailable.len() as u64);
    }

    drop(benches);
    for kind in SubjectKind::ALL {
        if let Some(ns) = namespace(kind, run) {
            results.cleaned += target.delete_prefix(&format!("{ns}:")).await?;
        }
    }
    results.elapsed = started.elapsed();
    Ok(results)
}

impl Results {
    /// Nothing measured yet on `topology`, a deployment from `source` running
    /// `redis_version` with these masters.
    pub fn new(
        topology: &'static str,
        source: String,
        redis_version: String,
        masters: Vec<String>,
    ) -> Self {
        Results {
            topology,
            source,
            redis_version,
            masters,
            subjects: Vec::new(),
            cells: Vec::new(),
            repeats: Vec::new(),
            costs: Vec::new(),
            memory: Vec::new(),
            lost: Vec::new(),
            idle_cpu_ms_per_s: None,
            cleaned: 0,
            elapsed: Default::default(),
        }
    }

    /// How many steps of our stores, the compatibility store and the floors failed: setup, a
    /// cell or an operation in one, a cost run or a cycle in one, a memory reading, a
    /// lost-update run or a cycle in one. Peers are left out, as they may fail where they
    /// cannot work (actix-session on a cluster). Lost updates are not failures here (the
    /// compatibility store may lose some by design; the binary checks ours').
    pub fn failures_outside_peers(&self) -> usize {
        let mine = |k: &SubjectKind| !k.is_peer();
        let setup = self.subjects.iter().filter(|(k, r)| mine(k) && r.is_err());
        let cells = self.cells.iter().chain(&self.repeats).filter(|c| {
            mine(&c.subject)
                && match &c.outcome {
                    Outcome::Failed(_) => true,
                    Outcome::Measured(stats) => stats.errors > 0,
                    Outcome::AsCycle | Outcome::NotApplicable(_) => false,
                }
        });
        let costs = self
            .costs
            .iter()
            .filter(|c| mine(&c.subject) && c.cost.as_ref().map_or(true, |cost| cost.errors > 0));
        let memory = self
            .memory
            .iter()
            .filter(|m| mine(&m.subject) && m.bytes.is_err());
        let lost = self
            .lost
            .iter()
            .filter(|l| mine(&l.subject) && l.lost.as_ref().map_or(true, |l| l.errors > 0));
        setup.count() + cells.count() + costs.count() + memory.count() + lost.count()
    }

    /// Whether `subject` ran on this topology.
    pub fn available(&self, subject: SubjectKind) -> bool {
        self.subjects
            .iter()
            .any(|(k, r)| *k == subject && r.is_ok())
    }

    /// The outcome of a cell, if it was planned.
    pub fn outcome(
        &self,
        subject: SubjectKind,
        workload: Workload,
        size: Size,
        tasks: usize,
    ) -> Option<&Outcome> {
        self.cells
            .iter()
            .find(|c| c.is(subject, workload, size, tasks))
            .map(|c| &c.outcome)
    }

    /// A cell's measurement; a narrow cycle that is the subject's cycle reads the cycle.
    pub fn stats(
        &self,
        subject: SubjectKind,
        workload: Workload,
        size: Size,
        tasks: usize,
    ) -> Option<&CellStats> {
        match self.outcome(subject, workload, size, tasks)? {
            Outcome::Measured(stats) => Some(stats),
            Outcome::AsCycle => self.stats(subject, Workload::Cycle, size, tasks),
            Outcome::NotApplicable(_) | Outcome::Failed(_) => None,
        }
    }

    /// Successful operations per second of a cell (see [`Results::stats`]).
    pub fn ops(
        &self,
        subject: SubjectKind,
        workload: Workload,
        size: Size,
        tasks: usize,
    ) -> Option<f64> {
        self.stats(subject, workload, size, tasks)
            .filter(|s| s.ops > 0)
            .map(CellStats::ops_per_sec)
    }

    /// Every measured rate of a cell: the matrix's, then its [repeats](Results::repeats), in
    /// the order they ran. A narrow cycle that is the subject's cycle reads the cycle.
    pub fn samples(
        &self,
        subject: SubjectKind,
        workload: Workload,
        size: Size,
        tasks: usize,
    ) -> Vec<f64> {
        let workload = match self.outcome(subject, workload, size, tasks) {
            Some(Outcome::AsCycle) => Workload::Cycle,
            _ => workload,
        };
        let again = self
            .repeats
            .iter()
            .filter(|c| c.is(subject, workload, size, tasks))
            .filter_map(|c| match &c.outcome {
                Outcome::Measured(s) if s.ops > 0 => Some(s.ops_per_sec()),
                _ => None,
            });
        self.ops(subject, workload, size, tasks)
            .into_iter()
            .chain(again)
            .collect()
    }

    /// A cost run; the narrow cycle of a subject without one reads its cycle.
    pub fn cost(&self, subject: SubjectKind, workload: Workload, size: Size) -> Option<&Cost> {
        let find = |w: Workload| {
            self.costs
                .iter()
                .find(|c| c.subject == subject && c.workload == w && c.size == size)
                .and_then(|c| c.cost.as_ref().ok())
                .filter(|c| c.cycles > 0)
        };
        find(workload).or_else(|| {
            (workload == Workload::Narrow && !subject.is_ours() && !is_raw(subject))
                .then(|| find(Workload::Cycle))
                .flatten()
        })
    }
}

/// The masters' CPU over one idle second, in ms.
async fn idle_cpu(target: &Target) -> Result<f64> {
    let before = target.snapshot().await?;
    let started = std::time::Instant::now();
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    let after = target.snapshot().await?;
    Ok(before.until(&after).cpu_seconds * 1e3 / started.elapsed().as_secs_f64())
}

/// The middle value (the mean of the two middle ones for an even count).
pub fn median(mut values: Vec<f64>) -> Option<f64> {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(values[n / 2]),
        _ => Some((values[n / 2 - 1] + values[n / 2]) / 2.0),
    }
}

fn is_raw(subject: SubjectKind) -> bool {
    matches!(
        subject,
        SubjectKind::RawRedis
            | SubjectKind::RawFred
            | SubjectKind::ScriptFloor
            | SubjectKind::CheckFloor
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cell(subject: SubjectKind, outcome: Outcome) -> Cell {
        Cell {
            subject,
            workload: Workload::Cycle,
            size: Size::One,
            tasks: 1,
            outcome,
        }
    }

    fn measured(errors: u64) -> Outcome {
        Outcome::Measured(CellStats {
            ops: 10,
            errors,
            first_error: None,
            window: std::time::Duration::from_millis(100),
            p50: Default::default(),
            p99: Default::default(),
        })
    }

    #[test]
    fn failures_count_ours_and_the_floors_but_not_peers() {
        let mut r = Results::new("standalone", String::new(), String::new(), Vec::new());
        r.subjects = vec![
            (SubjectKind::ActixSession, Err("no cluster".into())),
            (SubjectKind::OursRedis, Ok(())),
        ];
        r.cells = vec![
            cell(SubjectKind::ActixSession, Outcome::Failed("MOVED".into())),
            cell(SubjectKind::OursRedis, measured(0)),
            cell(SubjectKind::RawFred, Outcome::NotApplicable("n/a".into())),
        ];
        assert_eq!(r.failures_outside_peers(), 0);

        r.subjects
            .push((SubjectKind::ScriptFloor, Err("script refused".into())));
        r.cells.push(cell(SubjectKind::OursFred, measured(1)));
        r.repeats.push(cell(
            SubjectKind::RawRedis,
            Outcome::Failed("timeout".into()),
        ));
        r.memory.push(MemoryRow {
            subject: SubjectKind::OursRedis,
            size: Size::One,
            bytes: Err("gone".into()),
        });
        r.lost.push(LostRow {
            subject: SubjectKind::TowerSessions,
            tasks: 32,
            lost: Err("peer".into()),
        });
        assert_eq!(r.failures_outside_peers(), 4);

        // The compatibility store is our code, not a peer: its failures count.
        r.cells.push(cell(
            SubjectKind::TowerSessionsCompat,
            Outcome::Failed("decode".into()),
        ));
        assert_eq!(r.failures_outside_peers(), 5);
    }

    #[test]
    fn median_takes_the_middle() {
        assert_eq!(median(Vec::new()), None);
        assert_eq!(median(vec![7.0]), Some(7.0));
        assert_eq!(median(vec![3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(vec![4.0, 1.0, 3.0, 2.0]), Some(2.5));
    }
}
