//! The Redis layout of a session, in one place: key names, hash fields and the bytes inside
//! them. The codec, the store, the Lua scripts (`lua/layout.lua` mirrors the constants
//! here, and a test holds the two together), the testkit and the benches all build on it.
//!
//! # Keys
//! - a session: `<namespace>:{<the handle's first 16 bytes in base64url>}`, 22 characters in
//!   the braces. A token has 128 bits, so more of its digest would lengthen every key (Redis
//!   memory, hashing, bytes on the wire) without making keys more distinct; two tokens whose
//!   keys met would only make `create` try another token. The braces are a Redis Cluster hash
//!   tag, so any further key of one session would share its slot.
//! - a principal's index: `<namespace>:principal:{<sha256(principal) hex>}`, in its own slot.
//!   The principal is hashed so that any user name makes a well-formed key. 64 characters in
//!   its braces against a session's 22, so no namespace (`x:principal`, say) can name another
//!   namespace's index as a session.
//!
//! # A session, layout version 1
//! Designed for reads: a load is one `GET` of one string, or for a large session one
//! `HGETALL`. A session is in one of two forms, and every script reads and writes both:
//!
//! - **Packed** (a string): the metadata record (below), then one entry per attribute: the
//!   name's length (`u16`), the name, the stored value's length (`u32`), the stored value.
//!   Small sessions, the common case, take this form: Redis answers a `GET` with one buffer,
//!   the client decodes it in one pass, and a string costs less memory than a small hash
//!   (whose values over 64 bytes turn it into a hash table).
//! - **Hashed** (a hash): field `""` (no attribute can have that name) holds the metadata
//!   record, and field `<name>` each attribute's stored value. A large session takes this
//!   form, so a write changes only the fields it touches instead of rewriting the session.
//!
//! A write packs a session whose entries take at most [`PACKED_MAX`] bytes and hashes a
//! larger one; a hashed session packs again once its entries fit in [`REPACK_MAX`] (half, so
//! a session near the line does not flip on every write). A stored value is the attribute's
//! version (8 bytes, little-endian), then its value.
//!
//! The metadata record starts with the layout version (one byte) and the state (one byte):
//! - `L`, live: then the session version, the size (bytes of attribute names and values, so
//!   writes enforce the size limit without reading values), created, last access, idle
//!   timeout and deadline (milliseconds since the epoch on the Redis server's clock, `0`: no
//!   deadline), each a little-endian `u64`; then the principal's length (`u16`) and bytes.
//! - `D`, deleted: nothing more. The key is a tombstone (a string) until its grace ends.
//! - `M`, moved by a rotation: then the successor's 32-byte handle (a string as well).
//!
//! Fixed-width binary numbers cost a script one `struct.unpack` to read all of them, and the
//! client no text parsing. The layout version makes a future layout possible: a reader meets
//! an unknown version as [`Error::Corrupt`], never as garbage.
//!
//! The key expires at the session's expiry instant (`PEXPIREAT`: the earlier of last access
//! plus idle timeout and the deadline), which every write keeps, so Redis itself never
//! returns an expired session.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
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
/// Characters of a session key between its braces (16 bytes in base64url).
pub const KEY_HANDLE_CHARS: usize = 22;
/// Bytes of a live record before the principal: layout, state, six numbers, the
/// principal's length.
pub const LIVE_FIXED: usize = 2 + 6 * 8 + 2;
/// Where the last access sits in a record (a touch rewrites only these 8 bytes).
pub const LAST_ACCESS_AT: usize = 2 + 3 * 8;
/// Bytes of a packed entry besides its name and value: the two lengths and the version.
pub const ENTRY_OVERHEAD: usize = 2 + 4 + VERSION_BYTES;
/// A session whose packed entries take at most this many bytes is stored packed.
pub const PACKED_MAX: usize = 4096;
/// A hashed session is packed again when its entries take at most this many bytes.
pub const REPACK_MAX: usize = PACKED_MAX / 2;

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
        // Encoded on the stack: `encode_string`'s chunked writer cost twice as much, and
        // this runs on every operation.
        let mut encoded = [0u8; KEY_HANDLE_CHARS];
        let written = URL_SAFE_NO_PAD
            .encode_slice(&handle.as_bytes()[..16], &mut encoded)
            .unwrap_or(0);
        // 16 bytes are always 22 characters of the base64url alphabet.
        debug_assert_eq!(written, KEY_HANDLE_CHARS);
        let mut key = String::with_capacity(namespace.len() + 2 + KEY_HANDLE_CHARS + 1);
        key.push_str(namespace);
        key.push_str(":{");
        key.push_str(std::str::from_utf8(&encoded[..written]).unwrap_or_default());
        key.push('}');
        key
    }

    /// The key of a principal's index of sessions.
    pub fn principal_key(&self, principal: &str) -> String {
        let digest = hex::encode(Sha256::digest(principal.as_bytes()));
        format!("{}:principal:{{{digest}}}", self.namespace)
    }

    /// The Redis Cluster slot of a session's key. It depends on the handle alone (the key's
    /// hash tag), not on the namespace: rotation draws a new token whose key shares the old
    /// key's slot, so that one script can move the session and leave the forward.
    pub fn session_slot(handle: &SessionHandle) -> u16 {
        let mut tag = [0u8; KEY_HANDLE_CHARS];
        let written = URL_SAFE_NO_PAD
            .encode_slice(&handle.as_bytes()[..16], &mut tag)
            .unwrap_or(0);
        key_slot(&tag[..written])
    }
}

