//! Tests of the targets' judgement on constructed results: met, NOT met, not judged, and
//! that each target compares the right cells.

use std::time::Duration;

use super::*;
use crate::bench::cost::Cost;
use crate::bench::lost::Lost;
use crate::bench::plan::{TARGET_CELLS, Timing};
use crate::bench::runner::CellStats;
use crate::bench::suite::{Cell, CostRow, LostRow, MemoryRow, Outcome};
use SubjectKind::{ActixSession, CheckFloor, OursRedis, RawRedis, ScriptFloor, TowerSessions};

const T: usize = 256;

fn plan() -> Plan {
    Plan {
        subjects: SubjectKind::ALL.to_vec(),
        workloads: Workload::ALL.to_vec(),
        sizes: Size::ALL.to_vec(),
        concurrency: vec![1, T],
        timing: Timing {
            warmup: Duration::ZERO,
            measure: Duration::from_secs(1),
            max_ops: 1,
        },
        cost_time: Duration::from_secs(1),
        cost_tasks: 1,
        lost_tasks: vec![32],
        lost_rounds: 1,
        target_repeats: 0,
    }
}

/// Results where every subject ran and nothing is measured yet.
fn results() -> Results {
    let mut r = Results::new("standalone", String::new(), String::new(), Vec::new());
    r.subjects = SubjectKind::ALL.iter().map(|&k| (k, Ok(()))).collect();
    r
}

/// A measured cell at `T` tasks of `ops` operations in one second.
fn cell(subject: SubjectKind, workload: Workload, size: Size, ops: u64) -> Cell {
    Cell {
        subject,
        workload,
        size,
        tasks: T,
        outcome: Outcome::Measured(CellStats {
            ops,
            window: Duration::from_secs(1),
            ..Default::default()
        }),
    }
}

fn rate(r: &mut Results, subject: SubjectKind, workload: Workload, size: Size, ops: u64) {
    r.cells.push(cell(subject, workload, size, ops));
}

fn cpu(r: &mut Results, subject: SubjectKind, workload: Workload, size: Size, us: f64) {
    r.costs.push(CostRow {
        subject,
        workload,
        size,
        cost: Ok(Cost {
            cycles: 1000,
            cpu_us: us,
            ..Default::default()
        }),
    });
}

fn memory(r: &mut Results, subject: SubjectKind, size: Size, bytes: u64) {
    r.memory.push(MemoryRow {
        subject,
        size,
        bytes: Ok(bytes),
    });
}

/// The check of ours-redis whose target starts with `target`.
fn find<'a>(checks: &'a [Check], target: &str) -> &'a Check {
    checks
        .iter()
        .find(|c| c.adapter == "ours-redis" && c.target.starts_with(target))
        .unwrap_or_else(|| panic!("no check {target:?} in {checks:#?}"))
}

