//! Heap allocations per operation of our stores and the raw clients: the count behind the
//! benches README's "Allocations, not bytes" table.
//!
//! With many tasks on few threads, glibc's allocator made threads wait on each other's
//! arenas, so the number of allocations an operation makes, more than the bytes it copies,
//! decides its client CPU. This counts every allocation of the process (the clients'
//! connection tasks included) around sequential loads of one 10 x 100 B session, and
//! sequential narrow operations on one 100 x 1 KiB session.
//!
//! ```sh
//! redis-server --port 6390 --save '' --appendonly no --daemonize yes
//! cargo run --release -p session-benches --example allocations -- redis://127.0.0.1:6390 2000
//! ```
//!
//! Arguments: a standalone Redis URL (default `redis://127.0.0.1:6379`) and the operations
//! counted per cell (default 2000). Only keys under this run's namespaces are written, and
//! they are deleted at the end.

use std::alloc::System;

use session_benches::bench::subject::Subject;
use session_benches::bench::{ours, raw_fred, raw_redis};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// The attribute every operation reads or writes.
const NAME: &str = "a007";

type Error = Box<dyn std::error::Error + Send + Sync>;

#[derive(Clone, Copy)]
enum Op {
    Load,
    LoadSome,
    Apply,
    Narrow,
}

async fn step<S: Subject>(
    subject: &S,
    op: Op,
    session: &mut S::Session,
    value: &[u8],
) -> Result<(), Error> {
    match op {
        Op::Load => subject.load(session).await?,
        Op::LoadSome => subject.load_some(session, NAME).await?,
        Op::Apply => subject.apply(session, NAME, value).await?,
        Op::Narrow => subject.narrow(session, NAME, value).await?,
    }
    Ok(())
}

/// Prints allocations (and reallocations) per operation of `subject`; returns its sessions'
/// keys.
async fn count<S: Subject>(label: &str, subject: S, ops: usize) -> Result<Vec<String>, Error> {
    let attrs: Vec<(String, Vec<u8>)> = (0..100)
        .map(|i| (format!("a{i:03}"), vec![b'x'; 1024]))
        .collect();
    let mut session = subject.create(&attrs).await?;
    let small: Vec<(String, Vec<u8>)> = (0..10)
        .map(|i| (format!("a{i:03}"), vec![b'x'; 100]))
        .collect();
    let mut small = subject.create(&small).await?;
    let value = vec![b'y'; 1024];
    let mut row = format!("| {label} |");
    for op in [Op::Load, Op::LoadSome, Op::Apply, Op::Narrow] {
        let session = if matches!(op, Op::Load) {
            &mut small
        } else {
            &mut session
        };
        // Warm up: connections, script caches, buffers.
        for _ in 0..200 {
            step(&subject, op, session, &value).await?;
        }
        let region = Region::new(GLOBAL);
        for _ in 0..ops {
            step(&subject, op, session, &value).await?;
        }
        let change = region.change();
        let per_op = (change.allocations + change.reallocations) as f64 / ops as f64;
        row.push_str(&format!(" {per_op:.1} |"));
    }
    println!("{row}");
    Ok(vec![subject.key(&session), subject.key(&small)])
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Error> {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .unwrap_or_else(|| "redis://127.0.0.1:6379".into());
    let ops: usize = match args.next() {
        Some(n) => n.parse()?,
        None => 2000,
    };
    let namespace = format!("allocations-{}", std::process::id());
    println!("| subject | load (10 x 100 B) | load_some | apply | narrow cycle |");
    println!("|---|---:|---:|---:|---:|");
    let keys: Vec<String> = [
        count(
            "ours-redis",
            ours::redis(&url, &format!("{namespace}-r")).await?,
            ops,
        )
        .await?,
        count(
            "ours-fred",
            ours::fred(&url, &format!("{namespace}-f")).await?,
            ops,
        )
        .await?,
        count(
            "raw-redis",
            raw_redis::connect(&url, &format!("{namespace}-rr"), raw_redis::Save::Plain).await?,
            ops,
        )
        .await?,
        count(
            "raw-fred",
            raw_fred::connect(&url, &format!("{namespace}-rf")).await?,
            ops,
        )
        .await?,
    ]
    .concat();
    let mut connection = redis::Client::open(url.as_str())?
        .get_multiplexed_async_connection()
        .await?;
    let _: i64 = redis::cmd("DEL")
        .arg(&keys)
        .query_async(&mut connection)
        .await?;
    Ok(())
}
