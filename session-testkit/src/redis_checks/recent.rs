//! A write that follows a read of a small packed session goes through the `replace` script
//! (the client's merge, set only if the session is unchanged); when another write came in
//! between, the delta is merged in Redis instead, and nothing is lost.

use session_core::redis::{APPLY_ATTRS, REPLACE, Reply, Transport};
use session_core::{Delta, NewSession, Policy, SessionStore};

use super::{fast, raw};
use crate::redis_factory::Connect;
use crate::topology::{self, RedisDeployment};

/// The scripts (by name) the server ran since the slow log was reset, oldest first.
async fn scripts_run<T: Transport>(t: &T) -> Vec<&'static str> {
    let Reply::Array(entries) = raw(t, "", "SLOWLOG", &["GET", "100"]).await else {
        panic!("SLOWLOG GET")
    };
    let mut names = Vec::new();
    for entry in entries.into_iter().rev() {
        let Reply::Array(fields) = entry else {
            continue;
        };
        let Some(Reply::Array(args)) = fields.into_iter().nth(3) else {
            continue;
        };
        let sha = match args.get(1) {
            Some(Reply::Bytes(sha)) => String::from_utf8_lossy(sha).into_owned(),
            _ => continue,
        };
        for script in [&REPLACE, &APPLY_ATTRS] {
            if sha == script.sha1() {
                names.push(script.name);
            }
        }
    }
    names
}

async fn slowlog_everything<T: Transport>(t: &T) {
    raw(t, "", "CONFIG", &["SET", "slowlog-log-slower-than", "0"]).await;
    raw(t, "", "CONFIG", &["SET", "slowlog-max-len", "1000"]).await;
}

/// After a load, a one-put delta into a small packed session runs `replace` and lands as
/// `apply_attrs` would have written it (version, attribute versions). A session changed by
/// another store between the read and the write makes `replace` write nothing: the delta
/// then goes to `apply_attrs` and both changes are kept. Guarded deltas and large sessions
/// never take `replace`. (Every script call is read back from the server's slow log.)
pub async fn a_write_after_a_read_skips_the_merge<C: Connect>(c: &C) {
    let dep = RedisDeployment::start(topology::Shape::Standalone)
        .await
        .expect("redis");
    // Two stores (two application servers) on one namespace.
    let settings = fast(&dep, Policy::default());
    let store = c.store(settings.clone()).await.expect("store");
    let other = c.store(settings).await.expect("store");
    let t = store.transport();
    slowlog_everything(t).await;
    let token = store
        .create(NewSession::new().put("a", &1).expect("json"))
        .await
        .expect("create")
        .token;

    store.load(&token).await.expect("load");
    raw(t, "", "SLOWLOG", &["RESET"]).await;
    let applied = store
        .apply(&token, &Delta::new().put("a", &2).expect("json"))
        .await
        .expect("apply");
    assert_eq!(scripts_run(t).await, vec!["replace"], "after a load");
    let read = other.load(&token).await.expect("load").expect("live");
    assert_eq!(
        (
            applied.version,
            read.version,
            read.get::<i64>("a").expect("a"),
            read.attribute_version("a")
        ),
        (2, 2, Some(2), Some(2))
    );

    // Another store writes between this store's read and its write.
    store.load(&token).await.expect("load");
    other
        .apply(&token, &Delta::new().put("b", &1).expect("json"))
        .await
        .expect("apply");
    raw(t, "", "SLOWLOG", &["RESET"]).await;
    let applied = store
        .apply(&token, &Delta::new().put("c", &1).expect("json"))
        .await
        .expect("apply");
    assert_eq!(
        scripts_run(t).await,
        vec!["replace", "apply_attrs"],
        "a stale read"
    );
    let read = store.load(&token).await.expect("load").expect("live");
    assert_eq!(applied.version, 4);
    assert_eq!(
        ["a", "b", "c"].map(|n| read.get::<i64>(n).expect("json")),
        [Some(2), Some(1), Some(1)],
        "both writes kept"
    );

    // A guarded delta is merged in Redis, whatever was read.
    raw(t, "", "SLOWLOG", &["RESET"]).await;
    store
        .apply(
            &token,
            &Delta::new()
                .if_session_version(4)
                .put("a", &3)
                .expect("json"),
        )
        .await
        .expect("apply");
    assert_eq!(scripts_run(t).await, vec!["apply_attrs"], "a guard");

    // A session over REPLACE_MAX bytes is edited in place by apply_attrs.
    let large = store
        .create(NewSession::new().put_bytes("big", vec![b'x'; 600]))
        .await
        .expect("create")
        .token;
    store.load(&large).await.expect("load");
    raw(t, "", "SLOWLOG", &["RESET"]).await;
    store
        .apply(&large, &Delta::new().put("a", &1).expect("json"))
        .await
        .expect("apply");
    assert_eq!(scripts_run(t).await, vec!["apply_attrs"], "a large session");
}
