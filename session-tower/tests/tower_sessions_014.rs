//! The compatibility store for tower-sessions 0.14 (feature `tower-sessions-014`, the line
//! tower-sessions-redis-store 0.16 users run), end to end: tower-sessions' own
//! `SessionManagerLayer` in two axum apps on loopback, sharing one real Redis through our
//! store, driven over HTTP.
#![cfg(feature = "tower-sessions-014")]

use session_tower::tower_sessions_compat::v0_14 as tower_sessions_compat_line;

include!("common/tower_sessions_e2e.rs");
