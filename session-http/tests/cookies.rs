//! The cookie a request starts from and the one its response sets, through
//! `RequestSession::start` and `finish`, on the memory store.

use std::sync::Arc;

use session_core::{MemoryStore, NewSession, SessionStore};
use session_http::{Key, RequestSession, SessionConfig};

/// Runs a request with `cookie` that writes `n`, returns the `name=value` pair it sets.
async fn write(config: &Arc<SessionConfig>, cookie: Option<&str>, n: i64) -> String {
    let session = RequestSession::start(config, cookie);
    session.insert("n", &n).await.unwrap();
    let finished = session.finish(false).await;
    assert!(finished.error.is_none());
    finished
        .set_cookies
        .first()
        .and_then(|c| c.split(';').next())
        .expect("a cookie")
        .to_owned()
}

async fn read(config: &Arc<SessionConfig>, cookie: &str) -> Option<i64> {
    RequestSession::start(config, [cookie])
        .get::<i64>("n")
        .await
        .unwrap()
}

#[tokio::test]
async fn a_protected_cookie_round_trips_and_a_tampered_or_foreign_one_counts_as_absent() {
    let store = Arc::new(MemoryStore::new());
    let key = Key::generate();
    let private = Arc::new(SessionConfig::new(store.clone()).private(key.clone()));
    let signed = Arc::new(SessionConfig::new(store.clone()).signed(key));
    let plain = Arc::new(SessionConfig::new(store.clone()));

    for config in [&private, &signed] {
        let cookie = write(config, None, 7).await;
        assert_eq!(read(config, &cookie).await, Some(7));
        // One character of the value changed.
        let (name, value) = cookie.split_once('=').unwrap();
        let mut bytes = value.as_bytes().to_vec();
        let last = bytes.len() - 1;
        bytes[last] = if bytes[last] == b'A' { b'B' } else { b'A' };
        let tampered = format!("{name}={}", String::from_utf8(bytes).unwrap());
        assert_eq!(read(config, &tampered).await, None, "tampered");
        // The plain token is not accepted where a protected cookie is expected.
        assert_eq!(read(&plain, &cookie).await, None, "not a plain token");
    }
    let from_signed = write(&signed, None, 1).await;
    assert_eq!(
        read(&private, &from_signed).await,
        None,
        "signed is not private"
    );

    // A private cookie for a known token (handed over from a legacy cookie) does not show
    // the token; a signed one carries it in clear beside its MAC.
    let token = session_core::SessionToken::generate();
    let new = NewSession::new().put("n", &3).unwrap();
    store.create_with_token(&token, new).await.unwrap().unwrap();
    for (config, shows) in [(&private, false), (&signed, true)] {
        let config = Arc::new((**config).clone().legacy_cookie("id"));
        let presented = format!("id={}", token.expose());
        let session = RequestSession::start(&config, [presented.as_str()]);
        assert_eq!(session.get::<i64>("n").await.unwrap(), Some(3));
        let finished = session.finish(false).await;
        let ours = finished
            .set_cookies
            .iter()
            .find(|c| c.starts_with("session="))
            .unwrap();
        assert_eq!(ours.contains(&token.expose()), shows, "{ours}");
    }
}

#[tokio::test]
async fn a_legacy_cookie_is_moved_into_ours_and_removed() {
    let store = Arc::new(MemoryStore::new());
    let config = Arc::new(SessionConfig::new(store.clone()).legacy_cookie("id"));
    let ours = write(&config, None, 5).await;
    let token = ours.split_once('=').unwrap().1.to_owned();

    let session = RequestSession::start(&config, [format!("id={token}").as_str()]);
    assert_eq!(session.get::<i64>("n").await.unwrap(), Some(5));
    let finished = session.finish(false).await;
    let names: Vec<_> = finished
        .set_cookies
        .iter()
        .map(|c| c.split(';').next().unwrap().to_owned())
        .collect();
    assert_eq!(names, vec![format!("session={token}"), "id=".to_owned()]);

    // Ours wins when both come; the legacy one is still removed.
    let other = write(&config, None, 6).await;
    let session = RequestSession::start(&config, [format!("id={token}; {other}").as_str()]);
    assert_eq!(session.get::<i64>("n").await.unwrap(), Some(6));
    let finished = session.finish(false).await;
    assert_eq!(finished.set_cookies.len(), 1);
    assert!(finished.set_cookies[0].starts_with("id=;"));
}

#[tokio::test]
async fn a_legacy_token_nobody_checked_is_handed_over_only_if_it_names_a_session() {
    let store = Arc::new(MemoryStore::new());
    let config = Arc::new(SessionConfig::new(store).legacy_cookie("id"));
    let live = write(&config, None, 1).await;
    let live = live.split_once('=').unwrap().1.to_owned();
    let dead = session_core::SessionToken::generate().expose();
    for (token, handed) in [(live.as_str(), true), (dead.as_str(), false)] {
        // A request whose handler never touches the session.
        let session = RequestSession::start(&config, [format!("id={token}").as_str()]);
        let finished = session.finish(false).await;
        let ours = finished
            .set_cookies
            .iter()
            .any(|c| c.starts_with(&format!("session={token}")));
        assert_eq!(ours, handed, "{token}");
        assert!(finished.set_cookies.iter().any(|c| c.starts_with("id=;")));
        assert!(
            !format!("{finished:?}").contains(token),
            "Debug hides tokens"
        );
    }
}

