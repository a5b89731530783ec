//! [`Store`]: the `SessionStore` contract over any [`Transport`].

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::future::join_all;

use super::codec::{self, Answer, IndexFollow, Lookup};
use super::hint::Forms;
use super::layout::KeyLayout;
use super::layout::META_FIELD;
use super::recent::{self, Recent};
use super::{
    APPLY, APPLY_ATTRS, Arg, CREATE, Command, DELETE, REPLACE, ROTATE, Reply, Script, TOUCH,
    Transport, retry,
};
use crate::delta::{Applied, Delta, Op};
use crate::error::{Error, Result};
use crate::handle::SessionHandle;
use crate::model::{PreparedNew, past_deadline, prepare_new, validate_names};
use crate::policy::{CLOCK_SKEW_BOUND, MAX_FORWARDS, Policy, validate_principal};
use crate::session::{NewSession, SessionRecord, SessionSummary};
use crate::store::{Created, SessionStore};
use crate::time::{Clock, SystemClock, Timestamp, duration_millis};
use crate::token::SessionToken;

/// Fresh tokens tried before giving up (see `MemoryStore`); rotation also starts again
/// when the session's principal changed between its read and its script, as often.
const ATTEMPTS: usize = 8;

/// Session keys a listing ([`SessionStore::summaries_of`]) reads at once: a principal's
/// sessions may sit on as many nodes, so their reads overlap, a bounded number at a time.
const CONCURRENT_READS: usize = 32;

/// Optional durability: after every write, `WAIT replicas timeout` in the same round trip.
///
/// Redis replicates asynchronously, so an acknowledged write can be lost when its primary
/// fails before a replica received it. With this setting a write is reported as
/// [`Error::NotDurable`] when fewer replicas confirmed it in time. It narrows the window; it
/// does not make Redis strongly consistent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Durability {
    /// Replicas that must acknowledge.
    pub replicas: u64,
    /// How long to wait for them.
    pub timeout: Duration,
}

/// Whether `apply_attrs` can run `delta`: attribute operations only, and few enough
/// arguments for its single `HMGET`/`HSET` (Lua's `unpack` has a stack limit).
fn attributes_only(delta: &Delta) -> bool {
    delta.ops().len() + delta.guards().len() <= 1000
        && delta.ops().iter().all(|op| {
            matches!(
                op,
                Op::Put { .. } | Op::Remove { .. } | Op::Increment { .. }
            )
        })
}

/// What the touch script found.
enum Touched {
    At {
        last_access: Timestamp,
        follow: Option<IndexFollow>,
    },
    Gone,
    Moved(SessionHandle),
}

fn touch_answer(mut a: Answer) -> Result<Touched> {
    let ms = |n: i64| Timestamp::from_millis(n.max(0) as u64);
    match &*a.status {
        "OK" => Ok(Touched::At {
            last_access: ms(a.int()?),
            follow: a.index_follow()?,
        }),
        "NOTFOUND" => Ok(Touched::Gone),
        "MOVED" => Ok(Touched::Moved(a.handle()?)),
        "CORRUPT" => Err(Error::Corrupt(a.text())),
        other => Err(Error::backend(format!(
            "touch: unexpected answer {other:?}"
        ))),
    }
}

