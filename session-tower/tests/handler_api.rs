//! The handler API that tower-sessions users reach for (`take`, `clear`, `is_empty`,
//! `get_or_default`), the detached handle that unit-tests handlers without a server, and the
//! default that a response with a server error saves nothing.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::routing::post;
use http::{Request, StatusCode, header};
use session_core::{MemoryStore, SessionStore, SessionToken};
use session_tower::{Session, SessionError, SessionLayer};
use tower::ServiceExt;

type Result<T> = session_core::Result<T>;

/// A session over `store` holding `items` (saved), and its token.
async fn saved(store: &Arc<MemoryStore>, items: &[(&str, i64)]) -> Result<SessionToken> {
    let session = Session::detached(store.clone(), None);
    for (name, value) in items {
        session.insert(name, value).await?;
    }
    Ok(session.save().await?.expect("a session was created"))
}

#[tokio::test]
async fn take_returns_the_old_value_and_removes_it() -> Result<()> {
    let store = Arc::new(MemoryStore::new());
    let token = saved(&store, &[("a", 1), ("b", 2)]).await?;

    let session = Session::detached(store.clone(), Some(token.clone()));
    assert_eq!(session.take::<i64>("a").await?, Some(1));
    assert_eq!(session.take::<i64>("a").await?, None, "read-your-writes");
    assert_eq!(session.take::<i64>("missing").await?, None);
    assert_eq!(session.save().await?, Some(token.clone()));

    let stored = store.load(&token).await?.expect("live");
    assert_eq!(stored.get::<i64>("a")?, None);
    assert_eq!(stored.get::<i64>("b")?, Some(2));
    Ok(())
}

#[tokio::test]
async fn take_of_the_wrong_type_fails_and_removes_nothing() -> Result<()> {
    let store = Arc::new(MemoryStore::new());
    let token = saved(&store, &[("a", 1)]).await?;
    let session = Session::detached(store.clone(), Some(token.clone()));
    assert!(session.take::<Vec<String>>("a").await.is_err());
    session.save().await?;
    assert_eq!(
        store.load(&token).await?.expect("live").get::<i64>("a")?,
        Some(1)
    );
    Ok(())
}

#[tokio::test]
async fn clear_removes_every_attribute_but_keeps_the_session() -> Result<()> {
    let store = Arc::new(MemoryStore::new());
    let token = saved(&store, &[("a", 1), ("b", 2), ("c", 3)]).await?;

    let session = Session::detached(store.clone(), Some(token.clone()));
    // Only one name declared: `clear` must still learn all of them.
    session.need(&["a"]).await;
    assert_eq!(session.get::<i64>("a").await?, Some(1));
    session.insert("d", &4).await?;
    assert!(!session.is_empty().await?);
    session.clear().await?;
    assert!(session.is_empty().await?);
    assert_eq!(session.get::<i64>("b").await?, None);
    session.insert("e", &5).await?;
    assert!(!session.is_empty().await?);
    assert_eq!(session.save().await?, Some(token.clone()), "same session");

    let stored = store.load(&token).await?.expect("the session stays");
    let names: Vec<&str> = stored.attributes.keys().map(String::as_str).collect();
    assert_eq!(names, ["e"]);
    Ok(())
}

#[tokio::test]
async fn no_session_is_empty_and_defaults_apply() -> Result<()> {
    let store = Arc::new(MemoryStore::new());
    let session = Session::detached(store, None);
    assert!(session.is_empty().await?);
    assert_eq!(session.take::<i64>("n").await?, None);
    session.clear().await?;
    assert_eq!(
        session.get_or_default::<Vec<String>>("cart").await?,
        Vec::<String>::new()
    );
    assert_eq!(session.get_or_default::<i64>("n").await?, 0);
    assert_eq!(
        session.save().await?,
        None,
        "nothing changed: no session was created"
    );
    Ok(())
}

#[tokio::test]
async fn changes_after_save_are_dropped() -> Result<()> {
    let store = Arc::new(MemoryStore::new());
    let session = Session::detached(store.clone(), None);
    session.insert("a", &1).await?;
    let token = session.save().await?.expect("created");
    session.insert("late", &2).await?;
    assert_eq!(session.save().await?, Some(token.clone()));
    assert_eq!(
        store
            .load(&token)
            .await?
            .expect("live")
            .get::<i64>("late")?,
        None
    );
    Ok(())
}

/// A router whose handler records a change, then answers `status`.
fn app(layer: SessionLayer, status: StatusCode) -> Router {
    let handler = move |session: Session| async move {
        session.insert("seen", &true).await?;
        Ok::<_, SessionError>((status, "done"))
    };
    Router::new().route("/", post(handler)).layer(layer)
}

async fn call(app: Router) -> (StatusCode, Option<String>) {
    let request = Request::post("/").body(Body::empty()).unwrap();
    let response = app.oneshot(request).await.unwrap();
    let cookie = response
        .headers()
        .get(header::SET_COOKIE)
        .map(|v| v.to_str().unwrap().to_owned());
    (response.status(), cookie)
}

