//! What the raw subjects share: our layout's two forms (`session_core::redis::layout`),
//! written with the fewest commands a client can send, and a round-trip counter.
//!
//! The raw subjects are the floor: any store over that client pays at least this. Each raw
//! session takes the form our store would give it ([`packed`] decides at create, as our
//! store does): a small session is **packed** (one string: the metadata record, then the
//! entries), a large one **hashed** (field `""` the record, one field per attribute). They
//! keep no versions, guards, tombstones or expiry checks, so a save of a hashed session
//! writes only the value field, and a save of a packed one writes the whole string, rebuilt
//! on the client ([`replace`]) from the bytes it holds ([`RawSession`]), as whole-record
//! stores save.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use session_core::redis::layout::{self, Meta, Record};
use session_core::{KeyLayout, Namespace, SessionToken, Timestamp};

use super::error::{BenchError, Result};
use super::subject::Attrs;

/// The idle timeout raw sessions expire after (our stores' default).
pub const IDLE: Duration = Duration::from_secs(30 * 60);

/// What a raw subject holds to reach a session: its key and, for a packed session, the
/// packed bytes as the client last read or wrote them (a save rewrites the whole string, so
/// the client keeps it; a floor keeps no check that they are still current).
#[derive(Debug, Clone)]
pub struct RawSession {
    /// The session's key.
    pub key: String,
    /// The packed session (the record, then the entries); `None` for a hashed session.
    pub packed: Option<Bytes>,
}

impl RawSession {
    /// A fresh session under `keys`, packed as `packed` or hashed when `None`.
    pub fn new(keys: &KeyLayout, packed: Option<Bytes>) -> Self {
        RawSession {
            key: new_key(keys),
            packed,
        }
    }
}

/// Where raw sessions under `namespace` live: our stores' key layout.
pub fn key_layout(namespace: &str) -> Result<KeyLayout> {
    Ok(KeyLayout::new(Namespace::new(namespace)?))
}

/// A fresh key in our layout, the key our store gives a new session (a random token's).
pub fn new_key(keys: &KeyLayout) -> String {
    keys.session_key(&SessionToken::generate().handle())
}

/// The hash field holding attribute `name`'s value.
pub fn value_field(name: &str) -> String {
    name.to_owned()
}

/// The metadata record our `create` script writes for a new session holding `attrs`.
fn record(attrs: &Attrs) -> Vec<u8> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64;
    let size: usize = attrs.iter().map(|(n, v)| n.len() + v.len()).sum();
    Record::Live(Meta {
        version: 1,
        size: size as u64,
        created_at: Timestamp::from_millis(now),
        last_access: Timestamp::from_millis(now),
        idle_timeout: IDLE,
        deadline: None,
        principal: None,
    })
    .encode()
}

/// A new session holding `attrs` in the packed form (the record, then each attribute at
/// version 1), or `None` when our store would hash it: the rule of `session_core`'s codec,
/// packed iff the entries take at most [`layout::PACKED_MAX`] bytes.
pub fn packed(attrs: &Attrs) -> Option<Bytes> {
    let mut out = record(attrs);
    let entries_start = out.len();
    for (name, value) in attrs {
        layout::encode_entry(&mut out, name, 1, value);
        if out.len() - entries_start > layout::PACKED_MAX {
            return None;
        }
    }
    Some(Bytes::from(out))
}

/// The fields our `create` script writes for a new hashed session holding `attrs`: the
/// metadata record, then each attribute with its version in front.
pub fn create_fields(attrs: &Attrs) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut fields = vec![(layout::META_FIELD.to_vec(), record(attrs))];
    for (name, value) in attrs {
        fields.push((name.as_bytes().to_vec(), layout::encode_attribute(1, value)));
    }
    fields
}

/// The attribute names among a hash's fields.
pub fn attribute_names<'a>(fields: impl IntoIterator<Item = &'a [u8]>) -> Vec<String> {
    fields
        .into_iter()
        .filter(|f| *f != layout::META_FIELD)
        .map(|f| String::from_utf8_lossy(f).into_owned())
        .collect()
}

/// A packed session's record (as stored) and its entries (each name and stored value).
fn split(packed: &Bytes) -> Result<(Bytes, Vec<(Bytes, Bytes)>)> {
    let (_, end) = Record::decode_prefix(packed)?;
    let entries = layout::decode_entries(&packed.slice(end..)).collect::<Result<_, _>>()?;
    Ok((packed.slice(..end), entries))
}

