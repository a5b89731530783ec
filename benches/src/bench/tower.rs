//! tower-sessions 0.14's `SessionStore` (tower-sessions-core 0.14) at its store level, doing
//! what `tower_sessions::Session` does around a request, over one of two stores:
//!
//! - `tower-sessions` ([`peer`]): `tower-sessions-redis-store` 0.16 over one fred 10 client,
//!   configured from the same URL as our fred store. A session is one string key (the
//!   record's id, no prefix) holding the whole record as MessagePack, written with
//!   `SET … XX EXAT` (save) or `SET … NX EXAT` (create), read with `GET`, removed with
//!   `DEL`: one command per round trip.
//! - `tower-sessions-compat` and `tower-sessions-compat-fred` ([`compat_redis`],
//!   [`compat_fred`]): session-tower's compatibility store
//!   (`session_tower::tower_sessions_compat::TowerSessionsStore`) over our redis-rs or fred
//!   store, the very store `ours-redis` or `ours-fred` runs (default policy, a counting
//!   transport, so its round trips are measured). It keeps the session in our layout; its
//!   `save` writes the difference from the request's own `load` as one delta.
//!
//! The request logic ([`Tower`]) is written once, over any [`Backend`]: load = `load`;
//! apply = the record changed in memory, saved whole (no load first); cycle = `load`, change
//! one key, `save`; rotate = `delete` of the old id and `create` of the record under a new
//! one (what `cycle_id` plus the following `save` send). Every save stamps the record's
//! `expiry_date` as `Session::save` does with `Expiry::OnInactivity(30 min)`. It has no
//! partial read: no `load_some`, and its narrow cycle is its cycle.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use fred::clients::Client;
use serde_json::Value;
use session_core::redis::{Store, Transport};
use session_fred::FredTransport;
use session_redis::RedisTransport;
use session_testkit::redis_factory::Counting;
use session_tower::tower_sessions_compat::TowerSessionsStore;
use session_tower::tower_sessions_compat::v0_14::token_of;
use time::OffsetDateTime;
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::SessionStore;
use tower_sessions_redis_store::RedisStore;

use super::error::{BenchError, Result};
use super::ours;
use super::plan::Workload;
use super::raw_fred;
use super::subject::{Attrs, Subject, Support};

/// The idle expiry every save asks for (`Expiry::OnInactivity`), as the sessions are created.
const INACTIVITY: time::Duration = time::Duration::minutes(30);

/// A tower-sessions store as the subject drives it, with what the benchmark needs besides
/// the trait: where a record lives, and round trips where they can be counted.
pub trait Backend: Send + Sync + 'static {
    /// The tower-sessions store.
    type Store: SessionStore;
    /// The store the requests go through.
    fn store(&self) -> &Self::Store;
    /// The Redis key that holds session `id`.
    fn key(&self, id: &Id) -> String;
    /// Round trips to Redis so far, where they can be counted.
    fn round_trips(&self) -> Option<u64>;
}

/// tower-sessions-redis-store's `RedisStore` over its own fred client.
pub struct Peer {
    store: RedisStore<Client>,
    client: Client,
}

impl Drop for Peer {
    fn drop(&mut self) {
        // fred's connection tasks outlive the handle: close them.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let client = self.client.clone();
            runtime.spawn(async move {
                let _ = fred::interfaces::ClientLike::quit(&client).await;
            });
        }
    }
}

impl Backend for Peer {
    type Store = RedisStore<Client>;

    fn store(&self) -> &RedisStore<Client> {
        &self.store
    }

    fn key(&self, id: &Id) -> String {
        id.to_string()
    }

    fn round_trips(&self) -> Option<u64> {
        None
    }
}

/// The compatibility store over one of our stores, which the subject keeps too, to name
/// keys and count round trips.
pub struct Compat<T> {
    store: TowerSessionsStore,
    ours: Arc<Store<Counting<T>>>,
}

impl<T: Transport + 'static> Backend for Compat<T> {
    type Store = TowerSessionsStore;

    fn store(&self) -> &TowerSessionsStore {
        &self.store
    }

    fn key(&self, id: &Id) -> String {
        // A tower-sessions id and our token are the same 128 bits.
        self.ours.layout().session_key(&token_of(id).handle())
    }

    fn round_trips(&self) -> Option<u64> {
        Some(self.ours.transport().batches())
    }
}

impl<T: Transport + 'static> Compat<T> {
    fn over(ours: Store<Counting<T>>) -> Self {
        let ours = Arc::new(ours);
        Compat {
            store: TowerSessionsStore::new(ours.clone()),
            ours,
        }
    }
}

/// A tower-sessions subject: the request logic over `B`'s store.
pub struct Tower<B> {
    /// The subject's name, for errors.
    name: &'static str,
    backend: B,
}

impl<B> fmt::Debug for Tower<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tower").field("name", &self.name).finish()
    }
}

