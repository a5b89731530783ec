//! What a run measures: the matrix (subjects x workloads x session sizes x concurrency) and
//! its time bounds, plus the session content every subject stores, so all subjects write the
//! same attribute names and the same number of bytes.

use std::time::Duration;

use clap::ValueEnum;

/// The attribute every workload reads and changes.
pub const CHANGED: &str = "a0";

/// A store or client under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, ValueEnum)]
pub enum SubjectKind {
    /// Our store over redis-rs (`session_redis::RedisStore`).
    OursRedis,
    /// Our store over fred (`session_fred::FredStore`).
    OursFred,
    /// The raw redis-rs client doing the minimal commands on the same layout (a small session
    /// packed in one string, a large one a hash).
    RawRedis,
    /// The raw fred client doing the minimal commands on the same layout.
    RawFred,
    /// raw-redis whose save is a one-line script (an unconditional `SET` or `HSET` under
    /// `EVALSHA`):
    /// the floor of any store whose writes check a condition atomically in one round trip.
    ScriptFloor,
    /// script-floor whose script first checks that the session is live (the least read
    /// that tells): the floor of any store whose saves keep tombstones and expiry.
    CheckFloor,
    /// `tower-sessions-redis-store` 0.16 (fred), at its store level.
    TowerSessions,
    /// session-tower's compatibility store (tower-sessions 0.14's `SessionStore` over our
    /// stores) over our redis-rs store, driven as tower-sessions is.
    TowerSessionsCompat,
    /// The compatibility store over our fred store (tower-sessions-redis-store's client).
    TowerSessionsCompatFred,
    /// `actix-session` 0.11's `RedisSessionStore` (its own redis-rs 0.32).
    ActixSession,
}

impl SubjectKind {
    /// Every subject, in report order.
    pub const ALL: [SubjectKind; 10] = [
        SubjectKind::OursRedis,
        SubjectKind::OursFred,
        SubjectKind::RawRedis,
        SubjectKind::RawFred,
        SubjectKind::ScriptFloor,
        SubjectKind::CheckFloor,
        SubjectKind::TowerSessions,
        SubjectKind::TowerSessionsCompat,
        SubjectKind::TowerSessionsCompatFred,
        SubjectKind::ActixSession,
    ];

    /// The subjects of a `--quick` run (the CI smoke test): all but
    /// tower-sessions-compat-fred, which adds about 10 s to it and runs the same code as
    /// tower-sessions-compat over the fred store that ours-fred exercises already.
    pub const QUICK: [SubjectKind; 9] = [
        SubjectKind::OursRedis,
        SubjectKind::OursFred,
        SubjectKind::RawRedis,
        SubjectKind::RawFred,
        SubjectKind::ScriptFloor,
        SubjectKind::CheckFloor,
        SubjectKind::TowerSessions,
        SubjectKind::TowerSessionsCompat,
        SubjectKind::ActixSession,
    ];

    /// The subject's name in the report.
    pub fn name(self) -> &'static str {
        match self {
            SubjectKind::OursRedis => "ours-redis",
            SubjectKind::OursFred => "ours-fred",
            SubjectKind::RawRedis => "raw-redis",
            SubjectKind::RawFred => "raw-fred",
            SubjectKind::ScriptFloor => "script-floor",
            SubjectKind::CheckFloor => "check-floor",
            SubjectKind::TowerSessions => "tower-sessions",
            SubjectKind::TowerSessionsCompat => "tower-sessions-compat",
            SubjectKind::TowerSessionsCompatFred => "tower-sessions-compat-fred",
            SubjectKind::ActixSession => "actix-session",
        }
    }

    /// Whether this is one of our stores (the compatibility store is not: it is judged
    /// against tower-sessions only, and may lose updates by design).
    pub fn is_ours(self) -> bool {
        matches!(self, SubjectKind::OursRedis | SubjectKind::OursFred)
    }

    /// Whether this is the compatibility store (tower-sessions' `SessionStore` over ours).
    pub fn is_compat(self) -> bool {
        matches!(
            self,
            SubjectKind::TowerSessionsCompat | SubjectKind::TowerSessionsCompatFred
        )
    }

    /// Whether this is a peer store (a session store in use today).
    pub fn is_peer(self) -> bool {
        matches!(self, SubjectKind::TowerSessions | SubjectKind::ActixSession)
    }

    /// For one of our stores: the raw client it runs over.
    pub fn raw_floor(self) -> Option<SubjectKind> {
        match self {
            SubjectKind::OursRedis => Some(SubjectKind::RawRedis),
            SubjectKind::OursFred => Some(SubjectKind::RawFred),
            _ => None,
        }
    }
}

