//! `raw-redis`: the redis-rs client alone (one `MultiplexedConnection`, or a
//! `ClusterConnection`), sending the minimal commands on our hash layout: create = `HSET` +
//! `PEXPIRE` pipelined; load = `HGETALL`; load_some = `HMGET`; apply = `HSET`; cycle =
//! `HGETALL` then `HSET`; narrow = `HMGET` then `HSET`; rotate = `HGETALL`, then `HSET` +
//! `PEXPIRE` of the new key and `DEL` of the old one, sent concurrently (in a cluster they
//! are on different nodes).
//!
//! With [`Save::Script`] it is the `script-floor` subject: the same, except that a save is
//! `EVALSHA` of [`FLOOR_SCRIPT`], a one-line script that runs the same `HSET`. Over a
//! multiplexed connection, a save that checks a condition atomically (the session is live, a
//! guard holds, the size limit holds) in one round trip must be a script on Redis 7 (`WATCH`
//! needs a connection per request and a second round trip), and no script does less than
//! this one, so its figures bound from below what any such store pays, ours included.

use std::collections::HashMap;

use async_trait::async_trait;
use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, FromRedisValue, Pipeline, RedisFuture, Value};
use session_core::redis::Topology;

use super::error::{BenchError, Result};
use super::plan::Workload;
use super::raw::{self, RoundTrips};
use super::subject::{Attrs, Subject, Support};

/// The script-floor's save: one `HSET`, no check, a constant reply.
pub const FLOOR_SCRIPT: &str = "redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) return 0";

/// How the subject saves an attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Save {
    /// A plain `HSET` (`raw-redis`).
    Plain,
    /// `EVALSHA` of [`FLOOR_SCRIPT`] (`script-floor`).
    Script,
}

/// One connection to a standalone server or a cluster.
#[derive(Clone)]
pub enum RawConnection {
    /// Standalone Redis.
    Standalone(MultiplexedConnection),
    /// Redis Cluster.
    Cluster(ClusterConnection),
}

impl ConnectionLike for RawConnection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            RawConnection::Standalone(c) => c.req_packed_command(cmd),
            RawConnection::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            RawConnection::Standalone(c) => c.req_packed_commands(pipeline, offset, count),
            RawConnection::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            RawConnection::Standalone(c) => c.get_db(),
            RawConnection::Cluster(c) => c.get_db(),
        }
    }
}

/// The raw redis-rs subject.
pub struct RawRedis {
    connection: RawConnection,
    namespace: String,
    trips: RoundTrips,
    /// The floor script, when saves go through it.
    script: Option<redis::Script>,
}

/// Connects to `url` (`redis://…` or `redis+cluster://…`); keys go under `namespace`. With
/// [`Save::Script`] the floor script is loaded first (on every node of a cluster), so a
/// script that Redis refuses fails here; a node that lost it later gets it again on
/// `NOSCRIPT`.
pub async fn connect(url: &str, namespace: &str, save: Save) -> Result<RawRedis> {
    let mut connection = match Topology::from_url(url)? {
        Topology::Standalone(url) => RawConnection::Standalone(
            redis::Client::open(url.as_str())?
                .get_multiplexed_async_connection()
                .await?,
        ),
        Topology::Cluster(urls) => RawConnection::Cluster(
            redis::cluster::ClusterClient::new(urls)?
                .get_async_connection()
                .await?,
        ),
        Topology::Sentinel { .. } => {
            return Err(BenchError::Invalid("sentinel is not benchmarked".into()));
        }
    };
    let script = match save {
        Save::Plain => None,
        Save::Script => {
            let script = redis::Script::new(FLOOR_SCRIPT);
            script.load_async(&mut connection).await?;
            Some(script)
        }
    };
    Ok(RawRedis {
        connection,
        namespace: namespace.to_owned(),
        trips: RoundTrips::default(),
        script,
    })
}

