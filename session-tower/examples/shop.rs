//! A shop on sessions without lost updates: a cart in one JSON attribute changed with
//! `update`, a counter, login (principal + token rotation) and logout.
//!
//! ```sh
//! cargo run -p session-tower --example shop                        # memory store
//! SESSION_REDIS_URL=redis://127.0.0.1:6379 BIND=0.0.0.0:3000 \
//!     cargo run -p session-tower --example shop                    # Redis, shared by servers
//! curl -c jar -b jar -X POST localhost:3000/cart/apple; curl -b jar localhost:3000/cart
//! ```

#[path = "common/shop_app.rs"]
mod shop_app;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();
    let store = shop_app::store_from_env().await?;
    let bind = std::env::var("BIND").unwrap_or_else(|_| "127.0.0.1:3000".into());
    let listener = tokio::net::TcpListener::bind(&bind).await?;
    tracing::info!(addr = %listener.local_addr()?, ?store, "shop listening");
    axum::serve(listener, shop_app::router(shop_app::layer(store)))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
