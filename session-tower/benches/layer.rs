//! The layer's overhead: requests through the shop router in process (no network), with and
//! without the session layer, on the memory store, next to the store operation alone.
//!
//! `cargo bench -p session-tower --bench layer`

#[path = "../examples/common/shop_app.rs"]
mod shop_app;

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use criterion::{Criterion, criterion_group, criterion_main};
use http::Request;
use session_core::{Delta, MemoryStore, NewSession, SessionStore};
use tower::ServiceExt;

async fn call(router: &Router, method: &str, uri: &str, cookie: Option<&str>) -> u16 {
    let mut req = Request::builder().method(method).uri(uri);
    if let Some(cookie) = cookie {
        req = req.header(http::header::COOKIE, cookie);
    }
    let req = req.body(Body::empty()).expect("a request");
    let res = router.clone().oneshot(req).await.expect("infallible");
    res.status().as_u16()
}

fn layer_overhead(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("a runtime");
    let store = Arc::new(MemoryStore::new());
    let token = rt
        .block_on(store.create(NewSession::new()))
        .expect("a session")
        .token;
    let cookie = format!("session={}", token.expose());
    let bare = shop_app::routes();
    let layered = shop_app::router(shop_app::layer(store.clone()));

    let mut group = c.benchmark_group("layer");
    group.bench_function("ping_without_layer", |b| {
        b.to_async(&rt).iter(|| call(&bare, "GET", "/ping", None))
    });
    group.bench_function("ping_with_layer_no_access", |b| {
        b.to_async(&rt)
            .iter(|| call(&layered, "GET", "/ping", Some(&cookie)))
    });
    group.bench_function("store_apply_alone", |b| {
        let delta = Delta::new().increment("counter", 1).touch();
        b.to_async(&rt).iter(|| store.apply(&token, &delta))
    });
    group.bench_function("blind_increment_through_layer", |b| {
        b.to_async(&rt)
            .iter(|| call(&layered, "POST", "/counter", Some(&cookie)))
    });
    group.bench_function("store_load_some_alone", |b| {
        b.to_async(&rt)
            .iter(|| store.load_some(&token, &["counter"]))
    });
    group.bench_function("read_through_layer", |b| {
        b.to_async(&rt)
            .iter(|| call(&layered, "GET", "/counter", Some(&cookie)))
    });
    group.finish();
}

criterion_group!(benches, layer_overhead);
criterion_main!(benches);
