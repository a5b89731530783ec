//! The redis-rs [`Transport`]: batches as pipelines on a standalone, cluster or sentinel
//! connection.

use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use redis::aio::{ConnectionLike, ConnectionManager, MultiplexedConnection};
use redis::cluster_async::ClusterConnection;
use redis::sentinel::SentinelClient;
use redis::{ErrorKind, RedisError, RetryMethod, ServerErrorKind, Value};
use session_core::redis::{Arg, Command, Reply, SendError, Transport};
use tokio::sync::Mutex;

/// How the transport reaches Redis.
pub(crate) enum Connection {
    /// One server, reconnecting in the background (never re-sends a command).
    Standalone(ConnectionManager),
    /// Redis Cluster, with the client's own re-sends turned off (see [`RedisTransport`]).
    Cluster(ClusterConnection),
    /// The master that the sentinels name; re-resolved after a connection error or `READONLY`.
    Sentinel(Box<Sentinel>),
}

/// A connection to the master that the sentinels name.
pub(crate) struct Sentinel {
    /// The sentinel client (resolving needs `&mut`).
    pub(crate) client: Mutex<SentinelClient>,
    /// The current master connection, if resolved.
    pub(crate) master: Mutex<Option<MultiplexedConnection>>,
    /// Connection settings for master connections.
    pub(crate) config: redis::AsyncConnectionConfig,
}

/// The [`Transport`] over redis-rs.
///
/// A batch of several commands is one pipeline; a batch of one (every write script) is sent
/// as a plain command. Every command is written at most once: the cluster client runs with
/// `retries(0)`, since its own retry logic re-sends after I/O errors, and the standalone
/// connection manager never re-sends. Whether a batch is sent again is
/// `session_core::redis::retry`'s decision, as for every client.
pub struct RedisTransport {
    pub(crate) connection: Connection,
    /// How long a batch may keep being re-sent (it was refused, not run) before the error is
    /// reported.
    pub(crate) retry_budget: Duration,
}

impl fmt::Debug for RedisTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.connection {
            Connection::Standalone(_) => "standalone",
            Connection::Cluster(_) => "cluster",
            Connection::Sentinel(_) => "sentinel",
        };
        f.debug_struct("RedisTransport")
            .field("mode", &kind)
            .finish()
    }
}

