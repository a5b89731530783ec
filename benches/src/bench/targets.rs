//! The performance targets, judged from the measured numbers only: each check says
//! what was compared, the figures, and met / NOT met (or that it could not be judged because
//! a number is missing). Nothing here adjusts a measurement.
//!
//! The targets, for each of our adapters on each topology, at [`target_tasks`]:
//!
//! 1. load, 1 x 32 B and 10 x 100 B: >= 1.0 x the fastest peer;
//! 2. Redis CPU per load, the same sizes: <= 1.0 x the cheapest peer;
//! 3. cycle, 100 x 1 KiB: >= 1.0 x the fastest peer;
//! 4. web-mix, 1 x 32 B and 10 x 100 B: >= 1.2 x the fastest peer and Redis CPU per
//!    operation <= 0.8 x the cheapest peer, the peers configured to slide the idle expiry as
//!    ours do ([`Workload::WebMix`]). Their defaults ([`Workload::WebMixDefault`]) log an
//!    active user out at the timeout, which is not the same service, so those figures are
//!    shown for information and never compared with;
//! 5. cycle, 1 x 32 B: >= 0.8 x the fastest peer and >= 0.95 x the script floor (the best
//!    any store whose save checks a condition atomically can do over redis-rs), and Redis
//!    CPU per cycle <= 1.5 x the cheapest peer;
//! 6. narrow cycle, 100 x 1 KiB: >= 10 x the fastest peer's cycle; apply of 1 attribute,
//!    100 x 1 KiB: >= 5 x the fastest peer's whole-record save;
//! 7. Redis memory per session, 1 x 32 B and 10 x 100 B: <= 1.0 x the smallest peer;
//! 8. no lost updates (the peers' losses shown as measured).
//!
//! And one for the compatibility store (tower-sessions' `SessionStore` over ours: each of
//! `tower-sessions-compat` and `tower-sessions-compat-fred`, on each topology it ran on), from
//! issue 22:
//!
//! 9. Redis CPU per cycle, 1 x 32 B: <= 1.5 x tower-sessions' (tower-sessions-redis-store), its
//!    commands and round trips per cycle and the other sizes' ratios shown with it.
//!
//! Throughput figures are medians over the matrix's window and the target rounds of the
//! [`TARGET_CELLS`](super::plan::TARGET_CELLS); Redis CPU and memory come from one run each.
//! A peer that could not run on a topology (actix-session on a cluster) has no figures there,
//! so it is not counted.

use super::cost::Cost;
use super::plan::{Plan, Size, SubjectKind, Workload};
use super::suite::{Results, median};

/// One target for one of our adapters on one topology.
#[derive(Debug, Clone)]
pub struct Check {
    /// `standalone` or `cluster`.
    pub topology: &'static str,
    /// The target, in words.
    pub target: String,
    /// Which of our stores.
    pub adapter: &'static str,
    /// The figures it was judged on.
    pub measured: String,
    /// Met, not met, or not judged.
    pub met: Option<bool>,
}

const PEERS: [SubjectKind; 2] = [SubjectKind::TowerSessions, SubjectKind::ActixSession];

/// The task count the "at 256 tasks" targets use: 256 if measured, else the largest.
pub fn target_tasks(plan: &Plan) -> usize {
    if plan.concurrency.contains(&256) {
        256
    } else {
        plan.concurrency.iter().copied().max().unwrap_or(1)
    }
}