#[test]
fn met_missed_and_missing_figures_are_judged_as_such() {
    let mut r = results();
    // Load, 1 x 32 B: ours 1000 against the faster peer's 900: met.
    rate(&mut r, OursRedis, Workload::Load, Size::One, 1000);
    rate(&mut r, TowerSessions, Workload::Load, Size::One, 900);
    rate(&mut r, ActixSession, Workload::Load, Size::One, 800);
    rate(&mut r, RawRedis, Workload::Load, Size::One, 2000);
    // Load, 10 x 100 B: ours 700 against 900: NOT met.
    rate(&mut r, OursRedis, Workload::Load, Size::Ten, 700);
    rate(&mut r, ActixSession, Workload::Load, Size::Ten, 900);
    // Cycle, 100 x 1 KiB: ours not measured (the peer's is, below): not judged.
    // CPU per load: 5 µs against the cheaper peer's 6 µs (met); 9 against 6 (NOT met).
    cpu(&mut r, OursRedis, Workload::Load, Size::One, 5.0);
    cpu(&mut r, TowerSessions, Workload::Load, Size::One, 6.0);
    cpu(&mut r, ActixSession, Workload::Load, Size::One, 7.0);
    cpu(&mut r, OursRedis, Workload::Load, Size::Ten, 9.0);
    cpu(&mut r, TowerSessions, Workload::Load, Size::Ten, 6.0);
    // Memory: 100 B against the smaller peer's 150 B (met); ours missing on 10 x 100 B.
    memory(&mut r, OursRedis, Size::One, 100);
    memory(&mut r, TowerSessions, Size::One, 150);
    memory(&mut r, ActixSession, Size::One, 200);
    memory(&mut r, TowerSessions, Size::Ten, 400);
    // Narrow cycle, 100 x 1 KiB: 10 x the peer's cycle exactly is met.
    rate(&mut r, OursRedis, Workload::Narrow, Size::Hundred, 10_000);
    rate(&mut r, TowerSessions, Workload::Cycle, Size::Hundred, 1000);

    let checks = evaluate(&plan(), &r);
    let load = find(&checks, "load, 256 tasks, 1 x 32 B");
    assert_eq!(load.met, Some(true));
    assert_eq!(
        load.measured,
        "1000 ops/s = 1.11 x the fastest peer (tower-sessions 900 ops/s); \
         raw floor raw-redis 2000 ops/s: ours/raw 0.50 x"
    );
    assert_eq!(
        find(&checks, "load, 256 tasks, 10 x 100 B").met,
        Some(false)
    );
    let cycle = find(&checks, "cycle, 256 tasks, 100 x 1 KiB");
    assert_eq!(cycle.met, None);
    assert!(cycle.measured.starts_with("not measured"), "{cycle:?}");

    let cpu_one = find(&checks, "Redis CPU per load, 1 x 32 B");
    assert_eq!(cpu_one.met, Some(true));
    assert!(
        cpu_one.measured.contains("(tower-sessions 6.0 µs)"),
        "{cpu_one:?}"
    );
    assert_eq!(
        find(&checks, "Redis CPU per load, 10 x 100 B").met,
        Some(false)
    );

    let mem = find(&checks, "Redis memory per session, 1 x 32 B");
    assert_eq!(mem.met, Some(true));
    assert_eq!(
        mem.measured,
        "100 B = 0.67 x the smallest peer (tower-sessions 150 B)"
    );
    let mem = find(&checks, "Redis memory per session, 10 x 100 B");
    assert_eq!(mem.met, None);
    assert!(mem.measured.starts_with("not measured"), "{mem:?}");

    assert_eq!(find(&checks, "narrow cycle").met, Some(true));
    // Nothing measured for apply, web-mix or lost updates: none of them is judged.
    for target in ["apply", "web-mix", "Redis CPU per web-mix", "lost updates"] {
        assert_eq!(find(&checks, target).met, None, "{target}");
    }
    // ours-fred did not measure anything either, and is judged on nothing.
    assert!(
        checks
            .iter()
            .filter(|c| c.adapter == "ours-fred")
            .all(|c| c.met.is_none())
    );
}

#[test]
fn web_mix_is_compared_with_the_fastest_sliding_peer_not_the_defaults() {
    let mut r = results();
    rate(&mut r, OursRedis, Workload::WebMix, Size::One, 1300);
    rate(&mut r, TowerSessions, Workload::WebMix, Size::One, 1000);
    rate(&mut r, ActixSession, Workload::WebMix, Size::One, 500);
    // Without sliding the peers are far faster; comparing with that would fail ours.
    rate(
        &mut r,
        TowerSessions,
        Workload::WebMixDefault,
        Size::One,
        5000,
    );
    rate(
        &mut r,
        ActixSession,
        Workload::WebMixDefault,
        Size::One,
        4000,
    );
    cpu(&mut r, OursRedis, Workload::WebMix, Size::One, 7.0);
    cpu(&mut r, TowerSessions, Workload::WebMix, Size::One, 12.0);
    cpu(&mut r, ActixSession, Workload::WebMix, Size::One, 10.0);
    cpu(
        &mut r,
        TowerSessions,
        Workload::WebMixDefault,
        Size::One,
        2.0,
    );
    // 10 x 100 B: ours 1100 = 1.1 x the sliding peer: NOT met (needs 1.2 x).
    rate(&mut r, OursRedis, Workload::WebMix, Size::Ten, 1100);
    rate(&mut r, ActixSession, Workload::WebMix, Size::Ten, 1000);

    let checks = evaluate(&plan(), &r);
    let ops = find(&checks, "web-mix, 256 tasks, 1 x 32 B");
    assert_eq!(ops.met, Some(true), "{ops:?}");
    assert_eq!(
        ops.measured,
        "1300 ops/s = 1.30 x the fastest sliding peer (tower-sessions 1000 ops/s); \
         raw floor none measured: ours/raw -; for information, default, does not slide: \
         tower-sessions 5000 ops/s, actix-session 4000 ops/s"
    );
    let cpu_one = find(&checks, "Redis CPU per web-mix operation, 1 x 32 B");
    assert_eq!(cpu_one.met, Some(true), "{cpu_one:?}");
    assert_eq!(
        cpu_one.measured,
        "7.0 µs = 0.70 x the cheapest sliding peer (actix-session 10.0 µs); for \
         information, default, does not slide: tower-sessions 2.0 µs"
    );
    assert_eq!(
        find(&checks, "web-mix, 256 tasks, 10 x 100 B").met,
        Some(false)
    );
}