/// One command as redis-rs sends it, its buffers sized once (growing them argument by
/// argument showed in profiles).
fn command(key: &str, command: &Command<'_>, eval: bool) -> redis::Cmd {
    let data = |args: &[Arg<'_>]| args.iter().map(|a| a.len()).sum::<usize>();
    let add = |cmd: &mut redis::Cmd, args: &[Arg<'_>]| {
        for a in args {
            cmd.arg(a.as_ref());
        }
    };
    match command {
        Command::Plain(name, args) => {
            let mut cmd = redis::Cmd::with_capacity(1 + args.len(), name.len() + data(args));
            cmd.arg(*name);
            add(&mut cmd, args);
            cmd
        }
        Command::Script(script, args) => {
            let (name, body) = if eval {
                ("EVAL", script.source)
            } else {
                ("EVALSHA", script.sha1())
            };
            let mut cmd = redis::Cmd::with_capacity(
                4 + args.len(),
                name.len() + body.len() + 1 + key.len() + data(args),
            );
            cmd.arg(name).arg(body).arg(script.numkeys).arg(key);
            add(&mut cmd, args);
            cmd
        }
    }
}

/// A batch as redis-rs sends it: most batches (every write script) are one command, which
/// goes without a pipeline's bookkeeping.
enum Request {
    One(redis::Cmd),
    Many(redis::Pipeline),
}

impl Request {
    fn new(key: &str, commands: &[Command<'_>], eval: bool) -> Self {
        if let [one] = commands {
            return Request::One(command(key, one, eval));
        }
        let mut pipe = redis::pipe();
        pipe.ignore_errors();
        for c in commands {
            pipe.add_command(command(key, c, eval));
        }
        Request::Many(pipe)
    }

    /// Sends the batch on `connection`: one reply per command (a server error as
    /// [`Reply::Error`]), or the error that kept the batch from being answered. A lone
    /// command's reply goes straight into the one `Vec` the store receives.
    async fn send(&self, connection: &mut impl ConnectionLike) -> Result<Vec<Reply>, RedisError> {
        match self {
            Request::One(cmd) => Ok(vec![reply(connection.req_packed_command(cmd).await?)]),
            Request::Many(pipe) => {
                let items: Vec<redis::RedisResult<Value>> = pipe.query_async(connection).await?;
                Ok(items
                    .into_iter()
                    .map(|item| match item {
                        Ok(value) => reply(value),
                        Err(e) => Reply::Error(error_text(&e)),
                    })
                    .collect())
            }
        }
    }
}

fn reply(value: Value) -> Reply {
    match value {
        Value::Nil => Reply::Nil,
        Value::Int(i) => Reply::Int(i),
        // A `Vec` becomes `Bytes` without a copy.
        Value::BulkString(b) => Reply::Bytes(Bytes::from(b)),
        Value::SimpleString(s) => Reply::Bytes(Bytes::from(s)),
        Value::Okay => Reply::Bytes(Bytes::from_static(b"OK")),
        Value::Array(items) | Value::Set(items) => {
            Reply::Array(items.into_iter().map(reply).collect())
        }
        Value::Map(pairs) => Reply::Array(
            pairs
                .into_iter()
                .flat_map(|(k, v)| [reply(k), reply(v)])
                .collect(),
        ),
        Value::Double(d) => Reply::Bytes(Bytes::from(d.to_string())),
        Value::Boolean(b) => Reply::Int(i64::from(b)),
        Value::ServerError(e) => {
            Reply::Error(format!("{} {}", e.code(), e.details().unwrap_or_default()))
        }
        other => Reply::Error(format!("unsupported reply {other:?}")),
    }
}

/// Redis refused the batch without running it, or it was never sent: sending it again is
/// safe.
fn not_run(e: &RedisError) -> bool {
    e.is_connection_refusal()
        || matches!(
            e.retry_method(),
            RetryMethod::MovedRedirect
                | RetryMethod::AskRedirect
                | RetryMethod::WaitAndRetry
                | RetryMethod::RefreshSlotsAndRetry
        )
        || matches!(e.kind(), ErrorKind::Server(ServerErrorKind::ReadOnly))
}

/// An error reply as Redis wrote it (`CODE detail`).
fn error_text(e: &RedisError) -> String {
    match (e.code(), e.detail()) {
        (Some(code), Some(detail)) => format!("{code} {detail}"),
        _ => e.to_string(),
    }
}

/// Sorts an error that kept a batch from being answered.
fn send_error(e: RedisError) -> SendError {
    if not_run(&e) {
        SendError::NotSent(Box::new(e))
    } else if e.is_io_error() {
        SendError::MaybeRan {
            timed_out: e.is_timeout(),
            source: Box::new(e),
        }
    } else {
        SendError::Fatal(Box::new(e))
    }
}

impl RedisTransport {
    async fn query(&self, request: &Request) -> Result<Vec<Reply>, RedisError> {
        match &self.connection {
            Connection::Standalone(c) => request.send(&mut c.clone()).await,
            Connection::Cluster(c) => request.send(&mut c.clone()).await,
            // Boxed: resolving and connecting to a master are large futures, and every
            // batch's future would carry their size (it is allocated and moved per batch).
            Connection::Sentinel(sentinel) => Box::pin(sentinel.query(request)).await,
        }
    }
}

impl Sentinel {
    /// Sends `request` to the current master, resolving it first if needed.
    async fn query(&self, request: &Request) -> Result<Vec<Reply>, RedisError> {
        let Sentinel {
            client,
            master,
            config,
        } = self;
        let mut connection = {
            let mut guard = master.lock().await;
            match &*guard {
                Some(c) => c.clone(),
                None => {
                    let c = client
                        .lock()
                        .await
                        .get_async_connection_with_config(config)
                        .await?;
                    *guard = Some(c.clone());
                    c
                }
            }
        };
        let result = request.send(&mut connection).await;
        let stale = match &result {
            Err(e) => {
                e.is_io_error() || matches!(e.kind(), ErrorKind::Server(ServerErrorKind::ReadOnly))
            }
            Ok(replies) => replies
                .iter()
                .any(|r| matches!(r, Reply::Error(e) if e.starts_with("READONLY"))),
        };
        if stale {
            // A failover may have happened: ask the sentinels again next time.
            *master.lock().await = None;
        }
        result
    }
}

impl Transport for RedisTransport {
    async fn send(
        &self,
        key: &str,
        commands: &[Command<'_>],
        eval: bool,
    ) -> Result<Vec<Reply>, SendError> {
        let request = Request::new(key, commands, eval);
        match self.query(&request).await {
            Ok(replies) => Ok(replies),
            // A lone command's error reply, as redis-rs hands it over (the cluster client
            // gives a redirect so): that command's reply.
            Err(e) if matches!(request, Request::One(_)) && e.code().is_some() => {
                Ok(vec![Reply::Error(error_text(&e))])
            }
            Err(e) => Err(send_error(e)),
        }
    }

    fn retry_budget(&self) -> Duration {
        self.retry_budget
    }

    fn sharded(&self) -> bool {
        matches!(self.connection, Connection::Cluster(_))
    }
}
