//! How the testkit connects the redis-rs store.

use session_core::Result;
use session_core::redis::Settings;
use session_redis::{RedisStoreBuilder, RedisTransport};
use session_testkit::redis_factory::Connect;

/// The redis-rs adapter, for the testkit.
pub struct RedisRs;

#[async_trait::async_trait]
impl Connect for RedisRs {
    type Transport = RedisTransport;
    async fn transport(&self, settings: &Settings) -> Result<RedisTransport> {
        RedisStoreBuilder::from_settings(settings.clone())
            .build_transport()
            .await
    }
}
