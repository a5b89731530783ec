//! Small Redis client helpers shared by the providers and the deployment code: bounded
//! polling, one-shot commands on fresh connections, PING waits and sentinel master lookup.

use std::time::{Duration, Instant};

use redis::{AsyncConnectionConfig, FromRedisValue};

use super::TopologyError;

/// Polls `f` every `interval` until it returns `Ok(Some(_))` or `timeout` passes. `Err(msg)` and
/// `Ok(None)` mean "not yet"; the last message is part of the timeout error.
pub(crate) async fn poll_until<T, F, Fut>(
    what: &str,
    timeout: Duration,
    interval: Duration,
    mut f: F,
) -> Result<T, TopologyError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Option<T>, String>>,
{
    let deadline = Instant::now() + timeout;
    let mut last = String::from("no attempt finished");
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left.max(Duration::from_millis(1)), f()).await {
            Ok(Ok(Some(v))) => return Ok(v),
            Ok(Ok(None)) => {}
            Ok(Err(e)) => last = e,
            Err(_) => last = "attempt did not finish in time".into(),
        }
        if Instant::now() + interval >= deadline {
            return Err(TopologyError::Timeout {
                what: format!("{what} (last: {last})"),
                after: timeout,
            });
        }
        tokio::time::sleep(interval).await;
    }
}

/// Opens a fresh connection (1 s connect timeout, 3 s response timeout) and runs one command.
pub(crate) async fn query<T: FromRedisValue>(
    url: &str,
    cmd: &redis::Cmd,
) -> Result<T, redis::RedisError> {
    let client = redis::Client::open(url)?;
    let cfg = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(1)))
        .set_response_timeout(Some(Duration::from_secs(3)));
    let mut con = client
        .get_multiplexed_async_connection_with_config(&cfg)
        .await?;
    cmd.query_async(&mut con).await
}

pub(super) async fn ping(url: &str) -> Result<(), redis::RedisError> {
    let pong: String = query(url, &redis::cmd("PING")).await?;
    if pong == "PONG" {
        Ok(())
    } else {
        Err(redis::RedisError::from((
            redis::ErrorKind::UnexpectedReturnType,
            "PING reply",
            pong,
        )))
    }
}

pub(crate) async fn wait_ping(url: &str, timeout: Duration) -> Result<(), TopologyError> {
    poll_until(
        &format!("{url} to answer PING"),
        timeout,
        Duration::from_millis(100),
        || async { ping(url).await.map(Some).map_err(|e| e.to_string()) },
    )
    .await
}

/// `host:port` of the master according to one sentinel.
pub(super) async fn sentinel_master_addr(
    sentinel_url: &str,
    name: &str,
) -> Result<String, TopologyError> {
    let addr: Option<(String, u16)> = query(
        sentinel_url,
        redis::cmd("SENTINEL")
            .arg("get-master-addr-by-name")
            .arg(name),
    )
    .await?;
    let (host, port) = addr
        .ok_or_else(|| TopologyError::Config(format!("sentinel does not know master {name:?}")))?;
    Ok(format!("{host}:{port}"))
}
