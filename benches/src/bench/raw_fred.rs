//! `raw-fred`: one fred client alone, sending the same minimal commands on our layout as
//! `raw-redis` (see there: `GET`/`SET` for a packed session, the hash commands for a hashed
//! one), so each of our adapters has its own floor.

use std::collections::HashMap;

use async_trait::async_trait;
use bytes::Bytes;
use fred::clients::Client;
use fred::interfaces::{ClientLike, HashesInterface, KeysInterface};
use fred::prelude::Builder;
use fred::types::Expiration;
use session_core::KeyLayout;
use session_core::redis::Topology;

use super::error::{BenchError, Result};
use super::raw::{self, RawSession, RoundTrips};
use super::subject::{Attrs, Subject};

/// The raw fred subject.
pub struct RawFred {
    client: Client,
    keys: KeyLayout,
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
    let keys = raw::key_layout(namespace)?;
    Ok(RawFred {
        client: client(url).await?,
        keys,
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
    /// A packed session's string.
    async fn get(&self, key: &str) -> Result<Bytes> {
        self.trips.add(1);
        let packed: Option<Bytes> = self.client.get(key).await?;
        packed.ok_or_else(|| BenchError::Missing(key.to_owned()))
    }

    async fn hgetall(&self, key: &str) -> Result<HashMap<String, Bytes>> {
        self.trips.add(1);
        let all: HashMap<String, Bytes> = self.client.hgetall(key).await?;
        if all.is_empty() {
            return Err(BenchError::Missing(key.to_owned()));
        }
        Ok(all)
    }

    /// Writes a new packed session (`SET PX`).
    async fn write_packed(&self, key: &str, packed: Bytes) -> Result<()> {
        self.trips.add(1);
        let expire = Expiration::PX(raw::IDLE.as_millis() as i64);
        let () = self
            .client
            .set(key, packed, Some(expire), None, false)
            .await?;
        Ok(())
    }

    /// Writes a new hashed session (`HSET` + `PEXPIRE`, pipelined).
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

    /// Saves a packed session whose string is now `packed` (`SET KEEPTTL`), and keeps it.
    async fn save_packed(&self, session: &mut RawSession, packed: Bytes) -> Result<()> {
        self.trips.add(1);
        let () = self
            .client
            .set(
                session.key.as_str(),
                packed.clone(),
                Some(Expiration::KEEPTTL),
                None,
                false,
            )
            .await?;
        session.packed = Some(packed);
        Ok(())
    }

    /// Saves attribute `name` of a hashed session (`HSET`).
    async fn save_hashed(&self, key: &str, name: &str, value: &[u8]) -> Result<()> {
        self.trips.add(1);
        let () = self
            .client
            .hset(key, (raw::value_field(name), Bytes::copy_from_slice(value)))
            .await?;
        Ok(())
    }

    /// A packed session's cycle: `GET`, change `name` in what it read, save.
    async fn rewrite(&self, session: &mut RawSession, name: &str, value: &[u8]) -> Result<()> {
        let loaded = self.get(&session.key).await?;
        let packed = raw::replace(&loaded, name, value)?;
        self.save_packed(session, packed).await
    }
}

#[async_trait]
impl Subject for RawFred {
    type Session = RawSession;

    async fn create(&self, attrs: &Attrs) -> Result<RawSession> {
        let session = RawSession::new(&self.keys, raw::packed(attrs));
        match &session.packed {
            Some(packed) => self.write_packed(&session.key, packed.clone()).await?,
            None => {
                let fields = raw::create_fields(attrs)
                    .into_iter()
                    .map(|(f, v)| (Bytes::from(f), Bytes::from(v)))
                    .collect();
                self.write(&session.key, fields).await?;
            }
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
                self.trips.add(1);
                let values: Vec<Option<Bytes>> = self
                    .client
                    .hmget(session.key.as_str(), raw::value_field(name))
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
        let packed = match session.packed {
            Some(_) => {
                let packed = self.get(&session.key).await?;
                self.trips.add(1);
                let (written, deleted) = tokio::join!(
                    self.write_packed(&key, packed.clone()),
                    self.client.del::<(), _>(session.key.as_str())
                );
                written?;
                deleted?;
                Some(packed)
            }
            None => {
                let fields: Vec<(Bytes, Bytes)> = self
                    .hgetall(&session.key)
                    .await?
                    .into_iter()
                    .map(|(f, v)| (Bytes::from(f), v))
                    .collect();
                self.trips.add(1);
                let (written, deleted) = tokio::join!(
                    self.write(&key, fields),
                    self.client.del::<(), _>(session.key.as_str())
                );
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
                Ok(raw::attribute_names(all.keys().map(String::as_bytes)))
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
