//! The Markdown report: run header, targets, then per topology the throughput and latency
//! tables with their ratios (ours / raw floor, ours / each peer), memory per session, Redis
//! cost per cycle and the lost-update comparison, and the method notes a reader needs to
//! judge the comparison. Every figure comes from [`Results`]; nothing is computed twice.

use std::fmt::Write;
use std::time::Duration;

use super::plan::{COST_WORKLOADS, Plan, SubjectKind, TARGET_CELLS};
use super::suite::{Outcome, Results, median};
use super::targets::{self, Check};

/// Facts about the run, for the header.
#[derive(Debug, Clone)]
pub struct RunInfo {
    /// When it ran (UTC).
    pub date: String,
    /// `git rev-parse --short HEAD`, and whether the tree had changes.
    pub commit: String,
    /// Logical CPUs.
    pub cpus: usize,
    /// The arguments given.
    pub arguments: String,
    /// Total wall time.
    pub elapsed: Duration,
    /// The machine's load average (1, 5, 15 min) at the start and the end, if known: other
    /// work on the machine skews throughput.
    pub load: (Option<String>, Option<String>),
    /// Topologies that could not be run, and why.
    pub failures: Vec<(String, String)>,
}

/// Escapes text for a table cell.
fn esc(text: &str) -> String {
    text.replace('|', "\\|").replace(['\n', '\r'], " ")
}

fn ms(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1e3;
    if ms < 10.0 {
        format!("{ms:.2}")
    } else {
        format!("{ms:.1}")
    }
}

fn describe(kind: SubjectKind) -> &'static str {
    match kind {
        SubjectKind::OursRedis => {
            "our `RedisStore` (session-redis, redis-rs 1.x, one multiplexed connection per node), \
             default policy; saves are one-put deltas (`apply`), a cycle is `load` + `apply`, a \
             narrow cycle `load_some` + `apply`"
        }
        SubjectKind::OursFred => {
            "our `FredStore` (session-fred, fred 10, one client), otherwise as ours-redis"
        }
        SubjectKind::RawRedis => {
            "redis-rs alone on our layout, each session in the form our store gives it, minimal \
             commands. Packed (small sessions: 1 x 32 B, 10 x 100 B; one string): create `SET \
             PX`, load and load-some `GET`, apply `SET KEEPTTL` of the whole string rebuilt on \
             the client, cycle and narrow `GET` then `SET KEEPTTL`, rotate `GET` then `SET PX` \
             of the new key and `DEL` of the old (concurrently). Hashed (large sessions: 100 x \
             1 KiB): create `HSET`+`PEXPIRE` (pipelined), load `HGETALL`, load-some `HMGET`, \
             apply `HSET`, cycle `HGETALL` then `HSET`, narrow `HMGET` then `HSET`, rotate \
             `HGETALL` then `HSET`+`PEXPIRE` of the new key and `DEL` of the old \
             (concurrently). No versions, guards, expiry checks or tombstones: the floor of any \
             store over redis-rs"
        }
        SubjectKind::RawFred => "fred alone, the same commands as raw-redis: the floor over fred",
        SubjectKind::ScriptFloor => {
            "raw-redis whose save is `EVALSHA` of a one-line script that runs the same command \
             (`SET KEEPTTL` of a packed session, `HSET` of a hashed one; no check, constant \
             reply); measured for apply, cycle and narrow only. Over a \
             multiplexed connection, a save that checks a condition atomically (live session, \
             guards, size limit) in one round trip must be a script on Redis 7, and none does \
             less: the floor of any such store over redis-rs"
        }
        SubjectKind::CheckFloor => {
            "script-floor whose script first checks that the session is live, with the least \
             read that tells (`GETRANGE` of a packed record's state byte, `HEXISTS` of a hashed \
             one's record), and answers an error when it is not: the floor of any store whose \
             saves keep tombstones and expiry; measured for apply, cycle and narrow only"
        }
        SubjectKind::TowerSessions => {
            "`tower-sessions-redis-store` 0.16.0 (tower-sessions-core 0.14, fred 10, one client) \
             at its store level: load `GET`; apply = whole record `save` (`SET XX EXAT`); cycle \
             = `load` + change + `save`; rotate = `delete` + `create` (`SET NX EXAT`), as \
             `cycle_id` + `save`; the record is MessagePack in one string key"
        }
        SubjectKind::TowerSessionsCompat => {
            "session-tower's compatibility store (`tower_sessions_compat::TowerSessionsStore`, \
             tower-sessions-core 0.14's `SessionStore`) over our `RedisStore` (the ours-redis \
             store), driven exactly as tower-sessions is (the same subject code): load = our \
             `load`; save = one delta of what differs from the request's own load (`apply`; \
             without a load first, as in apply, a `load_read_only` then the delta); rotate = \
             `delete` + `create`; the session is in our layout. Judged against tower-sessions \
             only (Redis CPU per cycle); it may lose updates when requests on one store overlap \
             (its docs), so the lost-update target is not its"
        }
        SubjectKind::TowerSessionsCompatFred => {
            "the compatibility store over our `FredStore` (the ours-fred store; fred is \
             tower-sessions-redis-store's client too), otherwise as tower-sessions-compat"
        }
        SubjectKind::ActixSession => {
            "`actix-session` 0.11.0 `RedisSessionStore` (its own redis-rs 0.32, one \
             `ConnectionManager`) at its store level: load `GET`; apply = whole state `update` \
             (`SET XX EX`); cycle = `load` + change + `update`; rotate = `delete` + `save` \
             (`SET NX EX`), as the middleware renews; the state is JSON in one string key"
        }
    }
}

