//! Argument encoding and reply decoding for the scripts and reads of [`Store`](super::Store).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::time::Duration;

use super::{Arg, Reply};
use crate::delta::{Applied, Delta, Guard, Op};
use crate::error::{Error, Limit, Result};
use crate::handle::SessionHandle;
use crate::model::PreparedNew;
use crate::policy::Limits;
use crate::session::{Attribute, Deadline, Session};
use crate::time::{Timestamp, duration_millis};

/// What a session key holds, as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// A live session.
    Live(Session),
    /// Nothing live: absent, expired or deleted.
    Gone,
    /// A rotated session's forward to its successor.
    Moved(SessionHandle),
}

/// The metadata fields, in the order reads ask for them.
pub(crate) const META: [&str; 8] = ["_s", "_f", "_v", "_c", "_a", "_i", "_d", "_p"];

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

/// Arguments of the `create` script, borrowing the attributes from `new`.
pub(crate) fn create_args(new: &PreparedNew) -> Vec<Arg<'_>> {
    let [mode, at] = deadline_args(&new.deadline);
    let mut args = Vec::with_capacity(5 + 2 * new.attributes.len());
    args.extend([
        ms(new.idle_timeout),
        mode,
        at,
        Cow::Borrowed(new.principal.as_deref().unwrap_or_default().as_bytes()),
        num(new.size),
    ]);
    for (name, value) in &new.attributes {
        args.push(Cow::Borrowed(name.as_bytes()));
        args.push(Cow::Borrowed(value.as_slice()));
    }
    args
}

/// The hash field of attribute `name`: `=name` (its value) or `#name` (its version).
pub(crate) fn field(prefix: u8, name: &str) -> Vec<u8> {
    let mut f = Vec::with_capacity(name.len() + 1);
    f.push(prefix);
    f.extend_from_slice(name.as_bytes());
    f
}

/// Arguments of the `apply` script, borrowing names and values from `delta`.
pub(crate) fn apply_args<'a>(delta: &'a Delta, limits: &Limits) -> Vec<Arg<'a>> {
    let mut args = vec![num(limits.max_session_bytes), count(delta.guards().len())];
    for guard in delta.guards() {
        let (kind, name, version): (&'static [u8], &str, u64) = match guard {
            Guard::SessionVersion(v) => (b"V", "", *v),
            Guard::AttributeVersion { name, version } => (b"A", name, *version),
            Guard::Absent { name } => (b"X", name, 0),
        };
        args.extend([
            Cow::Borrowed(kind),
            Cow::Borrowed(name.as_bytes()),
            num(version),
        ]);
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

/// `apply_attrs`' arguments: like [`apply_args`], but with the hash fields spelled out
/// (`=name`, `#name`), so the script builds no strings: guards as (kind, field, version),
/// operations (puts, removes, increments only) as (kind, `=name`, `#name`, argument).
/// Values are borrowed from `delta`, not copied.
pub(crate) fn apply_attrs_args<'a>(delta: &'a Delta, limits: &Limits) -> Vec<Arg<'a>> {
    let mut args = Vec::with_capacity(3 + 3 * delta.guards().len() + 4 * delta.ops().len());
    args.extend([num(limits.max_session_bytes), count(delta.guards().len())]);
    for guard in delta.guards() {
        let [kind, f, version]: [Arg<'a>; 3] = match guard {
            Guard::SessionVersion(v) => [Cow::Borrowed(b"V"), NONE, num(v)],
            Guard::AttributeVersion { name, version } => [
                Cow::Borrowed(b"A"),
                Cow::Owned(field(b'#', name)),
                num(version),
            ],
            Guard::Absent { name } => [Cow::Borrowed(b"X"), Cow::Owned(field(b'=', name)), NONE],
        };
        args.extend([kind, f, version]);
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
        args.extend([
            Cow::Borrowed(kind),
            Cow::Owned(field(b'=', name)),
            Cow::Owned(field(b'#', name)),
            arg,
        ]);
    }
    args
}

fn corrupt(what: impl Into<String>) -> Error {
    Error::Corrupt(what.into())
}

fn parse_u64(bytes: &[u8], field: &str) -> Result<u64> {
    std::str::from_utf8(bytes)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| corrupt(format!("field {field} is not a number")))
}

fn utf8(bytes: Vec<u8>, what: &str) -> Result<String> {
    String::from_utf8(bytes).map_err(|_| corrupt(format!("{what} is not UTF-8")))
}

/// The slot of a metadata field in [`META`]; `None` for other fields (`_z` and unknown
/// metadata, which reads ignore).
fn meta_slot(field: &[u8]) -> Option<usize> {
    META.iter().position(|m| m.as_bytes() == field)
}

