//! Sessions without lost updates for tower and axum.
//!
//! [`SessionLayer`] wraps a service and gives every request a [`Session`] over any
//! `Arc<dyn` [`SessionStore`](session_core::SessionStore)`>` (memory, Redis, Redis Cluster).
//! Handlers take it as an axum extractor. It costs at most one round trip to read and one to
//! write per request:
//!
//! - it loads lazily, on first access (a touching `load`, or `load_some` of the attributes a
//!   route declared with [`Session::need`](crate::RequestSession::need) / [`SessionLayer::need`]);
//! - writes are collected into one [`Delta`](session_core::Delta), applied once when the
//!   response is produced; the whole record is never written back, so overlapping requests
//!   of one user that change different attributes both land, and increments add up;
//! - a request that writes without reading does not load; one that only reads never writes;
//! - [`Session::update`](crate::RequestSession::update) is read-modify-write (a cart in one JSON value) that loses nothing
//!   under concurrency, [`Session::rotate`](crate::RequestSession::rotate) (login) moves the session to a fresh token and
//!   [`Session::delete`](crate::RequestSession::delete) (logout) ends it everywhere at once; a request still in flight
//!   cannot bring it back.
//!
//! # Cookies
//! Configurable through [`SessionLayer`] (see [`CookieConfig`] for the defaults: `session`,
//! `Path=/`, `Secure`, `HttpOnly`, `SameSite=Lax`, browser-session; optionally persistent
//! with `Max-Age` = idle timeout, optionally signed). A missing, malformed, wrongly signed or
//! unknown cookie starts a fresh session (the stale cookie is removed), never an error page.
//! A new session is stored, and its cookie sent, only when the request wrote something.
//!
//! # When saving fails, and when the handler fails
//! [`SaveFailure::Fail`] (the default) answers an error instead of the handler's response,
//! so a client is never told "done" for a change that was lost;
//! [`SaveFailure::LogAndContinue`] logs and sends the handler's response. The status comes
//! from the one policy a handler's `?` also uses ([`SessionError`]: `409`, `400`, `503` or
//! `500`). A handler that answers with a server error (5xx) saves none of its deferred
//! changes, unless [`SessionLayer::save_on_server_error`] says otherwise.
//!
//! # Testing handlers
//! [`Session::detached`](crate::RequestSession::detached) gives the handle a handler receives, over any store and without a
//! server; [`Session::save`](crate::RequestSession::save) ends it as a response would.
//!
//! # Migrating from tower-sessions
//! With the feature `tower-sessions-014` (tower-sessions 0.14, the line of
//! tower-sessions-redis-store 0.16) or `tower-sessions-015` (0.15; also `tower-sessions`),
//! `tower_sessions_compat::TowerSessionsStore` implements tower-sessions' `SessionStore`
//! over our stores, so an application can move its storage
//! first and its handlers later (with the limits of whole-record writes documented there).
//! Signed-in users stay signed in across the switch: `tower_sessions_compat::v0_14::RedisRecords`
//! with [`Importing`](session_core::import::Importing) reads tower-sessions-redis-store's
//! sessions through, and [`SessionLayer::legacy_cookie`] takes over tower-sessions' cookie.
//! The repository's `docs/migrating-from-tower-sessions.md` walks through an application
//! before and after, the cutover and the rollback.
//!
//! ```
//! use std::sync::Arc;
//! use axum::{Router, routing::{get, post}};
//! use session_core::{Delta, MemoryStore};
//! use session_tower::{Session, SessionError, SessionLayer};
//!
//! async fn add(session: Session) -> Result<String, SessionError> {
//!     let applied = session
//!         .update(|s| {
//!             let mut cart: Vec<String> = s.get("cart")?.unwrap_or_default();
//!             cart.push("apple".into());
//!             Delta::new().put("cart", &cart)
//!         })
//!         .await?;
//!     Ok(format!("cart saved at version {}", applied.version))
//! }
//!
//! async fn show(session: Session) -> Result<String, SessionError> {
//!     session.need(&["cart"]).await; // load only the cart
//!     let cart: Vec<String> = session.get("cart").await?.unwrap_or_default();
//!     Ok(cart.join(","))
//! }
//!
//! let app: Router = Router::new()
//!     .route("/cart", get(show).post(add))
//!     .layer(SessionLayer::new(Arc::new(MemoryStore::new())));
//! ```

mod error;
mod extract;
mod service;
#[cfg(any(feature = "tower-sessions-015", feature = "tower-sessions-014"))]
pub mod tower_sessions_compat;

pub use error::SessionError;
pub use extract::{MissingSessionLayer, Session};
pub use service::{SessionLayer, SessionService};
pub use session_core;
pub use session_http::{
    CookieConfig, CookieLifetime, Key, RequestSession, SameSite, SaveFailure, SessionConfig,
};

/// The README's examples (memory store, Redis, axum), compiled as doc tests so they cannot
/// rot (this crate's dev-dependencies include everything they use).
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;

/// The migration guide's examples, compiled as doc tests with the feature they need.
#[cfg(all(doctest, feature = "tower-sessions-014"))]
#[doc = include_str!("../../docs/migrating-from-tower-sessions.md")]
pub struct MigrationGuideDoctests;