/// The read of a session key in one form: `GET` of a packed session; `HGETALL` of a hashed
/// one, or `HMGET` of its metadata and the attributes `names`.
fn read_command<'a>(key: &'a str, names: Option<&[&'a str]>, hashed: bool) -> Command<'a> {
    let key_arg = Cow::Borrowed(key.as_bytes());
    match (hashed, names) {
        (false, _) => Command::Plain("GET", vec![key_arg]),
        (true, Some(names)) => hmget(key, names),
        (true, None) => Command::Plain("HGETALL", vec![key_arg]),
    }
}

fn is_wrongtype(reply: &Reply) -> bool {
    matches!(reply, Reply::Error(e) if e.starts_with("WRONGTYPE"))
}

/// `HMGET` of a session's metadata record and the attributes `names`.
fn hmget<'a>(key: &'a str, names: &[&'a str]) -> Command<'a> {
    let mut args = Vec::with_capacity(2 + names.len());
    args.push(Cow::Borrowed(key.as_bytes()));
    args.push(Cow::Borrowed(META_FIELD));
    args.extend(names.iter().map(|n| Cow::Borrowed(n.as_bytes())));
    Command::Plain("HMGET", args)
}

/// What an entry of a principal's index stands for, judged from its session key as read:
/// the one rule of [`SessionStore::sessions_of`] and [`SessionStore::summaries_of`].
enum Indexed {
    /// A live session of the principal.
    Live(SessionRecord),
    /// Live under another principal (it may come back, so the entry stays), or unreadable:
    /// not listed.
    Other,
    /// Gone or forwarded: it can never be this principal's session again, so the entry may
    /// be pruned.
    Stale,
}

impl Indexed {
    fn judge(lookup: Result<Lookup>, principal: &str) -> Result<Indexed> {
        match lookup {
            Ok(Lookup::Live(s)) if s.principal.as_deref() == Some(principal) => {
                Ok(Indexed::Live(s))
            }
            Ok(Lookup::Live(_)) | Err(Error::Corrupt(_)) => Ok(Indexed::Other),
            Ok(Lookup::Gone | Lookup::Moved(_)) => Ok(Indexed::Stale),
            Err(e) => Err(e),
        }
    }
}

/// The handle a principal's index holds as `member` (its hex form).
fn member_handle(member: &[u8]) -> Result<SessionHandle> {
    SessionHandle::from_hex(&String::from_utf8_lossy(member))
}

/// A session key's contents in the form they are stored in (see [`layout`](super::layout)).
enum Stored {
    /// A string: record and entries.
    Packed(Bytes),
    /// A hash's field/value pairs (none: no key).
    Hashed(Vec<(Bytes, Bytes)>),
}

impl Stored {
    fn decode(&self, handle: SessionHandle) -> Result<Lookup> {
        match self {
            Stored::Packed(packed) => codec::decode_packed(handle, packed.clone(), None),
            Stored::Hashed(pairs) => codec::decode_session(handle, pairs.iter().cloned()),
        }
    }
}

/// A session store on Redis, over any client that implements [`Transport`].
pub struct Store<T> {
    transport: T,
    layout: KeyLayout,
    policy: Policy,
    durability: Option<Durability>,
    clock: Arc<dyn Clock>,
    forms: Forms,
    recent: Recent,
}

impl<T: fmt::Debug> fmt::Debug for Store<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("transport", &self.transport)
            .field("namespace", self.layout.namespace())
            .field("policy", &self.policy)
            .field("durability", &self.durability)
            .field("clock", &self.clock)
            .finish()
    }
}

impl<T: Transport> Store<T> {
    /// A store over `transport`, with keys under `layout` and behaviour from `policy`.
    pub fn new(transport: T, layout: KeyLayout, policy: Policy) -> Result<Self> {
        policy.validate()?;
        Ok(Store {
            transport,
            layout,
            policy,
            durability: None,
            clock: Arc::new(SystemClock),
            forms: Forms::default(),
            recent: Recent::default(),
        })
    }

    /// The application server's clock, by which loads judge whether a touch is due
    /// ([`Policy::load_touch`]); the operating system's by default. Every decision that
    /// changes state is taken on Redis's clock; this one only chooses when to ask.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Adds the `WAIT`-based durability check to every write.
    pub fn with_durability(mut self, durability: Option<Durability>) -> Self {
        self.durability = durability;
        self
    }

    /// The transport.
    pub fn transport(&self) -> &T {
        &self.transport
    }

    /// The key layout.
    pub fn layout(&self) -> &KeyLayout {
        &self.layout
    }

    fn key(&self, handle: &SessionHandle) -> String {
        self.layout.session_key(handle)
    }

    /// The batch of one write script: the script, with `WAIT` behind it when durability is
    /// on. Built once per operation and re-sent unchanged when a forward leads to another key.
    fn script_batch<'a>(&self, script: &'static Script, args: Vec<Arg<'a>>) -> Vec<Command<'a>> {
        let mut commands = vec![Command::Script(script, args)];
        if let Some(d) = self.durability {
            let wait = vec![codec::num(d.replicas), codec::ms(d.timeout)];
            commands.push(Command::Plain("WAIT", wait));
        }
        commands
    }