/// The part of `key` that Redis Cluster hashes: what lies between the first `{` and the
/// first `}` after it, if that is not empty, else the whole key.
pub fn hashed_part(key: &[u8]) -> &[u8] {
    key.iter()
        .position(|&b| b == b'{')
        .and_then(|open| {
            let inner = &key[open + 1..];
            let len = inner.iter().position(|&b| b == b'}')?;
            (len > 0).then(|| &inner[..len])
        })
        .unwrap_or(key)
}

/// The Redis Cluster slot of a hash tag: CRC16 (XMODEM) modulo 16384, as servers compute it.
/// The slot of a whole key is `key_slot(hashed_part(key))`.
pub fn key_slot(tag: &[u8]) -> u16 {
    crc16::State::<crc16::XMODEM>::calculate(tag) % 16384
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
    /// Reads a metadata record that fills `bytes` (a hashed session's field `""`).
    pub fn decode(bytes: &[u8]) -> Result<Record> {
        match Record::decode_prefix(bytes)? {
            (record, end) if end == bytes.len() => Ok(record),
            _ => Err(corrupt("bytes after a metadata record")),
        }
    }

    /// Reads the metadata record at the start of `bytes` and says where it ends (a packed
    /// session's entries follow it). Anything but this layout version's records is corrupt.
    pub fn decode_prefix(bytes: &[u8]) -> Result<(Record, usize)> {
        match bytes {
            [] | [_] => Err(corrupt("a metadata record too short")),
            [version, ..] if *version != LAYOUT_VERSION => Err(corrupt(format!(
                "layout version {version}, this code reads {LAYOUT_VERSION}"
            ))),
            [_, DELETED] => Ok((Record::Deleted, 2)),
            [_, MOVED, handle @ ..] => match <[u8; 32]>::try_from(handle) {
                Ok(raw) => Ok((Record::Moved(SessionHandle::from_bytes(raw)), 34)),
                Err(_) => Err(corrupt("a forward without a 32-byte target")),
            },
            [_, LIVE, ..] if bytes.len() >= LIVE_FIXED => {
                let principal_len = usize::from(u16::from_le_bytes([bytes[50], bytes[51]]));
                let end = LIVE_FIXED + principal_len;
                let principal = match bytes.get(LIVE_FIXED..end) {
                    None => return Err(corrupt("a truncated principal")),
                    Some([]) => None,
                    Some(p) => Some(
                        std::str::from_utf8(p)
                            .map_err(|_| corrupt("the principal is not UTF-8"))?
                            .to_owned(),
                    ),
                };
                let deadline = u64_at(bytes, 42);
                let meta = Meta {
                    version: u64_at(bytes, 2),
                    size: u64_at(bytes, 10),
                    created_at: Timestamp::from_millis(u64_at(bytes, 18)),
                    last_access: Timestamp::from_millis(u64_at(bytes, LAST_ACCESS_AT)),
                    idle_timeout: Duration::from_millis(u64_at(bytes, 34)),
                    deadline: (deadline != 0).then(|| Timestamp::from_millis(deadline)),
                    principal,
                };
                Ok((Record::Live(meta), end))
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
                // Principals are at most MAX_PRINCIPAL_LEN (256) bytes, checked on the way in.
                let principal = m.principal.as_deref().unwrap_or_default().as_bytes();
                out.extend_from_slice(&(principal.len() as u16).to_le_bytes());
                out.extend_from_slice(principal);
            }
        }
        out
    }
}

/// Appends a packed entry: an attribute `name` with its value written at `version`.
pub fn encode_entry(out: &mut Vec<u8>, name: &str, version: u64, value: &[u8]) {
    out.reserve(ENTRY_OVERHEAD + name.len() + value.len());
    // Names are at most MAX_NAME_LEN (256) bytes and values at most `max_value_bytes`, which
    // `Policy::validate` keeps below 4 GiB.
    out.extend_from_slice(&(name.len() as u16).to_le_bytes());
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(&((VERSION_BYTES + value.len()) as u32).to_le_bytes());
    out.extend_from_slice(&version.to_le_bytes());
    out.extend_from_slice(value);
}

/// The packed entries that follow a record: each attribute's name and stored value (decode
/// that with [`decode_attribute`]), as slices of `packed`, not copies.
pub fn decode_entries(packed: &Bytes) -> impl Iterator<Item = Result<(Bytes, Bytes)>> + '_ {
    let mut at = 0;
    std::iter::from_fn(move || {
        if at == packed.len() {
            return None;
        }
        let entry = entry_at(packed, at);
        match entry {
            Ok((name, stored, end)) => {
                at = end;
                Some(Ok((packed.slice(name), packed.slice(stored))))
            }
            Err(e) => {
                at = packed.len();
                Some(Err(e))
            }
        }
    })
}

