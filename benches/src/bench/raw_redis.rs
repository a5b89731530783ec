//! `raw-redis`: the redis-rs client alone (one `MultiplexedConnection`, or a
//! `ClusterConnection`), sending the minimal commands on our layout, each session in the form
//! our store would give it (see [`raw`]).
//!
//! - A packed session (small, one string): create = `SET PX`; load = `GET`; load_some = `GET`
//!   (the client finds the attribute in the string); apply = `SET KEEPTTL` of the whole
//!   string, rebuilt on the client with the changed attribute; cycle and narrow = `GET` then
//!   `SET KEEPTTL` (of what the `GET` read, changed); rotate = `GET`, then `SET PX` of the new
//!   key and `DEL` of the old one, sent concurrently (in a cluster they are on different
//!   nodes).
//! - A hashed session (large, a hash): create = `HSET` + `PEXPIRE` pipelined; load =
//!   `HGETALL`; load_some = `HMGET`; apply = `HSET`; cycle = `HGETALL` then `HSET`; narrow =
//!   `HMGET` then `HSET`; rotate = `HGETALL`, then `HSET` + `PEXPIRE` of the new key and
//!   `DEL` of the old one, sent concurrently.
//!
//! With [`Save::Script`] it is the `script-floor` subject: the same, except that a save is
//! `EVALSHA` of a one-line script that runs the same command: [`PACKED_FLOOR_SCRIPT`] (the
//! `SET KEEPTTL`) for a packed session, [`FLOOR_SCRIPT`] (the `HSET`) for a hashed one. Over
//! a multiplexed connection, a save that checks a condition atomically (the session is live,
//! a guard holds, the size limit holds) in one round trip must be a script on Redis 7
//! (`WATCH` needs a connection per request and a second round trip), and no script does less
//! than these, so its figures bound from below what any such store pays, ours included.
//!
//! With [`Save::Checked`] it is the `check-floor` subject: the script first makes the one
//! check no conditional save can skip, that the session is still live (and not a tombstone or
//! expired), with the least read that tells ([`PACKED_CHECK_SCRIPT`]: `GETRANGE` of the
//! record's state byte; [`CHECK_SCRIPT`]: `HEXISTS` of the record, as a hashed session's key
//! exists only while it is live), then writes as the script floor does. A store that keeps
//! guards, versions and tombstones does at least this; what ours pays above it is the price
//! of the rest of the contract (finding the entry, versions, the size limit).

use std::collections::HashMap;

use async_trait::async_trait;
use bytes::Bytes;
use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, FromRedisValue, Pipeline, RedisFuture, Value};
use session_core::KeyLayout;
use session_core::redis::Topology;

use super::error::{BenchError, Result};
use super::plan::Workload;
use super::raw::{self, RawSession, RoundTrips};
use super::subject::{Attrs, Subject, Support};

/// The script-floor's save of a hashed session: one `HSET`, no check, a constant reply.
pub const FLOOR_SCRIPT: &str = "redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) return 0";

/// The script-floor's save of a packed session: one `SET` of the whole string that keeps
/// the expiry, no check, a constant reply.
pub const PACKED_FLOOR_SCRIPT: &str = "redis.call('SET', KEYS[1], ARGV[1], 'KEEPTTL') return 0";

/// The check-floor's save of a hashed session: the record exists (the session is live,
/// else an error reply), then the script floor's `HSET`.
pub const CHECK_SCRIPT: &str = "if redis.call('HEXISTS', KEYS[1], '') == 0 then \
     return redis.error_reply('not live') end redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) \
     return 0";

/// The check-floor's save of a packed session: the record's state byte says live (`L`,
/// else an error reply), then the script floor's `SET`.
pub const PACKED_CHECK_SCRIPT: &str = "if redis.call('GETRANGE', KEYS[1], 1, 1) ~= 'L' then \
     return redis.error_reply('not live') end redis.call('SET', KEYS[1], ARGV[1], 'KEEPTTL') \
     return 0";

/// How the subject saves an attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Save {
    /// A plain `SET KEEPTTL` (packed) or `HSET` (hashed) (`raw-redis`).
    Plain,
    /// `EVALSHA` of [`PACKED_FLOOR_SCRIPT`] or [`FLOOR_SCRIPT`] (`script-floor`).
    Script,
    /// `EVALSHA` of [`PACKED_CHECK_SCRIPT`] or [`CHECK_SCRIPT`] (`check-floor`).
    Checked,
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