    /// Sends a [`Store::script_batch`] for `key`; returns the script's answer and the
    /// replicas that acknowledged.
    async fn run(
        &self,
        key: &str,
        commands: &[Command<'_>],
        unsafe_to_resend: bool,
    ) -> Result<(Answer, Option<u64>)> {
        let name = match commands.first() {
            Some(Command::Script(script, _)) => script.name,
            _ => "script",
        };
        let mut replies = retry::batch(&self.transport, key, commands, unsafe_to_resend)
            .await?
            .into_iter();
        let answer = Answer::of(
            replies
                .next()
                .ok_or_else(|| Error::backend("empty batch reply"))?,
            name,
        )?;
        let waited = replies
            .next()
            .map(codec::int)
            .transpose()?
            .map(|n| n.max(0) as u64);
        Ok((answer, waited))
    }

    /// Runs one write script on `key` (see [`Store::script_batch`] and [`Store::run`]).
    async fn write(
        &self,
        key: &str,
        script: &'static Script,
        args: Vec<Arg<'_>>,
        unsafe_to_resend: bool,
    ) -> Result<(Answer, Option<u64>)> {
        let commands = self.script_batch(script, args);
        self.run(key, &commands, unsafe_to_resend).await
    }

    /// Fails a successful write whose `WAIT` fell short.
    fn durable(&self, waited: Option<u64>) -> Result<()> {
        match (self.durability, waited) {
            (Some(d), Some(acknowledged)) if acknowledged < d.replicas => Err(Error::NotDurable {
                acknowledged,
                required: d.replicas,
            }),
            _ => Ok(()),
        }
    }

    /// Sends one plain command (a read, or a write that is safe to send again) to the node
    /// serving `key`, in one round trip, and returns its reply.
    async fn one(&self, key: &str, name: &'static str, args: Vec<Arg<'_>>) -> Result<Reply> {
        retry::batch(&self.transport, key, &[Command::Plain(name, args)], false)
            .await?
            .pop()
            .ok_or_else(|| Error::backend(format!("{name}: no reply")))
    }

    /// Adds `handle` to `principal`'s index and keeps the index until at least `until`.
    ///
    /// The index is a key of its own (another slot), so no script can keep it in step with
    /// its sessions. It is written before a session joins it, so a crash in between leaves a
    /// stale entry (pruned when read) rather than a session "log out everywhere" cannot find;
    /// and its expiry only grows (`NX` sets the first, `GT` extends), to cover the latest
    /// expiry of its members plus the delete grace ([`Store::index_until`]), so it ends soon
    /// after its last session instead of living forever.
    async fn index_add(
        &self,
        principal: &str,
        handle: &SessionHandle,
        until: Timestamp,
    ) -> Result<()> {
        let key = self.layout.principal_key(principal);
        let at = codec::num(until.as_millis());
        let key_arg = || Cow::Borrowed(key.as_bytes());
        let commands = [
            Command::Plain(
                "SADD",
                vec![key_arg(), Cow::Owned(handle.to_hex().into_bytes())],
            ),
            Command::Plain(
                "PEXPIREAT",
                vec![key_arg(), at.clone(), Cow::Borrowed(b"NX")],
            ),
            Command::Plain("PEXPIREAT", vec![key_arg(), at, Cow::Borrowed(b"GT")]),
        ];
        // Idempotent, so safe to send again.
        let replies = retry::batch(&self.transport, &key, &commands, false).await?;
        for (reply, name) in replies.into_iter().zip(["SADD", "PEXPIREAT", "PEXPIREAT"]) {
            if !matches!(reply, Reply::Int(_)) {
                return Err(codec::reply_error(reply, name));
            }
        }
        Ok(())
    }

    /// When a principal's index may end, given a member's expiry: in whole epochs of half
    /// the delete grace, between half a grace and one grace after it. Epochs let a touch
    /// that moves the expiry within one leave the index alone ([`Store::follow_index`]).
    fn index_until(&self, expiry: Timestamp) -> Timestamp {
        let epoch = self.index_epoch();
        Timestamp::from_millis((expiry.as_millis() / epoch + 2) * epoch)
    }

    /// The epoch of [`Store::index_until`], in ms: half the delete grace.
    fn index_epoch(&self) -> u64 {
        (duration_millis(self.policy.delete_grace) / 2).max(1)
    }

    /// The epoch as the scripts that move expiries take it (their last argument): they
    /// report an expiry move only when it crosses into a later epoch, so that most writes
    /// keep their shortest answer.
    fn epoch_arg(&self) -> Arg<'static> {
        codec::num(self.index_epoch())
    }

    /// The latest a session touched now with `idle_timeout` can expire: the server sets its
    /// last access, by a clock that may run [`CLOCK_SKEW_BOUND`] ahead of ours.
    fn expiry_bound(&self, idle_timeout: Duration) -> Timestamp {
        self.clock
            .now()
            .saturating_add(CLOCK_SKEW_BOUND.saturating_add(idle_timeout))
    }

    /// After a write moved the expiry of `handle`'s session (or set its principal), extends
    /// the principal's index to cover it, unless the index already does: until `covered`
    /// when the caller added the entry before the write, else until the epoch of the expiry
    /// before.
    ///
    /// Best effort: the write has landed, so a failure here must not report it as failed
    /// (a retried increment would count twice). It is logged; the index then lasts as the
    /// session's previous expiry required, and the session's next touch into a later epoch
    /// adds the entry again.
    async fn follow_index(
        &self,
        handle: &SessionHandle,
        follow: Option<IndexFollow>,
        covered: Option<Timestamp>,
    ) {
        let Some(f) = follow else {
            return;
        };
        let until = self.index_until(f.after);
        // Boxed: rare (a principal's session outliving its index), and inline its batch's
        // future would grow every read's and write's future by a client's send (see
        // `read_one`).
        if until > covered.unwrap_or_else(|| self.index_until(f.before))
            && let Err(error) = Box::pin(self.index_add(&f.principal, handle, until)).await
        {
            tracing::warn!(%error, %handle, "the principal's index could not follow the session's expiry");
        }
    }

