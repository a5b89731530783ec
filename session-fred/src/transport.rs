//! The fred [`Transport`]: a batch is one pipeline on one client of the pool, routed to the
//! node serving the batch's key.

use std::fmt;
use std::time::Duration;

use fred::bytes::Bytes;
use fred::clients::{Client, WithOptions};
use fred::error::{Error as FredError, ErrorKind};
use fred::interfaces::{HashesInterface, KeysInterface};
use fred::prelude::{ClientLike, Options, Pool, Value};
use fred::types::{ClusterHash, CustomCommand, Key};
use fred::util::redis_keyslot;
use session_core::redis::{Command, Reply, SendError, Transport};

/// The error of a batch not sent because its client had no connection.
const NOT_CONNECTED: &str = "not connected (batch not sent)";

/// The [`Transport`] over fred.
///
/// A batch goes on one client of the pool, with the key's hash slot as the cluster hash of
/// every command (`WAIT` included), so the whole batch goes, in one round trip, over the one
/// connection to the node serving the key: a batch ending in `WAIT` as one fred pipeline
/// (the `WAIT` therefore counts the write before it), two other commands (a load and the
/// touch that rides with it) as two plain commands sent together, and a lone command as
/// itself.
///
/// Every command is written at most once (`max_attempts = 1`, fred's own redirections off):
/// whether a batch is sent again is `session_core::redis::retry`'s decision, as for every
/// client.
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

/// True if the first word looks like a Redis error code (`ERR`, `WRONGTYPE`, `MOVED`): the
/// error is Redis's reply, which fred hands over as an error.
fn is_error_code(details: &str) -> bool {
    let word = details.split_whitespace().next().unwrap_or("");
    !word.is_empty()
        && word
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

/// What a failed command tells about the batch.
enum Failure {
    /// An error reply of Redis to this command (`CODE detail`).
    Reply(String),
    /// No reply to hand over.
    Send(SendError),
}

fn classify(e: FredError) -> Failure {
    match e.kind() {
        ErrorKind::Timeout | ErrorKind::IO | ErrorKind::Canceled => {
            Failure::Send(SendError::MaybeRan {
                timed_out: *e.kind() == ErrorKind::Timeout,
                source: Box::new(e),
            })
        }
        // Not sent: no connection (ours), no node for the slot ("Failed to route command"),
        // or a redirect that fred, whose redirections are off (`max_redirections = 0`),
        // handed back after refreshing its slot map.
        ErrorKind::Routing => Failure::Send(SendError::NotSent(Box::new(e))),
        ErrorKind::Unknown
        | ErrorKind::InvalidArgument
        | ErrorKind::InvalidCommand
        | ErrorKind::Auth
        | ErrorKind::Cluster
        | ErrorKind::Config
            if is_error_code(e.details()) =>
        {
            Failure::Reply(e.details().to_owned())
        }
        _ => Failure::Send(SendError::Fatal(Box::new(e))),
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

    /// The client that sends a batch for `key`, and the options it sends with: no retries
    /// or redirections of fred's own, this transport's timeout, and `key`'s slot.
    fn client(&self, key: &str) -> Result<(&Client, Options), FredError> {
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
        Ok((client, options))
    }

    /// Sends a batch of one command (a write script, a load): fred's pipelines cost the
    /// client more than a plain command. Its error is the whole batch's, which is read here
    /// as the answer of a one-command batch.
    async fn send_single(
        &self,
        key: &str,
        command: &Command<'_>,
        eval: bool,
    ) -> Result<Vec<Reply>, SendError> {
        let sent = match self.client(key) {
            Ok((client, options)) => {
                Self::send_one(&client.with_options(&options), key, command, eval).await
            }
            Err(e) => Err(e),
        };
        match sent {
            Ok(value) => Ok(vec![reply(value)]),
            // A lone command's error reply, which fred hands over as the batch's error.
            Err(e) => match classify(e) {
                Failure::Reply(why) => Ok(vec![Reply::Error(why)]),
                Failure::Send(e) => Err(e),
            },
        }
    }

    /// Sends a batch of several commands once, on one client: one result per command, or
    /// one error for the whole batch.
    async fn send_batch(
        &self,
        key: &str,
        commands: &[Command<'_>],
        eval: bool,
    ) -> Result<Vec<Result<Value, FredError>>, FredError> {
        let (client, options) = self.client(key)?;
        // Not boxed again here: `send` boxes this whole batch once.
        if let [first, second] = commands
            && !matches!(second, Command::Plain("WAIT", _))
        {
            let client = client.with_options(&options);
            return Self::send_pair(&client, key, [first, second], eval).await;
        }
        Self::send_pipeline(client, &options, key, commands, eval).await
    }

    /// Two commands without a `WAIT` (a load and the touch that rides with it) go as two plain
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

impl Transport for FredTransport {
    async fn send(
        &self,
        key: &str,
        commands: &[Command<'_>],
        eval: bool,
    ) -> Result<Vec<Reply>, SendError> {
        // Boxed: a fred command's future is about 5 KiB, and every `async fn` level that
        // awaits it inline holds it again (a load's future was 22 KiB, copied whenever it
        // moved). Boxed here, the store's futures stay small.
        match commands {
            [command] => Box::pin(self.send_single(key, command, eval)).await,
            _ => Box::pin(self.send_many(key, commands, eval)).await,
        }
    }

    fn retry_budget(&self) -> Duration {
        self.retry_budget
    }

    fn sharded(&self) -> bool {
        self.pool.next().is_clustered()
    }
}

impl FredTransport {
    /// [`Transport::send`] of several commands.
    async fn send_many(
        &self,
        key: &str,
        commands: &[Command<'_>],
        eval: bool,
    ) -> Result<Vec<Reply>, SendError> {
        let items = match self.send_batch(key, commands, eval).await {
            Ok(items) => items,
            Err(e) => match classify(e) {
                // A whole pipeline refused with Redis's reply: nothing of it ran.
                Failure::Reply(why) if session_core::redis::retry::refused(&why) => {
                    return Err(SendError::NotSent(why.into()));
                }
                Failure::Reply(why) => return Err(SendError::Fatal(why.into())),
                Failure::Send(e) => return Err(e),
            },
        };
        items
            .into_iter()
            .map(|item| match item {
                Ok(value) => Ok(reply(value)),
                Err(e) => match classify(e) {
                    Failure::Reply(why) => Ok(Reply::Error(why)),
                    Failure::Send(e) => Err(e),
                },
            })
            .collect()
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