type Span = std::ops::Range<usize>;

fn entry_at(packed: &[u8], at: usize) -> Result<(Span, Span, usize)> {
    let truncated = || corrupt("a truncated attribute entry");
    let name_len = packed.get(at..at + 2).ok_or_else(truncated)?;
    let name_end = at + 2 + usize::from(u16::from_le_bytes([name_len[0], name_len[1]]));
    let stored_len = packed.get(name_end..name_end + 4).ok_or_else(truncated)?;
    let stored_len = u32::from_le_bytes(stored_len.try_into().map_err(|_| truncated())?);
    let stored_end = name_end + 4 + stored_len as usize;
    if stored_end > packed.len() {
        return Err(truncated());
    }
    Ok((at + 2..name_end, name_end + 4..stored_end, stored_end))
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
    fn entries_round_trip_and_truncation_is_corrupt() {
        let mut packed = Vec::new();
        encode_entry(&mut packed, "cart", 3, b"apples");
        encode_entry(&mut packed, "n", 1, b"");
        assert_eq!(packed.len(), 2 * ENTRY_OVERHEAD + 4 + 6 + 1);
        let packed = Bytes::from(packed);
        let entries: Vec<_> = decode_entries(&packed).collect::<Result<_>>().unwrap();
        let (name, stored) = &entries[0];
        assert_eq!(&name[..], b"cart");
        let (version, value) = decode_attribute(stored.clone()).unwrap();
        assert_eq!((version, &value[..]), (3, &b"apples"[..]));
        assert_eq!(&entries[1].0[..], b"n");
        for cut in 1..packed.len() {
            if cut == ENTRY_OVERHEAD + 4 + 6 {
                continue; // a whole first entry
            }
            let short = packed.slice(..cut);
            assert!(
                decode_entries(&short).any(|e| matches!(e, Err(Error::Corrupt(_)))),
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn a_record_says_where_it_ends() {
        let record = Record::Live(meta(Some("bob"), None)).encode();
        assert_eq!(record.len(), LIVE_FIXED + 3);
        let mut packed = record.clone();
        packed.extend_from_slice(b"entries");
        let (_, end) = Record::decode_prefix(&packed).unwrap();
        assert_eq!(end, record.len());
        assert!(matches!(Record::decode(&packed), Err(Error::Corrupt(_))));
        assert!(matches!(
            Record::decode(&record[..record.len() - 1]),
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
        let inside = &key["app1:{".len()..key.len() - 1];
        assert_eq!(inside.len(), KEY_HANDLE_CHARS);
        assert!(key.starts_with("app1:{") && key.ends_with('}'));
        assert!(!key.contains(&token.expose()));
        assert_eq!(
            URL_SAFE_NO_PAD.decode(inside).unwrap(),
            token.handle().as_bytes()[..16]
        );
        let pkey = layout.principal_key("alice {weird}\n");
        assert!(pkey.starts_with("app1:principal:{") && pkey.ends_with('}'));
        assert_eq!(pkey.matches('{').count(), 1);
    }

    #[test]
    fn slots_are_the_servers() {
        // `CLUSTER KEYSLOT 123456789` is 12739 (the Redis Cluster specification's example).
        assert_eq!(key_slot(b"123456789"), 12739);
        let handle = SessionToken::generate().handle();
        let key = KeyLayout::default().session_key(&handle);
        let tag = &key[key.find('{').unwrap() + 1..key.len() - 1];
        assert_eq!(KeyLayout::session_slot(&handle), key_slot(tag.as_bytes()));
    }

    /// A namespace ending in `:principal` cannot make a session key that is another
    /// namespace's principal index: 22 characters in a session key's braces, 64 in an
    /// index's.
    #[test]
    fn no_session_key_is_a_principal_index() {
        let sessions = KeyLayout::new(Namespace::new("x:principal").unwrap());
        let indexes = KeyLayout::new(Namespace::new("x").unwrap());
        let index = indexes.principal_key("alice");
        for _ in 0..100 {
            let key = sessions.session_key(&SessionToken::generate().handle());
            assert!(key.starts_with("x:principal:{"));
            assert_ne!(key.len(), index.len());
        }
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
            format!("local LAST_ACCESS_AT = {LAST_ACCESS_AT}"),
            format!("local PACKED_MAX = {PACKED_MAX}"),
            format!("local REPACK_MAX = {REPACK_MAX}"),
            "local META_FORMAT = '<BBI8I8I8I8I8I8I2'".to_owned(),
            "local ENTRY_FORMAT = '<I2c0I4c0'".to_owned(),
        ] {
            assert!(lua.contains(&line), "lua/layout.lua lacks {line:?}");
        }
    }
}