/// Checks every target for every one of our adapters in `results`.
pub fn evaluate(plan: &Plan, results: &Results) -> Vec<Check> {
    let t = target_tasks(plan);
    let mut checks = Vec::new();
    let ours = [SubjectKind::OursRedis, SubjectKind::OursFred]
        .into_iter()
        .filter(|k| results.available(*k));
    for adapter in ours {
        let mut check = |target: String, measured: String, met: Option<bool>| {
            checks.push(Check {
                topology: results.topology,
                target,
                adapter: adapter.name(),
                measured,
                met,
            })
        };
        let throughput = |workload, peer_workload, size, tasks, peer: &str| {
            Compared::throughput(results, adapter, workload, peer_workload, size, tasks, peer)
        };
        let cpu =
            |workload, size, peer: &str| Compared::cpu(results, adapter, workload, size, peer);

        // 1. Load at 256 tasks: >= 1.0 x the fastest peer.
        for size in [Size::One, Size::Ten] {
            let c = throughput(Workload::Load, Workload::Load, size, t, "fastest peer");
            check(
                format!("load, {t} tasks, {}: >= 1.0 x fastest peer", size.name()),
                c.text,
                judged(c.ratio, |r| r >= 1.0),
            );
        }

        // 2. Redis CPU per load: <= 1.0 x the cheapest peer.
        for size in [Size::One, Size::Ten] {
            let c = cpu(Workload::Load, size, "cheapest peer");
            check(
                format!(
                    "Redis CPU per load, {}: <= 1.0 x cheapest peer",
                    size.name()
                ),
                c.text,
                judged(c.ratio, |r| r <= 1.0),
            );
        }

        // 3. Full cycle on 100 x 1 KiB at 256 tasks: >= 1.0 x the fastest peer.
        let c = throughput(
            Workload::Cycle,
            Workload::Cycle,
            Size::Hundred,
            t,
            "fastest peer",
        );
        check(
            format!(
                "cycle, {t} tasks, {}: >= 1.0 x fastest peer",
                Size::Hundred.name()
            ),
            c.text,
            judged(c.ratio, |r| r >= 1.0),
        );

        // 4. Web-mix against the peers that slide the expiry: >= 1.2 x the fastest, and
        // Redis CPU <= 0.8 x the cheapest. Their defaults are shown, not compared with.
        for size in [Size::One, Size::Ten] {
            let c = throughput(
                Workload::WebMix,
                Workload::WebMix,
                size,
                t,
                "fastest sliding peer",
            );
            let rounds_ours = results.samples(adapter, Workload::WebMix, size, t).len();
            let defaults = PEERS.iter().filter_map(|&p| {
                let samples = results.samples(p, Workload::WebMixDefault, size, t);
                let n = samples.len();
                median(samples).map(|ops| {
                    let windows = match n {
                        1 if rounds_ours > 1 => " (one window)".to_owned(),
                        1 => String::new(),
                        n => format!(" (median of {n} rounds)"),
                    };
                    format!("{} {}{windows}", p.name(), ops_per_s(ops))
                })
            });
            check(
                format!(
                    "web-mix, {t} tasks, {}: >= 1.2 x fastest sliding peer",
                    size.name()
                ),
                format!("{}{}", c.text, default_note(defaults)),
                judged(c.ratio, |r| r >= 1.2),
            );

            let c = cpu(Workload::WebMix, size, "cheapest sliding peer");
            let defaults = PEERS.iter().filter_map(|&p| {
                cpu_us(results, p, Workload::WebMixDefault, size)
                    .map(|us| format!("{} {}", p.name(), micros(us)))
            });
            check(
                format!(
                    "Redis CPU per web-mix operation, {}: <= 0.8 x cheapest sliding peer",
                    size.name()
                ),
                format!("{}{}", c.text, default_note(defaults)),
                judged(c.ratio, |r| r <= 0.8),
            );
        }

        // 5. Cycle on 1 attribute at 256 tasks: >= 0.8 x the fastest peer and >= 0.95 x the
        // script floor; Redis CPU per cycle <= 1.5 x the cheapest peer.
        let c = throughput(
            Workload::Cycle,
            Workload::Cycle,
            Size::One,
            t,
            "fastest peer",
        );
        let script_floor = median_ops(
            results,
            SubjectKind::ScriptFloor,
            Workload::Cycle,
            Size::One,
            t,
        );
        let to_floor = c.mine.zip(script_floor).map(|(m, f)| m / f);
        // For reading the target: the least a save that checks the session is live pays.
        let check_floor = median_ops(
            results,
            SubjectKind::CheckFloor,
            Workload::Cycle,
            Size::One,
            t,
        );
        check(
            format!(
                "cycle, {t} tasks, {}: >= 0.8 x fastest peer and >= 0.95 x script floor",
                Size::One.name()
            ),
            format!(
                "{}; script floor (redis-rs) {}: ours/script floor {}; check floor {}: \
                 ours/check floor {}",
                c.text,
                shown(script_floor, ops_per_s),
                fmt_ratio(to_floor),
                shown(check_floor, ops_per_s),
                fmt_ratio(c.mine.zip(check_floor).map(|(m, f)| m / f)),
            ),
            both(
                judged(c.ratio, |r| r >= 0.8),
                judged(to_floor, |r| r >= 0.95),
            ),
        );

        let c = cpu(Workload::Cycle, Size::One, "cheapest peer");
        let script_floor = cpu_us(
            results,
            SubjectKind::ScriptFloor,
            Workload::Cycle,
            Size::One,
        );
        let check_floor = cpu_us(results, SubjectKind::CheckFloor, Workload::Cycle, Size::One);
        check(
            format!(
                "Redis CPU per cycle, {}: <= 1.5 x cheapest peer",
                Size::One.name()
            ),
            format!(
                "{}{}{}",
                c.text,
                floor_note("script floor", script_floor, c.peer, micros),
                floor_note("check floor", check_floor, c.peer, micros)
            ),
            judged(c.ratio, |r| r <= 1.5),
        );

        // 6. Apply of one attribute, 100 x 1 KiB: >= 5 x a peer's whole-record save.
        //    Narrow cycle, 100 x 1 KiB: >= 10 x the peers' cycle.
        for (workload, peer_workload, factor, what) in [
            (
                Workload::Narrow,
                Workload::Cycle,
                10.0,
                "narrow cycle, 100 x 1 KiB",
            ),
            (
                Workload::Apply,
                Workload::Apply,
                5.0,
                "apply of 1 attribute, 100 x 1 KiB",
            ),
        ] {
            let peer = if peer_workload == Workload::Apply {
                "fastest peer's whole-record save"
            } else {
                "fastest peer's cycle"
            };
            let c = throughput(workload, peer_workload, Size::Hundred, t, peer);
            let others: Vec<String> = plan
                .concurrency
                .iter()
                .filter(|&&n| n != t)
                .map(|&n| {
                    let ratio = throughput(workload, peer_workload, Size::Hundred, n, peer).ratio;
                    format!("{n} tasks {}", fmt_ratio(ratio))
                })
                .collect();
            check(
                format!("{what}, {t} tasks: >= {factor:.0} x {peer}"),
                if others.is_empty() {
                    c.text
                } else {
                    format!("{}; at {}", c.text, others.join(", "))
                },
                judged(c.ratio, |r| r >= factor),
            );
        }

        // 7. Redis memory per session: <= 1.0 x the smallest peer.
        for size in [Size::One, Size::Ten] {
            let c = Compared::memory(results, adapter, size);
            check(
                format!(
                    "Redis memory per session, {}: <= 1.0 x smallest peer",
                    size.name()
                ),
                c.text,
                judged(c.ratio, |r| r <= 1.0),
            );
        }

        // 8. Zero lost updates.
        let mine: Vec<_> = results
            .lost
            .iter()
            .filter(|l| l.subject == adapter)
            .collect();
        let acknowledged: u64 = mine
            .iter()
            .filter_map(|l| l.lost.as_ref().ok())
            .map(|l| l.acknowledged)
            .sum();
        let lost: u64 = mine
            .iter()
            .filter_map(|l| l.lost.as_ref().ok())
            .map(|l| l.lost)
            .sum();
        let failed = mine.iter().any(|l| l.lost.is_err()) || mine.is_empty();
        let peers: Vec<String> = PEERS
            .iter()
            .filter_map(|&p| {
                let rows: Vec<_> = results
                    .lost
                    .iter()
                    .filter(|l| l.subject == p)
                    .filter_map(|l| l.lost.as_ref().ok())
                    .collect();
                let a: u64 = rows.iter().map(|l| l.acknowledged).sum();
                let l: u64 = rows.iter().map(|l| l.lost).sum();
                (!rows.is_empty()).then(|| {
                    format!(
                        "{} {l} of {a} ({:.1} %)",
                        p.name(),
                        100.0 * l as f64 / a.max(1) as f64
                    )
                })
            })
            .collect();
        check(
            "lost updates: zero (peers as measured)".into(),
            format!(
                "{lost} of {acknowledged} acknowledged lost; peers: {}",
                if peers.is_empty() {
                    "not measured".into()
                } else {
                    peers.join(", ")
                }
            ),
            (!failed).then_some(lost == 0),
        );
    }
    for kind in [
        SubjectKind::TowerSessionsCompat,
        SubjectKind::TowerSessionsCompatFred,
    ] {
        if results.available(kind) {
            checks.push(compat(plan, results, kind));
        }
    }
    checks
}

