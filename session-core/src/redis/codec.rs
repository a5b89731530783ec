//! Argument encoding and reply decoding for the scripts and reads of [`Store`](super::Store).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::collections::btree_map::Entry;
use std::time::Duration;

use bytes::{Buf, Bytes};

use super::layout::{self, META_FIELD, Record};
use super::{Arg, Reply};
use crate::delta::{Applied, Delta, Guard, Op};
use crate::error::{Error, Limit, Result};
use crate::handle::SessionHandle;
use crate::model::PreparedNew;
use crate::policy::Limits;
use crate::session::{Attribute, Deadline, SessionRecord};
use crate::time::{Timestamp, duration_millis};

/// What a session key holds, as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// A live session.
    Live(SessionRecord),
    /// Nothing live: absent, expired or deleted.
    Gone,
    /// A rotated session's forward to its successor.
    Moved(SessionHandle),
}

/// A number as Redis reads it: decimal text.
pub(crate) fn num<'a>(n: impl ToString) -> Arg<'a> {
    Cow::Owned(n.to_string().into_bytes())
}

/// A count: the common small ones without an allocation.
fn count<'a>(n: usize) -> Arg<'a> {
    match n {
        0 => Cow::Borrowed(b"0"),
        1 => Cow::Borrowed(b"1"),
        n => num(n),
    }
}

/// A duration in whole milliseconds.
pub(crate) fn ms<'a>(d: Duration) -> Arg<'a> {
    num(duration_millis(d))
}

const NONE: Arg<'static> = Cow::Borrowed(b"");

fn deadline_args<'a>(deadline: &Deadline) -> [Arg<'a>; 2] {
    match deadline {
        Deadline::Never => [Cow::Borrowed(b"N"), Cow::Borrowed(b"0")],
        Deadline::At(t) => [Cow::Borrowed(b"A"), num(t.as_millis())],
        Deadline::In(d) => [Cow::Borrowed(b"F"), ms(*d)],
    }
}

/// Arguments of the `create` script: the session's form (`S` packed, `H` hashed) and its
/// attributes in their stored form (version 1 in front), so the script writes them as they
/// come: packed, one argument of entries; hashed, name / stored value pairs.
pub(crate) fn create_args(new: &PreparedNew) -> Vec<Arg<'_>> {
    let [mode, at] = deadline_args(&new.deadline);
    let mut args = Vec::with_capacity(6 + 2 * new.attributes.len());
    args.extend([
        ms(new.idle_timeout),
        mode,
        at,
        Cow::Borrowed(new.principal.as_deref().unwrap_or_default().as_bytes()),
        num(new.size),
    ]);
    match packed_entries(new) {
        Some(entries) => args.extend([Cow::Borrowed(&b"S"[..]), Cow::Owned(entries)]),
        None => {
            args.push(Cow::Borrowed(b"H"));
            for (name, value) in &new.attributes {
                args.push(Cow::Borrowed(name.as_bytes()));
                args.push(Cow::Owned(layout::encode_attribute(1, value)));
            }
        }
    }
    args
}

/// A guard as the scripts take it: (kind, name, version), an attribute version as the 8 bytes
/// stored in front of the value, so a script compares bytes and parses nothing.
fn guard_args(guard: &Guard) -> [Arg<'_>; 3] {
    match guard {
        Guard::SessionVersion(v) => [Cow::Borrowed(b"V"), NONE, num(v)],
        Guard::AttributeVersion { name, version } => [
            Cow::Borrowed(b"A"),
            Cow::Borrowed(name.as_bytes()),
            Cow::Owned(version.to_le_bytes().to_vec()),
        ],
        Guard::Absent { name } => [Cow::Borrowed(b"X"), Cow::Borrowed(name.as_bytes()), NONE],
    }
}