impl RawRedis {
    async fn query<T: FromRedisValue>(&self, cmd: &Cmd) -> Result<T> {
        self.trips.add(1);
        Ok(cmd.query_async(&mut self.connection.clone()).await?)
    }

    async fn pipe<T: FromRedisValue>(&self, pipe: &Pipeline) -> Result<T> {
        self.trips.add(1);
        Ok(pipe.query_async(&mut self.connection.clone()).await?)
    }

    async fn hgetall(&self, key: &str) -> Result<HashMap<Vec<u8>, Vec<u8>>> {
        let all: HashMap<Vec<u8>, Vec<u8>> = self.query(redis::cmd("HGETALL").arg(key)).await?;
        if all.is_empty() {
            return Err(BenchError::Missing(key.to_owned()));
        }
        Ok(all)
    }

    async fn write(&self, key: &str, fields: &[(Vec<u8>, Vec<u8>)]) -> Result<()> {
        let mut pipe = redis::pipe();
        pipe.hset_multiple(key, fields)
            .ignore()
            .pexpire(key, raw::IDLE.as_millis() as i64)
            .ignore();
        self.pipe::<()>(&pipe).await
    }
}

#[async_trait]
impl Subject for RawRedis {
    type Session = String;

    fn support(&self, workload: Workload) -> Support {
        match workload {
            Workload::Apply | Workload::Cycle | Workload::Narrow => Support::Native,
            _ if self.script.is_some() => {
                Support::Unsupported("no save: the same commands as raw-redis")
            }
            _ => Support::Native,
        }
    }

    async fn create(&self, attrs: &Attrs) -> Result<String> {
        let key = raw::new_key(&self.namespace);
        self.write(&key, &raw::create_fields(attrs)).await?;
        Ok(key)
    }

    async fn load(&self, key: &String) -> Result<()> {
        self.hgetall(key).await.map(drop)
    }

    async fn load_some(&self, key: &String, name: &str) -> Result<()> {
        let values: Vec<Option<Vec<u8>>> = self
            .query(redis::cmd("HMGET").arg(key).arg(raw::value_field(name)))
            .await?;
        match values.first() {
            Some(Some(_)) => Ok(()),
            _ => Err(BenchError::Missing(key.clone())),
        }
    }

    async fn apply(&self, key: &mut String, name: &str, value: &[u8]) -> Result<()> {
        let field = raw::value_field(name);
        match &self.script {
            None => {
                self.query::<()>(redis::cmd("HSET").arg(key.as_str()).arg(field).arg(value))
                    .await
            }
            Some(script) => {
                self.trips.add(1);
                let mut save = script.key(key.as_str());
                save.arg(field).arg(value);
                Ok(save.invoke_async(&mut self.connection.clone()).await?)
            }
        }
    }

    async fn cycle(&self, key: &mut String, name: &str, value: &[u8]) -> Result<()> {
        self.load(key).await?;
        self.apply(key, name, value).await
    }

    async fn narrow(&self, key: &mut String, name: &str, value: &[u8]) -> Result<()> {
        self.load_some(key, name).await?;
        self.apply(key, name, value).await
    }

    async fn rotate(&self, key: &mut String) -> Result<()> {
        let fields: Vec<(Vec<u8>, Vec<u8>)> = self.hgetall(key).await?.into_iter().collect();
        let new = raw::new_key(&self.namespace);
        let mut del = redis::cmd("DEL");
        del.arg(key.as_str());
        let (written, deleted) = tokio::join!(self.write(&new, &fields), self.query::<()>(&del));
        written?;
        deleted?;
        *key = new;
        Ok(())
    }

    async fn names(&self, key: &String) -> Result<Vec<String>> {
        let all = self.hgetall(key).await?;
        Ok(raw::attribute_names(all.keys().map(Vec::as_slice)))
    }

    fn key(&self, key: &String) -> String {
        key.clone()
    }

    fn round_trips(&self) -> Option<u64> {
        Some(self.trips.get())
    }
}