/// Target 9, of the compatibility store `kind`: Redis CPU per 1-attribute cycle <= 1.5 x
/// tower-sessions'; commands and round trips per cycle, and the ratio on the run's other
/// sizes, for reading it.
fn compat(plan: &Plan, results: &Results, kind: SubjectKind) -> Check {
    const FACTOR: f64 = 1.5;
    let peer = SubjectKind::TowerSessions;
    let mine = results.cost(kind, Workload::Cycle, Size::One);
    let theirs = results.cost(peer, Workload::Cycle, Size::One);
    let ratio = mine.zip(theirs).map(|(m, p)| m.cpu_us / p.cpu_us);
    let mut measured = format!(
        "{} = {} {} ({})",
        shown(mine.map(|c| c.cpu_us), micros),
        fmt_ratio(ratio),
        peer.name(),
        shown(theirs.map(|c| c.cpu_us), micros),
    );
    if let Some((m, p)) = mine.zip(theirs) {
        // tower-sessions sends one command per round trip.
        let trips = |c: &Cost| c.round_trips.unwrap_or(c.commands);
        measured.push_str(&format!(
            "; commands per cycle {:.2} against {:.2}, round trips {:.2} against {:.2}",
            m.commands,
            p.commands,
            trips(m),
            trips(p)
        ));
    }
    let others: Vec<String> = plan
        .sizes
        .iter()
        .filter(|&&size| size != Size::One)
        .filter_map(|&size| {
            let m = results.cost(kind, Workload::Cycle, size)?;
            let p = results.cost(peer, Workload::Cycle, size)?;
            Some(format!(
                "{} {} = {}",
                size.name(),
                micros(m.cpu_us),
                fmt_ratio(Some(m.cpu_us / p.cpu_us))
            ))
        })
        .collect();
    if !others.is_empty() {
        measured.push_str(&format!("; for information: {}", others.join(", ")));
    }
    Check {
        topology: results.topology,
        target: format!(
            "Redis CPU per cycle, {}: <= {FACTOR} x {}",
            Size::One.name(),
            peer.name()
        ),
        adapter: kind.name(),
        measured,
        met: judged(ratio, |r| r <= FACTOR),
    }
}