/// Arguments of the `apply` script, borrowing names and values from `delta`.
pub(crate) fn apply_args<'a>(delta: &'a Delta, limits: &Limits) -> Vec<Arg<'a>> {
    let mut args = vec![num(limits.max_session_bytes), count(delta.guards().len())];
    for guard in delta.guards() {
        args.extend(guard_args(guard));
    }
    args.push(count(delta.ops().len()));
    for op in delta.ops() {
        let [kind, a, b]: [Arg<'a>; 3] = match op {
            Op::Put { name, value } => [
                Cow::Borrowed(b"P"),
                Cow::Borrowed(name.as_bytes()),
                Cow::Borrowed(value.as_slice()),
            ],
            Op::Remove { name } => [Cow::Borrowed(b"R"), Cow::Borrowed(name.as_bytes()), NONE],
            Op::Increment { name, by } => {
                [Cow::Borrowed(b"I"), Cow::Borrowed(name.as_bytes()), num(by)]
            }
            Op::SetIdleTimeout(d) => [Cow::Borrowed(b"T"), ms(*d), NONE],
            Op::SetDeadline(deadline) => {
                let [mode, at] = deadline_args(deadline);
                [Cow::Borrowed(b"D"), mode, at]
            }
            Op::SetPrincipal(p) => [
                Cow::Borrowed(b"U"),
                Cow::Borrowed(p.as_deref().unwrap_or_default().as_bytes()),
                NONE,
            ],
            Op::Touch => [Cow::Borrowed(b"H"), NONE, NONE],
        };
        args.extend([kind, a, b]);
    }
    args
}

/// `apply_attrs`' arguments: the form the session was last seen in ([`form_hint`]), guards
/// as in [`apply_args`], operations (puts, removes, increments only) as (kind, name,
/// argument). Values are borrowed from `delta`, not copied.
pub(crate) fn apply_attrs_args<'a>(
    delta: &'a Delta,
    limits: &Limits,
    hashed: bool,
) -> Vec<Arg<'a>> {
    let mut args = Vec::with_capacity(4 + 3 * delta.guards().len() + 3 * delta.ops().len());
    args.extend([
        form_hint(hashed),
        num(limits.max_session_bytes),
        count(delta.guards().len()),
    ]);
    for guard in delta.guards() {
        args.extend(guard_args(guard));
    }
    args.push(count(delta.ops().len()));
    for op in delta.ops() {
        let (kind, name, arg): (&'static [u8], &str, Arg<'a>) = match op {
            Op::Put { name, value } => (b"P", name, Cow::Borrowed(value.as_slice())),
            Op::Remove { name } => (b"R", name, NONE),
            Op::Increment { name, by } => (b"I", name, num(by)),
            // The store sends other deltas to `apply`; this arm keeps the script's argument
            // shape should one slip through (the script then answers an error).
            _ => (b"?", "", NONE),
        };
        args.extend([Cow::Borrowed(kind), Cow::Borrowed(name.as_bytes()), arg]);
    }
    args
}

/// `apply_attrs`' first argument: which form to read first (`H` hashed, `S` packed).
pub(crate) fn form_hint(hashed: bool) -> Arg<'static> {
    Cow::Borrowed(if hashed { b"H" } else { b"S" })
}

fn corrupt(what: impl Into<String>) -> Error {
    Error::Corrupt(what.into())
}

/// Decodes a hashed session: field/value pairs, as `HGETALL` returns them, or the non-nil
/// answers of an `HMGET`. Redis never returns a key past its expiry, so a live record is a
/// live session.
///
/// Every load of a large session runs this, so it decodes in one pass into the session's
/// own map: one string per attribute name, and each value a slice of the reply, not a copy.
pub fn decode_session<F: Into<Vec<u8>> + AsRef<[u8]>>(
    handle: SessionHandle,
    pairs: impl IntoIterator<Item = (F, Bytes)>,
) -> Result<Lookup> {
    let mut meta = None;
    let mut found = false;
    let mut attributes = Attributes::default();
    for (field, value) in pairs {
        found = true;
        if field.as_ref() == META_FIELD {
            meta = Some(Record::decode(&value)?);
            continue;
        }
        // A field that came in its own buffer becomes the name without a copy.
        match String::from_utf8(field.into()) {
            Ok(name) => attributes.add(name, value),
            Err(e) => {
                attributes.damage(String::from_utf8_lossy(e.as_bytes()).into_owned(), NOT_UTF8)
            }
        }
    }
    match meta {
        None if !found => Ok(Lookup::Gone),
        None => Err(corrupt("a hash without a metadata record")),
        Some(record) => Ok(lookup(handle, record, attributes)),
    }
}

