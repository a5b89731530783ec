//! Damaged sessions are judged alike on every path: damage to the session as a whole makes
//! every operation fail with `Corrupt` and write nothing; damage to one attribute leaves the
//! session usable, and only deltas that name that attribute fail, again writing nothing.

use std::borrow::Cow;
use std::fmt::Debug;

use session_core::redis::{Command, Store, Transport};
use session_core::{Delta, Error, NewSession, Policy, SessionStore, SessionToken};

use super::{fast, key_bytes};
use crate::redis_factory::Connect;
use crate::topology;

/// One write command with byte arguments (`APPEND`, `HSET`), on the node serving `key`.
async fn plant<T: Transport>(t: &T, key: &str, command: &'static str, args: &[&[u8]]) {
    let mut all = vec![Cow::Borrowed(key.as_bytes())];
    all.extend(args.iter().map(|a| Cow::Borrowed(*a)));
    t.batch(key, &[Command::Plain(command, all)], true)
        .await
        .expect(command);
}

/// A packed entry as a foreign writer might append it: `name`, then `stored` as it is (a
/// store writes a version in front of every value).
fn entry(name: &[u8], stored: &[u8]) -> Vec<u8> {
    let mut out = (name.len() as u16).to_le_bytes().to_vec();
    out.extend_from_slice(name);
    out.extend_from_slice(&(stored.len() as u32).to_le_bytes());
    out.extend_from_slice(stored);
    out
}

fn corrupt<T: Debug>(what: &str, result: Result<T, Error>) {
    assert!(
        matches!(result, Err(Error::Corrupt(_))),
        "{what}: expected Corrupt, got {result:?}"
    );
}

/// A session in either form (`hashed`: one large attribute keeps it a hash) with `a` = 1.
async fn session<T: Transport>(store: &Store<T>, hashed: bool) -> (SessionToken, String) {
    let mut new = NewSession::new().put("a", &1).expect("json");
    if hashed {
        new = new.put_bytes("big", vec![b'v'; 5000]);
    }
    let token = store.create(new).await.expect("create").token;
    let key = store.layout().session_key(&token.handle());
    (token, key)
}

/// Damage to one attribute, in both forms: a value without its version (`x`) and a name that
/// is not UTF-8. The session loads with both listed as damaged; every delta that names `x`
/// fails with `Corrupt` and leaves the key byte for byte as it was, whichever script runs it;
/// every other operation (deltas on other attributes, touch, rotate) succeeds and keeps the
/// damage as it is. Damage to a packed session's framing (a truncated entry) fails every
/// operation, delete included, and writes nothing.
pub async fn damage_is_judged_alike_on_every_path<C: Connect>(c: &C) {
    let dep = topology::shared(topology::Shape::Standalone)
        .await
        .expect("redis");
    let store = c.store(fast(&dep, Policy::default())).await.expect("store");
    let t = store.transport();
    let not_utf8 = "\u{fffd}";
    for hashed in [false, true] {
        let form = if hashed { "hashed" } else { "packed" };
        let (token, key) = session(&store, hashed).await;
        let mut version = [0u8; 8];
        version[0] = 1;
        let foreign_value = [&version[..], b"v"].concat();
        if hashed {
            plant(t, &key, "HSET", &[b"x", b"bad", b"\xff", &foreign_value]).await;
        } else {
            let appended = [entry(b"x", b"bad"), entry(b"\xff", &foreign_value)].concat();
            plant(t, &key, "APPEND", &[&appended]).await;
        }

        let loaded = store.load(&token).await.expect("load").expect("live");
        assert_eq!(
            loaded.damaged.keys().collect::<Vec<_>>(),
            vec!["x", not_utf8],
            "{form}"
        );
        assert_eq!(loaded.get::<i64>("a").expect("a"), Some(1), "{form}");
        corrupt(&format!("{form}: get x"), loaded.get::<i64>("x"));
        let some = store
            .load_some(&token, &["x", "a"])
            .await
            .expect("load_some")
            .expect("live");
        assert_eq!(
            (
                some.damaged.keys().map(String::as_str).collect::<Vec<_>>(),
                some.attributes
                    .keys()
                    .map(String::as_str)
                    .collect::<Vec<_>>()
            ),
            (vec!["x"], vec!["a"]),
            "{form}: load_some"
        );

        let naming_x = [
            ("put", Delta::new().put("x", &2).expect("json")),
            (
                "remove",
                Delta::new().remove("x").put("a", &2).expect("json"),
            ),
            ("increment", Delta::new().increment("x", 1)),
            (
                "if_absent",
                Delta::new().if_absent("x").put("a", &2).expect("json"),
            ),
            (
                "if_attribute_version",
                Delta::new()
                    .if_attribute_version("x", 1)
                    .put("a", &2)
                    .expect("json"),
            ),
            (
                "touch and put",
                Delta::new().touch().put("x", &2).expect("json"),
            ),
        ];
        for (what, delta) in naming_x {
            let before = key_bytes(t, &key).await;
            corrupt(
                &format!("{form}: {what}"),
                store.apply(&token, &delta).await,
            );
            assert_eq!(key_bytes(t, &key).await, before, "{form}: {what} wrote");
        }

        let elsewhere = [
            ("put", Delta::new().put("a", &2).expect("json")),
            (
                "increment and put",
                Delta::new().increment("n", 1).put("b", &1).expect("json"),
            ),
            (
                "touch and put",
                Delta::new().touch().put("c", &1).expect("json"),
            ),
        ];
        for (what, delta) in elsewhere {
            store
                .apply(&token, &delta)
                .await
                .unwrap_or_else(|e| panic!("{form}: {what}: {e:?}"));
        }
        store.touch(&token).await.expect("touch");
        let successor = store.rotate(&token).await.expect("rotate");
        let after = store.load(&successor).await.expect("load").expect("live");
        assert_eq!(after.damaged, loaded.damaged, "{form}: the damage kept");
        assert_eq!(
            (after.get::<i64>("a").ok(), after.get::<i64>("n").ok()),
            (Some(Some(2)), Some(Some(1))),
            "{form}"
        );
    }

    // A packed session whose last entry is cut short: the session as a whole is damaged.
    let (token, key) = session(&store, false).await;
    plant(t, &key, "APPEND", &[b"\x05"]).await;
    let before = key_bytes(t, &key).await;
    corrupt("load", store.load(&token).await);
    corrupt("load_some", store.load_some(&token, &["a"]).await);
    for (what, delta) in [
        ("put", Delta::new().put("a", &2).expect("json")),
        (
            "increment",
            Delta::new().increment("a", 1).put("b", &1).expect("json"),
        ),
        ("touch", Delta::new().touch()),
    ] {
        corrupt(what, store.apply(&token, &delta).await);
    }
    corrupt("touch", store.touch(&token).await);
    corrupt("rotate", store.rotate(&token).await);
    corrupt("delete", store.delete(&token).await);
    assert_eq!(
        key_bytes(t, &key).await,
        before,
        "a damaged session was written"
    );
}