#[tokio::test]
async fn a_server_error_saves_nothing_unless_configured() {
    let store = Arc::new(MemoryStore::new());

    let (status, cookie) = call(app(SessionLayer::new(store.clone()), StatusCode::OK)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        cookie.is_some(),
        "a 200 saves, and sends the new session's cookie"
    );

    for status in [
        StatusCode::INTERNAL_SERVER_ERROR,
        StatusCode::SERVICE_UNAVAILABLE,
    ] {
        let (answered, cookie) = call(app(SessionLayer::new(store.clone()), status)).await;
        assert_eq!(answered, status, "the handler's response stands");
        assert_eq!(cookie, None, "nothing saved, so no session and no cookie");
    }

    let layer = SessionLayer::new(store.clone()).save_on_server_error(true);
    let (status, cookie) = call(app(layer, StatusCode::INTERNAL_SERVER_ERROR)).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(cookie.is_some(), "configured: saved despite the 500");

    // A 4xx is the client's error, not the handler's failure: saved.
    let (_, cookie) = call(app(SessionLayer::new(store), StatusCode::NOT_FOUND)).await;
    assert!(cookie.is_some());
}

#[tokio::test]
async fn a_layer_takes_a_store_by_value_or_shared() {
    let by_value = SessionLayer::new(MemoryStore::new());
    let shared: Arc<dyn SessionStore> = Arc::new(MemoryStore::new());
    let as_dyn = SessionLayer::new(shared);
    for layer in [by_value, as_dyn] {
        let (status, cookie) = call(app(layer, StatusCode::OK)).await;
        assert_eq!(status, StatusCode::OK);
        assert!(cookie.is_some());
    }
}

#[tokio::test]
async fn log_out_everywhere_ends_every_session_of_the_principal() -> Result<()> {
    let store = Arc::new(MemoryStore::new());
    let mut devices = Vec::new();
    for _ in 0..3 {
        let session = Session::detached(store.clone(), None);
        session.set_principal("alice").await?;
        devices.push(session.save().await?.expect("created"));
    }
    let bob = Session::detached(store.clone(), None);
    bob.set_principal("bob").await?;
    let bob = bob.save().await?.expect("created");

    let session = Session::detached(store.clone(), Some(devices[0].clone()));
    assert_eq!(session.log_out_everywhere().await?, 3);
    assert_eq!(session.save().await?, None, "this session ended too");
    for token in &devices {
        assert!(store.load(token).await?.is_none());
    }
    assert!(
        store.load(&bob).await?.is_some(),
        "another principal's session stays"
    );

    // Nobody logged in: only this session ends.
    let anonymous = saved(&store, &[("a", 1)]).await?;
    let session = Session::detached(store.clone(), Some(anonymous.clone()));
    assert_eq!(session.log_out_everywhere().await?, 1);
    assert!(store.load(&anonymous).await?.is_none());

    // The principal set in this very request is not in the principal's index yet: this
    // session ends all the same, with the principal's other sessions.
    let other = Session::detached(store.clone(), None);
    other.set_principal("carol").await?;
    let other = other.save().await?.expect("created");
    let fresh = saved(&store, &[("a", 1)]).await?;
    let session = Session::detached(store.clone(), Some(fresh.clone()));
    session.set_principal("carol").await?;
    assert_eq!(session.log_out_everywhere().await?, 2);
    assert!(store.load(&fresh).await?.is_none(), "this session ended");
    assert!(store.load(&other).await?.is_none());
    Ok(())
}

#[tokio::test]
async fn devices_lists_the_principals_sessions_and_marks_none_without_one() -> Result<()> {
    let store = Arc::new(MemoryStore::new());
    let phone = Session::detached(store.clone(), None);
    phone.set_principal("dora").await?;
    let phone = phone.save().await?.expect("created");

    let laptop = Session::detached(store.clone(), None);
    assert!(laptop.devices().await?.is_empty(), "nobody signed in");
    laptop.set_principal("dora").await?;
    let laptop_token = laptop.save().await?.expect("created");

    let session = Session::detached(store.clone(), Some(laptop_token.clone()));
    let devices = session.devices().await?;
    let mut handles: Vec<_> = devices.iter().map(|d| d.handle).collect();
    handles.sort();
    let mut expected = vec![phone.handle(), laptop_token.handle()];
    expected.sort();
    assert_eq!(handles, expected);
    let this = session.handle().await?.expect("live");
    let here = devices
        .iter()
        .find(|d| d.handle == this)
        .expect("this device is listed");
    assert!(here.expires_at > here.last_access);

    // Logged out on the phone: it is gone from the list.
    Session::detached(store.clone(), Some(phone))
        .delete()
        .await?;
    assert_eq!(session.devices().await?.len(), 1);
    Ok(())
}