    /// Applies `delta` ([`recent::replaceable`]) to the session `handle` as last read, with
    /// the `replace` script (see [`recent`]). `None` when it cannot or did not write (nothing
    /// remembered, or the session changed since it was read): then `apply_attrs` decides.
    async fn replace(&self, handle: SessionHandle, delta: &Delta) -> Result<Option<Applied>> {
        let Some(read) = self.recent.take(&handle) else {
            return Ok(None);
        };
        let Some((packed, version)) = recent::rebuilt(&read, delta, &self.policy.limits) else {
            return Ok(None);
        };
        let args = vec![Cow::Borrowed(&read[..]), Cow::Borrowed(&packed[..])];
        let (mut answer, waited) = self.write(&self.key(&handle), &REPLACE, args, true).await?;
        if answer.int()? == 0 {
            return Ok(None);
        }
        self.recent.wrote(handle, packed);
        self.durable(waited)?;
        Ok(Some(Applied {
            version,
            increments: Vec::new(),
        }))
    }

    /// Reads a session, following forwards. `names`: only these attributes, else all.
    /// `touch`: a load, which writes a touch when one is due.
    async fn read(
        &self,
        token: &SessionToken,
        names: Option<&[&str]>,
        touch: bool,
    ) -> Result<Option<SessionRecord>> {
        let mut handle = token.handle();
        for _ in 0..=MAX_FORWARDS {
            match self.read_one(handle, names, touch).await? {
                Lookup::Live(session) => return Ok(Some(session)),
                Lookup::Gone => return Ok(None),
                Lookup::Moved(next) => handle = next,
            }
        }
        Ok(None)
    }

    async fn read_one(
        &self,
        handle: SessionHandle,
        names: Option<&[&str]>,
        touch: bool,
    ) -> Result<Lookup> {
        let key = self.key(&handle);
        // A read goes to the form the session was last seen in ([`Forms`]): a packed one
        // (the common, small session) is one `GET`; a hashed one `HGETALL`, or for
        // `load_some` an `HMGET` of the metadata and the named attributes. A WRONGTYPE
        // answer means the other form: the read is sent again in that form, and remembered.
        //
        // With a zero touch interval every load writes, so the touch script rides in the
        // first read's round trip. Otherwise a load is the one read: Redis hides expired
        // keys, and the script is sent (a second round trip) only when `Policy::load_touch`
        // says so, about once per interval.
        let pipelined_touch = touch && self.policy.touch_interval.is_zero();
        let mut hashed = self.forms.hashed(&handle);
        let mut touched_at = None;
        let mut touched_after_read = false;
        let mut lookup = None;
        // A packed session as read, for the write that may follow (see `recent`).
        let mut packed = None;
        for attempt in 0..2 {
            // The batch on the stack: a load is one command, without a `Vec` of its own.
            let read = read_command(&key, names, hashed);
            let with_touch;
            let commands = if pipelined_touch && attempt == 0 {
                let touch = Command::Script(&TOUCH, vec![Cow::Borrowed(b"0"), self.epoch_arg()]);
                with_touch = [read, touch];
                &with_touch[..]
            } else {
                std::slice::from_ref(&read)
            };
            let mut replies = retry::batch(&self.transport, &key, commands, false)
                .await?
                .into_iter();
            let data = replies
                .next()
                .ok_or_else(|| Error::backend("short batch reply"))?;
            if let Some(reply) = replies.next() {
                match touch_answer(Answer::of(reply, TOUCH.name)?)? {
                    Touched::At {
                        last_access,
                        follow,
                    } => {
                        self.follow_index(&handle, follow, None).await;
                        touched_at = Some(last_access);
                    }
                    Touched::Gone => {}
                    Touched::Moved(next) => return Ok(Lookup::Moved(next)),
                }
            }
            if let (false, Reply::Bytes(bytes)) = (hashed, &data) {
                packed = Some(bytes.clone());
            }
            lookup = match (&commands[0], hashed) {
                (_, false) => codec::decode_get(handle, data, names)?,
                (_, true) if is_wrongtype(&data) => None,
                // An `HMGET` answers its own arguments after the key, in order: decode
                // against those (borrowed) field names rather than a second copy.
                (Command::Plain("HMGET", args), true) => Some(codec::decode_session(
                    handle,
                    codec::present(&args[1..], data)?,
                )?),
                (_, true) => Some(codec::decode_session(handle, codec::pairs(data)?)?),
            };
            if lookup.is_some() {
                break;
            }
            hashed = !hashed;
            self.forms.found(handle, hashed);
        }
        // Neither a string nor a hash: some other program's key.
        let mut lookup =
            lookup.ok_or_else(|| Error::Corrupt("the key holds another type".into()))?;
        if let Lookup::Live(session) = &mut lookup {
            if let Some(at) = touched_at {
                session.last_access = session.last_access.max(at);
            } else if touch
                && let Some(threshold) = self.policy.load_touch(session, self.clock.now())
            {
                // The read is the load's linearization point: if the session ends before
                // the touch lands, the load still returns what it read.
                let threshold = codec::ms(threshold);
                let args = vec![threshold, self.epoch_arg()];
                // Boxed: a touch is due about once per interval, and inline this second
                // batch's future would grow every load's future by a client's send (fred's
                // is about 5 KiB, copied whenever the load's future moves).
                let (answer, _) = Box::pin(self.write(&key, &TOUCH, args, false)).await?;
                touched_after_read = true;
                if let Touched::At {
                    last_access,
                    follow,
                } = touch_answer(answer)?
                {
                    self.follow_index(&handle, follow, None).await;
                    session.last_access = session.last_access.max(last_access);
                }
            }
        }
        match (&lookup, packed) {
            // A touch (pipelined, or after the read) changed what was read.
            (Lookup::Live(_), Some(packed)) if touched_at.is_none() && !touched_after_read => {
                self.recent.remember(handle, &packed)
            }
            _ => self.recent.forget(&handle),
        }
        Ok(lookup)
    }