/// Decodes a packed session (a `GET` reply), keeping only the attributes in `names` when
/// given (`load_some`). The values are slices of `packed`, not copies.
///
/// Entries that cannot be framed damage the whole session ([`Error::Corrupt`]); an entry
/// whose name or stored value is unreadable damages only that attribute. A name packed
/// twice reads as its first entry, as the scripts read it (only a foreign writer packs one
/// twice; the next rewrite drops the second).
pub fn decode_packed(
    handle: SessionHandle,
    mut packed: Bytes,
    names: Option<&[&str]>,
) -> Result<Lookup> {
    let (record, end) = Record::decode_prefix(&packed)?;
    packed.advance(end);
    let mut attributes = Attributes::default();
    if matches!(record, Record::Live(_)) {
        for entry in layout::decode_entries(&packed) {
            let (name, stored) = entry?;
            let Ok(name) = std::str::from_utf8(&name) else {
                if names.is_none() {
                    attributes.damage(String::from_utf8_lossy(&name).into_owned(), NOT_UTF8);
                }
                continue;
            };
            if names.is_some_and(|names| !names.contains(&name)) {
                continue;
            }
            attributes.add(name.to_owned(), stored);
        }
    } else if !packed.is_empty() {
        return Err(corrupt("bytes after a metadata record"));
    }
    Ok(lookup(handle, record, attributes))
}

const NOT_UTF8: &str = "its name is not UTF-8";

/// A session's attributes as decoded: the readable ones, and the damaged ones with what is
/// wrong (see [`SessionRecord::damaged`]).
#[derive(Default)]
struct Attributes {
    readable: BTreeMap<String, Attribute>,
    damaged: BTreeMap<String, String>,
}

impl Attributes {
    /// Adds an attribute from its stored value; a name already met keeps its first entry.
    fn add(&mut self, name: String, stored: Bytes) {
        if self.damaged.contains_key(&name) {
            return;
        }
        let Entry::Vacant(slot) = self.readable.entry(name) else {
            return;
        };
        match layout::decode_attribute(stored) {
            Ok((version, value)) => {
                slot.insert(Attribute { value, version });
            }
            Err(Error::Corrupt(what)) => {
                self.damaged.insert(slot.into_key(), what);
            }
            Err(other) => {
                self.damaged.insert(slot.into_key(), other.to_string());
            }
        }
    }

    fn damage(&mut self, name: String, what: &str) {
        self.damaged.entry(name).or_insert_with(|| what.to_owned());
    }
}

fn lookup(handle: SessionHandle, record: Record, attributes: Attributes) -> Lookup {
    match record {
        Record::Deleted => Lookup::Gone,
        Record::Moved(to) => Lookup::Moved(to),
        Record::Live(m) => Lookup::Live(SessionRecord {
            handle,
            version: m.version,
            created_at: m.created_at,
            last_access: m.last_access,
            idle_timeout: m.idle_timeout,
            deadline: m.deadline,
            principal: m.principal,
            attributes: attributes.readable,
            damaged: attributes.damaged,
        }),
    }
}

/// Packs a new session's attributes, each at version 1, if they fit the packed form.
pub(crate) fn packed_entries(new: &PreparedNew) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    for (name, value) in &new.attributes {
        layout::encode_entry(&mut out, name, 1, value);
        if out.len() > layout::PACKED_MAX {
            return None;
        }
    }
    Some(out)
}

