//! Deltas: the small, ordered changes that replace whole-record write-back.
//!
//! A delta is applied all-or-nothing by the store, in one atomic step: its guards are checked
//! first, then its operations run in order on a copy; any failure (a guard, a non-integer
//! increment, a limit) applies nothing. Two requests that change different attributes
//! therefore never erase each other's work, and a request that must see a consistent state
//! says so with a guard.

use std::time::Duration;

use serde::Serialize;

use crate::error::{Error, Limit, Result};
use crate::policy::{self, Limits, MAX_COUNTER};
use crate::session::Deadline;

/// One change of a delta.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Sets an attribute.
    Put {
        /// Attribute name.
        name: String,
        /// New value.
        value: Vec<u8>,
    },
    /// Removes an attribute (no error if absent).
    Remove {
        /// Attribute name.
        name: String,
    },
    /// Adds `by` to a decimal integer attribute (an absent one counts as 0). The value after
    /// the addition is reported in [`Applied::increments`].
    Increment {
        /// Attribute name.
        name: String,
        /// Amount, within `±MAX_COUNTER`.
        by: i64,
    },
    /// Changes the idle timeout (the expiry moves with it).
    SetIdleTimeout(Duration),
    /// Changes the absolute deadline.
    SetDeadline(Deadline),
    /// Sets or clears the principal.
    SetPrincipal(Option<String>),
    /// Records activity now, sliding the idle expiry.
    Touch,
}

/// A precondition of a delta, checked before any operation runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Guard {
    /// The session is at exactly this version: nothing changed since it was read.
    SessionVersion(u64),
    /// The attribute exists and was last written at this version: only this attribute is
    /// unchanged, changes to others do not conflict.
    AttributeVersion {
        /// Attribute name.
        name: String,
        /// Its version as read.
        version: u64,
    },
    /// The attribute does not exist.
    Absent {
        /// Attribute name.
        name: String,
    },
}

/// An ordered list of operations with guards.
///
/// ```
/// use session_core::Delta;
///
/// let delta = Delta::new()
///     .if_attribute_version("cart", 7)
///     .put("cart", &["apple", "pear"])?
///     .increment("visits", 1)
///     .remove("flash");
/// assert_eq!(delta.ops().len(), 3);
/// assert_eq!(delta.guards().len(), 1);
/// # Ok::<_, session_core::Error>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Delta {
    guards: Vec<Guard>,
    ops: Vec<Op>,
}

/// What an applied delta reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// The session version after the delta (unchanged for an empty delta).
    pub version: u64,
    /// The value after each `increment`, in the delta's order.
    pub increments: Vec<i64>,
}

impl Delta {
    /// An empty delta. Applying an empty delta changes nothing, not even the version; it
    /// still checks that the session exists and that its guards hold.
    pub fn new() -> Self {
        Self::default()
    }

    /// Builds a delta from parts (used by stores decoding a delta sent to them).
    pub fn from_parts(guards: Vec<Guard>, ops: Vec<Op>) -> Self {
        Delta { guards, ops }
    }

    /// The guards.
    pub fn guards(&self) -> &[Guard] {
        &self.guards
    }

    /// The operations, in order.
    pub fn ops(&self) -> &[Op] {
        &self.ops
    }

    /// No operations (guards alone write nothing).
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Adds a guard.
    pub fn guard(mut self, guard: Guard) -> Self {
        self.guards.push(guard);
        self
    }

    /// Adds an operation.
    pub fn op(mut self, op: Op) -> Self {
        self.ops.push(op);
        self
    }

    /// Guard: the whole session is still at `version`.
    pub fn if_session_version(self, version: u64) -> Self {
        self.guard(Guard::SessionVersion(version))
    }

    /// Guard: attribute `name` exists and is still at `version`.
    pub fn if_attribute_version(self, name: impl Into<String>, version: u64) -> Self {
        self.guard(Guard::AttributeVersion {
            name: name.into(),
            version,
        })
    }

    /// Guard: attribute `name` does not exist.
    pub fn if_absent(self, name: impl Into<String>) -> Self {
        self.guard(Guard::Absent { name: name.into() })
    }

    /// Sets an attribute to `value` encoded as JSON.
    pub fn put<T: Serialize + ?Sized>(self, name: impl Into<String>, value: &T) -> Result<Self> {
        let name = name.into();
        let value = encode_json(&name, value)?;
        Ok(self.op(Op::Put { name, value }))
    }

    /// Sets an attribute to raw bytes.
    pub fn put_bytes(self, name: impl Into<String>, value: impl Into<Vec<u8>>) -> Self {
        self.op(Op::Put {
            name: name.into(),
            value: value.into(),
        })
    }

    /// Removes an attribute.
    pub fn remove(self, name: impl Into<String>) -> Self {
        self.op(Op::Remove { name: name.into() })
    }

    /// Adds `by` to a decimal integer attribute.
    pub fn increment(self, name: impl Into<String>, by: i64) -> Self {
        self.op(Op::Increment {
            name: name.into(),
            by,
        })
    }

    /// Changes the idle timeout.
    pub fn set_idle_timeout(self, d: Duration) -> Self {
        self.op(Op::SetIdleTimeout(d))
    }

    /// Changes the absolute deadline.
    pub fn set_deadline(self, deadline: Deadline) -> Self {
        self.op(Op::SetDeadline(deadline))
    }

    /// Sets the principal (for example at login).
    pub fn set_principal(self, principal: impl Into<String>) -> Self {
        self.op(Op::SetPrincipal(Some(principal.into())))
    }

    /// Clears the principal.
    pub fn clear_principal(self) -> Self {
        self.op(Op::SetPrincipal(None))
    }

    /// Records activity now.
    pub fn touch(self) -> Self {
        self.op(Op::Touch)
    }

