//! The fred [`Transport`]: a batch is one pipeline on one client of the pool, routed to the
//! node serving the batch's key.

use std::fmt;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use fred::bytes::Bytes;
use fred::clients::{Client, WithOptions};
use fred::error::{Error as FredError, ErrorKind};
use fred::interfaces::{HashesInterface, KeysInterface};
use fred::prelude::{ClientLike, Options, Pool, Value};
use fred::types::{ClusterHash, CustomCommand, Key};
use fred::util::redis_keyslot;
use session_core::Error;
use session_core::redis::{Command, Reply, Transport, redirect_pause};

/// The error of a batch not sent because its client had no connection.
const NOT_CONNECTED: &str = "not connected (batch not sent)";

/// The [`Transport`] over fred.
///
/// A batch goes on one client of the pool, with the key's hash slot as the cluster hash of
/// every command (`WAIT` included), so the whole batch goes, in one round trip, over the one
/// connection to the node serving the key: a write's batch as one fred pipeline (a `WAIT`
/// therefore counts the write before it), a read's two commands (a load and the touch that
/// rides with it) as two plain commands sent together, and a lone command as itself.
/// Scripts go as `EVALSHA`; on `NOSCRIPT` (a restarted or newly promoted node has an empty
/// script cache) the batch is sent again with `EVAL`, which also caches the script on that
/// node.
///
/// Every command is written at most once (`max_attempts = 1`, fred's own redirections off):
/// a batch is re-sent only when Redis proved it did not run it (`MOVED`, `ASK`, `TRYAGAIN`,
/// `CLUSTERDOWN`, `LOADING`, `READONLY`, or no connection before sending). After a timeout
/// or a dropped connection the outcome of a write is unknown and is reported as
/// [`Error::OutcomeUnknown`]; a read is reported as [`Error::Timeout`] or re-sent.
pub struct FredTransport {
    pool: Pool,
    /// Time to wait for a batch's replies.
    timeout: Duration,
    /// How long a batch may keep being re-sent (it was refused, not run) before the error is
    /// reported.
    retry_budget: Duration,
}

impl fmt::Debug for FredTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FredTransport")
            .field("clients", &self.pool.size())
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl Drop for FredTransport {
    fn drop(&mut self) {
        // fred's connection tasks outlive the pool handle: close them.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let pool = self.pool.clone();
            runtime.spawn(async move {
                let _ = pool.quit().await;
            });
        }
    }
}

/// What a failed command tells about the batch.
enum Failure {
    /// An error reply of Redis to this command.
    Reply(String),
    /// Redis did not run the batch: sending it again is safe.
    NotRun(String),
    /// The batch may have reached Redis (a timeout, a dropped connection).
    Unknown(FredError),
    /// Anything else.
    Other(FredError),
}