/// Decodes a session hash (field/value pairs, as `HGETALL` returns them, or the non-nil
/// answers of an `HMGET`) read at server time `now`.
///
/// Every load runs this, so it decodes in one pass into the session's own map, with one
/// string per attribute name and no intermediate maps.
pub fn decode_session<F: AsRef<[u8]>>(
    handle: SessionHandle,
    pairs: impl IntoIterator<Item = (F, Vec<u8>)>,
    now: Timestamp,
) -> Result<Lookup> {
    let mut meta: [Option<Vec<u8>>; META.len()] = Default::default();
    let mut found = false;
    // (value, version) per attribute: an attribute's two fields may come in any order.
    let mut attrs: BTreeMap<String, (Option<Vec<u8>>, Option<u64>)> = BTreeMap::new();
    fn slot<'m>(
        attrs: &'m mut BTreeMap<String, (Option<Vec<u8>>, Option<u64>)>,
        name: &[u8],
    ) -> Result<&'m mut (Option<Vec<u8>>, Option<u64>)> {
        let name =
            std::str::from_utf8(name).map_err(|_| corrupt("an attribute name is not UTF-8"))?;
        if !attrs.contains_key(name) {
            attrs.insert(name.to_owned(), (None, None));
        }
        attrs
            .get_mut(name)
            .ok_or_else(|| corrupt("attribute map lost an entry"))
    }
    for (field, value) in pairs {
        found = true;
        let field = field.as_ref();
        match field.split_first() {
            Some((b'=', name)) => slot(&mut attrs, name)?.0 = Some(value),
            Some((b'#', name)) => {
                let version = parse_u64(&value, &String::from_utf8_lossy(name))?;
                slot(&mut attrs, name)?.1 = Some(version);
            }
            Some((b'_', _)) => {
                if let Some(i) = meta_slot(field) {
                    meta[i] = Some(value);
                }
            }
            _ => return Err(corrupt("a field outside the session layout")),
        }
    }
    if !found {
        return Ok(Lookup::Gone);
    }
    let [
        state,
        forward,
        version,
        created,
        accessed,
        idle,
        deadline,
        principal,
    ] = meta;
    match state.as_deref() {
        Some(b"deleted") => return Ok(Lookup::Gone),
        Some(b"moved") => {
            let to = forward.ok_or_else(|| corrupt("a forward without a target"))?;
            return Ok(Lookup::Moved(SessionHandle::from_hex(&utf8(
                to,
                "a forward",
            )?)?));
        }
        Some(_) => return Err(corrupt("unknown session state")),
        None => {}
    }
    let field = |value: Option<Vec<u8>>, name: &str| -> Result<u64> {
        parse_u64(
            &value.ok_or_else(|| corrupt(format!("missing field {name}")))?,
            name,
        )
    };
    let attributes = attrs
        .into_iter()
        .map(|(name, entry)| match entry {
            (Some(value), Some(version)) => Ok((name, Attribute { value, version })),
            (Some(_), None) => Err(corrupt(format!("attribute {name:?} has no version"))),
            (None, _) => Err(corrupt("an attribute version without a value")),
        })
        .collect::<Result<BTreeMap<_, _>>>()?;
    let session = Session {
        handle,
        version: field(version, "_v")?,
        created_at: Timestamp::from_millis(field(created, "_c")?),
        last_access: Timestamp::from_millis(field(accessed, "_a")?),
        idle_timeout: Duration::from_millis(field(idle, "_i")?),
        deadline: deadline
            .map(|d| parse_u64(&d, "_d").map(Timestamp::from_millis))
            .transpose()?,
        principal: principal.map(|p| utf8(p, "the principal")).transpose()?,
        attributes,
    };
    if now >= session.expires_at() {
        return Ok(Lookup::Gone);
    }
    Ok(Lookup::Live(session))
}

