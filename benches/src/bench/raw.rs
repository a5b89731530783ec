//! What the raw subjects share: the hash layout our stores use, written with the fewest
//! commands a client can send, and a round-trip counter.
//!
//! The raw subjects are the floor: any store over that client pays at least this. They keep
//! no versions, guards, tombstones or expiry checks, so a save writes only the value field.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use session_core::redis::layout::{self, Meta, Record};
use session_core::{SessionToken, Timestamp};

use super::subject::Attrs;

/// The idle timeout raw sessions expire after (our stores' default).
pub const IDLE: Duration = Duration::from_secs(30 * 60);

/// A fresh key in our layout: `<namespace>:{<sha256 of a random token>}`.
pub fn new_key(namespace: &str) -> String {
    format!(
        "{namespace}:{{{}}}",
        SessionToken::generate().handle().to_hex()
    )
}

/// The hash field holding attribute `name`'s value.
pub fn value_field(name: &str) -> String {
    name.to_owned()
}

/// The fields our `create` script writes for a new session holding `attrs`
/// (`session_core::redis::layout`): the metadata record, then each attribute with its
/// version in front.
pub fn create_fields(attrs: &Attrs) -> Vec<(Vec<u8>, Vec<u8>)> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64;
    let size: usize = attrs.iter().map(|(n, v)| n.len() + v.len()).sum();
    let meta = Record::Live(Meta {
        version: 1,
        size: size as u64,
        created_at: Timestamp::from_millis(now),
        last_access: Timestamp::from_millis(now),
        idle_timeout: IDLE,
        deadline: None,
        principal: None,
    });
    let mut fields = vec![(layout::META_FIELD.to_vec(), meta.encode())];
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