/// One of our figures against the best peer's: the figures, their ratio (ours / peer), and
/// the text a check shows.
struct Compared {
    /// Ours.
    mine: Option<f64>,
    /// The peer compared with, and its figure.
    peer: Option<(SubjectKind, f64)>,
    /// Ours / the peer's.
    ratio: Option<f64>,
    /// What was compared, in words.
    text: String,
}

impl Compared {
    /// Our median rate of `workload` against the fastest peer's median rate of
    /// `peer_workload` (same size and task count), with our raw client on the same layout as
    /// the floor. `peer` names the peer compared with in the text.
    fn throughput(
        results: &Results,
        adapter: SubjectKind,
        workload: Workload,
        peer_workload: Workload,
        size: Size,
        tasks: usize,
        peer: &str,
    ) -> Self {
        let mine = median_ops(results, adapter, workload, size, tasks);
        let fastest = pick(
            PEERS
                .iter()
                .map(|&p| (p, median_ops(results, p, peer_workload, size, tasks))),
            true,
        );
        let floor = adapter
            .raw_floor()
            .and_then(|raw| median_ops(results, raw, workload, size, tasks).map(|r| (raw, r)));
        let text = format!(
            "{} = {} the {peer} ({}); raw floor {}: ours/raw {}{}",
            shown(mine, ops_per_s),
            fmt_ratio(ratio(mine, fastest)),
            named(fastest, ops_per_s),
            named(floor, ops_per_s),
            fmt_ratio(ratio(mine, floor)),
            rounds(results, adapter, workload, size, tasks),
        );
        Compared {
            mine,
            peer: fastest,
            ratio: ratio(mine, fastest),
            text,
        }
    }

    /// Our Redis CPU per operation of `workload` against the cheapest peer's (same
    /// workload and size). `peer` names the peer compared with in the text.
    fn cpu(
        results: &Results,
        adapter: SubjectKind,
        workload: Workload,
        size: Size,
        peer: &str,
    ) -> Self {
        let mine = cpu_us(results, adapter, workload, size);
        let cheapest = pick(
            PEERS
                .iter()
                .map(|&p| (p, cpu_us(results, p, workload, size))),
            false,
        );
        let text = format!(
            "{} = {} the {peer} ({})",
            shown(mine, micros),
            fmt_ratio(ratio(mine, cheapest)),
            named(cheapest, micros),
        );
        Compared {
            mine,
            peer: cheapest,
            ratio: ratio(mine, cheapest),
            text,
        }
    }

