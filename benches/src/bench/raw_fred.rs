//! `raw-fred`: one fred client alone, sending the same minimal commands on our hash layout
//! as `raw-redis` (see there), so each of our adapters has its own floor.

use std::collections::HashMap;

use async_trait::async_trait;
use fred::bytes::Bytes;
use fred::clients::Client;
use fred::interfaces::{ClientLike, HashesInterface, KeysInterface};
use fred::prelude::Builder;
use session_core::redis::Topology;

use super::error::{BenchError, Result};
use super::raw::{self, RoundTrips};
use super::subject::{Attrs, Subject};

/// The raw fred subject.
pub struct RawFred {
    client: Client,
    namespace: String,
    trips: RoundTrips,
}

/// A connected fred client for `url` (`redis://…` or `redis+cluster://…`), configured as our
/// fred store configures it from the same URL, otherwise with fred's defaults.
pub async fn client(url: &str) -> Result<Client> {
    let config = session_fred::fred_config(&Topology::from_url(url)?)?;
    let client = Builder::from_config(config).build()?;
    client.init().await?;
    Ok(client)
}

/// Connects to `url`; keys go under `namespace`.
pub async fn connect(url: &str, namespace: &str) -> Result<RawFred> {
    Ok(RawFred {
        client: client(url).await?,
        namespace: namespace.to_owned(),
        trips: RoundTrips::default(),
    })
}

impl Drop for RawFred {
    fn drop(&mut self) {
        // fred's connection tasks outlive the handle: close them.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let client = self.client.clone();
            runtime.spawn(async move {
                let _ = client.quit().await;
            });
        }
    }
}

impl RawFred {
    async fn hgetall(&self, key: &str) -> Result<HashMap<String, Bytes>> {
        self.trips.add(1);
        let all: HashMap<String, Bytes> = self.client.hgetall(key).await?;
        if all.is_empty() {
            return Err(BenchError::Missing(key.to_owned()));
        }
        Ok(all)
    }

    async fn write(&self, key: &str, fields: Vec<(Bytes, Bytes)>) -> Result<()> {
        self.trips.add(1);
        let pipeline = self.client.pipeline();
        let () = pipeline.hset(key, fields).await?;
        let () = pipeline
            .pexpire(key, raw::IDLE.as_millis() as i64, None)
            .await?;
        let _: Vec<fred::types::Value> = pipeline.all().await?;
        Ok(())
    }
}

#[async_trait]
impl Subject for RawFred {
    type Session = String;

    async fn create(&self, attrs: &Attrs) -> Result<String> {
        let key = raw::new_key(&self.namespace);
        let fields = raw::create_fields(attrs)
            .into_iter()
            .map(|(f, v)| (Bytes::from(f), Bytes::from(v)))
            .collect();
        self.write(&key, fields).await?;
        Ok(key)
    }

    async fn load(&self, key: &String) -> Result<()> {
        self.hgetall(key).await.map(drop)
    }

    async fn load_some(&self, key: &String, name: &str) -> Result<()> {
        self.trips.add(1);
        let values: Vec<Option<Bytes>> = self
            .client
            .hmget(key.as_str(), raw::value_field(name))
            .await?;
        match values.first() {
            Some(Some(_)) => Ok(()),
            _ => Err(BenchError::Missing(key.clone())),
        }
    }

    async fn apply(&self, key: &mut String, name: &str, value: &[u8]) -> Result<()> {
        self.trips.add(1);
        let () = self
            .client
            .hset(
                key.as_str(),
                (raw::value_field(name), Bytes::copy_from_slice(value)),
            )
            .await?;
        Ok(())
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
        let fields: Vec<(Bytes, Bytes)> = self
            .hgetall(key)
            .await?
            .into_iter()
            .map(|(f, v)| (Bytes::from(f), v))
            .collect();
        let new = raw::new_key(&self.namespace);
        self.trips.add(1);
        let (written, deleted) = tokio::join!(
            self.write(&new, fields),
            self.client.del::<(), _>(key.as_str())
        );
        written?;
        deleted?;
        *key = new;
        Ok(())
    }

    async fn names(&self, key: &String) -> Result<Vec<String>> {
        let all = self.hgetall(key).await?;
        Ok(raw::attribute_names(all.keys().map(String::as_bytes)))
    }

    fn key(&self, key: &String) -> String {
        key.clone()
    }

    fn round_trips(&self) -> Option<u64> {
        Some(self.trips.get())
    }
}
