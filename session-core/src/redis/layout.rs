//! The Redis layout of a session, in one place: key names, hash fields and the bytes inside
//! them. The codec, the store, the Lua scripts (`lua/layout.lua` mirrors the constants
//! here, and a test holds the two together), the testkit and the benches all build on it.
//!
//! # Keys
//! - a session: `<namespace>:{<handle hex>}`. The braces are a Redis Cluster hash tag, so any
//!   further key of one session would share its slot and one script could touch them all.
//! - a principal's index: `<namespace>:principal:{<sha256(principal) hex>}`, in its own slot.
//!   The principal is hashed so that any user name makes a well-formed key.
//!
//! # A session hash, layout version 1
//! Designed for reads: a load is one `HGETALL` whose reply holds one field for the metadata
//! and one per attribute, and nothing else.
//!
//! | field | value |
//! |---|---|
//! | `""` (empty: no attribute can have that name) | the metadata record (below) |
//! | `<name>` (the attribute's name, as is) | its version (8 bytes, little-endian), its value |
//!
//! The metadata record starts with the layout version (one byte) and the state (one byte):
//! - `L`, live: then the session version, the size (bytes of attribute names and values, so
//!   writes enforce the size limit without reading values), created, last access, idle
//!   timeout and deadline (milliseconds since the epoch on the Redis server's clock, `0`: no
//!   deadline), each a little-endian `u64`; then the principal's bytes (none: no principal).
//! - `D`, deleted: nothing more. The hash is a tombstone until its grace period ends.
//! - `M`, moved by a rotation: then the successor's 32-byte handle.
//!
//! Fixed-width binary numbers cost a script one `struct.unpack` to read all of them, and the
//! client no text parsing. The layout version makes a future layout possible: a reader meets
//! an unknown version as [`Error::Corrupt`], never as garbage.
//!
//! The key expires at the session's expiry instant (`PEXPIREAT`: the earlier of last access
//! plus idle timeout and the deadline), which every write keeps, so Redis itself never
//! returns an expired session.

use std::time::Duration;

use bytes::{Buf, Bytes};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::handle::{Namespace, SessionHandle};
use crate::time::{Timestamp, duration_millis};

/// The layout version this code writes and reads.
pub const LAYOUT_VERSION: u8 = 1;
/// The hash field of the metadata record.
pub const META_FIELD: &[u8] = b"";
/// Bytes of the version in front of an attribute's value.
pub const VERSION_BYTES: usize = 8;

/// Metadata state of a live session.
pub const LIVE: u8 = b'L';
/// Metadata state of a tombstone.
pub const DELETED: u8 = b'D';
/// Metadata state of a rotated session's forward.
pub const MOVED: u8 = b'M';
/// Bytes of a live record before the principal.
pub const LIVE_FIXED: usize = 2 + 6 * 8;

/// Where a session's data lives in Redis: its keys (see the [module docs](self)).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyLayout {
    namespace: Namespace,
}

impl KeyLayout {
    /// A layout under `namespace`.
    pub fn new(namespace: Namespace) -> Self {
        KeyLayout { namespace }
    }

    /// The namespace.
    pub fn namespace(&self) -> &Namespace {
        &self.namespace
    }

    /// The key of a session.
    pub fn session_key(&self, handle: &SessionHandle) -> String {
        let namespace = self.namespace.as_str();
        let mut key = String::with_capacity(namespace.len() + 67);
        key.push_str(namespace);
        key.push_str(":{");
        handle.push_hex(&mut key);
        key.push('}');
        key
    }

    /// The key of a principal's index of sessions.
    pub fn principal_key(&self, principal: &str) -> String {
        let digest = hex::encode(Sha256::digest(principal.as_bytes()));
        format!("{}:principal:{{{digest}}}", self.namespace)
    }
}

/// A live session's metadata, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Meta {
    /// Session version.
    pub version: u64,
    /// Bytes of attribute names and values.
    pub size: u64,
    /// Created.
    pub created_at: Timestamp,
    /// Last access.
    pub last_access: Timestamp,
    /// Idle timeout.
    pub idle_timeout: Duration,
    /// Absolute deadline, if any.
    pub deadline: Option<Timestamp>,
    /// Principal, if any.
    pub principal: Option<String>,
}

/// What a metadata record says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    /// A live session.
    Live(Meta),
    /// A tombstone.
    Deleted,
    /// A forward to the successor of a rotation.
    Moved(SessionHandle),
}

fn corrupt(what: impl Into<String>) -> Error {
    Error::Corrupt(what.into())
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    let mut word = [0u8; 8];
    word.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(word)
}

impl Record {
    /// Reads a metadata record; anything but this layout version's records is corrupt.
    pub fn decode(bytes: &[u8]) -> Result<Record> {
        match bytes {
            [] | [_] => Err(corrupt("a metadata record too short")),
            [version, ..] if *version != LAYOUT_VERSION => Err(corrupt(format!(
                "layout version {version}, this code reads {LAYOUT_VERSION}"
            ))),
            [_, DELETED] => Ok(Record::Deleted),
            [_, MOVED, handle @ ..] => match <[u8; 32]>::try_from(handle) {
                Ok(raw) => Ok(Record::Moved(SessionHandle::from_bytes(raw))),
                Err(_) => Err(corrupt("a forward without a 32-byte target")),
            },
            [_, LIVE, ..] if bytes.len() >= LIVE_FIXED => {
                let deadline = u64_at(bytes, 42);
                let principal = &bytes[LIVE_FIXED..];
                let principal = if principal.is_empty() {
                    None
                } else {
                    Some(
                        std::str::from_utf8(principal)
                            .map_err(|_| corrupt("the principal is not UTF-8"))?
                            .to_owned(),
                    )
                };
                Ok(Record::Live(Meta {
                    version: u64_at(bytes, 2),
                    size: u64_at(bytes, 10),
                    created_at: Timestamp::from_millis(u64_at(bytes, 18)),
                    last_access: Timestamp::from_millis(u64_at(bytes, 26)),
                    idle_timeout: Duration::from_millis(u64_at(bytes, 34)),
                    deadline: (deadline != 0).then(|| Timestamp::from_millis(deadline)),
                    principal,
                }))
            }
            _ => Err(corrupt("an unknown or truncated metadata record")),
        }
    }