/// True if the first word looks like a Redis error code (`ERR`, `WRONGTYPE`, `CONFLICT`).
fn is_error_code(details: &str) -> bool {
    let word = details.split_whitespace().next().unwrap_or("");
    !word.is_empty()
        && word
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

fn refused(details: &str) -> bool {
    [
        "MOVED",
        "ASK",
        "TRYAGAIN",
        "CLUSTERDOWN",
        "LOADING",
        "READONLY",
    ]
    .iter()
    .any(|code| details.split_whitespace().next() == Some(code))
}

fn classify(e: FredError) -> Failure {
    match e.kind() {
        ErrorKind::Timeout | ErrorKind::IO | ErrorKind::Canceled => Failure::Unknown(e),
        // Not sent: no connection (ours), no node for the slot ("Failed to route command"),
        // or a redirect that fred, whose redirections are off (`max_redirections = 0`),
        // handed back after refreshing its slot map.
        ErrorKind::Routing => Failure::NotRun(e.details().to_owned()),
        ErrorKind::Unknown
        | ErrorKind::InvalidArgument
        | ErrorKind::InvalidCommand
        | ErrorKind::Auth
        | ErrorKind::Cluster
        | ErrorKind::Config
            if is_error_code(e.details()) =>
        {
            if refused(e.details()) {
                Failure::NotRun(e.details().to_owned())
            } else {
                Failure::Reply(e.details().to_owned())
            }
        }
        _ => Failure::Other(e),
    }
}

fn reply(value: Value) -> Reply {
    match value {
        Value::Null => Reply::Nil,
        Value::Integer(i) => Reply::Int(i),
        // Without a copy when the reply owns its buffer alone.
        // fred's replies are already `Bytes`: handed on without a copy.
        Value::Bytes(b) => Reply::Bytes(b),
        Value::String(s) => Reply::Bytes(s.into_inner()),
        Value::Boolean(b) => Reply::Int(i64::from(b)),
        Value::Double(d) => Reply::Bytes(d.to_string().into()),
        Value::Array(items) => Reply::Array(items.into_iter().map(reply).collect()),
        Value::Map(map) => Reply::Array(
            map.inner()
                .into_iter()
                .flat_map(|(k, v)| [reply(Value::from(k)), reply(v)])
                .collect(),
        ),
        other => Reply::Error(format!("unsupported reply {other:?}")),
    }
}

/// Copies a command's arguments into one buffer and hands each out as a slice of it.
///
/// The arguments then cost two allocations (the buffer and its shared handle) however many
/// there are, where a copy each cost one apiece. The allocations, not the bytes copied, were
/// the cost: with many tasks on few threads, glibc's allocator makes threads wait on each
/// other's arenas. Measured on the narrow cycle (100 x 1 KiB, 256 tasks, standalone):
/// allocations per cycle 112 to 76, throughput 39k to 48k cycles/s.
fn packed<'a>(parts: impl Iterator<Item = &'a [u8]> + Clone) -> impl Iterator<Item = Bytes> {
    let mut buffer = Vec::with_capacity(parts.clone().map(<[u8]>::len).sum());
    for part in parts.clone() {
        buffer.extend_from_slice(part);
    }
    let buffer = Bytes::from(buffer);
    let mut at = 0;
    parts.map(move |part| {
        let slice = buffer.slice(at..at + part.len());
        at += part.len();
        slice
    })
}

impl FredTransport {
    pub(crate) fn new(pool: Pool, timeout: Duration) -> Self {
        FredTransport {
            pool,
            timeout,
            retry_budget: timeout,
        }
    }

    /// The fred pool, for commands of your own.
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// A command's name and arguments as fred sends them (scripts as `EVALSHA`, or `EVAL`
    /// after `NOSCRIPT`).
    fn encode(key: &str, command: &Command<'_>, eval: bool) -> (&'static str, Vec<Value>) {
        match command {
            Command::Plain(name, args) => (
                name,
                packed(args.iter().map(AsRef::as_ref))
                    .map(Value::Bytes)
                    .collect(),
            ),
            Command::Script(script, args) => {
                let (name, body) = if eval {
                    ("EVAL", script.source)
                } else {
                    ("EVALSHA", script.sha1())
                };
                // The script, its number of keys, the key, the arguments (further keys first).
                let head = [body.as_bytes(), script.numkeys.as_bytes(), key.as_bytes()];
                let all = head.into_iter().chain(args.iter().map(AsRef::as_ref));
                (name, packed(all).map(Value::Bytes).collect())
            }
        }
    }

    /// One command on `client`. fred flushes its connection after every custom command, but
    /// not after a typed one: a typed `GET`, `HGETALL` or `HMGET` waits in the buffer for other
    /// tasks' commands, so many reads share one write, and Redis one read. Measured on a load
    /// of 1 x 32 B at 256 tasks (standalone): Redis CPU per load 4.6 µs as a custom command
    /// against 3.6 µs for raw fred's typed `HGETALL`.
    async fn send_one(
        client: &WithOptions<Client>,
        key: &str,
        command: &Command<'_>,
        eval: bool,
    ) -> Result<Value, FredError> {
        if let Command::Plain(name @ ("GET" | "HGETALL"), args) = command
            && let [key] = &args[..]
        {
            let key = Key::from(&key[..]);
            return match *name {
                "GET" => client.get::<Value, _>(key).await,
                _ => client.hgetall::<Value, _>(key).await,
            };
        }
        if let Command::Plain("HMGET", args) = command {
            let mut all = packed(args.iter().map(AsRef::as_ref)).map(Key::from);
            if let Some(key) = all.next() {
                let fields: Vec<Key> = all.collect();
                return client.hmget::<Value, _, _>(key, fields).await;
            }
        }
        let (name, args) = Self::encode(key, command, eval);
        let custom = CustomCommand::new_static(name, ClusterHash::FirstKey, false);
        client.custom::<Value, _>(custom, args).await
    }

