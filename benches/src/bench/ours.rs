//! Our stores (`ours-redis`, `ours-fred`) as subjects.
//!
//! They are the real `session_core::redis::Store` the adapters build, with one change: the
//! transport is wrapped in the testkit's [`Counting`], which counts batches, because a batch is exactly
//! one round trip (the `Transport` contract), so the report can show round trips per cycle
//! as measured rather than as documented. Saves are what an application sends: a delta with
//! the one changed attribute.

use async_trait::async_trait;
use session_core::redis::{Settings, Store, Transport};
use session_core::{Delta, NewSession, SessionStore, SessionToken};
use session_fred::{FredStoreBuilder, FredTransport};
use session_redis::{RedisStoreBuilder, RedisTransport};
use session_testkit::redis_factory::Counting;

use super::error::{BenchError, Result};
use super::subject::{Attrs, Subject};

/// One of our stores, over a counting transport.
#[derive(Debug)]
pub struct Ours<T> {
    store: Store<Counting<T>>,
}

fn settings(url: &str, namespace: &str) -> Settings {
    let mut settings = Settings::default();
    settings.url(url);
    settings.namespace(namespace);
    settings
}

/// Our redis-rs store on `url`, keys under `namespace`, default policy, over a counting
/// transport: the store of `ours-redis`, and the one `tower-sessions-compat` wraps.
pub async fn redis_store(url: &str, namespace: &str) -> Result<Store<Counting<RedisTransport>>> {
    let settings = settings(url, namespace);
    let transport = RedisStoreBuilder::from_settings(settings.clone())
        .build_transport()
        .await?;
    Ok(settings.into_store(Counting::new(transport))?)
}

/// Our fred store on `url` (one client, as the builder's default), keys under `namespace`,
/// over a counting transport: the store of `ours-fred`, and the one
/// `tower-sessions-compat-fred` wraps.
pub async fn fred_store(url: &str, namespace: &str) -> Result<Store<Counting<FredTransport>>> {
    let settings = settings(url, namespace);
    let transport = FredStoreBuilder::from_settings(settings.clone())
        .build_transport()
        .await?;
    Ok(settings.into_store(Counting::new(transport))?)
}

/// Our redis-rs store on `url`, keys under `namespace`, default policy.
pub async fn redis(url: &str, namespace: &str) -> Result<Ours<RedisTransport>> {
    Ok(Ours {
        store: redis_store(url, namespace).await?,
    })
}

/// Our fred store on `url` (one client, as the builder's default), keys under `namespace`.
pub async fn fred(url: &str, namespace: &str) -> Result<Ours<FredTransport>> {
    Ok(Ours {
        store: fred_store(url, namespace).await?,
    })
}

fn missing() -> BenchError {
    BenchError::Missing("ours".into())
}

#[async_trait]
impl<T: Transport + 'static> Subject for Ours<T> {
    type Session = SessionToken;

    async fn create(&self, attrs: &Attrs) -> Result<SessionToken> {
        let new = attrs.iter().fold(NewSession::new(), |new, (name, value)| {
            new.put_bytes(name.as_str(), value.as_slice())
        });
        Ok(self.store.create(new).await?.token)
    }

    async fn load(&self, token: &SessionToken) -> Result<()> {
        self.store.load(token).await?.ok_or_else(missing)?;
        Ok(())
    }

    async fn load_some(&self, token: &SessionToken, name: &str) -> Result<()> {
        self.store
            .load_some(token, &[name])
            .await?
            .ok_or_else(missing)?;
        Ok(())
    }

    async fn apply(&self, token: &mut SessionToken, name: &str, value: &[u8]) -> Result<()> {
        let delta = Delta::new().put_bytes(name, value);
        self.store.apply(token, &delta).await?;
        Ok(())
    }

    async fn cycle(&self, token: &mut SessionToken, name: &str, value: &[u8]) -> Result<()> {
        self.load(token).await?;
        self.apply(token, name, value).await
    }

    async fn narrow(&self, token: &mut SessionToken, name: &str, value: &[u8]) -> Result<()> {
        self.load_some(token, name).await?;
        self.apply(token, name, value).await
    }

    async fn rotate(&self, token: &mut SessionToken) -> Result<()> {
        *token = self.store.rotate(token).await?;
        Ok(())
    }

    async fn names(&self, token: &SessionToken) -> Result<Vec<String>> {
        let session = self
            .store
            .load_read_only(token)
            .await?
            .ok_or_else(missing)?;
        Ok(session.attributes.into_keys().collect())
    }

    fn key(&self, token: &SessionToken) -> String {
        self.store.layout().session_key(&token.handle())
    }

    fn round_trips(&self) -> Option<u64> {
        Some(self.store.transport().batches())
    }
}
