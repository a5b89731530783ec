//! The testkit's checks for stores on Redis: round trips and Redis commands per operation,
//! expiry without the key's TTL, tombstones, script-cache loss, frozen and stopped servers,
//! connection cuts, `WAIT` routing, and master failures in a Cluster and under Sentinel.

mod common;

session_testkit::redis_store_checks!(common::Fred);
