//! The shop on actix-web: a cart in one JSON attribute changed with `update`, a counter,
//! login (principal + token rotation) and logout; the same app as session-tower's shop.
//!
//! ```sh
//! cargo run -p session-actix --example shop                        # memory store
//! SESSION_REDIS_URL=redis://127.0.0.1:6379 BIND=0.0.0.0:3000 \
//!     cargo run -p session-actix --example shop                    # Redis, shared by servers
//! curl -c jar -b jar -X POST localhost:3000/cart/apple; curl -b jar localhost:3000/cart
//! ```

#[path = "common/shop_app.rs"]
mod shop_app;

#[actix_web::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let store = shop_app::store_from_env().await?;
    let bind = std::env::var("BIND").unwrap_or_else(|_| "127.0.0.1:3000".into());
    println!("shop listening on {bind} ({store:?})");
    actix_web::HttpServer::new(move || {
        actix_web::App::new()
            .wrap(shop_app::middleware(shop_app::config(store.clone())))
            .configure(shop_app::routes)
    })
    .bind(&bind)?
    .run()
    .await?;
    Ok(())
}
