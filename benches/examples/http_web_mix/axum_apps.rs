//! The web app on axum, twice: over tower-sessions 0.14 with tower-sessions-redis-store 0.16
//! and over session-tower (`session_redis::RedisStore`). Same routes and work as the actix
//! apps (`POST /login`, `GET /read`, `POST /write`).

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use session_benches::bench::raw_fred;
use session_core::SessionStore;
use session_redis::RedisStoreBuilder;
use session_tower::{Session, SessionError, SessionLayer};
use tower_sessions::{Expiry, SessionManagerLayer};
use tower_sessions_redis_store::RedisStore;

use super::server::{self, Server};
use super::{CHANGED, Mix, changed};

type Reply = Result<(StatusCode, String), StatusCode>;

/// axum on tower-sessions 0.14 over tower-sessions-redis-store 0.16's `RedisStore` at `url`
/// (one fred 10 client), sliding as its docs configure it: `Expiry::OnInactivity(30 min)`
/// and `with_always_save(true)` (every request saves the whole record, which moves its
/// expiry); `Secure` off for plain HTTP.
pub async fn peer(url: String, mix: Arc<Mix>) -> super::Result<Server> {
    server::axum(move || async move {
        let client = raw_fred::client(&url).await?;
        let layer = SessionManagerLayer::new(RedisStore::new(client))
            .with_secure(false)
            .with_expiry(Expiry::OnInactivity(time::Duration::minutes(30)))
            .with_always_save(true);
        Ok(Router::new()
            .route("/login", post(peer_login))
            .route("/read", get(peer_read))
            .route("/write", post(peer_write))
            .layer(layer)
            .with_state(mix))
    })
    .await
}

fn failed(_: tower_sessions::session::Error) -> StatusCode {
    StatusCode::INTERNAL_SERVER_ERROR
}

async fn peer_login(session: tower_sessions::Session, State(mix): State<Arc<Mix>>) -> Reply {
    for name in &mix.names {
        session.insert(name, &mix.value).await.map_err(failed)?;
    }
    Ok((StatusCode::OK, "logged in".into()))
}

async fn peer_read(session: tower_sessions::Session) -> Reply {
    match session.get::<String>(CHANGED).await.map_err(failed)? {
        Some(value) => Ok((StatusCode::OK, value.len().to_string())),
        None => Err(StatusCode::NOT_FOUND),
    }
}

async fn peer_write(session: tower_sessions::Session) -> Reply {
    let value = session.get::<String>(CHANGED).await.map_err(failed)?;
    let value = value.ok_or(StatusCode::NOT_FOUND)?;
    session
        .insert(CHANGED, changed(&value))
        .await
        .map_err(failed)?;
    Ok((StatusCode::OK, "changed".into()))
}

/// axum on session-tower over our `RedisStore` at `url` (one multiplexed redis-rs
/// connection), keys under `namespace`: the defaults (30 minutes idle, sliding by a touch
/// once per minute per session), `Secure` off for plain HTTP.
pub async fn ours(url: String, namespace: &'static str, mix: Arc<Mix>) -> super::Result<Server> {
    server::axum(move || async move {
        let store: Arc<dyn SessionStore> = Arc::new(
            RedisStoreBuilder::new()
                .url(&url)
                .namespace(namespace)
                .build()
                .await?,
        );
        Ok(Router::new()
            .route("/login", post(ours_login))
            .route("/read", get(ours_read))
            .route("/write", post(ours_write))
            .layer(SessionLayer::new(store).secure(false))
            .with_state(mix))
    })
    .await
}

async fn ours_login(
    session: Session,
    State(mix): State<Arc<Mix>>,
) -> Result<&'static str, SessionError> {
    for name in &mix.names {
        session.insert(name, &mix.value).await?;
    }
    Ok("logged in")
}

async fn ours_read(session: Session) -> Result<(StatusCode, String), SessionError> {
    session.need(&[CHANGED]).await;
    Ok(match session.get::<String>(CHANGED).await? {
        Some(value) => (StatusCode::OK, value.len().to_string()),
        None => (StatusCode::NOT_FOUND, String::new()),
    })
}

async fn ours_write(session: Session) -> Result<(StatusCode, String), SessionError> {
    session.need(&[CHANGED]).await;
    let Some(value) = session.get::<String>(CHANGED).await? else {
        return Ok((StatusCode::NOT_FOUND, String::new()));
    };
    session.insert(CHANGED, &changed(&value)).await?;
    Ok((StatusCode::OK, "changed".into()))
}
