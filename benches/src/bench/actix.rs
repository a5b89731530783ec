//! `actix-session`: actix-session 0.11's `RedisSessionStore` (its own redis-rs 0.32, one
//! `ConnectionManager`) at its store level (`actix_session::storage::SessionStore`), doing
//! what its middleware does around a request.
//!
//! A session is one string key (the 64-character session key, here behind a prefix set
//! with the store's own `cache_keygen`, so a run can clean up after itself) holding the
//! whole state as JSON (each value JSON-encoded, as `Session::insert` does), written with
//! `SET … XX EX` (update) or `SET … NX EX` (save), read with `GET`, removed with `DEL`: one
//! command per round trip. So: load = `load`; apply = the state changed in memory, `update`d
//! whole; cycle = `load`, change one entry, `update`; rotate = `delete` then `save` under a
//! new key (what the middleware does for `Session::renew`). It has no partial read.
//!
//! It cannot use a Redis Cluster: the store is built from one connection string into one
//! `redis::Client`/`ConnectionManager` (its `redis-pool` option, deadpool-redis, is
//! single-node too), so commands for keys in other nodes' slots fail with `MOVED`.
//! [`connect`] checks that on the cluster and reports the error it got.

use std::collections::HashMap;
use std::error::Error as StdError;
use std::fmt;

use actix_session::storage::{RedisSessionStore, SessionKey, SessionStore};
use async_trait::async_trait;
use session_core::redis::Topology;
use session_testkit::history::error_chain;

use super::error::{BenchError, Result};
use super::plan::Workload;
use super::subject::{Attrs, Subject, Support};

const NAME: &str = "actix-session";

/// The session's time to live (30 minutes, as our default idle timeout).
fn ttl() -> time::Duration {
    time::Duration::minutes(30)
}

/// The actix-session subject.
pub struct Actix {
    store: RedisSessionStore,
    prefix: String,
}

/// A task's session: its key (the cookie value) and its state as the application holds it.
#[derive(Clone)]
pub struct ActixSession {
    key: String,
    state: HashMap<String, String>,
}

fn peer(e: &(dyn StdError + 'static)) -> BenchError {
    // actix-session's errors hide the Redis reply in their source.
    BenchError::peer(NAME, error_chain(e))
}

fn session_key(key: &str) -> Result<SessionKey> {
    SessionKey::try_from(key.to_owned()).map_err(|e| peer(&e))
}

fn json(value: &[u8]) -> String {
    serde_json::Value::String(String::from_utf8_lossy(value).into_owned()).to_string()
}

async fn build(url: &str, prefix: &str) -> Result<RedisSessionStore> {
    let owned = prefix.to_owned();
    RedisSessionStore::builder(url)
        .cache_keygen(move |key| format!("{owned}{key}"))
        .build()
        .await
        .map_err(|e| BenchError::peer(NAME, format!("{e:#}")))
}

/// Connects to `url`, keys under `prefix`. On a cluster URL it connects to the first seed
/// node, as an application would, and returns the error a few saves run into.
pub async fn connect(url: &str, prefix: &str) -> Result<Actix> {
    match Topology::from_url(url)? {
        Topology::Standalone(url) => Ok(Actix {
            store: build(&url, prefix).await?,
            prefix: prefix.to_owned(),
        }),
        Topology::Cluster(urls) => {
            let seed = urls.first().cloned().unwrap_or_default();
            let store = build(&seed, prefix).await?;
            let mut observed = None;
            for _ in 0..32 {
                if let Err(e) = store.save(HashMap::new(), &ttl()).await {
                    observed = Some(error_chain(&e));
                    break;
                }
            }
            Err(BenchError::peer(
                NAME,
                format!(
                    "no Redis Cluster support: RedisSessionStore sends every command over one \
                     redis-rs ConnectionManager to the one node of its connection string \
                     (actix-session 0.11 has no cluster client; its redis-pool option is \
                     single-node too), so keys in other nodes' slots fail; connected to {seed}, \
                     a save got: {}",
                    observed
                        .as_deref()
                        .unwrap_or("no error in 32 saves (unexpected)")
                ),
            ))
        }
        Topology::Sentinel { .. } => Err(BenchError::Invalid("sentinel is not benchmarked".into())),
    }
}

impl fmt::Debug for Actix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Actix")
            .field("prefix", &self.prefix)
            .finish()
    }
}

