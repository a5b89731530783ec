//! The compatibility store for tower-sessions 0.15 (feature `tower-sessions-015`), end to
//! end: the same tests as for 0.14, through tower-sessions 0.15's own `SessionManagerLayer`.
#![cfg(feature = "tower-sessions-015")]

extern crate tower_sessions_v015 as tower_sessions;

use session_tower::tower_sessions_compat::v0_15 as tower_sessions_compat_line;

include!("common/tower_sessions_e2e.rs");