    /// The stored bytes of this record (the scripts write the same with `struct.pack`).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![LAYOUT_VERSION];
        match self {
            Record::Deleted => out.push(DELETED),
            Record::Moved(to) => {
                out.push(MOVED);
                out.extend_from_slice(to.as_bytes());
            }
            Record::Live(m) => {
                out.push(LIVE);
                for n in [
                    m.version,
                    m.size,
                    m.created_at.as_millis(),
                    m.last_access.as_millis(),
                    duration_millis(m.idle_timeout),
                    m.deadline.map_or(0, Timestamp::as_millis),
                ] {
                    out.extend_from_slice(&n.to_le_bytes());
                }
                out.extend_from_slice(m.principal.as_deref().unwrap_or_default().as_bytes());
            }
        }
        out
    }
}

/// Splits a stored attribute value into its version and value, without copying the value
/// and without an allocation (`advance` moves the start; `slice` would make the buffer
/// shared, one allocation per attribute of every load).
pub fn decode_attribute(mut stored: Bytes) -> Result<(u64, Bytes)> {
    if stored.len() < VERSION_BYTES {
        return Err(corrupt("an attribute field without a version"));
    }
    let version = u64_at(&stored, 0);
    stored.advance(VERSION_BYTES);
    Ok((version, stored))
}

/// The stored form of an attribute value written at `version`.
pub fn encode_attribute(version: u64, value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(VERSION_BYTES + value.len());
    out.extend_from_slice(&version.to_le_bytes());
    out.extend_from_slice(value);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token::SessionToken;

    fn meta(principal: Option<&str>, deadline: Option<u64>) -> Meta {
        Meta {
            version: 7,
            size: 12,
            created_at: Timestamp::from_millis(1_000),
            last_access: Timestamp::from_millis(2_000),
            idle_timeout: Duration::from_secs(1800),
            deadline: deadline.map(Timestamp::from_millis),
            principal: principal.map(str::to_owned),
        }
    }

    #[test]
    fn records_round_trip() {
        let h = SessionToken::from_bytes([3; 16]).handle();
        for record in [
            Record::Live(meta(None, None)),
            Record::Live(meta(Some("alice"), Some(9_000))),
            Record::Deleted,
            Record::Moved(h),
        ] {
            assert_eq!(Record::decode(&record.encode()).unwrap(), record);
        }
        assert_eq!(Record::Live(meta(None, None)).encode().len(), LIVE_FIXED);
    }

    #[test]
    fn unknown_versions_and_garbage_are_corrupt() {
        let mut future = Record::Deleted.encode();
        future[0] = LAYOUT_VERSION + 1;
        let live = Record::Live(meta(None, None)).encode();
        let mut bad_principal = live.clone();
        bad_principal.push(0xff);
        for bytes in [
            &b""[..],
            b"\x01",
            &future,
            b"\x01X",
            &live[..LIVE_FIXED - 1],
            b"\x01Mshort",
            &bad_principal,
        ] {
            assert!(
                matches!(Record::decode(bytes), Err(Error::Corrupt(_))),
                "{bytes:?}"
            );
        }
        assert!(matches!(
            decode_attribute(Bytes::from_static(b"1234567")),
            Err(Error::Corrupt(_))
        ));
    }

    #[test]
    fn attributes_carry_their_version_in_front() {
        let stored = Bytes::from(encode_attribute(42, b"value"));
        let (version, value) = decode_attribute(stored).unwrap();
        assert_eq!((version, &value[..]), (42, &b"value"[..]));
    }

    #[test]
    fn keys_carry_the_hash_tag_and_never_the_token() {
        let token = SessionToken::generate();
        let layout = KeyLayout::new(Namespace::new("app1").unwrap());
        let key = layout.session_key(&token.handle());
        assert_eq!(key, format!("app1:{{{}}}", token.handle().to_hex()));
        assert!(!key.contains(&token.expose()));
        let pkey = layout.principal_key("alice {weird}\n");
        assert!(pkey.starts_with("app1:principal:{") && pkey.ends_with('}'));
        assert_eq!(pkey.matches('{').count(), 1);
    }

    /// The scripts' copy of the constants (`lua/layout.lua`) says what this module says.
    #[test]
    fn the_lua_layout_matches() {
        let lua = include_str!("lua/layout.lua");
        for line in [
            format!("local LAYOUT = {LAYOUT_VERSION}"),
            format!("local META = '{}'", String::from_utf8_lossy(META_FIELD)),
            format!("local LIVE, DELETED, MOVED = {LIVE}, {DELETED}, {MOVED}"),
            format!("local VERSION_BYTES = {VERSION_BYTES}"),
            format!("local LIVE_FIXED = {LIVE_FIXED}"),
            "local META_FORMAT = '<BBI8I8I8I8I8I8'".to_owned(),
        ] {
            assert!(lua.contains(&line), "lua/layout.lua lacks {line:?}");
        }
    }
}
