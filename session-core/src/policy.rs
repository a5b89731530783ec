//! The knobs that change observable behaviour, shared by every store and the model.
//!
//! A store and the model configured with the same [`Policy`] must give the same results;
//! the testkit builds its oracle from the store's policy.

use std::time::Duration;

use crate::error::{Error, Limit, Result};
use crate::session::SessionRecord;
use crate::time::{Timestamp, duration_millis};

/// Longest attribute name in bytes (the contract's 1..=256).
pub const MAX_NAME_LEN: usize = 256;
/// Longest principal in bytes.
pub const MAX_PRINCIPAL_LEN: usize = 256;
/// Longest idle timeout accepted (400 days).
pub const MAX_IDLE_TIMEOUT: Duration = Duration::from_secs(400 * 24 * 3600);
/// Counters hold integers in `-MAX_COUNTER..=MAX_COUNTER` (2^53 - 1).
///
/// That is the range a double represents exactly, so a Lua script (whose numbers are
/// doubles) computes every increment exactly; a result outside it is an
/// [`Error::Overflow`].
pub const MAX_COUNTER: i64 = (1 << 53) - 1;
/// Most forwards a token follows after rotations (a chain of rotations within one
/// grace period). Beyond it the token counts as not found.
pub const MAX_FORWARDS: usize = 8;

/// The largest difference between an application server's clock and the store's that loads
/// are built to tolerate, either way (see [`Policy::load_touch`]).
pub const CLOCK_SKEW_BOUND: Duration = Duration::from_secs(30);

/// Size limits. Exceeding one is an [`Error::LimitExceeded`] and nothing is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Limits {
    /// Bytes of one attribute value. Default 64 KiB.
    pub max_value_bytes: usize,
    /// Bytes of all names and values of one session. Default 1 MiB.
    pub max_session_bytes: usize,
    /// Operations plus guards in one delta. Default 512.
    pub max_delta_ops: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_value_bytes: 64 * 1024,
            max_session_bytes: 1024 * 1024,
            max_delta_ops: 512,
        }
    }
}

impl Limits {
    pub(crate) fn check(limit: Limit, actual: usize, max: usize) -> Result<()> {
        if actual > max {
            return Err(Error::LimitExceeded { limit, actual, max });
        }
        Ok(())
    }
}

/// Behaviour every store and the model agree on.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Policy {
    /// Size limits.
    pub limits: Limits,
    /// Idle timeout of a session created without one. Default 30 minutes.
    pub default_idle_timeout: Duration,
    /// How long a deleted session stays a tombstone, so a request still in flight cannot
    /// write it back to life. At least the longest request. Default 60 s.
    pub delete_grace: Duration,
    /// How long a rotated token forwards to its successor. Default 60 s.
    pub rotate_grace: Duration,
    /// A load writes a touch only when the last one is at least this old (and never later
    /// than half the session's idle timeout, so a session in use cannot expire between two
    /// touches). Reads then cost no write: on Redis a load is a plain `GET` except once
    /// per interval. Default 60 s: a session may expire up to that much earlier than "idle
    /// timeout after the last request". Zero touches on every load.
    pub touch_interval: Duration,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            limits: Limits::default(),
            default_idle_timeout: Duration::from_secs(30 * 60),
            delete_grace: Duration::from_secs(60),
            rotate_grace: Duration::from_secs(60),
            touch_interval: Duration::from_secs(60),
        }
    }
}

impl Policy {
    /// The touch interval for a session with `idle_timeout`: [`Policy::touch_interval`],
    /// capped at half the idle timeout (in whole milliseconds, as every store computes it).
    pub fn effective_touch_interval(&self, idle_timeout: Duration) -> Duration {
        let half = Duration::from_millis(duration_millis(idle_timeout) / 2);
        self.touch_interval.min(half)
    }

    /// Whether a load at `now` writes a touch: the last access is in the past and at least
    /// the [effective interval](Policy::effective_touch_interval) old. The model and every
    /// store decide with this one rule.
    pub fn touch_due(&self, session: &SessionRecord, now: Timestamp) -> bool {
        now > session.last_access
            && now.saturating_since(session.last_access)
                >= self.effective_touch_interval(session.idle_timeout)
    }