/// The old application's cookie as the `cookie` crate's jars protect it (what tower-sessions'
/// `with_signed` and `with_private` write through tower-cookies).
fn old_cookie(token: &str, key: &Key, private: bool) -> String {
    let mut jar = cookie::CookieJar::new();
    let cookie = cookie::Cookie::new("id", token.to_owned());
    if private {
        jar.private_mut(key).add(cookie);
    } else {
        jar.signed_mut(key).add(cookie);
    }
    let sent = jar.delta().next().unwrap();
    format!("id={}", sent.value())
}

#[tokio::test]
async fn a_protected_legacy_cookie_is_read_with_the_old_key_only() {
    let store = Arc::new(MemoryStore::new());
    let token = session_core::SessionToken::generate();
    let new = NewSession::new().put("n", &4).unwrap();
    store.create_with_token(&token, new).await.unwrap().unwrap();
    let old_key = Key::generate();
    let raw = format!("id={}", token.expose());

    for private in [false, true] {
        let config = SessionConfig::new(store.clone());
        let config = Arc::new(if private {
            config.legacy_cookie_private("id", old_key.clone())
        } else {
            config.legacy_cookie_signed("id", old_key.clone())
        });
        let protected = old_cookie(&token.expose(), &old_key, private);
        assert_ne!(protected, raw);
        let session = RequestSession::start(&config, [protected.as_str()]);
        assert_eq!(
            session.get::<i64>("n").await.unwrap(),
            Some(4),
            "{protected}"
        );
        let finished = session.finish(false).await;
        assert!(
            finished
                .set_cookies
                .iter()
                .any(|c| c.starts_with(&format!("session={}", token.expose()))),
            "handed over in our cookie"
        );
        assert!(finished.set_cookies.iter().any(|c| c.starts_with("id=;")));

        // Under another key, the other protection, or raw, the old cookie is not read, and
        // it is left in place (the configured key may be the wrong one).
        let foreign = old_cookie(&token.expose(), &Key::generate(), private);
        let other_kind = old_cookie(&token.expose(), &old_key, !private);
        for cookie in [foreign.as_str(), other_kind.as_str(), raw.as_str()] {
            let session = RequestSession::start(&config, [cookie]);
            assert_eq!(session.get::<i64>("n").await.unwrap(), None, "{cookie}");
            let finished = session.finish(false).await;
            assert!(
                !finished
                    .set_cookies
                    .iter()
                    .any(|c| c.contains(&token.expose())),
                "{cookie}: the token is not handed over"
            );
            assert!(
                !finished.set_cookies.iter().any(|c| c.starts_with("id=")),
                "{cookie}: not removed"
            );
        }
    }
}

/// A mapping for old ids that are not tokens: the test's stand-in for actix-session's keys.
#[derive(Debug)]
struct Suffixed;

impl session_http::LegacyToken for Suffixed {
    fn token(&self, value: &str) -> Option<session_core::SessionToken> {
        session_core::SessionToken::parse(value.strip_suffix("!old")?).ok()
    }
}

#[tokio::test]
async fn a_legacy_value_is_percent_decoded_and_mapped_to_a_token() {
    let store = Arc::new(MemoryStore::new());
    let token = session_core::SessionToken::generate();
    let new = NewSession::new().put("n", &8).unwrap();
    store.create_with_token(&token, new).await.unwrap().unwrap();
    let config = Arc::new(
        SessionConfig::new(store.clone())
            .legacy_cookie("id")
            .legacy_token(Suffixed),
    );
    // `!` percent-encoded, as actix-web writes cookie values.
    let presented = format!("id={}%21old", token.expose());
    let session = RequestSession::start(&config, [presented.as_str()]);
    assert_eq!(session.get::<i64>("n").await.unwrap(), Some(8));
    let finished = session.finish(false).await;
    assert!(
        finished
            .set_cookies
            .iter()
            .any(|c| c.starts_with(&format!("session={}", token.expose())))
    );
    // Without the mapping's suffix the value is no session (and the cookie goes).
    let bare = format!("id={}", token.expose());
    let session = RequestSession::start(&config, [bare.as_str()]);
    assert_eq!(session.get::<i64>("n").await.unwrap(), None);
    let finished = session.finish(false).await;
    assert!(finished.set_cookies.iter().any(|c| c.starts_with("id=;")));
}

/// An old store that cannot be reached.
#[derive(Debug)]
struct Down;

impl session_core::import::Source for Down {
    async fn fetch(
        &self,
        _: &session_core::SessionToken,
    ) -> session_core::Result<Option<NewSession>> {
        Err(session_core::Error::Backend(
            "the old store timed out".into(),
        ))
    }
    async fn remove(&self, _: &session_core::SessionToken) -> session_core::Result<bool> {
        Err(session_core::Error::Backend(
            "the old store timed out".into(),
        ))
    }
}

#[tokio::test]
async fn a_legacy_session_whose_import_failed_keeps_the_old_cookie() {
    let store = session_core::import::Importing::new(MemoryStore::new(), Down);
    let config = Arc::new(SessionConfig::new(store).legacy_cookie("id"));
    let token = session_core::SessionToken::generate();
    let presented = format!("id={}", token.expose());
    // A request whose handler never reads the session, one whose read fails, and a logout
    // that fails (the old copy could not be removed: the client must be able to try again).
    for step in ["none", "read", "logout"] {
        let session = RequestSession::start(&config, [presented.as_str()]);
        match step {
            "read" => assert!(session.get::<i64>("n").await.is_err()),
            "logout" => assert!(session.delete().await.is_err()),
            _ => {}
        }
        let finished = session.finish(false).await;
        assert!(
            finished.error.is_none(),
            "the request changed nothing, so its response stands"
        );
        assert!(
            finished.set_cookies.is_empty(),
            "{step}: neither ours nor the old cookie's removal: {:?}",
            finished.set_cookies
        );
    }
}
