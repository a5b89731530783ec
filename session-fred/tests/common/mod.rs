//! How the testkit connects the fred store.

use session_core::Result;
use session_core::redis::Settings;
use session_fred::{FredStoreBuilder, FredTransport};
use session_testkit::redis_factory::Connect;

/// The fred adapter, for the testkit.
pub struct Fred;

#[async_trait::async_trait]
impl Connect for Fred {
    type Transport = FredTransport;
    async fn transport(&self, settings: &Settings) -> Result<FredTransport> {
        FredStoreBuilder::from_settings(settings.clone())
            .build_transport()
            .await
    }
}