/// A packed session's attribute names.
pub fn packed_names(packed: &Bytes) -> Result<Vec<String>> {
    let (_, entries) = split(packed)?;
    Ok(entries
        .iter()
        .map(|(name, _)| String::from_utf8_lossy(name).into_owned())
        .collect())
}

/// Whether a packed session holds attribute `name` (a client reading one attribute).
pub fn packed_has(packed: &Bytes, name: &str) -> Result<bool> {
    let (_, end) = Record::decode_prefix(packed)?;
    for entry in layout::decode_entries(&packed.slice(end..)) {
        if entry?.0 == name.as_bytes() {
            return Ok(true);
        }
    }
    Ok(false)
}

/// `packed` with attribute `name` set to `value` (replaced, or added at the end), the record
/// and every other entry unchanged: what a floor's save of a packed session writes. It keeps
/// no versions, so the changed attribute is written at version 1.
pub fn replace(packed: &Bytes, name: &str, value: &[u8]) -> Result<Bytes> {
    let (record, entries) = split(packed)?;
    let mut out = Vec::with_capacity(packed.len() + layout::ENTRY_OVERHEAD + value.len());
    out.extend_from_slice(&record);
    let mut replaced = false;
    for (entry, stored) in entries {
        if entry == name.as_bytes() {
            layout::encode_entry(&mut out, name, 1, value);
            replaced = true;
            continue;
        }
        let entry = std::str::from_utf8(&entry)
            .map_err(|_| BenchError::Unexpected("an attribute name that is not UTF-8".into()))?;
        let (version, kept) = layout::decode_attribute(stored)?;
        layout::encode_entry(&mut out, entry, version, &kept);
    }
    if !replaced {
        layout::encode_entry(&mut out, name, 1, value);
    }
    Ok(Bytes::from(out))
}

/// Counts requests sent (a pipeline is one).
#[derive(Debug, Default)]
pub struct RoundTrips(AtomicU64);

impl RoundTrips {
    /// Counts `n` more.
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    /// The count so far.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::plan::{Size, attributes};

    #[test]
    fn small_sessions_are_packed_and_large_ones_hashed() {
        assert!(packed(&attributes(Size::One)).is_some());
        assert!(packed(&attributes(Size::Ten)).is_some());
        assert!(packed(&attributes(Size::Hundred)).is_none());
        // The line itself: entries of exactly PACKED_MAX bytes are packed, one more hashed.
        let at = |len: usize| vec![("a".to_owned(), vec![b'x'; len])];
        let fits = layout::PACKED_MAX - layout::ENTRY_OVERHEAD - 1;
        assert!(packed(&at(fits)).is_some());
        assert!(packed(&at(fits + 1)).is_none());
    }

    #[test]
    fn a_packed_session_decodes_as_our_layout() {
        let attrs = attributes(Size::Ten);
        let blob = packed(&attrs).unwrap();
        let (record, end) = Record::decode_prefix(&blob).unwrap();
        assert!(matches!(record, Record::Live(Meta { version: 1, .. })));
        let entries: Vec<_> = layout::decode_entries(&blob.slice(end..))
            .collect::<session_core::Result<_>>()
            .unwrap();
        assert_eq!(entries.len(), attrs.len());
        for ((name, stored), (want_name, want_value)) in entries.into_iter().zip(&attrs) {
            assert_eq!(&name[..], want_name.as_bytes());
            let (version, value) = layout::decode_attribute(stored).unwrap();
            assert_eq!((version, &value[..]), (1, &want_value[..]));
        }
    }

    #[test]
    fn replace_changes_one_attribute_or_adds_it() {
        let blob = packed(&attributes(Size::Ten)).unwrap();
        let changed = replace(&blob, "a3", b"new").unwrap();
        let (_, end) = Record::decode_prefix(&changed).unwrap();
        assert_eq!(&changed[..end], &blob[..end]);
        let (_, entries) = split(&changed).unwrap();
        assert_eq!(entries.len(), 10);
        let (_, value) = layout::decode_attribute(entries[3].1.clone()).unwrap();
        assert_eq!(&value[..], b"new");
        assert_eq!(entries[4], split(&blob).unwrap().1[4]);
        assert!(packed_has(&changed, "a9").unwrap());
        assert!(!packed_has(&changed, "task-1").unwrap());

        let added = replace(&changed, "task-1", b"v").unwrap();
        let names = packed_names(&added).unwrap();
        assert_eq!(names.len(), 11);
        assert_eq!(names.last().map(String::as_str), Some("task-1"));
        assert!(packed_has(&added, "task-1").unwrap());
    }
}