    /// What a load on Redis does about touching, judged on the application server's clock
    /// `now` so that the load needs no round trip for the store's clock: `None`, touch
    /// nothing; `Some(threshold)`, send the touch script, which moves the last access to the
    /// store's now only if the last access is at least `threshold` old by the store's clock.
    ///
    /// With `I` the [effective interval](Policy::effective_touch_interval) and `B` the
    /// [`CLOCK_SKEW_BOUND`]:
    /// - When `I >= 2B` and `I + B` is less than the idle timeout (the default policy: `I` =
    ///   60 s, idle 30 min), the load asks for a touch once the last access is `I` old by its
    ///   clock, and the script accepts from `I - B`. A clock up to `B` ahead asks early but
    ///   is never refused, and touches at most once per `I - B`, never on every read; a clock
    ///   up to `B` behind asks by `I + B`, before the session can expire.
    /// - Otherwise (short intervals or idle timeouts), the load asks whenever a touch may be
    ///   due under that skew (from `I - B`), and the script decides exactly at `I`: a script
    ///   on some loads that write nothing, in exchange for never expiring a session in use.
    ///
    /// With a correct clock both ways touch exactly when [`Policy::touch_due`] says.
    pub fn load_touch(&self, session: &SessionRecord, now: Timestamp) -> Option<Duration> {
        let interval = self.effective_touch_interval(session.idle_timeout);
        let confident =
            interval >= 2 * CLOCK_SKEW_BOUND && interval + CLOCK_SKEW_BOUND < session.idle_timeout;
        let last = session.last_access;
        if confident {
            (now > last && now.saturating_since(last) >= interval)
                .then(|| interval - CLOCK_SKEW_BOUND)
        } else {
            let early = interval.saturating_sub(CLOCK_SKEW_BOUND);
            (now.saturating_since(last) >= early).then_some(interval)
        }
    }

    /// Checks the policy is usable (non-zero idle timeout within range, non-zero limits).
    pub fn validate(&self) -> Result<()> {
        validate_idle_timeout(self.default_idle_timeout)?;
        let l = &self.limits;
        if l.max_value_bytes == 0 || l.max_session_bytes == 0 || l.max_delta_ops == 0 {
            return Err(Error::InvalidInput("limits must be non-zero".into()));
        }
        Ok(())
    }
}

/// An idle timeout must be at least 1 ms and at most [`MAX_IDLE_TIMEOUT`].
pub fn validate_idle_timeout(d: Duration) -> Result<()> {
    if d < Duration::from_millis(1) || d > MAX_IDLE_TIMEOUT {
        return Err(Error::InvalidInput(format!(
            "idle timeout must be within 1 ms..=400 days, got {d:?}"
        )));
    }
    Ok(())
}

/// Attribute names are 1..=[`MAX_NAME_LEN`] bytes of UTF-8.
pub fn validate_name(name: &str) -> Result<()> {
    if name.is_empty() || name.len() > MAX_NAME_LEN {
        return Err(Error::InvalidInput(format!(
            "attribute names are 1..={MAX_NAME_LEN} bytes, got {} bytes",
            name.len()
        )));
    }
    Ok(())
}

