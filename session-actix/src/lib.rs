//! Sessions without lost updates for actix-web.
//!
//! [`SessionMiddleware`] gives every request a [`Session`] over any
//! [`SessionStore`](session_core::SessionStore) (memory, Redis, Redis Cluster); handlers take
//! it as an extractor. It is the same per-request handle as `session-tower`'s
//! ([`session_http::RequestSession`], which [`Session`] dereferences to), with the same
//! defaults and the same error-to-status policy:
//!
//! - it loads lazily, on first access, in one round trip;
//! - writes are collected into one delta applied when the response is produced, never the
//!   whole record, so overlapping requests of one user that change different attributes both
//!   land, and [`update`](session_http::RequestSession::update) is read-modify-write that
//!   loses nothing (a cart);
//! - [`rotate`](session_http::RequestSession::rotate) at login,
//!   [`delete`](session_http::RequestSession::delete) at logout: a request still in flight
//!   cannot bring a deleted session back.
//!
//! ```
//! use actix_web::{App, web};
//! use session_core::{Delta, MemoryStore};
//! use session_actix::{Session, SessionError, SessionMiddleware};
//!
//! async fn add(session: Session) -> Result<&'static str, SessionError> {
//!     session
//!         .update(|s| {
//!             let mut cart: Vec<String> = s.get("cart")?.unwrap_or_default();
//!             cart.push("apple".into());
//!             Delta::new().put("cart", &cart)
//!         })
//!         .await?;
//!     Ok("added")
//! }
//!
//! let store = std::sync::Arc::new(MemoryStore::new()); // or a RedisStore / FredStore
//! let app = App::new()
//!     .wrap(SessionMiddleware::new(store))
//!     .route("/add", web::post().to(add));
//! ```
//!
//! # Configuration
//! [`SessionConfig`] holds every setting, in the terms actix-session users know: cookie
//! name, path, domain, `Secure`, `HttpOnly`, `SameSite`, browser-session or persistent, and
//! a signed ([`SessionConfig::signed`]) or private ([`SessionConfig::private`]) cookie with
//! the `cookie` crate's [`Key`]. `SessionMiddleware::from(config)` takes it whole.
//!
//! # Where the defaults differ from actix-session's
//! | | session-actix | actix-session 0.11 |
//! |---|---|---|
//! | cookie name | `session` | `id` |
//! | cookie content | the token, plain (`.signed(key)` or `.private(key)` to protect it) | private (encrypted), with a key you must pass |
//! | expiry | 30 min idle, sliding (one touch per interval) | 1 day, refreshed only when the state changes |
//! | overlapping requests | each request's changes land (deltas) | the last whole-state write wins |
//! | a handler's 5xx | saves nothing (`save_on_server_error(true)` to change) | saves |
//! | a failed save | the response becomes an error with the policy's status (`SaveFailure::Fail`) | the response becomes a 500 |
//! | a stored value of the wrong type | `500` through [`SessionError`], logged | an error the handler maps |
//!
//! A [`Key`] of actix-web's (`actix_web::cookie::Key`, cookie 0.16) converts by its master
//! bytes: `Key::from(old.master())`.
//!
//! # Coming from actix-session
//! Switching signs nobody out: [`actix_session_compat`] imports each session from
//! actix-session's Redis store when its client first comes back with the old cookie, once
//! however many of its requests overlap, and hands the client our cookie.

pub mod actix_session_compat;
mod error;
mod extract;
mod middleware;

pub use error::SessionError;
pub use extract::Session;
pub use middleware::{SessionMiddleware, SessionService};
pub use session_core;
pub use session_http::{
    CookieLifetime, Key, LegacyToken, RequestSession, SameSite, SaveFailure, SessionConfig,
};