#[test]
fn the_one_attribute_cycle_needs_both_the_peer_and_the_script_floor() {
    let judge = |ours: u64, peer: u64, floor: Option<u64>| {
        let mut r = results();
        rate(&mut r, OursRedis, Workload::Cycle, Size::One, ours);
        rate(&mut r, TowerSessions, Workload::Cycle, Size::One, peer);
        if let Some(floor) = floor {
            rate(&mut r, ScriptFloor, Workload::Cycle, Size::One, floor);
            rate(&mut r, CheckFloor, Workload::Cycle, Size::One, floor * 2);
        }
        find(&evaluate(&plan(), &r), "cycle, 256 tasks, 1 x 32 B").clone()
    };
    // 0.90 x the peer, 0.96 x the floor: both hold (the check floor is shown, not judged).
    let c = judge(900, 1000, Some(940));
    assert_eq!(c.met, Some(true), "{c:?}");
    assert!(
        c.measured.ends_with(
            "; script floor (redis-rs) 940 ops/s: ours/script floor 0.96 x; \
             check floor 1880 ops/s: ours/check floor 0.48 x"
        ),
        "{c:?}"
    );
    // 0.90 x the peer but 0.90 x the floor: NOT met.
    assert_eq!(judge(900, 1000, Some(1000)).met, Some(false));
    // 0.70 x the peer, above the floor: NOT met.
    assert_eq!(judge(700, 1000, Some(500)).met, Some(false));
    // Below the peer, floor missing: NOT met all the same.
    assert_eq!(judge(700, 1000, None).met, Some(false));
    // Peer condition holds, floor missing: not judged.
    assert_eq!(judge(900, 1000, None).met, None);
}

#[test]
fn cpu_per_cycle_allows_one_and_a_half_times_the_cheapest_peer() {
    let judge = |ours: f64| {
        let mut r = results();
        cpu(&mut r, OursRedis, Workload::Cycle, Size::One, ours);
        cpu(&mut r, TowerSessions, Workload::Cycle, Size::One, 10.0);
        cpu(&mut r, ActixSession, Workload::Cycle, Size::One, 8.0);
        cpu(&mut r, ScriptFloor, Workload::Cycle, Size::One, 9.2);
        find(&evaluate(&plan(), &r), "Redis CPU per cycle").clone()
    };
    let c = judge(11.5);
    assert_eq!(c.met, Some(true));
    assert_eq!(
        c.measured,
        "11.5 µs = 1.44 x the cheapest peer (actix-session 8.0 µs); script floor \
         (redis-rs) 9.2 µs = 1.15 x the same peer"
    );
    assert_eq!(judge(13.0).met, Some(false));
}

/// Every throughput target rests on medians of the target rounds, so every cell one
/// compares, ours, the peers' and the floors', must be one of the `TARGET_CELLS`.
#[test]
fn every_throughput_target_uses_target_cells() {
    let mut r = results();
    for subject in SubjectKind::ALL {
        for workload in Workload::ALL {
            for size in Size::ALL {
                rate(&mut r, subject, workload, size, 1000);
                // The suite measures only the target cells again; here their median
                // (2000) tells them from the other cells (1000).
                if TARGET_CELLS.contains(&(workload, size)) {
                    r.repeats.push(cell(subject, workload, size, 3000));
                }
            }
        }
    }
    let checks = evaluate(&plan(), &r);
    let throughput: Vec<&Check> = checks
        .iter()
        .filter(|c| c.measured.contains("ops/s ="))
        .collect();
    // Load x2, cycle x2, web-mix x2, narrow, apply; for each of our adapters.
    assert_eq!(throughput.len(), 16, "{checks:#?}");
    for c in throughput {
        assert!(c.measured.contains("(medians of 2 rounds each)"), "{c:?}");
        // The figures compared, before any shown for information only.
        let compared = c.measured.split("; for information").next().unwrap();
        assert!(!compared.contains("1000 ops/s"), "{c:?}");
    }
}