/// What one operation of a cell does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, ValueEnum)]
pub enum Workload {
    /// Create a session of the cell's size.
    Create,
    /// Load the whole session.
    Load,
    /// Load one attribute (`load_some`).
    LoadSome,
    /// Save one changed attribute (ours: a one-put delta; peers: the whole record).
    Apply,
    /// A request cycle: load, change one attribute, save.
    Cycle,
    /// A narrow cycle: load one attribute, change it, save.
    Narrow,
    /// Move the session to a new id.
    Rotate,
    /// Ten requests of a web application on one session: nine read it (a load), one loads
    /// it and saves one changed attribute. Every subject slides the idle expiry as its docs
    /// say to: ours touch once per interval, tower-sessions with `always_save` rewrites the
    /// record on every request, actix-session with `OnEveryRequest` sends an `EXPIRE`.
    WebMix,
    /// [`Workload::WebMix`] with each store's default configuration: the peers then never
    /// slide an unchanged session's expiry (active readers are logged out at the timeout).
    WebMixDefault,
}

impl Workload {
    /// Every workload, in report order.
    pub const ALL: [Workload; 9] = [
        Workload::Create,
        Workload::Load,
        Workload::LoadSome,
        Workload::Apply,
        Workload::Cycle,
        Workload::Narrow,
        Workload::Rotate,
        Workload::WebMix,
        Workload::WebMixDefault,
    ];

    /// The workload's name in the report (as on the command line).
    pub fn name(self) -> &'static str {
        match self {
            Workload::Create => "create",
            Workload::Load => "load",
            Workload::LoadSome => "load-some",
            Workload::Apply => "apply",
            Workload::Cycle => "cycle",
            Workload::Narrow => "narrow",
            Workload::Rotate => "rotate",
            Workload::WebMix => "web-mix",
            Workload::WebMixDefault => "web-mix-default",
        }
    }

    /// One line on what the workload does.
    pub fn describe(self) -> &'static str {
        match self {
            Workload::Create => "create a session of the given size",
            Workload::Load => "load the whole session",
            Workload::LoadSome => "load one attribute (`load_some`)",
            Workload::Apply => "save one changed attribute",
            Workload::Cycle => "request cycle: load, change one attribute, save",
            Workload::Narrow => "narrow cycle: load one attribute, change it, save",
            Workload::Rotate => "rotate the session to a new id",
            Workload::WebMix => {
                "10 requests (one operation): 9 loads and 1 load + 1-attribute save, \
                 sliding expiry as each store's docs configure it"
            }
            Workload::WebMixDefault => {
                "web-mix with each store's default configuration (the peers do not slide \
                 an unchanged session's expiry)"
            }
        }
    }
}

/// The workloads whose Redis cost (CPU, commands, round trips) a run measures.
pub const COST_WORKLOADS: [Workload; 5] = [
    Workload::Load,
    Workload::Cycle,
    Workload::Narrow,
    Workload::WebMix,
    Workload::WebMixDefault,
];

/// How big the sessions of a cell are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, ValueEnum)]
pub enum Size {
    /// One attribute of 32 bytes.
    #[value(name = "1")]
    One,
    /// Ten attributes of 100 bytes.
    #[value(name = "10x100")]
    Ten,
    /// A hundred attributes of 1 KiB.
    #[value(name = "100x1k")]
    Hundred,
}

impl Size {
    /// Every size, in report order.
    pub const ALL: [Size; 3] = [Size::One, Size::Ten, Size::Hundred];

    /// Number of attributes.
    pub fn attributes(self) -> usize {
        match self {
            Size::One => 1,
            Size::Ten => 10,
            Size::Hundred => 100,
        }
    }

