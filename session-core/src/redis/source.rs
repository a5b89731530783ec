//! Another library's session records on Redis, as an import [`Source`](crate::import::Source)
//! reads them: the record under its key, and the mark that says it was imported already
//! (kept for a rollback, [`AfterImport::Keep`](crate::import::AfterImport::Keep)). Written
//! once for every source (tower-sessions-redis-store, actix-session): only a record's
//! decoding differs, and that stays with the source.

use std::time::Duration;

use bytes::Bytes;

use super::layout::hashed_part;
use super::{Arg, Command, Reply, Store, Transport};
use crate::error::{Error, Result};

/// How long a mark lives at least, by default: longer than tower-sessions' default expiry
/// (two weeks) and actix-session's (one day), so an old application that saves a kept
/// record again during a rollback does not outlive the mark with a default configuration.
pub const DEFAULT_MARK_FOR: Duration = Duration::from_secs(30 * 24 * 60 * 60);

/// A record's key and its mark's.
///
/// ```
/// use session_core::redis::source::SourceKeys;
/// let keys = SourceKeys::of("app:hK3b_-QxZ0a9mQ2w1pLr7A".into());
/// assert_eq!(keys.mark(), "{app:hK3b_-QxZ0a9mQ2w1pLr7A}:imported");
/// ```
#[derive(Clone)]
pub struct SourceKeys {
    record: String,
    mark: String,
    /// The mark shares the record's Cluster slot, so one batch reaches both.
    together: bool,
}

/// The keys hold session ids, which are secrets: never shown.
impl std::fmt::Debug for SourceKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SourceKeys")
            .field("together", &self.together)
            .finish_non_exhaustive()
    }
}

impl SourceKeys {
    /// A key with a hash tag keeps it in the mark (the first `{..}` still decides); one
    /// without is wrapped in one, which covers the whole key unless the key holds a `}`
    /// (a prefix with braces): then the mark is sent on its own.
    pub fn of(record: String) -> Self {
        let (mark, together) = if hashed_part(record.as_bytes()).len() != record.len() {
            (format!("{record}:imported"), true)
        } else {
            let mark = format!("{{{record}}}:imported");
            let together = hashed_part(mark.as_bytes()) == record.as_bytes();
            (mark, together)
        };
        SourceKeys {
            record,
            mark,
            together,
        }
    }

    /// The mark's key.
    pub fn mark(&self) -> &str {
        &self.mark
    }

    /// The replies to `on_record` and `on_mark`: in one batch when the two keys share a
    /// slot, else one batch each, the record's first (a removal that fails halfway then
    /// leaves a mark without a record, which imports nothing).
    async fn both<T: Transport>(
        &self,
        redis: &Store<T>,
        on_record: Command<'_>,
        on_mark: Command<'_>,
        writes: bool,
    ) -> Result<(Option<Reply>, Option<Reply>)> {
        let transport = redis.transport();
        if self.together {
            let mut replies = transport
                .batch(&self.record, &[on_record, on_mark], writes)
                .await?;
            let mark = replies.pop();
            return Ok((replies.pop(), mark));
        }
        let record = transport
            .batch(&self.record, &[on_record], writes)
            .await?
            .pop();
        let mark = transport.batch(&self.mark, &[on_mark], writes).await?.pop();
        Ok((record, mark))
    }

    /// The record's bytes, unless it is absent or marked imported.
    pub async fn read<T: Transport>(&self, redis: &Store<T>) -> Result<Option<Bytes>> {
        let get = Command::Plain("GET", vec![self.record.as_bytes().into()]);
        let exists = Command::Plain("EXISTS", vec![self.mark.as_bytes().into()]);
        let (record, marked) = self.both(redis, get, exists, false).await?;
        if int(marked, "EXISTS")? > 0 {
            return Ok(None);
        }
        match record {
            Some(Reply::Bytes(bytes)) => Ok(Some(bytes)),
            Some(Reply::Nil) => Ok(None),
            Some(Reply::Error(text)) => Err(Error::Backend(text.into())),
            other => Err(Error::Corrupt(format!(
                "session record: GET answered {other:?}"
            ))),
        }
    }

