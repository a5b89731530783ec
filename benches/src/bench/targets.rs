//! The performance targets, judged from the measured numbers only: each check says
//! what was compared, the figures, and met / NOT met (or that it could not be judged because
//! a number is missing). Nothing here adjusts a measurement.

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

fn fmt_ratio(r: Option<f64>) -> String {
    r.map_or("-".into(), |r| format!("{r:.2} x"))
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

        // 1. Request cycle at 256 tasks, 1 attribute: >= 1.0 x the fastest peer.
        let mine = median_ops(results, adapter, Workload::Cycle, Size::One, t);
        let peer = pick(
            PEERS
                .iter()
                .map(|&p| (p, median_ops(results, p, Workload::Cycle, Size::One, t))),
            true,
        );
        let ratio = mine.zip(peer).map(|(m, (_, p))| m / p);
        let floor = adapter.raw_floor().and_then(|raw| {
            median_ops(results, raw, Workload::Cycle, Size::One, t).map(|r| (raw, r))
        });
        let script_floor = median_ops(
            results,
            SubjectKind::ScriptFloor,
            Workload::Cycle,
            Size::One,
            t,
        );
        check(
            format!("cycle, {t} tasks, 1 attribute: >= 1.0 x fastest peer"),
            format!(
                "{} = {} the fastest peer ({}); raw floor {}: ours/raw {}{}{}",
                rate(mine),
                fmt_ratio(ratio),
                named_rate(peer),
                named_rate(floor),
                fmt_ratio(mine.zip(floor).map(|(m, (_, f))| m / f)),
                rounds(results, adapter, Workload::Cycle, Size::One, t),
                floor_note(script_floor, peer, |f| rate(Some(f))),
            ),
            judged(ratio, |r| r >= 1.0),
        );

        // 2. Redis CPU per cycle, 1 attribute: <= 1.0 x the cheapest peer.
        let cpu = |k: SubjectKind, w: Workload, s: Size| results.cost(k, w, s).map(|c| c.cpu_us);
        let mine = cpu(adapter, Workload::Cycle, Size::One);
        let peer = pick(
            PEERS
                .iter()
                .map(|&p| (p, cpu(p, Workload::Cycle, Size::One))),
            false,
        );
        let ratio = mine.zip(peer).map(|(m, (_, p))| m / p);
        let script_floor = cpu(SubjectKind::ScriptFloor, Workload::Cycle, Size::One);
        check(
            "Redis CPU per cycle, 1 attribute: <= 1.0 x cheapest peer".into(),
            format!(
                "{} = {} the cheapest peer ({}){}",
                micros(mine),
                fmt_ratio(ratio),
                named_micros(peer),
                floor_note(script_floor, peer, |f| micros(Some(f))),
            ),
            judged(ratio, |r| r <= 1.0),
        );

        // 3. Redis CPU per narrow cycle, 100 x 1 KiB: <= 0.5 x the cheapest peer's cycle.
        let mine = cpu(adapter, Workload::Narrow, Size::Hundred);
        let peer = pick(
            PEERS
                .iter()
                .map(|&p| (p, cpu(p, Workload::Cycle, Size::Hundred))),
            false,
        );
        let ratio = mine.zip(peer).map(|(m, (_, p))| m / p);
        check(
            "Redis CPU per narrow cycle, 100 x 1 KiB: <= 0.5 x cheapest peer's cycle".into(),
            format!(
                "{} = {} the cheapest peer ({})",
                micros(mine),
                fmt_ratio(ratio),
                named_micros(peer)
            ),
            judged(ratio, |r| r <= 0.5),
        );

        // 4. Apply of one attribute, 100 x 1 KiB: >= 5 x a peer's whole-record save.
        // 5. Narrow cycle, 100 x 1 KiB: >= 10 x the peers' cycle.
        for (workload, peer_workload, factor, what) in [
            (
                Workload::Apply,
                Workload::Apply,
                5.0,
                "apply of 1 attribute, 100 x 1 KiB",
            ),
            (
                Workload::Narrow,
                Workload::Cycle,
                10.0,
                "narrow cycle, 100 x 1 KiB",
            ),
        ] {
            let ratio_at = |tasks: usize| {
                let mine = median_ops(results, adapter, workload, Size::Hundred, tasks);
                let peer = pick(
                    PEERS.iter().map(|&p| {
                        let ops = median_ops(results, p, peer_workload, Size::Hundred, tasks);
                        (p, ops)
                    }),
                    true,
                );
                (mine, peer, mine.zip(peer).map(|(m, (_, p))| m / p))
            };
            let (mine, peer, ratio) = ratio_at(t);
            let others: Vec<String> = plan
                .concurrency
                .iter()
                .filter(|&&c| c != t)
                .map(|&c| format!("{c} tasks {}", fmt_ratio(ratio_at(c).2)))
                .collect();
            check(
                format!(
                    "{what}, {t} tasks: >= {factor:.0} x fastest peer's {}",
                    if peer_workload == Workload::Apply {
                        "whole-record save"
                    } else {
                        "cycle"
                    }
                ),
                format!(
                    "{} = {} the fastest peer ({}){}{}",
                    rate(mine),
                    fmt_ratio(ratio),
                    named_rate(peer),
                    rounds(results, adapter, workload, Size::Hundred, t),
                    if others.is_empty() {
                        String::new()
                    } else {
                        format!("; at {}", others.join(", "))
                    }
                ),
                judged(ratio, |r| r >= factor),
            );
        }

        // 6. Zero lost updates.
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
    checks
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
    floor: Option<f64>,
    peer: Option<(SubjectKind, f64)>,
    show: impl Fn(f64) -> String,
) -> String {
    match floor.zip(peer) {
        Some((f, (_, p))) => format!(
            "; script floor (redis-rs) {} = {} the same peer",
            show(f),
            fmt_ratio(Some(f / p))
        ),
        None => String::new(),
    }
}

fn rate(ops: Option<f64>) -> String {
    ops.map_or("not measured".into(), |o| format!("{o:.0} ops/s"))
}

fn named_rate(v: Option<(SubjectKind, f64)>) -> String {
    v.map_or("none measured".into(), |(k, o)| {
        format!("{} {o:.0} ops/s", k.name())
    })
}

fn micros(us: Option<f64>) -> String {
    us.map_or("not measured".into(), |u| format!("{u:.1} µs"))
}

fn named_micros(v: Option<(SubjectKind, f64)>) -> String {
    v.map_or("none measured".into(), |(k, u)| {
        format!("{} {u:.1} µs", k.name())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_script_floor_is_set_against_the_same_peer() {
        let peer = Some((SubjectKind::ActixSession, 6.0));
        let show = |f: f64| micros(Some(f));
        assert_eq!(
            floor_note(Some(9.0), peer, show),
            "; script floor (redis-rs) 9.0 µs = 1.50 x the same peer"
        );
        assert_eq!(floor_note(None, peer, show), "");
        assert_eq!(floor_note(Some(9.0), None, show), "");
    }
}