    /// Bytes of each value.
    pub fn value_len(self) -> usize {
        match self {
            Size::One => 32,
            Size::Ten => 100,
            Size::Hundred => 1024,
        }
    }

    /// The size's name in the report.
    pub fn name(self) -> &'static str {
        match self {
            Size::One => "1 x 32 B",
            Size::Ten => "10 x 100 B",
            Size::Hundred => "100 x 1 KiB",
        }
    }

    /// Rough bytes a session of this size holds (names and values).
    pub fn payload_bytes(self) -> usize {
        self.attributes() * (self.value_len() + 4)
    }
}

/// An attribute value of `len` printable bytes (every subject can store it as a string).
/// Different `variant`s give different values of the same length.
pub fn value(len: usize, variant: u8) -> Vec<u8> {
    let base = b'a' + variant % 20;
    (0..len).map(|i| base + (i % 7) as u8).collect()
}

/// The attributes of a new session of `size`: `a0`, `a1`, ... with values of the size's length.
pub fn attributes(size: Size) -> Vec<(String, Vec<u8>)> {
    (0..size.attributes())
        .map(|i| (format!("a{i}"), value(size.value_len(), i as u8)))
        .collect()
}

/// The time and operation bounds of one measured cell.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// Operations before this are not measured.
    pub warmup: Duration,
    /// The measured window.
    pub measure: Duration,
    /// At most this many operations per cell (warm-up included).
    pub max_ops: u64,
}

/// Everything a run does, per topology.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Subjects to measure.
    pub subjects: Vec<SubjectKind>,
    /// Workloads to measure.
    pub workloads: Vec<Workload>,
    /// Session sizes.
    pub sizes: Vec<Size>,
    /// Concurrent tasks per cell.
    pub concurrency: Vec<usize>,
    /// Bounds of each throughput cell.
    pub timing: Timing,
    /// How long each Redis-cost run (CPU, commands, round trips per cycle) lasts.
    pub cost_time: Duration,
    /// Concurrent tasks of the cost runs.
    pub cost_tasks: usize,
    /// Concurrent writers of the lost-update comparison (one run per entry).
    pub lost_tasks: Vec<usize>,
    /// Rounds of each lost-update run.
    pub lost_rounds: usize,
    /// Extra rounds of the [`TARGET_CELLS`] at the targets' task count, after the matrix.
    pub target_repeats: usize,
}

/// The cells the throughput targets are judged on (at the targets' task count):
/// load on 1 x 32 B and 10 x 100 B, web-mix on the same sizes, cycle on 1 x 32 B and
/// 100 x 1 KiB, and narrow cycle and apply on 100 x 1 KiB. A run can measure them again
/// ([`Plan::target_repeats`]), so a target rests on the median of several windows, taken at
/// different moments, rather than on one. Every throughput figure a target compares, ours
/// and the peers', must be one of these cells (the peers' narrow cycle is their cycle);
/// figures shown for information only (web-mix-default) need not be.
pub const TARGET_CELLS: [(Workload, Size); 8] = [
    (Workload::Load, Size::One),
    (Workload::Load, Size::Ten),
    (Workload::WebMix, Size::One),
    (Workload::WebMix, Size::Ten),
    (Workload::Cycle, Size::One),
    (Workload::Cycle, Size::Hundred),
    (Workload::Narrow, Size::Hundred),
    (Workload::Apply, Size::Hundred),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_have_the_advertised_size() {
        for size in Size::ALL {
            let attrs = attributes(size);
            assert_eq!(attrs.len(), size.attributes());
            assert!(attrs.iter().all(|(_, v)| v.len() == size.value_len()));
            assert!(attrs.iter().all(|(_, v)| v.is_ascii()));
        }
        assert_ne!(value(8, 0), value(8, 1));
    }

    #[test]
    fn a_quick_run_leaves_out_only_the_compatibility_store_over_fred() {
        let left_out: Vec<SubjectKind> = SubjectKind::ALL
            .into_iter()
            .filter(|k| !SubjectKind::QUICK.contains(k))
            .collect();
        assert_eq!(left_out, [SubjectKind::TowerSessionsCompatFred]);
    }
}