/// Flat `HGETALL` reply to pairs.
pub(crate) fn pairs(reply: Reply) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
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
pub(crate) fn present<'f>(fields: &'f [Arg<'_>], reply: Reply) -> Result<Vec<(&'f [u8], Vec<u8>)>> {
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

pub(crate) fn bytes(reply: Reply) -> Result<Vec<u8>> {
    match reply {
        Reply::Bytes(b) => Ok(b),
        Reply::Int(i) => Ok(i.to_string().into_bytes()),
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

/// `TIME` to milliseconds.
pub(crate) fn time(reply: Reply) -> Result<Timestamp> {
    let Reply::Array(parts) = reply else {
        return Err(reply_error(reply, "TIME"));
    };
    let mut parts = parts.into_iter();
    let (Some(secs), Some(micros)) = (parts.next(), parts.next()) else {
        return Err(Error::backend("TIME: short reply"));
    };
    let (secs, micros) = (int(secs)?, int(micros)?);
    Ok(Timestamp::from_millis((secs * 1000 + micros / 1000) as u64))
}

/// A script's answer: its status word and the rest.
pub(crate) struct Answer {
    pub status: String,
    pub rest: std::vec::IntoIter<Reply>,
}

impl Answer {
    /// Reads a script's reply: an array whose first item is the status, or a bare integer,
    /// which stands for `{'OK', n}`. Scripts answer their commonest success that way: on
    /// Redis 7.0 a table reply cost `apply_attrs` about 2 µs of Redis CPU more than an
    /// integer (measured with `INFO commandstats`), more than one of its inner commands.
    pub(crate) fn of(reply: Reply, script: &str) -> Result<Answer> {
        let items = match reply {
            Reply::Array(items) => items,
            Reply::Int(n) => {
                return Ok(Answer {
                    status: "OK".to_owned(),
                    rest: vec![Reply::Int(n)].into_iter(),
                });
            }
            other => return Err(reply_error(other, script)),
        };
        let mut rest = items.into_iter();
        let status = rest.next().map(bytes).transpose()?.unwrap_or_default();
        Ok(Answer {
            status: String::from_utf8_lossy(&status).into_owned(),
            rest,
        })
    }

    pub(crate) fn int(&mut self) -> Result<i64> {
        int(self
            .rest
            .next()
            .ok_or_else(|| Error::backend("script reply too short"))?)
    }

    pub(crate) fn handle(&mut self) -> Result<SessionHandle> {
        let raw = bytes(
            self.rest
                .next()
                .ok_or_else(|| Error::backend("script reply too short"))?,
        )?;
        SessionHandle::from_hex(&String::from_utf8_lossy(&raw))
    }

    pub(crate) fn text(&mut self) -> String {
        self.rest
            .next()
            .and_then(|r| bytes(r).ok())
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    /// The answers every script shares; `Ok(None)` for a status the caller handles.
    pub(crate) fn common(&mut self, handle: SessionHandle) -> Result<Option<SessionHandle>> {
        match self.status.as_str() {
            "NOTFOUND" => Err(Error::NotFound { handle }),
            "MOVED" => Ok(Some(self.handle()?)),
            "CORRUPT" => Err(corrupt(self.text())),
            _ => Ok(None),
        }
    }
}

/// Decodes an `apply` answer: the result, or a forward to follow.
pub(crate) fn apply_answer(
    mut a: Answer,
    delta: &Delta,
    handle: SessionHandle,
    limits: &Limits,
) -> Result<Result<Applied, SessionHandle>> {
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
    match a.status.as_str() {
        "OK" => {
            let version = a.int()? as u64;
            let increments = a.rest.map(int).collect::<Result<Vec<_>>>()?;
            Ok(Ok(Applied {
                version,
                increments,
            }))
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
    use crate::token::SessionToken;

    fn p(f: &str, v: &str) -> (Vec<u8>, Vec<u8>) {
        (f.as_bytes().to_vec(), v.as_bytes().to_vec())
    }

    #[test]
    fn decodes_a_session_and_checks_its_expiry() {
        let h = SessionToken::from_bytes([1; 16]).handle();
        let fields = vec![
            p("_v", "3"),
            p("_c", "1000"),
            p("_a", "2000"),
            p("_i", "500"),
            p("_z", "2"),
            p("_p", "ann"),
            p("=n", "7"),
            p("#n", "2"),
        ];
        let Lookup::Live(s) =
            decode_session(h, fields.clone(), Timestamp::from_millis(2499)).unwrap()
        else {
            panic!("live")
        };
        assert_eq!(
            (s.version, s.principal.as_deref(), s.attribute_version("n")),
            (3, Some("ann"), Some(2))
        );
        assert_eq!(s.get_bytes("n"), Some(&b"7"[..]));
        assert_eq!(
            decode_session(h, fields, Timestamp::from_millis(2500)).unwrap(),
            Lookup::Gone
        );
    }

    #[test]
    fn garbage_is_corrupt_not_a_panic() {
        let h = SessionToken::from_bytes([1; 16]).handle();
        let now = Timestamp::from_millis(0);
        for fields in [
            vec![p("_v", "x"), p("_c", "1"), p("_a", "1"), p("_i", "1")],
            vec![p("_v", "1"), p("_c", "1"), p("_a", "1")],
            vec![
                p("_v", "1"),
                p("_c", "1"),
                p("_a", "1"),
                p("_i", "9"),
                p("=a", "1"),
            ],
            vec![p("junk", "1")],
            vec![p("_s", "moved"), p("_f", "not hex")],
            vec![p("_s", "zombie")],
        ] {
            assert!(
                matches!(
                    decode_session(h, fields.clone(), now),
                    Err(Error::Corrupt(_))
                ),
                "{fields:?}"
            );
        }
        assert_eq!(
            decode_session(h, vec![p("_s", "deleted")], now).unwrap(),
            Lookup::Gone
        );
        assert_eq!(
            decode_session(h, vec![p("_s", "moved"), p("_f", &h.to_hex())], now).unwrap(),
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

    #[test]
    fn a_bare_integer_answer_is_ok_with_that_number() {
        let mut a = Answer::of(Reply::Int(7), "apply_attrs").unwrap();
        assert_eq!(a.status, "OK");
        assert_eq!(a.int().unwrap(), 7);
        assert!(a.rest.next().is_none());
        let table = Reply::Array(vec![Reply::Bytes(b"CONFLICT".to_vec()), Reply::Int(3)]);
        let mut a = Answer::of(table, "apply_attrs").unwrap();
        assert_eq!(a.status, "CONFLICT");
        assert_eq!(a.int().unwrap(), 3);
        assert!(Answer::of(Reply::Nil, "apply_attrs").is_err());
    }
}
