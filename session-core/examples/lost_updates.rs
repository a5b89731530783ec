//! Why this library exists, in one run: many overlapping "requests" of one user add items to
//! a cart held in one session attribute.
//!
//! - whole-value write-back (what popular session stores do: load, change, save everything)
//!   silently loses most of the additions;
//! - `update` (a delta guarded on what was read, retried on conflict) loses none.
//!
//! Run: `cargo run -p session-core --example lost_updates`

use std::time::Duration;

use session_core::{Delta, MemoryStore, NewSession, SessionStore, SessionStoreExt};

const REQUESTS: usize = 50;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), session_core::Error> {
    let store = MemoryStore::new();

    // Write-back: load the cart, add an item, write the whole cart back.
    let token = store.create(NewSession::new()).await?.token;
    let mut requests = Vec::new();
    for item in 0..REQUESTS {
        let (store, token) = (store.clone(), token.clone());
        requests.push(tokio::spawn(async move {
            let session = store.load(&token).await?.expect("session is live");
            let mut cart: Vec<usize> = session.get("cart")?.unwrap_or_default();
            // The request does some work between reading and writing, as real handlers do.
            tokio::time::sleep(Duration::from_millis(1)).await;
            cart.push(item);
            store.apply(&token, &Delta::new().put("cart", &cart)?).await
        }));
    }
    for r in requests {
        r.await.expect("task")?;
    }
    let cart: Vec<usize> = store
        .load(&token)
        .await?
        .expect("live")
        .get("cart")?
        .unwrap_or_default();
    println!(
        "write-back: {REQUESTS} acknowledged additions, {} in the cart, {} lost",
        cart.len(),
        REQUESTS - cart.len()
    );

    // Deltas: the same work through `update`, guarded on what it read.
    let token = store.create(NewSession::new()).await?.token;
    let mut requests = Vec::new();
    for item in 0..REQUESTS {
        let (store, token) = (store.clone(), token.clone());
        requests.push(tokio::spawn(async move {
            store
                .update(&token, |s| {
                    let mut cart: Vec<usize> = s.get("cart")?.unwrap_or_default();
                    cart.push(item);
                    Delta::new().put("cart", &cart)
                })
                .await
        }));
    }
    let mut acknowledged = 0;
    for r in requests {
        if r.await.expect("task").is_ok() {
            acknowledged += 1;
        }
    }
    let cart: Vec<usize> = store
        .load(&token)
        .await?
        .expect("live")
        .get("cart")?
        .unwrap_or_default();
    println!(
        "update:     {acknowledged} acknowledged additions, {} in the cart, {} lost",
        cart.len(),
        acknowledged - cart.len()
    );
    assert_eq!(
        cart.len(),
        acknowledged,
        "update must never lose an acknowledged change"
    );
    Ok(())
}