/// The floor scripts, one per form.
struct FloorScripts {
    /// [`PACKED_FLOOR_SCRIPT`] or [`PACKED_CHECK_SCRIPT`].
    packed: redis::Script,
    /// [`FLOOR_SCRIPT`] or [`CHECK_SCRIPT`].
    hashed: redis::Script,
}

/// The raw redis-rs subject.
pub struct RawRedis {
    connection: RawConnection,
    keys: KeyLayout,
    trips: RoundTrips,
    /// The floor scripts, when saves go through them.
    scripts: Option<FloorScripts>,
}

/// Connects to `url` (`redis://…` or `redis+cluster://…`); keys go under `namespace`. With
/// [`Save::Script`] both floor scripts are loaded first (on every node of a cluster), so a
/// script that Redis refuses fails here; a node that lost one later gets it again on
/// `NOSCRIPT`.
pub async fn connect(url: &str, namespace: &str, save: Save) -> Result<RawRedis> {
    let keys = raw::key_layout(namespace)?;
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
    let sources = match save {
        Save::Plain => None,
        Save::Script => Some((PACKED_FLOOR_SCRIPT, FLOOR_SCRIPT)),
        Save::Checked => Some((PACKED_CHECK_SCRIPT, CHECK_SCRIPT)),
    };
    let scripts = match sources {
        None => None,
        Some((packed, hashed)) => {
            let scripts = FloorScripts {
                packed: redis::Script::new(packed),
                hashed: redis::Script::new(hashed),
            };
            scripts.packed.load_async(&mut connection).await?;
            scripts.hashed.load_async(&mut connection).await?;
            Some(scripts)
        }
    };
    Ok(RawRedis {
        connection,
        keys,
        trips: RoundTrips::default(),
        scripts,
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

    /// A packed session's string.
    async fn get(&self, key: &str) -> Result<Bytes> {
        let packed: Option<Vec<u8>> = self.query(redis::cmd("GET").arg(key)).await?;
        packed
            .map(Bytes::from)
            .ok_or_else(|| BenchError::Missing(key.to_owned()))
    }

    async fn hgetall(&self, key: &str) -> Result<HashMap<Vec<u8>, Vec<u8>>> {
        let all: HashMap<Vec<u8>, Vec<u8>> = self.query(redis::cmd("HGETALL").arg(key)).await?;
        if all.is_empty() {
            return Err(BenchError::Missing(key.to_owned()));
        }
        Ok(all)
    }

    /// Writes a new packed session (`SET PX`).
    async fn write_packed(&self, key: &str, packed: &[u8]) -> Result<()> {
        let mut set = redis::cmd("SET");
        set.arg(key)
            .arg(packed)
            .arg("PX")
            .arg(raw::IDLE.as_millis() as u64);
        self.query::<()>(&set).await
    }

    /// Writes a new hashed session (`HSET` + `PEXPIRE`, pipelined).
    async fn write(&self, key: &str, fields: &[(Vec<u8>, Vec<u8>)]) -> Result<()> {
        let mut pipe = redis::pipe();
        pipe.hset_multiple(key, fields)
            .ignore()
            .pexpire(key, raw::IDLE.as_millis() as i64)
            .ignore();
        self.pipe::<()>(&pipe).await
    }

    /// Saves a packed session whose string is now `packed`, and keeps it.
    async fn save_packed(&self, session: &mut RawSession, packed: Bytes) -> Result<()> {
        match &self.scripts {
            None => {
                let mut set = redis::cmd("SET");
                set.arg(session.key.as_str())
                    .arg(&packed[..])
                    .arg("KEEPTTL");
                self.query::<()>(&set).await?;
            }
            Some(scripts) => {
                self.trips.add(1);
                let mut save = scripts.packed.key(session.key.as_str());
                save.arg(&packed[..]);
                save.invoke_async::<()>(&mut self.connection.clone())
                    .await?;
            }
        }
        session.packed = Some(packed);
        Ok(())
    }

    /// Saves attribute `name` of a hashed session.
    async fn save_hashed(&self, key: &str, name: &str, value: &[u8]) -> Result<()> {
        let field = raw::value_field(name);
        match &self.scripts {
            None => {
                self.query::<()>(redis::cmd("HSET").arg(key).arg(field).arg(value))
                    .await
            }
            Some(scripts) => {
                self.trips.add(1);
                let mut save = scripts.hashed.key(key);
                save.arg(field).arg(value);
                Ok(save.invoke_async(&mut self.connection.clone()).await?)
            }
        }
    }

    /// A packed session's cycle: `GET`, change `name` in what it read, save.
    async fn rewrite(&self, session: &mut RawSession, name: &str, value: &[u8]) -> Result<()> {
        let loaded = self.get(&session.key).await?;
        let packed = raw::replace(&loaded, name, value)?;
        self.save_packed(session, packed).await
    }
}

#[async_trait]
impl Subject for RawRedis {
    type Session = RawSession;

    fn support(&self, workload: Workload) -> Support {
        match workload {
            Workload::Apply | Workload::Cycle | Workload::Narrow => Support::Native,
            _ if self.scripts.is_some() => {
                Support::Unsupported("no save: the same commands as raw-redis")
            }
            _ => Support::Native,
        }
    }

    async fn create(&self, attrs: &Attrs) -> Result<RawSession> {
        let session = RawSession::new(&self.keys, raw::packed(attrs));
        match &session.packed {
            Some(packed) => self.write_packed(&session.key, packed).await?,
            None => self.write(&session.key, &raw::create_fields(attrs)).await?,
        }
        Ok(session)
    }

    async fn load(&self, session: &RawSession) -> Result<()> {
        match session.packed {
            Some(_) => self.get(&session.key).await.map(drop),
            None => self.hgetall(&session.key).await.map(drop),
        }
    }

    async fn load_some(&self, session: &RawSession, name: &str) -> Result<()> {
        let found = match session.packed {
            Some(_) => raw::packed_has(&self.get(&session.key).await?, name)?,
            None => {
                let values: Vec<Option<Vec<u8>>> = self
                    .query(
                        redis::cmd("HMGET")
                            .arg(session.key.as_str())
                            .arg(raw::value_field(name)),
                    )
                    .await?;
                matches!(values.first(), Some(Some(_)))
            }
        };
        if found {
            Ok(())
        } else {
            Err(BenchError::Missing(session.key.clone()))
        }
    }

    async fn apply(&self, session: &mut RawSession, name: &str, value: &[u8]) -> Result<()> {
        match &session.packed {
            Some(packed) => {
                let packed = raw::replace(packed, name, value)?;
                self.save_packed(session, packed).await
            }
            None => self.save_hashed(&session.key, name, value).await,
        }
    }

    async fn cycle(&self, session: &mut RawSession, name: &str, value: &[u8]) -> Result<()> {
        match session.packed {
            Some(_) => self.rewrite(session, name, value).await,
            None => {
                self.hgetall(&session.key).await?;
                self.save_hashed(&session.key, name, value).await
            }
        }
    }

    async fn narrow(&self, session: &mut RawSession, name: &str, value: &[u8]) -> Result<()> {
        match session.packed {
            // A string has no narrow read: the narrow cycle is the cycle.
            Some(_) => self.rewrite(session, name, value).await,
            None => {
                self.load_some(session, name).await?;
                self.save_hashed(&session.key, name, value).await
            }
        }
    }

    async fn rotate(&self, session: &mut RawSession) -> Result<()> {
        let key = raw::new_key(&self.keys);
        let mut del = redis::cmd("DEL");
        del.arg(session.key.as_str());
        let packed = match session.packed {
            Some(_) => {
                let packed = self.get(&session.key).await?;
                let (written, deleted) =
                    tokio::join!(self.write_packed(&key, &packed), self.query::<()>(&del));
                written?;
                deleted?;
                Some(packed)
            }
            None => {
                let fields: Vec<(Vec<u8>, Vec<u8>)> =
                    self.hgetall(&session.key).await?.into_iter().collect();
                let (written, deleted) =
                    tokio::join!(self.write(&key, &fields), self.query::<()>(&del));
                written?;
                deleted?;
                None
            }
        };
        *session = RawSession { key, packed };
        Ok(())
    }

    async fn names(&self, session: &RawSession) -> Result<Vec<String>> {
        match session.packed {
            Some(_) => raw::packed_names(&self.get(&session.key).await?),
            None => {
                let all = self.hgetall(&session.key).await?;
                Ok(raw::attribute_names(all.keys().map(Vec::as_slice)))
            }
        }
    }

    fn key(&self, session: &RawSession) -> String {
        session.key.clone()
    }

    fn round_trips(&self) -> Option<u64> {
        Some(self.trips.get())
    }
}