impl Actix {
    async fn fetch(&self, key: &str) -> Result<HashMap<String, String>> {
        self.store
            .load(&session_key(key)?)
            .await
            .map_err(|e| peer(&e))?
            .ok_or_else(|| BenchError::Missing(key.to_owned()))
    }

    async fn update(
        &self,
        session: &mut ActixSession,
        state: HashMap<String, String>,
    ) -> Result<()> {
        let key = self
            .store
            .update(session_key(&session.key)?, state, &ttl())
            .await
            .map_err(|e| peer(&e))?;
        session.key = key.into();
        Ok(())
    }
}

#[async_trait]
impl Subject for Actix {
    type Session = ActixSession;

    fn support(&self, workload: Workload) -> Support {
        match workload {
            Workload::LoadSome => Support::Unsupported("no partial read: a state is one value"),
            Workload::Narrow => Support::AsCycle,
            _ => Support::Native,
        }
    }

    async fn create(&self, attrs: &Attrs) -> Result<ActixSession> {
        let state: HashMap<String, String> =
            attrs.iter().map(|(n, v)| (n.clone(), json(v))).collect();
        let key = self
            .store
            .save(state.clone(), &ttl())
            .await
            .map_err(|e| peer(&e))?;
        Ok(ActixSession {
            key: key.into(),
            state,
        })
    }

    async fn load(&self, session: &ActixSession) -> Result<()> {
        self.fetch(&session.key).await.map(drop)
    }

    async fn read_request(&self, session: &mut ActixSession, sliding: bool) -> Result<()> {
        self.fetch(&session.key).await?;
        if sliding {
            // `TtlExtensionPolicy::OnEveryRequest`: the middleware sends `update_ttl`
            // (an `EXPIRE`) for every request that did not change the state.
            self.store
                .update_ttl(&session_key(&session.key)?, &ttl())
                .await
                .map_err(|e| BenchError::peer(NAME, format!("{e:#}")))?;
        }
        Ok(())
    }

    async fn load_some(&self, _: &ActixSession, _: &str) -> Result<()> {
        Err(BenchError::peer(NAME, "no partial read"))
    }

    async fn apply(&self, session: &mut ActixSession, name: &str, value: &[u8]) -> Result<()> {
        session.state.insert(name.to_owned(), json(value));
        // `update` takes the state by value; the application keeps its copy.
        let state = session.state.clone();
        self.update(session, state).await
    }

    async fn cycle(&self, session: &mut ActixSession, name: &str, value: &[u8]) -> Result<()> {
        let mut state = self.fetch(&session.key).await?;
        state.insert(name.to_owned(), json(value));
        self.update(session, state).await
    }

    async fn rotate(&self, session: &mut ActixSession) -> Result<()> {
        self.store
            .delete(&session_key(&session.key)?)
            .await
            .map_err(|e| BenchError::peer(NAME, format!("{e:#}")))?;
        let key = self
            .store
            .save(session.state.clone(), &ttl())
            .await
            .map_err(|e| peer(&e))?;
        session.key = key.into();
        Ok(())
    }

    async fn names(&self, session: &ActixSession) -> Result<Vec<String>> {
        Ok(self.fetch(&session.key).await?.into_keys().collect())
    }

    fn key(&self, session: &ActixSession) -> String {
        format!("{}{}", self.prefix, session.key)
    }

    fn round_trips(&self) -> Option<u64> {
        None
    }
}