/// Reads a `GET` of a session key: a packed session, or nothing (`Gone`); `Ok(None)` when
/// the key is a hash (`WRONGTYPE`), so the caller reads the hashed form instead.
pub(crate) fn decode_get(
    handle: SessionHandle,
    reply: Reply,
    names: Option<&[&str]>,
) -> Result<Option<Lookup>> {
    match reply {
        Reply::Bytes(packed) => decode_packed(handle, packed, names).map(Some),
        Reply::Nil => Ok(Some(Lookup::Gone)),
        Reply::Error(e) if e.starts_with("WRONGTYPE") => Ok(None),
        other => Err(reply_error(other, "GET")),
    }
}

/// Flat `HGETALL` reply to pairs.
pub(crate) fn pairs(reply: Reply) -> Result<Vec<(Bytes, Bytes)>> {
    let items = match reply {
        Reply::Array(items) => items,
        Reply::Nil => Vec::new(),
        other => return Err(reply_error(other, "HGETALL")),
    };
    let mut out = Vec::with_capacity(items.len() / 2);
    let mut items = items.into_iter();
    while let (Some(f), Some(v)) = (items.next(), items.next()) {
        out.push((bytes(f)?, bytes(v)?));
    }
    Ok(out)
}

/// `HMGET` of `fields` to the pairs that are present (the field names borrowed, not copied).
pub(crate) fn present<'f>(fields: &'f [Arg<'_>], reply: Reply) -> Result<Vec<(&'f [u8], Bytes)>> {
    let Reply::Array(items) = reply else {
        return Err(reply_error(reply, "HMGET"));
    };
    let mut out = Vec::with_capacity(items.len());
    for (field, item) in fields.iter().zip(items) {
        if item != Reply::Nil {
            out.push((field.as_ref(), bytes(item)?));
        }
    }
    Ok(out)
}

/// A reply that should have been something else: a `WRONGTYPE` error means a foreign key.
pub(crate) fn reply_error(reply: Reply, what: &str) -> Error {
    match reply {
        Reply::Error(e) if e.starts_with("WRONGTYPE") => corrupt("the key holds another type"),
        Reply::Error(e) => Error::backend(format!("{what}: {e}")),
        other => Error::backend(format!("{what}: unexpected reply {other:?}")),
    }
}

pub(crate) fn bytes(reply: Reply) -> Result<Bytes> {
    match reply {
        Reply::Bytes(b) => Ok(b),
        Reply::Int(i) => Ok(Bytes::from(i.to_string())),
        other => Err(reply_error(other, "a string")),
    }
}

pub(crate) fn int(reply: Reply) -> Result<i64> {
    match reply {
        Reply::Int(i) => Ok(i),
        Reply::Bytes(b) => std::str::from_utf8(&b)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| Error::backend("expected an integer")),
        other => Err(reply_error(other, "an integer")),
    }
}

/// What a write that moved a session's expiry or set its principal tells the store, so that
/// the principal's index outlives the session ([`Answer::index_follow`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct IndexFollow {
    pub principal: String,
    /// The session's expiry before the write.
    pub before: Timestamp,
    /// Its expiry after.
    pub after: Timestamp,
}

/// A script's answer: its status word and the rest.
pub(crate) struct Answer {
    pub status: Cow<'static, str>,
    pub rest: std::iter::Chain<std::option::IntoIter<Reply>, std::vec::IntoIter<Reply>>,
}

impl Answer {
    /// Reads a script's reply: an array whose first item is the status, or a bare integer,
    /// which stands for `{'OK', n}`. Scripts answer their commonest success that way: on
    /// Redis 7.0 a table reply cost `apply_attrs` about 2 µs of Redis CPU more than an
    /// integer (measured with `INFO commandstats`), more than one of its inner commands.
    /// That answer is read without an allocation.
    pub(crate) fn of(reply: Reply, script: &str) -> Result<Answer> {
        let items = match reply {
            Reply::Array(items) => items,
            Reply::Int(n) => {
                return Ok(Answer {
                    status: Cow::Borrowed("OK"),
                    rest: Some(Reply::Int(n)).into_iter().chain(Vec::new()),
                });
            }
            other => return Err(reply_error(other, script)),
        };
        let mut items = items.into_iter();
        let status = items.next().map(bytes).transpose()?.unwrap_or_default();
        Ok(Answer {
            status: Cow::Owned(String::from_utf8_lossy(&status).into_owned()),
            rest: None.into_iter().chain(items),
        })
    }