    /// Our Redis memory per session against the smallest peer's.
    fn memory(results: &Results, adapter: SubjectKind, size: Size) -> Self {
        let mine = memory_bytes(results, adapter, size);
        let smallest = pick(
            PEERS.iter().map(|&p| (p, memory_bytes(results, p, size))),
            false,
        );
        let text = format!(
            "{} = {} the smallest peer ({})",
            shown(mine, bytes),
            fmt_ratio(ratio(mine, smallest)),
            named(smallest, bytes),
        );
        Compared {
            mine,
            peer: smallest,
            ratio: ratio(mine, smallest),
            text,
        }
    }
}

/// Ours / another's figure, when both were measured.
fn ratio(mine: Option<f64>, other: Option<(SubjectKind, f64)>) -> Option<f64> {
    mine.zip(other).map(|(m, (_, o))| m / o)
}

/// The best (largest) or cheapest (smallest) of the peers' figures, with who has it.
fn pick(
    values: impl Iterator<Item = (SubjectKind, Option<f64>)>,
    largest: bool,
) -> Option<(SubjectKind, f64)> {
    values
        .filter_map(|(k, v)| v.map(|v| (k, v)))
        .reduce(|a, b| if (b.1 > a.1) == largest { b } else { a })
}

fn judged(ratio: Option<f64>, ok: impl Fn(f64) -> bool) -> Option<bool> {
    ratio.map(ok)
}

/// A target with two conditions: NOT met as soon as one is known to fail (the other cannot
/// save it), met when both hold, not judged otherwise.
fn both(a: Option<bool>, b: Option<bool>) -> Option<bool> {
    match (a, b) {
        (Some(false), _) | (_, Some(false)) => Some(false),
        (Some(true), Some(true)) => Some(true),
        _ => None,
    }
}

fn fmt_ratio(r: Option<f64>) -> String {
    r.map_or("-".into(), |r| format!("{r:.2} x"))
}

/// The median rate of a cell over the matrix's window and the target rounds.
fn median_ops(
    results: &Results,
    subject: SubjectKind,
    workload: Workload,
    size: Size,
    tasks: usize,
) -> Option<f64> {
    median(results.samples(subject, workload, size, tasks))
}

/// Redis CPU per operation of a cost run, in µs.
fn cpu_us(results: &Results, subject: SubjectKind, workload: Workload, size: Size) -> Option<f64> {
    results.cost(subject, workload, size).map(|c| c.cpu_us)
}

/// `MEMORY USAGE` of one session, in bytes, if it was read.
fn memory_bytes(results: &Results, subject: SubjectKind, size: Size) -> Option<f64> {
    results
        .memory
        .iter()
        .find(|m| m.subject == subject && m.size == size)
        .and_then(|m| m.bytes.as_ref().ok())
        .map(|&b| b as f64)
}

/// How many rounds a cell's figure is the median of, when more than one.
fn rounds(
    results: &Results,
    subject: SubjectKind,
    workload: Workload,
    size: Size,
    tasks: usize,
) -> String {
    match results.samples(subject, workload, size, tasks).len() {
        0 | 1 => String::new(),
        n => format!(" (medians of {n} rounds each)"),
    }
}

/// The script floor's figure against the same peer figure, when both were measured: what a
/// store over redis-rs whose save is any script cannot beat on this Redis.
fn floor_note(
    name: &str,
    floor: Option<f64>,
    peer: Option<(SubjectKind, f64)>,
    show: impl Fn(f64) -> String,
) -> String {
    match floor.zip(peer) {
        Some((f, (_, p))) => format!(
            "; {name} (redis-rs) {} = {} the same peer",
            show(f),
            fmt_ratio(Some(f / p))
        ),
        None => String::new(),
    }
}

/// The peers' figures in their default configuration, for reading a web-mix target: they do
/// less work there (no sliding expiry), so they are shown but never compared with.
fn default_note(figures: impl Iterator<Item = String>) -> String {
    let figures: Vec<String> = figures.collect();
    if figures.is_empty() {
        String::new()
    } else {
        format!(
            "; for information, default, does not slide: {}",
            figures.join(", ")
        )
    }
}

fn shown(v: Option<f64>, show: impl Fn(f64) -> String) -> String {
    v.map_or("not measured".into(), show)
}

fn named(v: Option<(SubjectKind, f64)>, show: impl Fn(f64) -> String) -> String {
    v.map_or("none measured".into(), |(k, v)| {
        format!("{} {}", k.name(), show(v))
    })
}

fn ops_per_s(ops: f64) -> String {
    format!("{ops:.0} ops/s")
}

fn micros(us: f64) -> String {
    format!("{us:.1} µs")
}

fn bytes(b: f64) -> String {
    format!("{b:.0} B")
}

#[cfg(test)]
mod tests;