/// `tower-sessions`: tower-sessions-redis-store on `url` (`redis://…` or
/// `redis+cluster://…`); `name` names it in errors.
pub async fn peer(url: &str, name: &'static str) -> Result<Tower<Peer>> {
    let client = raw_fred::client(url).await?;
    Ok(Tower {
        name,
        backend: Peer {
            store: RedisStore::new(client.clone()),
            client,
        },
    })
}

/// `tower-sessions-compat`: the compatibility store over our redis-rs store on `url`, keys
/// under `namespace`.
pub async fn compat_redis(
    url: &str,
    namespace: &str,
    name: &'static str,
) -> Result<Tower<Compat<RedisTransport>>> {
    Ok(Tower {
        name,
        backend: Compat::over(ours::redis_store(url, namespace).await?),
    })
}

/// `tower-sessions-compat-fred`: the compatibility store over our fred store on `url`, keys
/// under `namespace`.
pub async fn compat_fred(
    url: &str,
    namespace: &str,
    name: &'static str,
) -> Result<Tower<Compat<FredTransport>>> {
    Ok(Tower {
        name,
        backend: Compat::over(ours::fred_store(url, namespace).await?),
    })
}

fn text(value: &[u8]) -> Value {
    Value::String(String::from_utf8_lossy(value).into_owned())
}

impl<B: Backend> Tower<B> {
    fn err(&self, e: impl fmt::Display) -> BenchError {
        BenchError::peer(self.name, e)
    }

    async fn fetch(&self, id: &Id) -> Result<Record> {
        self.backend
            .store()
            .load(id)
            .await
            .map_err(|e| self.err(e))?
            .ok_or_else(|| BenchError::Missing(id.to_string()))
    }

    /// `Session::save` of an existing session: the expiry stamped, the record saved whole.
    async fn save(&self, record: &mut Record) -> Result<()> {
        record.expiry_date = OffsetDateTime::now_utc() + INACTIVITY;
        self.backend
            .store()
            .save(record)
            .await
            .map_err(|e| self.err(e))
    }

    /// `Session::save` of a new session (or one whose id was cycled): `create`.
    async fn create_record(&self, record: &mut Record) -> Result<()> {
        record.expiry_date = OffsetDateTime::now_utc() + INACTIVITY;
        self.backend
            .store()
            .create(record)
            .await
            .map_err(|e| self.err(e))
    }
}

#[async_trait]
impl<B: Backend> Subject for Tower<B> {
    type Session = Record;

    fn support(&self, workload: Workload) -> Support {
        match workload {
            Workload::LoadSome => Support::Unsupported("no partial read: a record is one value"),
            Workload::Narrow => Support::AsCycle,
            _ => Support::Native,
        }
    }

    async fn create(&self, attrs: &Attrs) -> Result<Record> {
        let mut record = Record {
            id: Id::default(),
            data: attrs.iter().map(|(n, v)| (n.clone(), text(v))).collect(),
            expiry_date: OffsetDateTime::now_utc(),
        };
        self.create_record(&mut record).await?;
        Ok(record)
    }

    async fn load(&self, record: &Record) -> Result<()> {
        self.fetch(&record.id).await.map(drop)
    }

    async fn read_request(&self, record: &mut Record, sliding: bool) -> Result<()> {
        let mut loaded = self.fetch(&record.id).await?;
        if sliding {
            // `SessionManagerLayer::with_always_save(true)`: the only way its docs give to
            // slide an unchanged session's expiry; the whole record is saved.
            self.save(&mut loaded).await?;
        }
        Ok(())
    }

    async fn load_some(&self, _: &Record, _: &str) -> Result<()> {
        Err(self.err("no partial read"))
    }

    async fn apply(&self, record: &mut Record, name: &str, value: &[u8]) -> Result<()> {
        record.data.insert(name.to_owned(), text(value));
        self.save(record).await
    }

    async fn cycle(&self, record: &mut Record, name: &str, value: &[u8]) -> Result<()> {
        let mut loaded = self.fetch(&record.id).await?;
        loaded.data.insert(name.to_owned(), text(value));
        self.save(&mut loaded).await?;
        *record = loaded;
        Ok(())
    }

    async fn rotate(&self, record: &mut Record) -> Result<()> {
        // As `cycle_id` then `save`: the old id is deleted, the record created under a new one.
        let old = std::mem::take(&mut record.id);
        self.backend
            .store()
            .delete(&old)
            .await
            .map_err(|e| self.err(e))?;
        self.create_record(record).await
    }

    async fn names(&self, record: &Record) -> Result<Vec<String>> {
        Ok(self.fetch(&record.id).await?.data.into_keys().collect())
    }

    fn key(&self, record: &Record) -> String {
        self.backend.key(&record.id)
    }

    fn round_trips(&self) -> Option<u64> {
        self.backend.round_trips()
    }
}