    pub(crate) fn int(&mut self) -> Result<i64> {
        int(self
            .rest
            .next()
            .ok_or_else(|| Error::backend("script reply too short"))?)
    }

    /// A successor's handle, as a forward stores it (32 bytes).
    pub(crate) fn handle(&mut self) -> Result<SessionHandle> {
        let raw = bytes(
            self.rest
                .next()
                .ok_or_else(|| Error::backend("script reply too short"))?,
        )?;
        <[u8; 32]>::try_from(&raw[..])
            .map(SessionHandle::from_bytes)
            .map_err(|_| corrupt("a forward without a 32-byte target"))
    }

    pub(crate) fn text(&mut self) -> String {
        self.rest
            .next()
            .and_then(|r| bytes(r).ok())
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    /// The tail a script adds after a write that moved the expiry of a session with a
    /// principal, or set its principal: `'INDEX'`, the principal, the expiry before and
    /// after (see `lua/prelude.lua`). `None` when the answer ends here.
    pub(crate) fn index_follow(&mut self) -> Result<Option<IndexFollow>> {
        match self.rest.next() {
            None => Ok(None),
            Some(Reply::Bytes(word)) if &word[..] == b"INDEX" => {
                let principal = String::from_utf8(
                    bytes(
                        self.rest
                            .next()
                            .ok_or_else(|| Error::backend("script reply too short"))?,
                    )?
                    .to_vec(),
                )
                .map_err(|_| corrupt("a principal that is not UTF-8"))?;
                let ms = |n: i64| Timestamp::from_millis(n.max(0) as u64);
                Ok(Some(IndexFollow {
                    principal,
                    before: ms(self.int()?),
                    after: ms(self.int()?),
                }))
            }
            Some(other) => Err(reply_error(other, "the end of a script's answer")),
        }
    }

    /// The answers every script shares; `Ok(None)` for a status the caller handles.
    pub(crate) fn common(&mut self, handle: SessionHandle) -> Result<Option<SessionHandle>> {
        match &*self.status {
            "NOTFOUND" => Err(Error::NotFound { handle }),
            "MOVED" => Ok(Some(self.handle()?)),
            "CORRUPT" => Err(corrupt(self.text())),
            _ => Ok(None),
        }
    }
}

/// Decodes an `apply` answer: the result (and what the principal's index must follow), or a
/// forward to follow.
pub(crate) fn apply_answer(
    mut a: Answer,
    delta: &Delta,
    handle: SessionHandle,
    limits: &Limits,
) -> Result<Result<(Applied, Option<IndexFollow>), SessionHandle>> {
    if let Some(to) = a.common(handle)? {
        return Ok(Err(to));
    }
    let op_name = |a: &mut Answer| -> Result<String> {
        let index = a.int()? as usize;
        match delta.ops().get(index.wrapping_sub(1)) {
            Some(Op::Increment { name, .. }) => Ok(name.clone()),
            _ => Err(Error::backend(
                "apply: an error names an operation that is no increment",
            )),
        }
    };
    match &*a.status {
        "OK" => {
            let version = a.int()? as u64;
            let count = delta
                .ops()
                .iter()
                .filter(|op| matches!(op, Op::Increment { .. }))
                .count();
            let increments = (0..count).map(|_| a.int()).collect::<Result<Vec<_>>>()?;
            let follow = a.index_follow()?;
            Ok(Ok((
                Applied {
                    version,
                    increments,
                },
                follow,
            )))
        }
        "CONFLICT" => Err(Error::Conflict {
            current_version: a.int()? as u64,
        }),
        "TYPE" => Err(Error::TypeMismatch {
            name: op_name(&mut a)?,
            expected: "a decimal integer",
        }),
        "OVERFLOW" => Err(Error::Overflow {
            name: op_name(&mut a)?,
        }),
        "LIMIT" => Err(Error::LimitExceeded {
            limit: Limit::SessionSize,
            actual: a.int()? as usize,
            max: limits.max_session_bytes,
        }),
        other => Err(Error::backend(format!(
            "apply: unexpected answer {other:?}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::redis::layout::{Meta, encode_attribute};
    use crate::time::Timestamp;
    use crate::token::SessionToken;

    fn live(principal: Option<&str>) -> Bytes {
        Bytes::from(
            Record::Live(Meta {
                version: 3,
                size: 2,
                created_at: Timestamp::from_millis(1000),
                last_access: Timestamp::from_millis(2000),
                idle_timeout: Duration::from_millis(500),
                deadline: None,
                principal: principal.map(str::to_owned),
            })
            .encode(),
        )
    }

    fn attr(version: u64, value: &str) -> Bytes {
        Bytes::from(encode_attribute(version, value.as_bytes()))
    }

    #[test]
    fn decodes_a_session() {
        let h = SessionToken::from_bytes([1; 16]).handle();
        let fields = vec![(&b"n"[..], attr(2, "7")), (META_FIELD, live(Some("ann")))];
        let Lookup::Live(s) = decode_session(h, fields).unwrap() else {
            panic!("live")
        };
        assert_eq!(
            (s.version, s.principal.as_deref(), s.attribute_version("n")),
            (3, Some("ann"), Some(2))
        );
        assert_eq!(s.get_bytes("n"), Some(&b"7"[..]));
        assert_eq!(s.last_access, Timestamp::from_millis(2000));
        assert_eq!(
            decode_session(h, Vec::<(&[u8], Bytes)>::new()).unwrap(),
            Lookup::Gone
        );
    }

    #[test]
    fn garbage_is_corrupt_not_a_panic() {
        let h = SessionToken::from_bytes([1; 16]).handle();
        let cases: Vec<Vec<(&[u8], Bytes)>> = vec![
            vec![(META_FIELD, Bytes::from_static(b"not a record"))],
            vec![(b"a", attr(1, "x"))],
            vec![(META_FIELD, Bytes::from_static(b"\x01Mnot 32 bytes"))],
            vec![(META_FIELD, Bytes::from_static(b"\x01Z"))],
        ];
        for fields in cases {
            assert!(
                matches!(decode_session(h, fields.clone()), Err(Error::Corrupt(_))),
                "{fields:?}"
            );
        }
        // Damage to one attribute leaves the others readable.
        let damaged: Vec<(&[u8], Bytes)> = vec![
            (META_FIELD, live(None)),
            (b"a", Bytes::from_static(b"short")),
            (b"\xff", attr(1, "x")),
            (b"c", attr(4, "7")),
        ];
        let Lookup::Live(s) = decode_session(h, damaged).unwrap() else {
            panic!("live")
        };
        assert_eq!(s.get::<i64>("c").unwrap(), Some(7));
        assert_eq!(s.damaged.keys().collect::<Vec<_>>(), vec!["a", "\u{fffd}"]);
        assert!(matches!(s.get::<i64>("a"), Err(Error::Corrupt(_))));
        assert_eq!(s.get_bytes("a"), None);
        let deleted = Bytes::from(Record::Deleted.encode());
        assert_eq!(
            decode_session(h, vec![(META_FIELD, deleted)]).unwrap(),
            Lookup::Gone
        );
        let moved = Bytes::from(Record::Moved(h).encode());
        assert_eq!(
            decode_session(h, vec![(META_FIELD, moved)]).unwrap(),
            Lookup::Moved(h)
        );
        assert!(matches!(
            reply_error(
                Reply::Error("WRONGTYPE Operation against a key".into()),
                "HGETALL"
            ),
            Error::Corrupt(_)
        ));
    }

    fn packed(principal: Option<&str>, entries: &[(&str, u64, &str)]) -> Bytes {
        let mut out = live(principal).to_vec();
        for (name, version, value) in entries {
            layout::encode_entry(&mut out, name, *version, value.as_bytes());
        }
        Bytes::from(out)
    }

    #[test]
    fn decodes_a_packed_session_and_keeps_only_the_named_attributes() {
        let h = SessionToken::from_bytes([2; 16]).handle();
        let bytes = packed(Some("ann"), &[("a", 2, "7"), ("b", 5, "x")]);
        let Lookup::Live(s) = decode_packed(h, bytes.clone(), None).unwrap() else {
            panic!("live")
        };
        assert_eq!((s.version, s.principal.as_deref()), (3, Some("ann")));
        assert_eq!(
            (s.get_bytes("a"), s.attribute_version("b")),
            (Some(&b"7"[..]), Some(5))
        );
        let Lookup::Live(some) = decode_packed(h, bytes, Some(&["b", "c"])).unwrap() else {
            panic!("live")
        };
        assert_eq!(some.attributes.keys().collect::<Vec<_>>(), vec!["b"]);
        let deleted = Bytes::from(Record::Deleted.encode());
        assert_eq!(decode_packed(h, deleted, None).unwrap(), Lookup::Gone);
        assert_eq!(decode_get(h, Reply::Nil, None).unwrap(), Some(Lookup::Gone));
        assert_eq!(
            decode_get(h, Reply::Error("WRONGTYPE Operation".into()), None).unwrap(),
            None
        );
    }

    #[test]
    fn garbled_packed_sessions_are_corrupt_and_damaged_entries_only_damaged() {
        let h = SessionToken::from_bytes([2; 16]).handle();
        let whole = packed(None, &[("a", 1, "x")]);
        let truncated = whole.slice(..whole.len() - 1);
        let mut after_tombstone = Record::Deleted.encode();
        after_tombstone.push(0);
        for bytes in [
            truncated,
            Bytes::from(after_tombstone),
            Bytes::from_static(b"a foreign string"),
        ] {
            assert!(
                matches!(
                    decode_packed(h, bytes.clone(), None),
                    Err(Error::Corrupt(_))
                ),
                "{bytes:?}"
            );
        }

        // A value without its version, a name that is not UTF-8, a name packed twice.
        let mut damaged = packed(None, &[("c", 4, "7"), ("d", 1, "x"), ("d", 2, "y")]).to_vec();
        damaged.extend_from_slice(&[1, 0, b'a', 2, 0, 0, 0, b'x', b'y']);
        layout::encode_entry(&mut damaged, "\u{fffd}", 1, b"x");
        let n = damaged.len();
        damaged[n - 14] = 0xff; // the name's last byte
        let damaged = Bytes::from(damaged);
        let Lookup::Live(s) = decode_packed(h, damaged.clone(), None).unwrap() else {
            panic!("live")
        };
        assert_eq!(s.get::<i64>("c").unwrap(), Some(7));
        assert_eq!(
            s.get_bytes("d"),
            Some(&b"x"[..]),
            "the first entry of a name"
        );
        assert_eq!(s.damaged.len(), 2, "{:?}", s.damaged);
        assert!(matches!(s.get::<i64>("a"), Err(Error::Corrupt(_))));
        let Lookup::Live(some) = decode_packed(h, damaged, Some(&["a", "d"])).unwrap() else {
            panic!("live")
        };
        assert_eq!(some.damaged.keys().collect::<Vec<_>>(), vec!["a"]);
        assert_eq!(some.attributes.keys().collect::<Vec<_>>(), vec!["d"]);
    }

    #[test]
    fn a_bare_integer_answer_is_ok_with_that_number() {
        let mut a = Answer::of(Reply::Int(7), "apply_attrs").unwrap();
        assert_eq!(a.status, "OK");
        assert_eq!(a.int().unwrap(), 7);
        assert!(a.rest.next().is_none());
        let table = Reply::Array(vec![
            Reply::Bytes(Bytes::from_static(b"CONFLICT")),
            Reply::Int(3),
        ]);
        let mut a = Answer::of(table, "apply_attrs").unwrap();
        assert_eq!(a.status, "CONFLICT");
        assert_eq!(a.int().unwrap(), 3);
        assert!(Answer::of(Reply::Nil, "apply_attrs").is_err());
    }
}
