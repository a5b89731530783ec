//! The Redis side of the contract, written once for every Redis client.
//!
//! Everything that decides what a session store sends to Redis and how it reads the answers
//! lives here: the key layout, the Lua scripts, argument encoding, reply decoding, and the
//! store itself ([`Store`]). A client crate (`session-redis` over redis-rs, `session-fred`
//! over fred) only implements [`Transport`]: send a batch of commands to the node that serves
//! a key, in one round trip, and hand back the replies. Both adapters therefore run the same
//! scripts on the same layout and can share sessions.
//!
//! # Layout
//! A session is one key, `<namespace>:{<handle>}`: a metadata record and each attribute with
//! its version in front of its value, packed into one string while small and kept as a hash
//! (a field per attribute) once large; the key expires at the session's expiry instant.
//! [`layout`] defines it all, and nothing else spells a key or a field.
//!
//! # Cost
//! Redis runs one command at a time, so its CPU is what a deployment pays. A script costs
//! more than a command: measured on Redis 7.0 with `INFO cpu`, an `EVALSHA` of `return 0`
//! takes 2.3 µs against 1.0 µs for a plain `HSET`, and each `redis.call` inside adds about
//! 0.5–1 µs. So:
//! - Loads run no script and ask for no clock. A load is one `GET`; of a large (hashed)
//!   session one `HGETALL`, and `load_some` one `HMGET` of the metadata and the named
//!   attributes (the store remembers which sessions it found hashed; a wrong guess costs a
//!   WRONGTYPE answer and a second round trip). Redis never returns a key past its
//!   expiry, and whether a touch is due is judged on the application server's clock with a
//!   margin for skew ([`Policy::load_touch`](crate::Policy::load_touch)). The small `touch`
//!   script is sent only then, about once per [`Policy::touch_interval`](crate::Policy) per
//!   session. With a zero interval every load writes, and the script rides in the read's
//!   round trip.
//! - Writes that need atomic conditions are scripts on one key (`apply`, `create`, `delete`,
//!   `touch`), or on two keys in one slot (`rotate`: the new token is drawn so). The write of almost every request, a delta of
//!   attribute operations and guards, goes to `apply_attrs`: one `GET` and one `SET` of a
//!   packed session (of a large one: the `GET`, one `HMGET` of the metadata record and the
//!   attributes involved, one `HSET`), no clock (it relies on the key's expiry, kept at the
//!   session's expiry instant) and few Lua allocations. Deltas that change metadata or touch
//!   use `apply`.

mod codec;
mod hint;
pub mod layout;
mod recent;
pub mod retry;
mod settings;
pub mod source;
mod store;

use std::borrow::Cow;
use std::fmt;
use std::sync::OnceLock;

use bytes::Bytes;

use crate::error::Result;

pub use codec::{Lookup, decode_session};

/// How the store's per-handle caches ([`hint::Forms`], [`recent::Recent`]) hash their keys.
/// Both are consulted on every load, where std's SipHash of a 32-byte handle showed as
/// about 2 % of a load's client instructions (callgrind); foldhash costs a tenth of that.
/// Its weaker resistance to chosen keys does not matter here: only handles of sessions this
/// store read are inserted, and those are SHA-256 digests of tokens drawn by the CSPRNG.
type Handles = foldhash::fast::RandomState;

/// Pause between re-sends of a batch that Redis refused without running it (a cluster
/// redirect, a node still loading, a failover in progress, no connection), until the
/// transport's [`retry_budget`](Transport::retry_budget) is spent (see [`retry`]).
pub const REDIRECT_PAUSE: std::time::Duration = std::time::Duration::from_millis(100);

pub use retry::SendError;
pub use settings::{NodeUrl, Settings, Topology};
pub use store::{Durability, Store};