    /// Sends the batch once, on one client: one result per command, or one error for the
    /// whole batch.
    async fn send(
        &self,
        key: &str,
        commands: &[Command<'_>],
        unsafe_to_resend: bool,
        eval: bool,
    ) -> Result<Vec<Result<Value, FredError>>, FredError> {
        let client = self.pool.next();
        if !client.is_connected() {
            // Not sent: safe to try again.
            return Err(FredError::new(ErrorKind::Routing, NOT_CONNECTED));
        }
        let options = Options {
            max_attempts: Some(1),
            max_redirections: Some(0),
            timeout: Some(self.timeout),
            // A slot means something only to a cluster (hashing the key cost 2 % of a
            // standalone narrow cycle's client CPU).
            cluster_hash: match (client.is_clustered(), key.is_empty()) {
                (false, _) => None,
                (true, true) => Some(ClusterHash::Random),
                (true, false) => Some(ClusterHash::Custom(redis_keyslot(key.as_bytes()))),
            },
            ..Options::default()
        };
        // One command (a write script, a read of the index) goes alone: fred's pipelines cost
        // the client more than a plain command. Its error is the whole batch's, which
        // `batch` reads as the answer of a one-command batch.
        if let [command] = commands {
            let value = Self::send_one(&client.with_options(&options), key, command, eval).await?;
            return Ok(vec![Ok(value)]);
        }
        // The rarer batches are futures of their own, boxed: inline, their size (fred's
        // futures, twice over for the pair) made every batch's future several kilobytes,
        // copied on every call (measured: 8 % of the client's CPU on a load at 256 tasks).
        if let ([first, second], false) = (commands, unsafe_to_resend) {
            let client = client.with_options(&options);
            return Box::pin(Self::send_pair(&client, key, [first, second], eval)).await;
        }
        Box::pin(Self::send_pipeline(client, &options, key, commands, eval)).await
    }

    /// A read of two commands (a load and the touch that rides with it) goes as two plain
    /// commands sent together on the client's one connection: one round trip, without a fred
    /// pipeline's copies of its commands and its shared reply buffer (measured on
    /// `load_some` at 256 tasks: +6 to +11 %, and +17 to +22 % with the typed `HMGET` of
    /// `send_one`). `join!` polls them in turn and each is queued on its first poll, so
    /// they leave in order, though a read does not depend on it; a write's batch keeps
    /// the pipeline, whose order a `WAIT` does depend on.
    async fn send_pair(
        client: &WithOptions<Client>,
        key: &str,
        [first, second]: [&Command<'_>; 2],
        eval: bool,
    ) -> Result<Vec<Result<Value, FredError>>, FredError> {
        let (a, b) = tokio::join!(
            Self::send_one(client, key, first, eval),
            Self::send_one(client, key, second, eval)
        );
        // Not sent, or no answer heard: the whole batch's failure, as a failed
        // pipeline's is (so a read is sent again, or reported as a timeout).
        for item in [&a, &b] {
            if let Err(e) = item
                && matches!(
                    e.kind(),
                    ErrorKind::Timeout | ErrorKind::IO | ErrorKind::Canceled | ErrorKind::Routing
                )
            {
                return Err(e.clone());
            }
        }
        Ok(vec![a, b])
    }

    /// A batch as one fred pipeline: a write's (a `WAIT` depends on its order).
    async fn send_pipeline(
        client: &Client,
        options: &Options,
        key: &str,
        commands: &[Command<'_>],
        eval: bool,
    ) -> Result<Vec<Result<Value, FredError>>, FredError> {
        let pipeline = client.pipeline();
        let queue = pipeline.with_options(options);
        for command in commands {
            let (name, args) = Self::encode(key, command, eval);
            let custom = CustomCommand::new_static(name, ClusterHash::FirstKey, false);
            let () = queue.custom(custom, args).await?;
        }
        let items = pipeline.try_all::<Value>().await;
        if items.len() != commands.len() {
            // The whole pipeline failed.
            let error = items
                .into_iter()
                .find_map(Result::err)
                .unwrap_or_else(|| FredError::new(ErrorKind::Protocol, "reply count mismatch"));
            return Err(error);
        }
        Ok(items)
    }
}

#[async_trait]
impl Transport for FredTransport {
    async fn batch(
        &self,
        key: &str,
        commands: &[Command<'_>],
        unsafe_to_resend: bool,
    ) -> session_core::Result<Vec<Reply>> {
        let mut eval = false;
        let mut refusals = 0;
        let started = Instant::now();
        // Asked only after a failure: the clock stays off the path of a batch that succeeds.
        let retry_left = || started.elapsed() < self.retry_budget;
        loop {
            let items = match self.send(key, commands, unsafe_to_resend, eval).await {
                Ok(items) => items,
                Err(e) => {
                    let failure = classify(e);
                    match failure {
                        Failure::NotRun(why) if retry_left() => {
                            refusals += 1;
                            tracing::debug!(error = %why, refusals, "batch not run, sending again");
                            redirect_pause().await;
                            continue;
                        }
                        // A read may be sent again.
                        Failure::Unknown(e)
                            if !unsafe_to_resend
                                && retry_left()
                                && e.kind() != &ErrorKind::Timeout =>
                        {
                            refusals += 1;
                            tracing::debug!(error = %e, refusals, "read failed, sending again");
                            redirect_pause().await;
                            continue;
                        }
                        Failure::Unknown(e) if unsafe_to_resend => {
                            return Err(Error::OutcomeUnknown(Box::new(e)));
                        }
                        Failure::Unknown(e) if e.kind() == &ErrorKind::Timeout => {
                            return Err(Error::Timeout);
                        }
                        // A read that kept failing (a lost connection): nothing changed.
                        Failure::Unknown(e) => return Err(Error::Unavailable(Box::new(e))),
                        Failure::Other(e) => return Err(Error::backend(e)),
                        // Not sent (no connection, no node for the slot) until the retry
                        // budget ran out: nothing ran. (A refusal that Redis answered, such
                        // as MOVED, is its reply, below, as redis-rs gives it.)
                        Failure::NotRun(why) if !is_error_code(&why) => {
                            return Err(Error::Unavailable(why.into()));
                        }
                        // A single command's error reply, as the whole answer of a
                        // one-command batch.
                        Failure::Reply(why) | Failure::NotRun(why) => {
                            if commands.len() == 1 && is_error_code(&why) {
                                if !eval && why.starts_with("NOSCRIPT") {
                                    eval = true;
                                    continue;
                                }
                                return Ok(vec![Reply::Error(why)]);
                            }
                            return Err(Error::backend(why));
                        }
                    }
                }
            };
            let replies: Vec<Reply> = items
                .into_iter()
                .map(|item| match item {
                    Ok(value) => Ok(reply(value)),
                    Err(e) => match classify(e) {
                        Failure::Reply(why) | Failure::NotRun(why) => Ok(Reply::Error(why)),
                        Failure::Unknown(e) | Failure::Other(e) => Err(e),
                    },
                })
                .collect::<Result<_, _>>()
                .map_err(|e| {
                    if unsafe_to_resend {
                        Error::OutcomeUnknown(Box::new(e))
                    } else {
                        Error::backend(e)
                    }
                })?;
            let code = |r: &Reply, f: &dyn Fn(&str) -> bool| matches!(r, Reply::Error(e) if f(e));
            if !eval
                && replies
                    .iter()
                    .any(|r| code(r, &|e| e.starts_with("NOSCRIPT")))
            {
                eval = true;
                continue;
            }
            if replies.iter().any(|r| code(r, &refused)) && retry_left() {
                refusals += 1;
                tracing::debug!(refusals, "batch refused, sending again");
                redirect_pause().await;
                continue;
            }
            return Ok(replies);
        }
    }

    fn sharded(&self) -> bool {
        self.pool.next().is_clustered()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packed_arguments_are_the_parts_in_order() {
        let parts: [&[u8]; 4] = [b"HMGET", b"", b"key", b"name"];
        let slices: Vec<Bytes> = packed(parts.iter().copied()).collect();
        assert_eq!(slices.len(), parts.len());
        for (slice, part) in slices.iter().zip(parts) {
            assert_eq!(slice.as_ref(), part);
        }
        assert_eq!(packed(std::iter::empty()).count(), 0);
    }
}
