//! The web app on actix-web, twice: over actix-session 0.11 (`RedisSessionStore`) and over
//! session-actix (`session_redis::RedisStore`). Same routes, same work:
//!
//! - `POST /login`: writes the user's attributes (creates the session, sets its cookie);
//! - `GET /read`: reads one attribute ([`CHANGED`]), answers its length (404 without it);
//! - `POST /write`: reads that attribute and writes it back changed.

use std::sync::Arc;

use actix_session::config::{PersistentSession, TtlExtensionPolicy};
use actix_session::storage::RedisSessionStore;
use actix_web::web::{self, Data};
use actix_web::{App, HttpResponse, HttpServer};
use session_actix::{Key, Session, SessionConfig, SessionError, SessionMiddleware};
use session_core::SessionStore;
use session_redis::RedisStoreBuilder;

use super::server::{self, Server};
use super::{CHANGED, Mix, changed};

/// actix-session's sliding idle expiry as its docs configure it: a persistent session of
/// 30 minutes whose TTL is extended on every request (an `EXPIRE` for a request that changed
/// nothing; the cookie's `Max-Age` is re-sent too).
fn lifecycle() -> PersistentSession {
    PersistentSession::default()
        .session_ttl(actix_web::cookie::time::Duration::minutes(30))
        .session_ttl_extension_policy(TtlExtensionPolicy::OnEveryRequest)
}

/// actix-web on actix-session 0.11's `RedisSessionStore` at `url` (one redis-rs 0.32
/// `ConnectionManager`), private cookie (its default; it takes a key), `Secure` off for
/// plain HTTP.
pub async fn peer(url: String, mix: Arc<Mix>) -> super::Result<Server> {
    server::actix(move |listener| async move {
        let store = RedisSessionStore::new(url)
            .await
            .map_err(|e| format!("actix-session: {e:#}"))?;
        let key = actix_web::cookie::Key::generate();
        let mix = Data::from(mix);
        let server = HttpServer::new(move || {
            let sessions = actix_session::SessionMiddleware::builder(store.clone(), key.clone())
                .cookie_secure(false)
                .session_lifecycle(lifecycle())
                .build();
            App::new()
                .app_data(mix.clone())
                .wrap(sessions)
                .route("/login", web::post().to(peer_login))
                .route("/read", web::get().to(peer_read))
                .route("/write", web::post().to(peer_write))
        });
        Ok(server
            .workers(1)
            .tcp_nodelay(true)
            .disable_signals()
            .listen(listener)?
            .run())
    })
    .await
}

async fn peer_login(
    session: actix_session::Session,
    mix: Data<Mix>,
) -> actix_web::Result<HttpResponse> {
    for name in &mix.names {
        session.insert(name, &mix.value)?;
    }
    Ok(HttpResponse::Ok().body("logged in"))
}

async fn peer_read(session: actix_session::Session) -> actix_web::Result<HttpResponse> {
    Ok(match session.get::<String>(CHANGED)? {
        Some(value) => HttpResponse::Ok().body(value.len().to_string()),
        None => HttpResponse::NotFound().finish(),
    })
}

async fn peer_write(session: actix_session::Session) -> actix_web::Result<HttpResponse> {
    let Some(value) = session.get::<String>(CHANGED)? else {
        return Ok(HttpResponse::NotFound().finish());
    };
    session.insert(CHANGED, changed(&value))?;
    Ok(HttpResponse::Ok().body("changed"))
}

/// actix-web on session-actix over our `RedisStore` at `url` (one multiplexed redis-rs
/// connection), keys under `namespace`: the defaults (30 minutes idle, sliding by a touch
/// once per minute per session; a plain browser-session cookie), `Secure` off for plain
/// HTTP, and with `private` an encrypted cookie like actix-session's.
pub async fn ours(
    url: String,
    namespace: &'static str,
    mix: Arc<Mix>,
    private: bool,
) -> super::Result<Server> {
    server::actix(move |listener| async move {
        let store: Arc<dyn SessionStore> = Arc::new(
            RedisStoreBuilder::new()
                .url(&url)
                .namespace(namespace)
                .build()
                .await?,
        );
        let key = Key::generate();
        let mix = Data::from(mix);
        let server = HttpServer::new(move || {
            let mut config = SessionConfig::new(store.clone()).secure(false);
            if private {
                config = config.private(key.clone());
            }
            App::new()
                .app_data(mix.clone())
                .wrap(SessionMiddleware::from(config))
                .route("/login", web::post().to(ours_login))
                .route("/read", web::get().to(ours_read))
                .route("/write", web::post().to(ours_write))
        });
        Ok(server
            .workers(1)
            .tcp_nodelay(true)
            .disable_signals()
            .listen(listener)?
            .run())
    })
    .await
}

async fn ours_login(session: Session, mix: Data<Mix>) -> Result<HttpResponse, SessionError> {
    for name in &mix.names {
        session.insert(name, &mix.value).await?;
    }
    Ok(HttpResponse::Ok().body("logged in"))
}

async fn ours_read(session: Session) -> Result<HttpResponse, SessionError> {
    session.need(&[CHANGED]).await;
    Ok(match session.get::<String>(CHANGED).await? {
        Some(value) => HttpResponse::Ok().body(value.len().to_string()),
        None => HttpResponse::NotFound().finish(),
    })
}

async fn ours_write(session: Session) -> Result<HttpResponse, SessionError> {
    session.need(&[CHANGED]).await;
    let Some(value) = session.get::<String>(CHANGED).await? else {
        return Ok(HttpResponse::NotFound().finish());
    };
    session.insert(CHANGED, &changed(&value)).await?;
    Ok(HttpResponse::Ok().body("changed"))
}