/// Renders the whole report.
pub fn render(info: &RunInfo, plan: &Plan, all: &[Results]) -> String {
    let mut out = String::new();
    let w = &mut out;
    let _ = writeln!(w, "# Session store benchmarks\n");
    let _ = writeln!(
        w,
        "Generated by `session-bench` (`benches/src/bin/session_bench.rs`). Reproduce \
         with:\n\n```sh\ncargo run --release -p session-benches --bin session-bench --{}\n```\n",
        if info.arguments.is_empty() {
            String::new()
        } else {
            format!(" {}", info.arguments)
        }
    );
    header(w, info, plan, all);
    subjects(w, plan, all);
    let checks: Vec<Check> = all
        .iter()
        .flat_map(|r| targets::evaluate(plan, r))
        .collect();
    targets_section(w, &checks);
    for results in all {
        topology(w, plan, results);
    }
    notes(w, info.cpus);
    out
}

fn header(w: &mut String, info: &RunInfo, plan: &Plan, all: &[Results]) {
    let _ = writeln!(w, "## Run\n\n| | |\n|---|---|");
    let _ = writeln!(w, "| date | {} |", info.date);
    let _ = writeln!(w, "| git commit | {} |", esc(&info.commit));
    let _ = writeln!(
        w,
        "| machine | {} logical CPUs; the benchmark client and every Redis process share them |",
        info.cpus
    );
    let unknown = || "unknown".to_owned();
    let _ = writeln!(
        w,
        "| load average (1/5/15 min) | at start {}, at end {} |",
        info.load.0.clone().unwrap_or_else(unknown),
        info.load.1.clone().unwrap_or_else(unknown)
    );
    for r in all {
        let _ = writeln!(
            w,
            "| {} | Redis {}, {}; masters: {} |",
            r.topology,
            r.redis_version,
            esc(&r.source),
            r.masters.join(", ")
        );
    }
    for (topology, why) in &info.failures {
        let _ = writeln!(w, "| {topology} | NOT RUN: {} |", esc(why));
    }
    let t = plan.timing;
    let _ = writeln!(
        w,
        "| cells | warm-up {} ms, measured {} ms, at most {} operations; sizes {}; tasks {} |",
        t.warmup.as_millis(),
        t.measure.as_millis(),
        t.max_ops,
        plan.sizes
            .iter()
            .map(|s| s.name())
            .collect::<Vec<_>>()
            .join(", "),
        plan.concurrency
            .iter()
            .map(|c| c.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
    let _ = writeln!(
        w,
        "| cost runs | {} tasks for {} ms per subject, size and cycle kind |",
        plan.cost_tasks,
        plan.cost_time.as_millis()
    );
    let _ = writeln!(
        w,
        "| lost updates | {} rounds each of {} concurrent cycles |",
        plan.lost_rounds,
        plan.lost_tasks
            .iter()
            .map(|c| c.to_string())
            .collect::<Vec<_>>()
            .join(" and ")
    );
    let _ = writeln!(w, "| total time | {:.0} s |\n", info.elapsed.as_secs_f64());
}

fn subjects(w: &mut String, plan: &Plan, all: &[Results]) {
    let _ = writeln!(w, "## Subjects\n");
    for &kind in &plan.subjects {
        let _ = writeln!(w, "- **{}**: {}.", kind.name(), describe(kind));
        for r in all {
            if let Some((_, Err(why))) = r.subjects.iter().find(|(k, _)| *k == kind) {
                let _ = writeln!(w, "  - on {}: **n/a**: {}", r.topology, esc(why));
            }
        }
    }
    let _ = writeln!(
        w,
        "\nPeers and the compatibility store (tower-sessions' interface) have no partial read, \
         so their narrow cycle is their full cycle (marked `= cycle` and not measured twice) \
         and their load-some is n/a. Every tower-sessions save stamps the record's expiry as \
         `Session::save` does with `Expiry::OnInactivity(30 min)`.\n"
    );
}

fn targets_section(w: &mut String, checks: &[Check]) {
    let _ = writeln!(
        w,
        "## Targets\n\nThe issue's targets table, for each of our stores against the fastest \
         (or cheapest, or smallest) peer: load and Redis CPU per load on 1 x 32 B and 10 x \
         100 B; the full cycle on 100 x 1 KiB; web-mix throughput and Redis CPU against the \
         peers configured to slide the idle expiry (their default configuration, which does \
         not slide, is shown for information only); the 1-attribute cycle against the peers \
         and the script floor, and its Redis CPU; narrow cycle and apply on 100 x 1 KiB; Redis \
         memory per session; and no lost updates. The compatibility store \
         (tower-sessions-compat, -fred) has one target of its own: Redis CPU per 1-attribute \
         cycle <= 1.5 x tower-sessions'. Judged from the numbers below; \"at N \
         tasks\" targets use the largest concurrency of the run (256 in a full run), the other \
         concurrencies are listed for reference. Throughput targets compare medians: each \
         cell they use was measured in the matrix and again in the target rounds (see \
         \"Target cells, every round\" per topology).\n\n| topology | target | ours | \
         measured | result |\n|---|---|---|---|---|"
    );
    for c in checks {
        let _ = writeln!(
            w,
            "| {} | {} | {} | {} | {} |",
            c.topology,
            esc(&c.target),
            c.adapter,
            esc(&c.measured),
            match c.met {
                Some(true) => "met",
                Some(false) => "**NOT met**",
                None => "not judged (missing figures)",
            }
        );
    }
    let _ = writeln!(w);
}

/// The ratio columns: (numerator, denominator).
fn ratio_pairs(plan: &Plan) -> Vec<(SubjectKind, SubjectKind)> {
    let has = |k: SubjectKind| plan.subjects.contains(&k);
    let mut pairs = Vec::new();
    for ours in [SubjectKind::OursRedis, SubjectKind::OursFred] {
        if !has(ours) {
            continue;
        }
        if let Some(raw) = ours.raw_floor().filter(|r| has(*r)) {
            pairs.push((ours, raw));
        }
        for peer in [SubjectKind::TowerSessions, SubjectKind::ActixSession] {
            if has(peer) {
                pairs.push((ours, peer));
            }
        }
    }
    for compat in [
        SubjectKind::TowerSessionsCompat,
        SubjectKind::TowerSessionsCompatFred,
    ] {
        if has(compat) && has(SubjectKind::TowerSessions) {
            pairs.push((compat, SubjectKind::TowerSessions));
        }
    }
    pairs
}

fn topology(w: &mut String, plan: &Plan, r: &Results) {
    let _ = writeln!(
        w,
        "## {} ({:.0} s, {} keys of this run removed at the end)\n",
        r.topology,
        r.elapsed.as_secs_f64(),
        r.cleaned
    );
    throughput(w, plan, r);
    repeats(w, plan, r);
    memory(w, plan, r);
    costs(w, plan, r);
    lost(w, r);
}

fn throughput(w: &mut String, plan: &Plan, r: &Results) {
    let _ = writeln!(
        w,
        "### Throughput and latency\n\nEach cell: operations per second (latency p50 / p99 in \
         ms). Ratios are throughput ratios (> 1: ours faster; for tower-sessions-compat / \
         tower-sessions, > 1: the compatibility store faster).\n"
    );
    let pairs = ratio_pairs(plan);
    let mut problems = Vec::new();
    for &workload in &plan.workloads {
        let _ = writeln!(w, "#### {}: {}\n", workload.name(), workload.describe());
        let _ = write!(w, "| size | tasks |");
        for k in &plan.subjects {
            let _ = write!(w, " {} |", k.name());
        }
        let _ = write!(w, "\n|---|---:|");
        for _ in &plan.subjects {
            let _ = write!(w, "---:|");
        }
        let _ = writeln!(w);
        for &size in &plan.sizes {
            for &tasks in &plan.concurrency {
                let _ = write!(w, "| {} | {tasks} |", size.name());
                for &k in &plan.subjects {
                    let text = match r.outcome(k, workload, size, tasks) {
                        None => "-".to_owned(),
                        Some(Outcome::Measured(s)) => {
                            let mut t =
                                format!("{:.0} ({} / {})", s.ops_per_sec(), ms(s.p50), ms(s.p99));
                            if s.errors > 0 {
                                let _ = write!(t, " ⚠ {} errors", s.errors);
                                problems.push(format!(
                                    "{} {} {} x{tasks}: {} errors, first: {}",
                                    k.name(),
                                    workload.name(),
                                    size.name(),
                                    s.errors,
                                    s.first_error.as_deref().unwrap_or("?")
                                ));
                            }
                            t
                        }
                        Some(Outcome::AsCycle) => match r.stats(k, workload, size, tasks) {
                            Some(s) => format!("= cycle: {:.0}", s.ops_per_sec()),
                            None => "= cycle".to_owned(),
                        },
                        Some(Outcome::NotApplicable(_)) => "n/a".to_owned(),
                        Some(Outcome::Failed(e)) => {
                            problems.push(format!(
                                "{} {} {} x{tasks} failed: {e}",
                                k.name(),
                                workload.name(),
                                size.name()
                            ));
                            "failed".to_owned()
                        }
                    };
                    let _ = write!(w, " {} |", esc(&text));
                }
                let _ = writeln!(w);
            }
        }
        if !pairs.is_empty() {
            let _ = write!(w, "\n| size | tasks |");
            for (a, b) in &pairs {
                let _ = write!(w, " {} / {} |", a.name(), b.name());
            }
            let _ = write!(w, "\n|---|---:|");
            for _ in &pairs {
                let _ = write!(w, "---:|");
            }
            let _ = writeln!(w);
            for &size in &plan.sizes {
                for &tasks in &plan.concurrency {
                    let _ = write!(w, "| {} | {tasks} |", size.name());
                    for &(a, b) in &pairs {
                        let ratio = r
                            .ops(a, workload, size, tasks)
                            .zip(r.ops(b, workload, size, tasks))
                            .map(|(x, y)| format!("{:.2}", x / y));
                        let _ = write!(w, " {} |", ratio.as_deref().unwrap_or("-"));
                    }
                    let _ = writeln!(w);
                }
            }
        }
        let _ = writeln!(w);
    }
    if !problems.is_empty() {
        let _ = writeln!(w, "Errors and failures:\n");
        for p in problems {
            let _ = writeln!(w, "- {}", esc(&p));
        }
        let _ = writeln!(w);
    }
}

fn repeats(w: &mut String, plan: &Plan, r: &Results) {
    if plan.target_repeats == 0 {
        return;
    }
    let t = targets::target_tasks(plan);
    let _ = writeln!(
        w,
        "### Target cells, every round\n\nThe cells the throughput targets are judged on, at {t} \
         tasks: measured once in the matrix above, then {} more rounds after it, every subject \
         in turn (each round starts with another subject). Operations per second in the order \
         measured; the targets use the median.\n\n| cell | subject | rounds | median |\n\
         |---|---|---|---:|",
        plan.target_repeats
    );
    for (workload, size) in TARGET_CELLS {
        for &k in &plan.subjects {
            // Subjects that did not run here, and peers' narrow cycles (their cycle, listed
            // already) have no row.
            if !r.available(k)
                || matches!(
                    r.outcome(k, workload, size, t),
                    None | Some(Outcome::AsCycle)
                )
            {
                continue;
            }
            let samples = r.samples(k, workload, size, t);
            let rounds: Vec<String> = samples.iter().map(|o| format!("{o:.0}")).collect();
            let _ = writeln!(
                w,
                "| {} {} | {} | {} | {} |",
                workload.name(),
                size.name(),
                k.name(),
                if rounds.is_empty() {
                    "none measured".into()
                } else {
                    rounds.join(", ")
                },
                median(samples).map_or("-".into(), |m| format!("{m:.0}")),
            );
        }
    }
    let _ = writeln!(w);
}

fn memory(w: &mut String, plan: &Plan, r: &Results) {
    let _ = write!(
        w,
        "### Redis memory per session\n\n`MEMORY USAGE <key> SAMPLES 0` of one fresh session, \
         in bytes (key included).\n\n| subject |"
    );
    for s in &plan.sizes {
        let _ = write!(w, " {} |", s.name());
    }
    let _ = write!(w, "\n|---|");
    for _ in &plan.sizes {
        let _ = write!(w, "---:|");
    }
    let _ = writeln!(w);
    for &k in &plan.subjects {
        if !r.available(k) {
            let _ = writeln!(w, "| {} |{}", k.name(), " n/a |".repeat(plan.sizes.len()));
            continue;
        }
        let _ = write!(w, "| {} |", k.name());
        for &size in &plan.sizes {
            let text = r
                .memory
                .iter()
                .find(|m| m.subject == k && m.size == size)
                .map(|m| match &m.bytes {
                    Ok(b) => b.to_string(),
                    Err(e) => format!("failed: {e}"),
                })
                .unwrap_or_else(|| "-".into());
            let _ = write!(w, " {} |", esc(&text));
        }
        let _ = writeln!(w);
    }
    let _ = writeln!(w);
}

fn costs(w: &mut String, plan: &Plan, r: &Results) {
    let _ = writeln!(
        w,
        "### Redis cost per request cycle\n\n`INFO cpu` (`used_cpu_user` + `used_cpu_sys`, \
         summed over masters) and `INFO commandstats` (after `CONFIG RESETSTAT`) around {} ms \
         of cycles from {} tasks, divided by the cycles completed. Commands include those a \
         Lua script runs. Round trips: ours counted by a transport wrapper that counts \
         batches, raw counted by the subject; peers send one command per round trip (read \
         in their sources: every store method awaits one `GET`/`SET`/`DEL`), so theirs equal \
         their commands (marked *). The servers' own background work is included, not \
         subtracted: idle, the masters used {} of CPU per second of wall time, measured \
         before the cost runs.\n",
        plan.cost_time.as_millis(),
        plan.cost_tasks,
        r.idle_cpu_ms_per_s
            .map_or("an unknown amount".into(), |ms| format!("{ms:.1} ms"))
    );
    let _ = writeln!(
        w,
        "| subject | cycle | size | server CPU µs / cycle | commands / cycle | round trips / \
         cycle | commands per cycle | cycles |\n|---|---|---|---:|---:|---:|---|---:|"
    );
    for &size in &plan.sizes {
        for workload in COST_WORKLOADS {
            for &k in &plan.subjects {
                let row = r
                    .costs
                    .iter()
                    .find(|c| c.subject == k && c.workload == workload && c.size == size);
                let Some(row) = row else {
                    continue;
                };
                match &row.cost {
                    Ok(c) => {
                        let trips = match c.round_trips {
                            Some(t) => format!("{t:.2}"),
                            None => format!("{:.2}*", c.commands),
                        };
                        let breakdown: Vec<String> = c
                            .breakdown
                            .iter()
                            .map(|(name, n)| format!("{name} {n:.2}"))
                            .collect();
                        let errors = if c.errors > 0 {
                            format!(" ⚠ {} errors", c.errors)
                        } else {
                            String::new()
                        };
                        let _ = writeln!(
                            w,
                            "| {} | {} | {} | {:.1} | {:.2} | {} | {} | {}{} |",
                            k.name(),
                            workload.name(),
                            size.name(),
                            c.cpu_us,
                            c.commands,
                            trips,
                            esc(&breakdown.join(", ")),
                            c.cycles,
                            errors
                        );
                    }
                    Err(e) => {
                        let _ = writeln!(
                            w,
                            "| {} | {} | {} | failed: {} | | | | |",
                            k.name(),
                            workload.name(),
                            size.name(),
                            esc(e)
                        );
                    }
                }
            }
        }
    }
    let _ = writeln!(
        w,
        "\nPeers have no narrow cycle; the targets compare our narrow cycle with their cycle.\n"
    );
}

fn lost(w: &mut String, r: &Results) {
    let _ = writeln!(
        w,
        "### Lost updates\n\nOne session (1 attribute); N tasks start together (a barrier) and \
         each runs ONE full cycle setting its own attribute `task-<i>`; an acknowledged update \
         is lost when the session read afterwards lacks it. Ours save the change as a delta; \
         raw clients save the whole string they loaded (`SET`: a 1-attribute session is \
         packed) with no check, as peers save the whole record they loaded.\n\n| subject | \
         tasks | rounds | acknowledged | lost | share lost | failed cycles |\n\
         |---|---:|---:|---:|---:|---:|---|"
    );
    for row in &r.lost {
        match &row.lost {
            Ok(l) => {
                let _ = writeln!(
                    w,
                    "| {} | {} | {} | {} | {} | {:.1} % | {} |",
                    row.subject.name(),
                    l.tasks,
                    l.rounds,
                    l.acknowledged,
                    l.lost,
                    100.0 * l.share(),
                    match &l.first_error {
                        Some(e) => format!("{} (first: {})", l.errors, esc(e)),
                        None => l.errors.to_string(),
                    }
                );
            }
            Err(e) => {
                let _ = writeln!(
                    w,
                    "| {} | {} | | | | | failed: {} |",
                    row.subject.name(),
                    row.tasks,
                    esc(e)
                );
            }
        }
    }
    let _ = writeln!(w);
}

fn notes(w: &mut String, cpus: usize) {
    let _ = writeln!(
        w,
        "## Method, and what to keep in mind\n\n\
         - One process, one Redis per topology, every subject against the same servers. Cells \
         run subject after subject (the first subject rotates from cell to cell), so drift of \
         the machine spreads over all of them. Each task has its own session, created before \
         the clock starts; an operation counts when it completes inside the measured window.\n\
         - Client and servers share {} CPUs, so client-side work (serialising a 100 KiB record, \
         hashing a token) competes with Redis for CPU; throughput at high concurrency is \
         partly a measure of client efficiency. Server CPU per cycle is the figure independent \
         of the client.\n\
         - Each subject uses one multiplexed connection (per node): ours-redis a redis-rs \
         `ConnectionManager`, raw-redis a `MultiplexedConnection` (`ClusterConnection` on the \
         cluster), ours-fred, raw-fred and tower-sessions one fred client configured from the \
         same URL (tower-sessions and raw-fred with fred's default options), actix-session its \
         `ConnectionManager`; tower-sessions-compat and -fred the store of ours-redis and \
         ours-fred (their own instance, built the same way).\n\
         - Expiry: ours slide the idle expiry on load, writing a touch only when the last one \
         is older than the policy's touch interval (60 s by default, so never within a cell); \
         tower-sessions and actix-session, used at store level, do not extend expiry on load \
         (their middleware can, with extra writes: `always_save`, `OnEveryRequest`, which the \
         web-mix workload configures). Every store relies on the key's own expiry, which \
         Redis checks on every access.\n\
         - Ours keep versions per attribute, tombstones after delete and forwards after \
         rotate (rotation is a copy then a guarded mark, two scripts); the raw clients keep \
         none of that and rotate by copy-and-delete. Their numbers are a floor, not a store.\n\
         - Values are printable ASCII of the stated size; ours store the bytes, tower-sessions \
         a JSON string inside MessagePack, actix-session a JSON-encoded string inside JSON. \
         Key names differ (ours `<namespace>:{{<64 hex>}}`, actix `<prefix>:<64 characters>`, \
         tower-sessions a 22-character id), which moves memory per session by tens of bytes.\n\
         - actix-session's `update` takes the state by value, so its apply (no load before) \
         clones the application's state first; its cycle does not need to.\n\
         - The Redis CPU figure includes the servers' background work during the run (cron, \
         cluster bus; see the idle figure above each cost table). On the cluster it also \
         includes each master streaming its writes to its replica, and 6 Redis processes plus \
         the client share the CPUs, so context switches add system time: compare subjects \
         within a topology, not across topologies.",
        cpus
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_are_escaped_and_times_readable() {
        assert_eq!(esc("a|b\nc"), "a\\|b c");
        assert_eq!(ms(Duration::from_micros(1234)), "1.23");
        assert_eq!(ms(Duration::from_millis(25)), "25.0");
    }
}
