//! Sessions for web applications that run on many servers, without lost updates.
//!
//! Today's session stores load a whole session, change it and write it all back, so when
//! two requests of one user overlap, the later write silently erases the earlier one. Here a
//! request changes a session with a small [`Delta`] that the store applies atomically, with
//! optional guards for read-modify-write; two requests that change different attributes
//! both land, and [`SessionStoreExt::update`] makes arbitrary logic safe.
//!
//! This crate holds what every store shares:
//! - [`SessionToken`] (the secret in the cookie) and [`SessionHandle`] (its digest, the only
//!   name a store sees) with the [`KeyLayout`];
//! - [`SessionRecord`], [`NewSession`], [`Delta`] and [`Policy`];
//! - [`Model`], the contract as a pure state machine, the oracle the testkit compares every
//!   store with;
//! - the [`SessionStore`] trait, [`SessionStoreExt::update`], and [`MemoryStore`].
//!
//! ```
//! use session_core::{Delta, MemoryStore, NewSession, SessionStore};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let store = MemoryStore::new();
//! let token = store.create(NewSession::new().principal("alice")).await?.token;
//!
//! // Two overlapping requests, each changing its own attribute: both land.
//! let theme = Delta::new().put("theme", &"dark")?;
//! let visit = Delta::new().increment("visits", 1);
//! let (a, b) = tokio::join!(store.apply(&token, &theme), store.apply(&token, &visit));
//! a?;
//! b?;
//! let session = store.load(&token).await?.expect("live");
//! assert_eq!(session.get::<String>("theme")?.as_deref(), Some("dark"));
//! assert_eq!(session.get::<i64>("visits")?, Some(1));
//! # Ok::<_, session_core::Error>(()) }).unwrap();
//! ```

mod delta;
mod error;
mod handle;
pub mod import;
mod memory;
pub mod model;
mod policy;
pub mod redis;
mod session;
mod store;
mod time;
mod token;
mod update;

pub use delta::{Applied, Delta, Guard, Op, parse_counter};
pub use error::{BoxError, Error, Limit, Result};
pub use handle::{Namespace, SessionHandle};
pub use memory::MemoryStore;
pub use model::{Entry, Model};
pub use policy::{
    CLOCK_SKEW_BOUND, Limits, MAX_COUNTER, MAX_FORWARDS, MAX_IDLE_TIMEOUT, MAX_NAME_LEN,
    MAX_PRINCIPAL_LEN, Policy, validate_idle_timeout, validate_name, validate_principal,
};
pub use redis::layout::KeyLayout;
pub use session::{Attribute, Deadline, NewSession, SessionRecord, SessionSummary};
pub use store::{Created, SessionStore};
pub use time::{Clock, ManualClock, SystemClock, Timestamp};
pub use token::{SessionToken, TOKEN_LEN, TokenError};
pub use update::{Reader, RetryPolicy, SessionStoreExt};
