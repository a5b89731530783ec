//! A [`StoreFactory`] for any store built on [`session_core::redis::Store`]: adapters only
//! say how to connect to a deployment.

use std::borrow::Cow;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use async_trait::async_trait;
use session_core::redis::{Command, Reply, SendError, Settings, Store, Transport, layout};
use session_core::{Error, Policy, Result, SessionHandle, SessionToken};

use crate::conformance::{Capabilities, Foreign, StoreFactory};
use crate::topology::{self, RedisDeployment, Shape};

/// How an adapter connects: its transport for the shared [`Settings`] (where Redis is,
/// timeouts, durability), which the testkit fills in. An adapter's builder usually does it
/// in one line.
#[async_trait]
pub trait Connect: Send + Sync + 'static {
    /// The adapter's transport.
    type Transport: Transport + 'static;

    /// A transport as `settings` describe.
    async fn transport(&self, settings: &Settings) -> Result<Self::Transport>;

    /// A store as `settings` describe.
    async fn store(&self, settings: Settings) -> Result<Store<Self::Transport>> {
        let transport = self.transport(&settings).await?;
        settings.into_store(transport)
    }
}

/// Settings for a store on `deployment` under a fresh random namespace with `policy`.
pub fn settings_for(deployment: &RedisDeployment, policy: Policy) -> Settings {
    let mut settings = Settings::default();
    settings.policy = policy;
    settings.url(&deployment.store_url());
    settings.namespace(&random_namespace());
    settings
}

/// Expands to the conformance suite (one test per case, plus the property checks) on
/// shared standalone, Cluster and Sentinel deployments, in modules `standalone`, `cluster`
/// and `sentinel`, for the adapter the [`Connect`] expression connects.
#[macro_export]
macro_rules! redis_conformance_suites {
    ($connect:expr) => {
        $crate::__redis_suite!(standalone, Standalone, $connect);
        $crate::__redis_suite!(cluster, Cluster, $connect);
        $crate::__redis_suite!(sentinel, Sentinel, $connect);
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __redis_suite {
    ($module:ident, $topology:ident, $connect:expr) => {
        mod $module {
            #[allow(unused_imports)]
            use super::*;
            $crate::conformance_suite!($crate::redis_factory::RedisFactory {
                servers: $crate::redis_factory::Servers::Shared($crate::topology::Shape::$topology),
                connect: $connect,
            });
        }
    };
}

/// Where a [`RedisFactory`] gets its deployment.
#[derive(Debug, Clone)]
pub enum Servers {
    /// [`topology::shared`]: started once per process.
    Shared(Shape),
    /// A given deployment (a private one, or an external URL).
    Given(Arc<RedisDeployment>),
}

/// Makes stores through `connect`, each in a fresh random namespace, with the foreign-data
/// capability (planted with real `SET`/`HSET` commands through the store's own transport).
#[derive(Debug, Clone)]
pub struct RedisFactory<C> {
    /// Where the deployment comes from.
    pub servers: Servers,
    /// The adapter.
    pub connect: C,
}

/// Whether a suite (per topology) already gave its start failure's reason.
static SAID: [AtomicBool; 3] = [
    AtomicBool::new(false),
    AtomicBool::new(false),
    AtomicBool::new(false),
];

/// What a test reports when the deployment of `topology` did not start: the reason the first
/// time `said` is asked, a pointer to it after.
pub(crate) fn once_per_suite(
    said: &AtomicBool,
    topology: Shape,
    error: topology::TopologyError,
) -> crate::conformance::NotReady {
    crate::conformance::NotReady(if said.swap(true, Ordering::SeqCst) {
        format!(
            "cannot start Redis ({topology}): the reason is given once, by another test of \
             this suite"
        )
    } else {
        error.to_string()
    })
}

/// A namespace no other test uses.
pub fn random_namespace() -> String {
    format!("t{}", &SessionToken::generate().handle().to_hex()[..16])
}

fn planted(kind: Foreign) -> Vec<Vec<u8>> {
    match kind {
        Foreign::WrongType => vec![b"a foreign string".to_vec()],
        // A hash in the session's place whose metadata record is truncated: this layout
        // version's first two bytes, then garbage.
        Foreign::GarbledField => {
            let mut record = vec![layout::LAYOUT_VERSION, layout::LIVE];
            record.extend_from_slice(b"not a number");
            vec![
                layout::META_FIELD.to_vec(),
                record,
                b"n".to_vec(),
                b"1".to_vec(),
            ]
        }
    }
}

fn sorted_pairs(items: Vec<Vec<u8>>) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut pairs: Vec<_> = items
        .chunks(2)
        .map(|c| (c[0].clone(), c.get(1).cloned().unwrap_or_default()))
        .collect();
    pairs.sort();
    pairs
}

#[async_trait]
impl<C: Connect> StoreFactory for RedisFactory<C> {
    type Store = Store<C::Transport>;

    async fn make(&self, policy: Policy) -> Result<Self::Store> {
        let deployment = match &self.servers {
            Servers::Shared(t) => topology::shared(*t).await.map_err(Error::backend)?,
            Servers::Given(d) => d.clone(),
        };
        self.connect.store(settings_for(&deployment, policy)).await
    }

    /// A shared deployment must have started (a failed start is kept, so this is quick for
    /// every test after the first); a given one already runs. Without Redis, the reason is
    /// given once per suite (topology), and the suite's other tests point to it, so a test
    /// run shows a few readable lines rather than the same paragraph per case.
    async fn ready(&self) -> Result<()> {
        match &self.servers {
            Servers::Shared(t) => match topology::shared(*t).await {
                Ok(_) => Ok(()),
                Err(e) => Err(Error::backend(once_per_suite(&SAID[*t as usize], *t, e))),
            },
            Servers::Given(_) => Ok(()),
        }
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            foreign_data: true,
            ..Capabilities::default()
        }
    }

    async fn plant_foreign(
        &self,
        store: &Self::Store,
        handle: &SessionHandle,
        kind: Foreign,
    ) -> Result<()> {
        let key = store.layout().session_key(handle);
        let mut args = vec![Cow::Borrowed(key.as_bytes())];
        args.extend(planted(kind).into_iter().map(Cow::Owned));
        let name = if kind == Foreign::WrongType {
            "SET"
        } else {
            "HSET"
        };
        store
            .transport()
            .batch(&key, &[Command::Plain(name, args)], true)
            .await?;
        Ok(())
    }

    async fn foreign_intact(
        &self,
        store: &Self::Store,
        handle: &SessionHandle,
        kind: Foreign,
    ) -> Result<bool> {
        let key = store.layout().session_key(handle);
        let name = if kind == Foreign::WrongType {
            "GET"
        } else {
            "HGETALL"
        };
        let read = Command::Plain(name, vec![Cow::Borrowed(key.as_bytes())]);
        Ok(
            match (
                kind,
                store.transport().batch(&key, &[read], false).await?.pop(),
            ) {
                (Foreign::WrongType, Some(Reply::Bytes(b))) => vec![b.to_vec()] == planted(kind),
                (Foreign::GarbledField, Some(Reply::Array(items))) => {
                    let got = items.into_iter().filter_map(|r| {
                        if let Reply::Bytes(b) = r {
                            Some(b.to_vec())
                        } else {
                            None
                        }
                    });
                    sorted_pairs(got.collect()) == sorted_pairs(planted(kind))
                }
                _ => false,
            },
        )
    }
}