    /// Creates `new` (prepared) under `token` with the `create` batch `commands`: `None`
    /// when the token's key is taken (`create.lua` writes only a free key).
    async fn create_at(
        &self,
        token: SessionToken,
        new: &PreparedNew,
        commands: &[Command<'_>],
    ) -> Result<Option<Created>> {
        let handle = token.handle();
        tracing::Span::current().record("handle", tracing::field::display(&handle));
        if let Some(p) = &new.principal {
            let until = self.index_until(self.expiry_bound(new.idle_timeout));
            self.index_add(p, &handle, until).await?;
        }
        let (mut answer, waited) = self.run(&self.key(&handle), commands, true).await?;
        match &*answer.status {
            "OK" => {
                self.durable(waited)?;
                let now = Timestamp::from_millis(answer.int()? as u64);
                let deadline = answer.int()?;
                let deadline = (deadline >= 0).then(|| Timestamp::from_millis(deadline as u64));
                let session = new.clone().into_session(handle, now, deadline);
                Ok(Some(Created { token, session }))
            }
            "TAKEN" => Ok(None),
            "PAST" => Err(past_deadline()),
            other => Err(Error::backend(format!(
                "create: unexpected answer {other:?}"
            ))),
        }
    }

    /// Runs a script on the session `token` leads to, following forwards; `ok` reads the
    /// answer of a live session (status `OK`).
    async fn follow<R>(
        &self,
        token: &SessionToken,
        script: &'static Script,
        args: Vec<Arg<'_>>,
        unsafe_to_resend: bool,
        ok: impl Fn(&mut Answer) -> Result<R>,
    ) -> Result<(SessionHandle, R)> {
        let asked = token.handle();
        let mut handle = asked;
        let commands = self.script_batch(script, args);
        for _ in 0..=MAX_FORWARDS {
            let (mut answer, waited) = self
                .run(&self.key(&handle), &commands, unsafe_to_resend)
                .await?;
            if let Some(next) = answer.common(asked)? {
                handle = next;
                continue;
            }
            if answer.status != "OK" {
                return Err(Error::backend(format!(
                    "{}: unexpected answer {:?}",
                    script.name, answer.status
                )));
            }
            let result = ok(&mut answer)?;
            self.durable(waited)?;
            return Ok((handle, result));
        }
        Err(Error::NotFound { handle: asked })
    }

    /// A session key as stored, in whichever form, for the metadata (a hashed session's
    /// attributes are not read): for rotation and the principal index.
    async fn stored(&self, key: &str) -> Result<Stored> {
        let read = self
            .one(key, "GET", vec![Cow::Borrowed(key.as_bytes())])
            .await?;
        match read {
            Reply::Bytes(packed) => return Ok(Stored::Packed(packed)),
            Reply::Nil => return Ok(Stored::Hashed(Vec::new())),
            _ => {}
        }
        if let Reply::Error(e) = &read
            && !e.starts_with("WRONGTYPE")
        {
            return Err(codec::reply_error(read, "GET"));
        }
        let fields: [Arg<'static>; 1] = [Cow::Borrowed(META_FIELD)];
        let args = vec![Cow::Borrowed(key.as_bytes()), fields[0].clone()];
        let meta = self.one(key, "HMGET", args).await?;
        let pairs = codec::present(&fields, meta)?;
        Ok(Stored::Hashed(
            pairs
                .into_iter()
                .map(|(f, v)| (Bytes::copy_from_slice(f), v))
                .collect(),
        ))
    }

    /// The members of a principal's index (key `index`), as stored: handles in hex.
    async fn index_members(&self, index: &str) -> Result<Vec<Bytes>> {
        let members = self
            .one(index, "SMEMBERS", vec![Cow::Borrowed(index.as_bytes())])
            .await?;
        match members {
            Reply::Array(items) => items.into_iter().map(codec::bytes).collect(),
            other => Err(codec::reply_error(other, "SMEMBERS")),
        }
    }

    /// A session's metadata for a listing, read only, in one round trip whichever its form:
    /// a `GET` (a packed session, the common form) and an `HMGET` of the metadata record (a
    /// hashed one, whose attributes stay unread) in one batch, one of which answers
    /// WRONGTYPE; decoded as a load decodes them. Both being WRONGTYPE (some other program's
    /// key) is [`Error::Corrupt`], as for a load.
    async fn read_listed(&self, handle: SessionHandle) -> Result<Lookup> {
        let key = self.key(&handle);
        let commands = [read_command(&key, None, false), hmget(&key, &[])];
        let replies = retry::batch(&self.transport, &key, &commands, false).await?;
        let [get, meta]: [Reply; 2] = replies
            .try_into()
            .map_err(|_| Error::backend("short batch reply"))?;
        if let Some(lookup) = codec::decode_get(handle, get, None)? {
            self.forms.found(handle, false);
            return Ok(lookup);
        }
        self.forms.found(handle, true);
        let fields: [Arg<'static>; 1] = [Cow::Borrowed(META_FIELD)];
        codec::decode_session(handle, codec::present(&fields, meta)?)
    }

    /// How one member of `principal`'s index stands, read with [`Store::read_listed`].
    async fn judge_listed(&self, member: &[u8], principal: &str) -> Result<Indexed> {
        let handle = member_handle(member)?;
        Indexed::judge(self.read_listed(handle).await, principal)
    }

    /// A token for the session that `old` rotates to: in a cluster one whose key shares
    /// `old`'s slot, so that one script holds both keys. The search (one draw in 16,384,
    /// about 2.4 ms of CPU) runs off the async workers.
    async fn successor_token(&self, old: &SessionHandle) -> Result<SessionToken> {
        if !self.transport.sharded() {
            return Ok(SessionToken::generate());
        }
        let slot = KeyLayout::session_slot(old);
        tokio::task::spawn_blocking(move || {
            // Candidates' bytes drawn in bulk rather than one system call each.
            let mut bytes = [0u8; 16 * 256];
            loop {
                getrandom::fill(&mut bytes).expect("the operating system's CSPRNG is unavailable");
                for chunk in bytes.chunks_exact(16) {
                    let mut candidate = [0u8; 16];
                    candidate.copy_from_slice(chunk);
                    let token = SessionToken::from_bytes(candidate);
                    if KeyLayout::session_slot(&token.handle()) == slot {
                        return token;
                    }
                }
            }
        })
        .await
        .map_err(Error::backend)
    }
}

#[async_trait]
impl<T: Transport> SessionStore for Store<T> {
    fn policy(&self) -> Policy {
        self.policy.clone()
    }

    #[tracing::instrument(level = "debug", name = "session.create", skip_all, fields(handle))]
    async fn create(&self, new: NewSession) -> Result<Created> {
        let new = prepare_new(&self.policy, new)?;
        let commands = self.script_batch(&CREATE, codec::create_args(&new));
        for _ in 0..ATTEMPTS {
            let token = SessionToken::generate();
            if let Some(created) = self.create_at(token, &new, &commands).await? {
                return Ok(created);
            }
        }
        Err(Error::backend(
            "no free session token after repeated attempts: is the OS RNG broken?",
        ))
    }

    #[tracing::instrument(
        level = "debug",
        name = "session.create_with_token",
        skip_all,
        fields(handle)
    )]
    async fn create_with_token(
        &self,
        token: &SessionToken,
        new: NewSession,
    ) -> Result<Option<Created>> {
        let new = prepare_new(&self.policy, new)?;
        let commands = self.script_batch(&CREATE, codec::create_args(&new));
        self.create_at(token.clone(), &new, &commands).await
    }

    #[tracing::instrument(level = "debug", name = "session.load", skip_all, fields(handle = %token.handle()))]
    async fn load(&self, token: &SessionToken) -> Result<Option<SessionRecord>> {
        self.read(token, None, true).await
    }

    #[tracing::instrument(level = "debug", name = "session.load_read_only", skip_all, fields(handle = %token.handle()))]
    async fn load_read_only(&self, token: &SessionToken) -> Result<Option<SessionRecord>> {
        self.read(token, None, false).await
    }

    #[tracing::instrument(level = "debug", name = "session.load_some", skip_all, fields(handle = %token.handle()))]
    async fn load_some(
        &self,
        token: &SessionToken,
        names: &[&str],
    ) -> Result<Option<SessionRecord>> {
        validate_names(names, &self.policy.limits)?;
        self.read(token, Some(names), true).await
    }

    #[tracing::instrument(level = "debug", name = "session.apply", skip_all, fields(handle = %token.handle()))]
    async fn apply(&self, token: &SessionToken, delta: &Delta) -> Result<Applied> {
        let limits = self.policy.limits;
        delta.validate(&limits)?;
        let principal = delta.ops().iter().rev().find_map(|op| match op {
            Op::SetPrincipal(p) => Some(p.clone()),
            _ => None,
        });
        // A delta that sets a principal indexes the session before the write, until an
        // estimate from the idle timeout it may have after the delta (the answer then gives
        // the real expiry). Other deltas skip this: it reads the clock.
        let covered = matches!(principal, Some(Some(_))).then(|| {
            let idle = delta
                .ops()
                .iter()
                .rev()
                .find_map(|op| match op {
                    Op::SetIdleTimeout(d) => Some(*d),
                    _ => None,
                })
                .unwrap_or(self.policy.default_idle_timeout);
            self.index_until(self.expiry_bound(idle))
        });
        if !recent::replaceable(delta) {
            // This write makes what was read stale.
            self.recent.forget(&token.handle());
        } else if let Some(applied) = self.replace(token.handle(), delta).await? {
            return Ok(applied);
        }
        let (script, args) = if attributes_only(delta) {
            let hashed = self.forms.hashed(&token.handle());
            (
                &APPLY_ATTRS,
                codec::apply_attrs_args(delta, &limits, hashed),
            )
        } else {
            let mut args = codec::apply_args(delta, &limits);
            args.push(self.epoch_arg());
            (&APPLY, args)
        };
        let mut commands = self.script_batch(script, args);
        let mut indexed = Vec::new();
        let mut handle = token.handle();
        for hop in 0..=MAX_FORWARDS {
            if hop > 0
                && let Some(Command::Script(s, args)) = commands.first_mut()
                && std::ptr::eq(*s, &APPLY_ATTRS)
            {
                // A successor has its own form.
                args[0] = codec::form_hint(self.forms.hashed(&handle));
            }
            if let (Some(Some(p)), Some(until)) = (&principal, covered)
                && !indexed.contains(&handle)
            {
                self.index_add(p, &handle, until).await?;
                indexed.push(handle);
            }
            let (answer, waited) = self.run(&self.key(&handle), &commands, true).await?;
            match codec::apply_answer(answer, delta, token.handle(), &limits)? {
                Ok((applied, follow)) => {
                    self.follow_index(&handle, follow, covered).await;
                    self.durable(waited)?;
                    return Ok(applied);
                }
                Err(next) => handle = next,
            }
        }
        Err(Error::NotFound {
            handle: token.handle(),
        })
    }

    #[tracing::instrument(level = "debug", name = "session.touch", skip_all, fields(handle = %token.handle()))]
    async fn touch(&self, token: &SessionToken) -> Result<()> {
        self.recent.forget(&token.handle());
        let (handle, follow) = self
            .follow(
                token,
                &TOUCH,
                vec![Cow::Borrowed(b"0"), self.epoch_arg()],
                false,
                |a| {
                    a.int()?; // the last access
                    a.index_follow()
                },
            )
            .await?;
        self.follow_index(&handle, follow, None).await;
        Ok(())
    }

    #[tracing::instrument(level = "debug", name = "session.delete", skip_all, fields(handle = %token.handle()))]
    async fn delete(&self, token: &SessionToken) -> Result<bool> {
        self.recent.forget(&token.handle());
        let grace = codec::ms(self.policy.delete_grace);
        self.follow(token, &DELETE, vec![grace], false, |a| Ok(a.int()? == 1))
            .await
            .map(|(_, deleted)| deleted)
    }

    #[tracing::instrument(level = "debug", name = "session.rotate", skip_all, fields(handle = %token.handle()))]
    async fn rotate(&self, token: &SessionToken) -> Result<SessionToken> {
        self.recent.forget(&token.handle());
        // One script on both keys (they share a slot, see `successor_token`) moves the
        // session and leaves the forward: no write can land in between, and a concurrent
        // rotation of the same token finds the forward and gets `Error::Rotated`.
        let old = token.handle();
        let key = self.key(&old);
        let mut version = 0;
        for _ in 0..ATTEMPTS {
            // The principal's index gets the new handle before the session moves, so a crash
            // in between leaves a stale entry, never a session "log out everywhere" misses.
            let (principal, idle) = match self.stored(&key).await?.decode(old)? {
                Lookup::Live(session) => {
                    version = session.version;
                    (session.principal, session.idle_timeout)
                }
                Lookup::Gone => return Err(Error::NotFound { handle: old }),
                Lookup::Moved(successor) => return Err(Error::Rotated { successor }),
            };
            let new = self.successor_token(&old).await?;
            let new_handle = new.handle();
            let until = self.index_until(self.expiry_bound(idle));
            if let Some(p) = &principal {
                self.index_add(p, &new_handle, until).await?;
            }
            let args = vec![
                Cow::Owned(self.key(&new_handle).into_bytes()),
                Cow::Owned(new_handle.as_bytes().to_vec()),
                codec::ms(self.policy.rotate_grace),
                Cow::Owned(principal.unwrap_or_default().into_bytes()),
            ];
            let (mut answer, waited) = self.write(&key, &ROTATE, args, true).await?;
            match &*answer.status {
                "OK" => {
                    // A concurrent delta may have lengthened the idle timeout since the read.
                    let follow = answer.index_follow()?;
                    self.follow_index(&new_handle, follow, Some(until)).await;
                    self.forms.found(new_handle, self.forms.hashed(&old));
                    self.durable(waited)?;
                    return Ok(new);
                }
                // The fresh token was taken, or the principal changed since the read.
                "TAKEN" | "CHANGED" => continue,
                _ => {
                    if let Some(successor) = answer.common(old)? {
                        return Err(Error::Rotated { successor });
                    }
                    return Err(Error::backend(format!(
                        "rotate: unexpected answer {:?}",
                        answer.status
                    )));
                }
            }
        }
        Err(Error::Conflict {
            current_version: version,
        })
    }

    #[tracing::instrument(level = "debug", name = "session.sessions_of", skip_all)]
    async fn sessions_of(&self, principal: &str) -> Result<Vec<SessionHandle>> {
        validate_principal(principal)?;
        let index = self.layout.principal_key(principal);
        let members = self.index_members(&index).await?;
        let mut live = Vec::new();
        for member in members {
            let handle = member_handle(&member)?;
            let lookup = match self.stored(&self.key(&handle)).await {
                Ok(stored) => stored.decode(handle),
                Err(e) => Err(e),
            };
            match Indexed::judge(lookup, principal)? {
                Indexed::Live(_) => live.push(handle),
                Indexed::Other => {}
                Indexed::Stale => {
                    let args = vec![Cow::Borrowed(index.as_bytes()), Cow::Owned(member.to_vec())];
                    self.one(&index, "SREM", args).await?;
                }
            }
        }
        live.sort();
        Ok(live)
    }

    /// Reads only: the index (`SMEMBERS`), then each member's session key in one batch of
    /// a `GET` and an `HMGET` of its metadata record (one round trip whichever the form),
    /// 32 keys at once, so a listing takes about two round trips' time. It touches nothing,
    /// runs no script, and leaves stale entries for
    /// [`sessions_of`](SessionStore::sessions_of) to prune.
    #[tracing::instrument(level = "debug", name = "session.summaries_of", skip_all)]
    async fn summaries_of(&self, principal: &str) -> Result<Vec<SessionSummary>> {
        validate_principal(principal)?;
        let index = self.layout.principal_key(principal);
        let members = self.index_members(&index).await?;
        let mut summaries = Vec::new();
        for members in members.chunks(CONCURRENT_READS) {
            let reads = members.iter().map(|m| self.judge_listed(m, principal));
            for indexed in join_all(reads).await {
                if let Indexed::Live(session) = indexed? {
                    summaries.push(SessionSummary::from(&session));
                }
            }
        }
        summaries.sort_by_key(|s| s.handle);
        Ok(summaries)
    }

    #[tracing::instrument(level = "debug", name = "session.delete_all_of", skip_all)]
    async fn delete_all_of(&self, principal: &str) -> Result<usize> {
        let grace = codec::ms(self.policy.delete_grace);
        let mut deleted = 0;
        for handle in self.sessions_of(principal).await? {
            let (mut answer, waited) = self
                .write(
                    &self.key(&handle),
                    &DELETE,
                    vec![Cow::Borrowed(grace.as_ref())],
                    false,
                )
                .await?;
            if answer.status == "OK" && answer.int()? == 1 {
                self.durable(waited)?;
                deleted += 1;
            }
        }
        Ok(deleted)
    }
}