    /// Removes the record (and its mark); whether there was a record.
    pub async fn remove<T: Transport>(&self, redis: &Store<T>) -> Result<bool> {
        let del_record = Command::Plain("DEL", vec![self.record.as_bytes().into()]);
        let del_mark = Command::Plain("DEL", vec![self.mark.as_bytes().into()]);
        let (removed, _) = self.both(redis, del_record, del_mark, true).await?;
        Ok(int(removed, "DEL")? > 0)
    }

    /// Marks the record imported, for as long as it lives now and at least `at_least` (the
    /// old application may extend the record by saving it); a record without expiry gets a
    /// mark without one. No record: nothing to mark.
    pub async fn mark_imported<T: Transport>(
        &self,
        redis: &Store<T>,
        at_least: Duration,
    ) -> Result<()> {
        let pttl = [Command::Plain("PTTL", vec![self.record.as_bytes().into()])];
        let left = redis
            .transport()
            .batch(&self.record, &pttl, false)
            .await?
            .pop();
        let mut args: Vec<Arg<'_>> = vec![self.mark.as_bytes().into(), b"1".as_slice().into()];
        match int(left, "PTTL")? {
            -1 => {}
            ms if ms > 0 => {
                let at_least = i64::try_from(at_least.as_millis()).unwrap_or(i64::MAX);
                args.push(b"PX".as_slice().into());
                args.push(ms.max(at_least).to_string().into_bytes().into());
            }
            // Gone (or going within the millisecond).
            _ => return Ok(()),
        }
        let set = [Command::Plain("SET", args)];
        int_or_ok(
            redis
                .transport()
                .batch(&self.mark, &set, false)
                .await?
                .pop(),
            "SET",
        )
    }
}

/// An integer reply of `command`.
fn int(reply: Option<Reply>, command: &str) -> Result<i64> {
    match reply {
        Some(Reply::Int(n)) => Ok(n),
        Some(Reply::Error(text)) => Err(Error::Backend(text.into())),
        other => Err(Error::Backend(
            format!("{command} answered {other:?}").into(),
        )),
    }
}

/// A status reply of `command`.
fn int_or_ok(reply: Option<Reply>, command: &str) -> Result<()> {
    match reply {
        Some(Reply::Error(text)) => Err(Error::Backend(text.into())),
        Some(_) => Ok(()),
        None => Err(Error::Backend(format!("{command} answered nothing").into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::redis::layout::key_slot;

    #[test]
    fn the_hashed_part_is_redis_clusters() {
        // The examples of the Redis Cluster specification.
        for (key, hashed) in [
            ("{user1000}.following", "user1000"),
            ("foo{}{bar}", "foo{}{bar}"),
            ("foo{{bar}}zap", "{bar"),
            ("foo{bar}{zap}", "bar"),
            ("plain", "plain"),
        ] {
            assert_eq!(hashed_part(key.as_bytes()), hashed.as_bytes(), "{key}");
        }
    }

    #[test]
    fn a_mark_shares_its_records_slot_or_says_it_does_not() {
        let slot = |key: &str| key_slot(hashed_part(key.as_bytes()));
        let id = "hK3b_-QxZ0a9mQ2w1pLr7A";
        let mut apart = Vec::new();
        for prefix in [
            "", "app:", "{app}:", "app}:", "{}app:", "a{}b:", "x{y", "{a}{b}", "}",
        ] {
            let keys = SourceKeys::of(format!("{prefix}{id}"));
            if keys.together {
                assert_eq!(slot(&keys.record), slot(&keys.mark), "{prefix}");
            } else {
                apart.push(prefix);
            }
        }
        assert_eq!(apart, ["app}:", "{}app:", "a{}b:", "}"]);
    }
}
