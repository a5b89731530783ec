//! The knobs that change observable behaviour, shared by every store and the model.
//!
//! A store and the model configured with the same [`Policy`] must give the same results;
//! the testkit builds its oracle from the store's policy.

use std::time::Duration;

use crate::error::{Error, Limit, Result};
use crate::session::Session;
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
    /// touches). Reads then cost no write: on Redis a load is a plain `HGETALL` except once
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
    pub fn touch_due(&self, session: &Session, now: Timestamp) -> bool {
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
    pub fn load_touch(&self, session: &Session, now: Timestamp) -> Option<Duration> {
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
