//! Where the apps run: each server on a thread of its own, with one runtime thread for HTTP,
//! built (store and Redis connection included) on that thread, and stopped at the end.
//!
//! - actix-web: `actix_web::rt::System::new().block_on(..)` with `HttpServer::new(..)
//!   .workers(1).listen(listener)?.run()`, as session-actix/tests/http.rs does. The store is
//!   built in the System's runtime before the server starts, so its Redis connection task
//!   runs on the System thread and requests on the one worker thread.
//! - axum: a current-thread tokio runtime running `axum::serve` (HTTP connections, the
//!   store's Redis connection, all on that one thread).
//!
//! Every server sets `TCP_NODELAY` on its connections (reqwest does on its side), so no
//! response waits for Nagle's algorithm.

use std::future::{Future, IntoFuture};
use std::net::SocketAddr;
use std::thread::JoinHandle;

use axum::serve::ListenerExt;
use tokio::sync::oneshot;

use super::Result;

/// A running server.
pub struct Server {
    /// Where it listens (loopback, a free port).
    pub addr: SocketAddr,
    stop: Stop,
    thread: JoinHandle<()>,
}

enum Stop {
    Actix(actix_web::dev::ServerHandle),
    Axum(oneshot::Sender<()>),
}

impl Server {
    /// Stops the server and waits for its thread (its Redis connections close with it).
    pub async fn stop(self) {
        match self.stop {
            Stop::Actix(handle) => handle.stop(false).await,
            Stop::Axum(stop) => {
                let _ = stop.send(());
            }
        }
        let thread = self.thread;
        let _ = tokio::task::spawn_blocking(move || thread.join()).await;
    }
}

/// Starts an actix-web server: `start`, run on the server's thread in its actix System, gets
/// the listener and returns `HttpServer::new(..).workers(1).listen(listener)?.run()`.
pub async fn actix<F, Fut>(start: F) -> Result<Server>
where
    F: FnOnce(std::net::TcpListener) -> Fut + Send + 'static,
    Fut: Future<Output = Result<actix_web::dev::Server>> + 'static,
{
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let (ready, started) = oneshot::channel();
    let thread = std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            match start(listener).await {
                Ok(server) => {
                    let _ = ready.send(Ok(server.handle()));
                    let _ = server.await;
                }
                Err(e) => {
                    let _ = ready.send(Err(e));
                }
            }
        });
    });
    let handle = started.await??;
    Ok(Server {
        addr,
        stop: Stop::Actix(handle),
        thread,
    })
}

/// Starts an axum server: `start`, run on the server's thread in its runtime, builds the
/// router (and the store behind it).
pub async fn axum<F, Fut>(start: F) -> Result<Server>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = Result<axum::Router>> + 'static,
{
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (ready, started) = oneshot::channel::<Result<()>>();
    let (stop, stopped) = oneshot::channel::<()>();
    let thread = std::thread::spawn(move || {
        runtime.block_on(async move {
            let router = match start().await {
                Ok(router) => router,
                Err(e) => {
                    let _ = ready.send(Err(e));
                    return;
                }
            };
            let listener = match tokio::net::TcpListener::from_std(listener) {
                Ok(listener) => listener.tap_io(|tcp| {
                    let _ = tcp.set_nodelay(true);
                }),
                Err(e) => {
                    let _ = ready.send(Err(e.into()));
                    return;
                }
            };
            let _ = ready.send(Ok(()));
            tokio::select! {
                _ = axum::serve(listener, router).into_future() => {}
                _ = stopped => {}
            }
        });
        // Dropping the runtime here ends every connection task and the store's.
    });
    started.await??;
    Ok(Server {
        addr,
        stop: Stop::Axum(stop),
        thread,
    })
}