    /// Checks everything that does not depend on the stored session: names, value sizes,
    /// increment amounts, timeouts, principals, the number of operations. Stores call this
    /// before any I/O.
    pub fn validate(&self, limits: &Limits) -> Result<()> {
        Limits::check(
            Limit::DeltaOps,
            self.ops.len() + self.guards.len(),
            limits.max_delta_ops,
        )?;
        for guard in &self.guards {
            match guard {
                Guard::SessionVersion(_) => {}
                Guard::AttributeVersion { name, .. } | Guard::Absent { name } => {
                    policy::validate_name(name)?
                }
            }
        }
        for op in &self.ops {
            match op {
                Op::Put { name, value } => {
                    policy::validate_name(name)?;
                    Limits::check(Limit::ValueSize, value.len(), limits.max_value_bytes)?;
                }
                Op::Remove { name } => policy::validate_name(name)?,
                Op::Increment { name, by } => {
                    policy::validate_name(name)?;
                    if !(-MAX_COUNTER..=MAX_COUNTER).contains(by) {
                        return Err(Error::Overflow { name: name.clone() });
                    }
                }
                Op::SetIdleTimeout(d) => policy::validate_idle_timeout(*d)?,
                Op::SetPrincipal(Some(p)) => policy::validate_principal(p)?,
                Op::SetDeadline(_) | Op::SetPrincipal(None) | Op::Touch => {}
            }
        }
        Ok(())
    }
}

pub(crate) fn encode_json<T: Serialize + ?Sized>(name: &str, value: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(value).map_err(|source| Error::Encode {
        name: name.to_owned(),
        source,
    })
}

/// Reads a counter: `0` or an optional `-` and digits without a leading zero, within
/// `±MAX_COUNTER`. Anything else (spaces, `+`, `007`, `-0`, floats) is not a counter.
///
/// The canonical form is strict so every store (and a Lua script) agrees on it byte for
/// byte.
pub fn parse_counter(bytes: &[u8]) -> Option<i64> {
    let digits = bytes.strip_prefix(b"-").unwrap_or(bytes);
    let canonical = match digits {
        [] => false,
        [b'0'] => bytes.len() == 1,
        [first, rest @ ..] => (b'1'..=b'9').contains(first) && rest.iter().all(u8::is_ascii_digit),
    };
    // 16 digits exceed MAX_COUNTER (9007199254740991) already; this bounds the parse.
    if !canonical || digits.len() > 16 {
        return None;
    }
    let value: i64 = std::str::from_utf8(bytes).ok()?.parse().ok()?;
    (-MAX_COUNTER..=MAX_COUNTER)
        .contains(&value)
        .then_some(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn counters_are_canonical_decimal_integers() {
        for (text, want) in [
            ("0", Some(0)),
            ("7", Some(7)),
            ("-12", Some(-12)),
            ("9007199254740991", Some(MAX_COUNTER)),
            ("-9007199254740991", Some(-MAX_COUNTER)),
            ("9007199254740992", None),
            ("-0", None),
            ("007", None),
            ("+1", None),
            (" 1", None),
            ("1.0", None),
            ("", None),
            ("-", None),
            ("\"1\"", None),
            ("99999999999999999999999", None),
        ] {
            assert_eq!(parse_counter(text.as_bytes()), want, "{text:?}");
        }
    }

    proptest! {
        #[test]
        fn every_counter_round_trips(n in -MAX_COUNTER..=MAX_COUNTER) {
            prop_assert_eq!(parse_counter(n.to_string().as_bytes()), Some(n));
        }

        #[test]
        fn parse_counter_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..24)) {
            if let Some(n) = parse_counter(&bytes) {
                prop_assert_eq!(n.to_string().into_bytes(), bytes);
            }
        }
    }

    #[test]
    fn validation_rejects_bad_input_before_io() {
        let limits = Limits {
            max_value_bytes: 4,
            max_session_bytes: 100,
            max_delta_ops: 3,
        };
        let ok = Delta::new()
            .put_bytes("a", b"1234".to_vec())
            .increment("n", 1);
        assert!(ok.validate(&limits).is_ok());
        type Check = fn(&Error) -> bool;
        let cases: Vec<(Delta, Check)> = vec![
            (Delta::new().put_bytes("", b"x".to_vec()), |e| {
                matches!(e, Error::InvalidInput(_))
            }),
            (Delta::new().remove("n".repeat(257)), |e| {
                matches!(e, Error::InvalidInput(_))
            }),
            (Delta::new().if_absent(""), |e| {
                matches!(e, Error::InvalidInput(_))
            }),
            (Delta::new().put_bytes("a", b"12345".to_vec()), |e| {
                matches!(
                    e,
                    Error::LimitExceeded {
                        limit: Limit::ValueSize,
                        actual: 5,
                        max: 4
                    }
                )
            }),
            (Delta::new().touch().touch().touch().touch(), |e| {
                matches!(
                    e,
                    Error::LimitExceeded {
                        limit: Limit::DeltaOps,
                        ..
                    }
                )
            }),
            (Delta::new().increment("n", MAX_COUNTER + 1), |e| {
                matches!(e, Error::Overflow { .. })
            }),
            (Delta::new().set_idle_timeout(Duration::ZERO), |e| {
                matches!(e, Error::InvalidInput(_))
            }),
            (Delta::new().set_principal(""), |e| {
                matches!(e, Error::InvalidInput(_))
            }),
        ];
        for (delta, expected) in cases {
            let err = delta.validate(&limits).unwrap_err();
            assert!(expected(&err), "{delta:?} gave {err:?}");
        }
        // The longest name is fine.
        assert!(
            Delta::new()
                .remove("n".repeat(256))
                .validate(&limits)
                .is_ok()
        );
    }
}
