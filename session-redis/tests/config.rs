//! Configuration errors are typed, before any connection.

use session_core::Error;
use session_redis::RedisStoreBuilder;

#[tokio::test]
async fn configuration_errors_are_typed() {
    let bad_url = RedisStoreBuilder::new().url("http://nope").build().await;
    assert!(
        matches!(bad_url, Err(Error::InvalidInput(_))),
        "{bad_url:?}"
    );
    let bad_ns = RedisStoreBuilder::new()
        .url("redis://127.0.0.1:1")
        .namespace("a{b}")
        .build()
        .await;
    assert!(matches!(bad_ns, Err(Error::InvalidInput(_))), "{bad_ns:?}");
    let none = RedisStoreBuilder::new().build().await;
    assert!(matches!(none, Err(Error::InvalidInput(_))), "{none:?}");
}