/// A transport that counts its batches. A batch is exactly one round trip (the [`Transport`]
/// contract), so checks and benchmarks can measure round trips instead of assuming them.
#[derive(Debug)]
pub struct Counting<T> {
    inner: T,
    batches: AtomicU64,
}

impl<T> Counting<T> {
    /// Wraps `inner`, with the count at zero.
    pub fn new(inner: T) -> Self {
        Counting {
            inner,
            batches: AtomicU64::new(0),
        }
    }

    /// The wrapped transport (its batches are not counted).
    pub fn inner(&self) -> &T {
        &self.inner
    }

    /// Batches, i.e. round trips, since creation or the last [`Counting::reset`].
    pub fn batches(&self) -> u64 {
        self.batches.load(Ordering::SeqCst)
    }

    /// Sets the count back to zero.
    pub fn reset(&self) {
        self.batches.store(0, Ordering::SeqCst);
    }
}

// It counts `send`, the one round trip, so a batch sent again (a refusal, `NOSCRIPT`)
// counts each time. It hands back the inner transport's future, so counting adds nothing
// to a batch and the benchmarks measure the store, not the wrapper.
impl<T: Transport> Transport for Counting<T> {
    fn send(
        &self,
        key: &str,
        commands: &[Command<'_>],
        eval: bool,
    ) -> impl Future<Output = std::result::Result<Vec<Reply>, SendError>> + Send {
        self.batches.fetch_add(1, Ordering::SeqCst);
        self.inner.send(key, commands, eval)
    }

    fn retry_budget(&self) -> std::time::Duration {
        self.inner.retry_budget()
    }

    fn sharded(&self) -> bool {
        self.inner.sharded()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_suite_gives_its_start_failure_once_and_points_to_it_after() {
        let said = AtomicBool::new(false);
        let failure = || topology::TopologyError::Config("no Redis here".into());
        let first = once_per_suite(&said, Shape::Cluster, failure());
        assert_eq!(first.to_string(), "configuration: no Redis here");
        for _ in 0..2 {
            let later = once_per_suite(&said, Shape::Cluster, failure());
            assert_eq!(
                format!("{later:?}"),
                "cannot start Redis (cluster): the reason is given once, by another test of \
                 this suite"
            );
        }
    }
}
