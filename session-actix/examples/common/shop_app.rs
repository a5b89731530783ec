//! The shop application shared by `examples/shop.rs` and the HTTP tests (included with
//! `#[path]`, so both run exactly the same app): the same routes as session-tower's shop.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use actix_web::web::{self, Json, Path, Query};
use serde::Deserialize;
use session_actix::{Session, SessionConfig, SessionError, SessionMiddleware};
use session_core::{Delta, MemoryStore, RetryPolicy, SessionStore};

/// The session configuration the example uses: defaults, except `Secure` off so it works
/// over plain HTTP on loopback (turn it back on behind TLS), and more patient `update`
/// retries, so even a burst of many tabs adding to one cart at once ends in success rather
/// than `409`.
pub fn config(store: Arc<dyn SessionStore>) -> SessionConfig {
    SessionConfig::new(store).secure(false).retry(RetryPolicy {
        max_attempts: 40,
        ..RetryPolicy::default()
    })
}

/// The middleware over `config`.
pub fn middleware(config: SessionConfig) -> SessionMiddleware {
    SessionMiddleware::from(config)
}

/// The shop's routes.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/ping", web::get().to(|| async { "pong" }))
        .route("/cart", web::get().to(cart))
        .route("/cart/{item}", web::post().to(add_to_cart))
        .route("/counter", web::get().to(counter))
        .route("/counter", web::post().to(count))
        .route("/login/{user}", web::post().to(login))
        .route("/logout", web::post().to(logout))
        .route("/me", web::get().to(me));
}

/// The memory store, or Redis when `SESSION_REDIS_URL` is set.
pub async fn store_from_env() -> Result<Arc<dyn SessionStore>, session_core::Error> {
    match std::env::var("SESSION_REDIS_URL") {
        Ok(url) if !url.is_empty() => {
            let store = session_redis::RedisStoreBuilder::new()
                .url(&url)
                .namespace("shop")
                .build()
                .await?;
            Ok(Arc::new(store))
        }
        _ => Ok(Arc::new(MemoryStore::new())),
    }
}

/// Test hook: how long a request waits after reading the session and before writing it.
#[derive(Debug, Deserialize, Default)]
struct Delay {
    delay_ms: Option<u64>,
}

/// `GET /cart`: the cart (loads only the cart attribute).
async fn cart(session: Session) -> Result<Json<Vec<String>>, SessionError> {
    session.need(&["cart"]).await;
    Ok(Json(session.get("cart").await?.unwrap_or_default()))
}

/// `POST /cart/{item}`: adds an item to the cart (one JSON value) with `update`, so
/// concurrent adds from other tabs or servers are never lost.
async fn add_to_cart(
    session: Session,
    item: Path<String>,
    delay: Query<Delay>,
) -> Result<Json<u64>, SessionError> {
    if let Some(ms) = delay.delay_ms {
        session.principal().await?; // read first, then dawdle: a request in flight
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    let item = item.into_inner();
    let applied = session
        .update(|s| {
            let mut cart: Vec<String> = s.get("cart")?.unwrap_or_default();
            cart.push(item.clone());
            Delta::new().put("cart", &cart)
        })
        .await?;
    Ok(Json(applied.version))
}

/// `GET /counter`: the counter (loads only the counter attribute).
async fn counter(session: Session) -> Result<Json<i64>, SessionError> {
    session.need(&["counter"]).await;
    Ok(Json(session.get("counter").await?.unwrap_or(0)))
}

/// `POST /counter`: counts, without reading (one round trip at response time).
async fn count(session: Session) -> Result<&'static str, SessionError> {
    session.increment("counter", 1).await?;
    Ok("counted")
}

/// `POST /login/{user}`: sets the principal and rotates the token (session fixation).
async fn login(session: Session, user: Path<String>) -> Result<&'static str, SessionError> {
    session.set_principal(&user).await?;
    session.rotate().await;
    Ok("logged in")
}

/// `POST /logout`: deletes the session on every server at once.
async fn logout(session: Session) -> Result<&'static str, SessionError> {
    session.delete().await?;
    Ok("logged out")
}

/// `GET /me`: the principal, or `null`.
async fn me(session: Session) -> Result<Json<Option<String>>, SessionError> {
    Ok(Json(session.principal().await?))
}