/// Principals are 1..=[`MAX_PRINCIPAL_LEN`] bytes of UTF-8.
pub fn validate_principal(principal: &str) -> Result<()> {
    if principal.is_empty() || principal.len() > MAX_PRINCIPAL_LEN {
        return Err(Error::InvalidInput(format!(
            "principals are 1..={MAX_PRINCIPAL_LEN} bytes, got {} bytes",
            principal.len()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::token::SessionToken;

    /// Simulates a session loaded every `gap` for `span` on Redis's clock, by a server whose
    /// clock reads `skew_ms` more than Redis's, with the touch script applying the threshold
    /// the rule asks for. Returns (touches written, scripts sent), or `None` if the session
    /// expired while in use.
    fn simulate(
        policy: &Policy,
        idle: Duration,
        gap: Duration,
        span: Duration,
        skew_ms: i64,
    ) -> Option<(u32, u32)> {
        let mut session = SessionRecord {
            handle: SessionToken::from_bytes([9; 16]).handle(),
            version: 1,
            created_at: Timestamp::from_millis(1_000_000_000),
            last_access: Timestamp::from_millis(1_000_000_000),
            idle_timeout: idle,
            deadline: None,
            principal: None,
            attributes: BTreeMap::new(),
            damaged: BTreeMap::new(),
        };
        let (mut writes, mut scripts) = (0, 0);
        let start = session.last_access.as_millis();
        let mut t = start;
        while t < start + duration_millis(span) {
            t += duration_millis(gap);
            if t >= session.expires_at().as_millis() {
                return None;
            }
            let client = Timestamp::from_millis((t as i64 + skew_ms) as u64);
            if let Some(threshold) = policy.load_touch(&session, client) {
                scripts += 1;
                let last = session.last_access.as_millis();
                if t > last && t - last >= duration_millis(threshold) {
                    session.last_access = Timestamp::from_millis(t);
                    writes += 1;
                }
            }
        }
        Some((writes, scripts))
    }

    #[test]
    fn a_skewed_clock_neither_expires_a_session_in_use_nor_writes_on_every_read() {
        let bound = CLOCK_SKEW_BOUND.as_millis() as i64;
        let policy = Policy::default();
        let (idle, gap, span) = (
            policy.default_idle_timeout,
            Duration::from_secs(1),
            Duration::from_secs(3600),
        );
        for skew in [-bound, -bound / 2, 0, bound / 2, bound] {
            let (writes, scripts) = simulate(&policy, idle, gap, span, skew)
                .unwrap_or_else(|| panic!("skew {skew} ms let a session in use expire"));
            // 3600 loads an hour; a touch at most every I - B = 30 s, and no script wasted.
            assert!(writes <= 121, "skew {skew}: {writes} writes");
            assert_eq!(scripts, writes, "skew {skew}: scripts that wrote nothing");
            if skew == 0 {
                assert_eq!(writes, 60, "a correct clock touches once a minute");
            }
        }
    }

    #[test]
    fn short_idle_timeouts_let_the_script_decide_and_stay_alive() {
        let policy = Policy::default();
        for idle_s in [2, 20, 60, 90] {
            let idle = Duration::from_secs(idle_s);
            for skew in [-30_000, 0, 30_000] {
                let (writes, _) = simulate(
                    &policy,
                    idle,
                    Duration::from_millis(500),
                    Duration::from_secs(600),
                    skew,
                )
                .unwrap_or_else(|| panic!("idle {idle_s} s, skew {skew} ms: expired"));
                // The script decides on Redis's clock: exactly once per effective interval.
                let interval = policy.effective_touch_interval(idle).as_millis() as u32;
                assert!(
                    writes <= 600_000 / interval + 1,
                    "idle {idle_s} s: {writes} writes"
                );
            }
        }
    }

    #[test]
    fn with_a_correct_clock_loads_touch_exactly_when_due() {
        let policy = Policy::default();
        for idle in [Duration::from_millis(400), Duration::from_secs(1800)] {
            let session = |last: u64| SessionRecord {
                handle: SessionToken::from_bytes([9; 16]).handle(),
                version: 1,
                created_at: Timestamp::from_millis(0),
                last_access: Timestamp::from_millis(last),
                idle_timeout: idle,
                deadline: None,
                principal: None,
                attributes: BTreeMap::new(),
                damaged: BTreeMap::new(),
            };
            for elapsed in [0, 1, 199, 200, 201, 29_999, 30_000, 59_999, 60_000, 61_000] {
                let s = session(1_000_000);
                let now = Timestamp::from_millis(1_000_000 + elapsed);
                let written = policy
                    .load_touch(&s, now)
                    .is_some_and(|threshold| now.saturating_since(s.last_access) >= threshold);
                assert_eq!(
                    written,
                    policy.touch_due(&s, now),
                    "idle {idle:?}, elapsed {elapsed}"
                );
            }
        }
    }
}
