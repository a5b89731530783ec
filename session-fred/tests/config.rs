//! Configuration: typed errors before any connection, and the fred configurations the shared
//! topologies turn into (credentials included).

use std::time::Duration;

use fred::prelude::ServerConfig;
use session_core::Error;
use session_fred::{FredStoreBuilder, Topology, fred, fred_config};

#[tokio::test]
async fn configuration_errors_are_typed() {
    let bad_url = FredStoreBuilder::new().url("http://nope").build().await;
    assert!(
        matches!(bad_url, Err(Error::InvalidInput(_))),
        "{bad_url:?}"
    );
    let bad_ns = FredStoreBuilder::new()
        .url("redis://127.0.0.1:1")
        .namespace("a{b}")
        .build()
        .await;
    assert!(matches!(bad_ns, Err(Error::InvalidInput(_))), "{bad_ns:?}");
    let none = FredStoreBuilder::new().build().await;
    assert!(matches!(none, Err(Error::InvalidInput(_))), "{none:?}");
    let zero_pool = FredStoreBuilder::new()
        .url("redis://127.0.0.1:1")
        .pool_size(0)
        .build()
        .await;
    assert!(
        matches!(zero_pool, Err(Error::InvalidInput(_))),
        "{zero_pool:?}"
    );
    let refused = FredStoreBuilder::new()
        .url("redis://127.0.0.1:1")
        .connect_timeout(Duration::from_millis(300))
        .build()
        .await;
    assert!(matches!(refused, Err(Error::Backend(_))), "{refused:?}");
}

#[test]
fn topologies_become_fred_configurations() {
    let hosts = |c: &fred::prelude::Config| {
        let mut hosts: Vec<String> = c
            .server
            .hosts()
            .iter()
            .map(|s| format!("{}:{}", s.host, s.port))
            .collect();
        hosts.sort();
        hosts.dedup();
        hosts
    };
    let cluster =
        fred_config(&Topology::from_url("redis+cluster://app:secret@a:1,b:2,c:3").unwrap())
            .unwrap();
    assert!(matches!(cluster.server, ServerConfig::Clustered { .. }));
    assert_eq!(hosts(&cluster), ["a:1", "b:2", "c:3"]);
    assert_eq!(
        (cluster.username.as_deref(), cluster.password.as_deref()),
        (Some("app"), Some("secret"))
    );
    let sentinel = fred_config(
        &Topology::from_url("redis+sentinel://:pw@s1:26379,s2:26380/mymaster").unwrap(),
    )
    .unwrap();
    match &sentinel.server {
        ServerConfig::Sentinel { service_name, .. } => assert_eq!(service_name, "mymaster"),
        other => panic!("{other:?}"),
    }
    assert_eq!(hosts(&sentinel), ["s1:26379", "s2:26380"]);
    assert_eq!(sentinel.password.as_deref(), Some("pw"));
    let standalone = fred_config(&Topology::from_url("redis://u:p@h:7000/2").unwrap()).unwrap();
    assert_eq!(hosts(&standalone), ["h:7000"]);
    assert_eq!(standalone.database, Some(2));
    assert_eq!(standalone.username.as_deref(), Some("u"));
}