/// A Lua script: its source and its SHA1 (for `EVALSHA`).
#[derive(Debug)]
pub struct Script {
    /// A short name, for logs and errors.
    pub name: &'static str,
    /// The complete source.
    pub source: &'static str,
    /// How many keys it takes, as `EVALSHA`'s `numkeys`: the batch's key, then the first
    /// `numkeys - 1` arguments.
    pub numkeys: &'static str,
    sha1: OnceLock<String>,
}

impl Script {
    const fn new(name: &'static str, source: &'static str) -> Self {
        Script {
            name,
            source,
            numkeys: "1",
            sha1: OnceLock::new(),
        }
    }

    const fn with_keys(mut self, numkeys: &'static str) -> Self {
        self.numkeys = numkeys;
        self
    }

    /// The SHA1 of the source, as Redis names scripts.
    pub fn sha1(&self) -> &str {
        self.sha1
            .get_or_init(|| sha1_smol::Sha1::from(self.source).digest().to_string())
    }
}

macro_rules! script {
    ($name:literal bare) => {
        Script::new($name, include_str!(concat!("lua/", $name, ".lua")))
    };
    ($name:literal alone) => {
        Script::new(
            $name,
            concat!(
                include_str!("lua/layout.lua"),
                include_str!("lua/forms.lua"),
                include_str!(concat!("lua/", $name, ".lua"))
            ),
        )
    };
    ($name:literal) => {
        Script::new(
            $name,
            concat!(
                include_str!("lua/layout.lua"),
                include_str!("lua/forms.lua"),
                include_str!("lua/prelude.lua"),
                include_str!(concat!("lua/", $name, ".lua"))
            ),
        )
    };
}

/// Creates a session if its key is free.
pub static CREATE: Script = script!("create");
/// Applies a delta all-or-nothing.
pub static APPLY: Script = script!("apply");
/// Applies a delta of attribute operations and guards only: the lean hot path of `apply`.
pub static APPLY_ATTRS: Script = script!("apply_attrs" alone);
/// Sets a small packed session to what the client merged, if it holds what the client read
/// (see `recent`).
pub static REPLACE: Script = script!("replace" bare);
/// Touches (if due); also the second half of a touching load.
pub static TOUCH: Script = script!("touch");
/// Turns a session into a tombstone.
pub static DELETE: Script = script!("delete");
/// Rotation: moves a session to a new key in the same slot and leaves a forward.
pub static ROTATE: Script = script!("rotate").with_keys("2");

/// Every script, for preloading (`SCRIPT LOAD` on each node).
pub static SCRIPTS: [&Script; 7] = [
    &CREATE,
    &APPLY,
    &APPLY_ATTRS,
    &REPLACE,
    &TOUCH,
    &DELETE,
    &ROTATE,
];

/// An argument of a [`Command`]. Borrowed where the bytes already exist (field names,
/// the key, a delta's values), so building a command copies no user value and allocates
/// only what it must encode; the client copies each argument into its own buffer anyway.
pub type Arg<'a> = Cow<'a, [u8]>;

/// A command of a batch, borrowing its arguments from the caller where it can.
#[derive(Debug, Clone)]
pub enum Command<'a> {
    /// A plain command: its name and arguments (the key included, where it has one).
    Plain(&'static str, Vec<Arg<'a>>),
    /// `EVALSHA` of a script with `numkeys` = [`Script::numkeys`], the batch's key as its
    /// first key, then these arguments (their first `numkeys - 1` are the further keys).
    Script(&'static Script, Vec<Arg<'a>>),
}

/// A reply, in the form every client can produce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// Nil.
    Nil,
    /// An integer.
    Int(i64),
    /// A bulk or simple string. `Bytes`, so that a client whose replies are already `Bytes`
    /// (fred) hands values on without a copy, and attribute values are slices of the reply.
    Bytes(Bytes),
    /// An array (a RESP3 map or set flattened into one).
    Array(Vec<Reply>),
    /// An error reply of one command, as its text (`WRONGTYPE ...`).
    Error(String),
}

