//! The per-request session handle that every framework integration shares.
//!
//! A framework crate (`session-tower` for tower and axum, `session-actix` for actix-web)
//! does three things per request, and all the logic in between lives here, written once:
//!
//! 1. [`RequestSession::start`] from the request's `Cookie` header values and a shared
//!    [`SessionConfig`], and put the handle where handlers can extract it;
//! 2. run the handler, which reads lazily and records its changes as one delta;
//! 3. [`RequestSession::finish`] with whether the response is a server error, and write the
//!    [`Finished`] into the response: its `Set-Cookie` values, and under
//!    [`SaveFailure::Fail`] an error response with [`status_of`] and [`unsaved_message`]
//!    when the changes were not saved.
//!
//! The error-to-status policy ([`status_of`]) is plain `u16`s and the cookies are header
//! strings, so no `http` crate version is imposed on the framework.
//!
//! ```
//! use std::sync::Arc;
//! use session_core::MemoryStore;
//! use session_http::{RequestSession, SessionConfig};
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let config = Arc::new(SessionConfig::new(MemoryStore::new()).secure(false));
//! // A request without a cookie writes something: a session is created...
//! let session = RequestSession::start(&config, []);
//! session.insert("theme", "dark").await?;
//! let finished = session.finish(false).await;
//! assert!(finished.error.is_none());
//! let cookie = finished.set_cookies[0].split(';').next().unwrap().to_owned(); // "session=…"
//!
//! // ...and the next request with its cookie reads it.
//! let next = RequestSession::start(&config, [cookie.as_str()]);
//! assert_eq!(next.get::<String>("theme").await?.as_deref(), Some("dark"));
//! # Ok::<_, session_core::Error>(()) }).unwrap();
//! ```

mod config;
mod legacy;
mod session;
mod status;

pub use config::{CookieConfig, CookieLifetime, SaveFailure, SessionConfig};
pub use cookie::{Key, SameSite};
pub use legacy::LegacyToken;
pub use session::{Finished, RequestSession};
pub use session_core;
pub use status::{error_message, report, status_of, unsaved_message};