#[test]
fn lost_updates_must_be_zero() {
    let lost = |subject, lost| LostRow {
        subject,
        tasks: 32,
        lost: Ok(Lost {
            tasks: 32,
            rounds: 1,
            acknowledged: 32,
            lost,
            ..Default::default()
        }),
    };
    let mut r = results();
    r.lost = vec![lost(OursRedis, 0), lost(TowerSessions, 31)];
    let c = find(&evaluate(&plan(), &r), "lost updates").clone();
    assert_eq!(c.met, Some(true));
    assert_eq!(
        c.measured,
        "0 of 32 acknowledged lost; peers: tower-sessions 31 of 32 (96.9 %)"
    );
    r.lost = vec![lost(OursRedis, 1)];
    assert_eq!(
        find(&evaluate(&plan(), &r), "lost updates").met,
        Some(false)
    );
}

#[test]
fn the_script_floor_is_set_against_the_same_peer() {
    let peer = Some((ActixSession, 6.0));
    assert_eq!(
        floor_note("script floor", Some(9.0), peer, micros),
        "; script floor (redis-rs) 9.0 µs = 1.50 x the same peer"
    );
    assert_eq!(
        floor_note("check floor", Some(12.0), peer, micros),
        "; check floor (redis-rs) 12.0 µs = 2.00 x the same peer"
    );
    assert_eq!(floor_note("script floor", None, peer, micros), "");
    assert_eq!(floor_note("script floor", Some(9.0), None, micros), "");
}

#[test]
fn the_compatibility_store_is_judged_against_tower_sessions_only() {
    use SubjectKind::{TowerSessionsCompat, TowerSessionsCompatFred};
    let compat = |kind: SubjectKind, us: f64, commands: f64| CostRow {
        subject: kind,
        workload: Workload::Cycle,
        size: Size::One,
        cost: Ok(Cost {
            cycles: 1000,
            cpu_us: us,
            commands,
            round_trips: Some(2.0),
            ..Default::default()
        }),
    };
    let mut r = results();
    r.costs.push(compat(TowerSessionsCompat, 14.0, 4.0));
    r.costs.push(compat(TowerSessionsCompatFred, 16.0, 4.0));
    r.costs.push(CostRow {
        subject: TowerSessions,
        workload: Workload::Cycle,
        size: Size::One,
        cost: Ok(Cost {
            cycles: 1000,
            cpu_us: 10.0,
            commands: 2.0,
            ..Default::default()
        }),
    });
    // A cheaper peer does not count: the target is tower-sessions'.
    cpu(&mut r, ActixSession, Workload::Cycle, Size::One, 5.0);
    // Other sizes are shown for information.
    cpu(
        &mut r,
        TowerSessionsCompat,
        Workload::Cycle,
        Size::Hundred,
        30.0,
    );
    cpu(&mut r, TowerSessions, Workload::Cycle, Size::Hundred, 60.0);

    let checks = evaluate(&plan(), &r);
    let of = |kind: SubjectKind| {
        let mine: Vec<&Check> = checks.iter().filter(|c| c.adapter == kind.name()).collect();
        assert_eq!(mine.len(), 1, "{checks:#?}");
        mine[0].clone()
    };
    let c = of(TowerSessionsCompat);
    assert_eq!(
        c.target,
        "Redis CPU per cycle, 1 x 32 B: <= 1.5 x tower-sessions"
    );
    assert_eq!(c.met, Some(true));
    assert_eq!(
        c.measured,
        "14.0 µs = 1.40 x tower-sessions (10.0 µs); commands per cycle 4.00 against 2.00, \
         round trips 2.00 against 2.00; for information: 100 x 1 KiB 30.0 µs = 0.50 x"
    );
    let c = of(TowerSessionsCompatFred);
    assert_eq!(c.met, Some(false), "{c:?}");
    assert!(c.measured.starts_with("16.0 µs = 1.60 x"), "{c:?}");

    // Not run on a topology: no check there; run without tower-sessions: not judged.
    let mut r = results();
    r.subjects
        .retain(|(k, _)| *k != TowerSessionsCompatFred && *k != TowerSessions);
    r.costs.push(compat(TowerSessionsCompat, 14.0, 4.0));
    let checks = evaluate(&plan(), &r);
    assert!(
        checks
            .iter()
            .all(|c| c.adapter != "tower-sessions-compat-fred")
    );
    let c = checks
        .iter()
        .find(|c| c.adapter == "tower-sessions-compat")
        .unwrap();
    assert_eq!(c.met, None);
    assert_eq!(c.measured, "14.0 µs = - tower-sessions (not measured)");
}