/// What a client crate provides: batches of commands, one round trip each.
///
/// A transport sends; it does not decide what to do when sending fails. [`Transport::batch`]
/// (provided; do not override it) runs the one retry policy of every client ([`retry`]):
/// it sends again after a refusal or `NOSCRIPT`, never re-sends a write that may have run,
/// and maps what ends the batch to the store's [`Error`](crate::Error).
///
/// # Obligations
/// - [`send`](Transport::send): send all `commands` to the node serving `key` (they all
///   address that key's slot, or no key) once, in one round trip, and return exactly one
///   [`Reply`] per command, in order. An error reply of one command is a [`Reply::Error`]
///   with Redis's text (`CODE detail`), not an `Err`, whatever the command.
/// - Send a [`Command::Script`] as `EVALSHA` of its [`Script::sha1`] with its
///   [`Script::numkeys`] and the batch's key, or, when `eval` is set, as `EVAL` of its
///   [`Script::source`].
/// - Never send a command twice inside `send` (the client's own retries off): whether to send
///   again is the policy's decision, and a re-sent increment would count twice.
/// - Sort a failure that leaves the batch without its replies into a [`SendError`]: not
///   sent at all or refused whole, may have run, or anything else.
///
/// # Example
/// A transport over a client of your own ([`SendError::NotSent`] when it has no connection);
/// [`Store`] then runs the library's scripts and retry policy over it:
/// ```
/// use session_core::redis::{Command, Reply, SendError, Transport};
///
/// #[derive(Debug)]
/// struct Offline;
///
/// impl Transport for Offline {
///     async fn send(
///         &self,
///         _key: &str,
///         _commands: &[Command<'_>],
///         _eval: bool,
///     ) -> Result<Vec<Reply>, SendError> {
///         Err(SendError::NotSent("no connection".into()))
///     }
///
///     fn retry_budget(&self) -> std::time::Duration {
///         std::time::Duration::ZERO
///     }
/// }
///
/// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
/// let read = [Command::Plain("GET", vec![b"k".as_slice().into()])];
/// let result = Offline.batch("k", &read, false).await;
/// assert!(matches!(result, Err(session_core::Error::Unavailable(_))));
/// # });
/// ```
///
/// The methods are `async fn`s that the store awaits in place (the trait is used
/// generically, never as `dyn`), so a batch costs no boxed future; an implementation writes
/// `async fn send(..)`, and its future must be `Send`.
pub trait Transport: Send + Sync + fmt::Debug {
    /// Sends `commands` to the node serving `key`, once, in one round trip; scripts with
    /// their source when `eval` is set.
    fn send(
        &self,
        key: &str,
        commands: &[Command<'_>],
        eval: bool,
    ) -> impl Future<Output = std::result::Result<Vec<Reply>, SendError>> + Send;

    /// How long a batch may keep being sent again while Redis refuses it, before the
    /// refusal is reported. The adapters use their response timeout; the default is 2 s.
    fn retry_budget(&self) -> std::time::Duration {
        retry::DEFAULT_BUDGET
    }

    /// Whether the server shards keys into slots (Redis Cluster), so that the keys of one
    /// script must share a slot. Rotation then draws its new token until the new key shares
    /// the old key's slot (about 16,000 tries, a few milliseconds of CPU). The default,
    /// `true`, is correct on every server.
    fn sharded(&self) -> bool {
        true
    }

    /// Sends `commands` to the node serving `key` under the library's retry policy
    /// ([`retry`]). `unsafe_to_resend`: the batch writes, so once it may have reached Redis
    /// it is never sent again, and a lost answer is
    /// [`Error::OutcomeUnknown`](crate::Error::OutcomeUnknown).
    fn batch(
        &self,
        key: &str,
        commands: &[Command<'_>],
        unsafe_to_resend: bool,
    ) -> impl Future<Output = Result<Vec<Reply>>> + Send {
        retry::batch(self, key, commands, unsafe_to_resend)
    }
}
