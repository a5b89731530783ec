//! Sequential operations of one subject, for counting the client's instructions per
//! operation under `valgrind --tool=callgrind`: the client-side cost that the throughput
//! ratios mix with Redis's on a machine where both share the cores.
//!
//! Instruction counts, unlike times, repeat from run to run on a noisy machine, so the
//! difference between our store and the raw client on the same layout shows what our path
//! adds per operation, and a profile (`callgrind_annotate`) shows where.
//!
//! ```sh
//! redis-server --port 6390 --save '' --appendonly no --daemonize yes
//! cargo build --release -p session-benches --example client_cost
//! valgrind --tool=callgrind --callgrind-out-file=/tmp/ours.cg \
//!     target/release/examples/client_cost redis://127.0.0.1:6390 ours-redis load 2000
//! ```
//!
//! Arguments: a standalone Redis URL, a subject (`ours-redis`, `ours-fred`, `raw-redis`,
//! `script-floor`, `raw-fred`, `tower-sessions`, `tower-sessions-compat`,
//! `tower-sessions-compat-fred`, `actix-session`), an operation (`load` of a 1 × 32 B session, `load10` of 10 × 100 B, `cycle`
//! of 1 × 32 B) and the number of operations (default 2000). It prints the operations run; the
//! counts come from valgrind (subtract a run with 0 operations for the fixed cost). Only
//! keys under this run's namespace are written, and they are deleted at the end.

use session_benches::bench::subject::Subject;
use session_benches::bench::{actix, ours, raw_fred, raw_redis, tower};

type Error = Box<dyn std::error::Error + Send + Sync>;

async fn run<S: Subject>(subject: S, op: &str, ops: usize) -> Result<String, Error> {
    let attrs: Vec<(String, Vec<u8>)> = match op {
        "load10" => (0..10)
            .map(|i| (format!("a{i:03}"), vec![b'x'; 100]))
            .collect(),
        _ => vec![("a000".to_string(), vec![b'x'; 32])],
    };
    let mut session = subject.create(&attrs).await?;
    let value = vec![b'y'; 32];
    // Warm up: connections, script caches, buffers.
    for _ in 0..50 {
        subject.cycle(&mut session, "a000", &value).await?;
    }
    for _ in 0..ops {
        match op {
            "load" | "load10" => subject.load(&session).await?,
            "cycle" => subject.cycle(&mut session, "a000", &value).await?,
            other => return Err(format!("unknown operation {other}").into()),
        }
    }
    Ok(subject.key(&session))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [url, subject, op, rest @ ..] = args.as_slice() else {
        return Err("usage: client_cost URL SUBJECT OPERATION [COUNT]".into());
    };
    let ops: usize = rest.first().map(|n| n.parse()).transpose()?.unwrap_or(2000);
    let namespace = format!("client-cost-{}", std::process::id());
    let key = match subject.as_str() {
        "ours-redis" => run(ours::redis(url, &namespace).await?, op, ops).await?,
        "ours-fred" => run(ours::fred(url, &namespace).await?, op, ops).await?,
        "raw-redis" => {
            let raw = raw_redis::connect(url, &namespace, raw_redis::Save::Plain).await?;
            run(raw, op, ops).await?
        }
        "script-floor" => {
            let raw = raw_redis::connect(url, &namespace, raw_redis::Save::Script).await?;
            run(raw, op, ops).await?
        }
        "raw-fred" => run(raw_fred::connect(url, &namespace).await?, op, ops).await?,
        "tower-sessions" => run(tower::peer(url, "tower-sessions").await?, op, ops).await?,
        "tower-sessions-compat" => {
            let compat = tower::compat_redis(url, &namespace, "tower-sessions-compat").await?;
            run(compat, op, ops).await?
        }
        "tower-sessions-compat-fred" => {
            let compat = tower::compat_fred(url, &namespace, "tower-sessions-compat-fred").await?;
            run(compat, op, ops).await?
        }
        "actix-session" => run(actix::connect(url, &namespace).await?, op, ops).await?,
        other => return Err(format!("unknown subject {other}").into()),
    };
    let mut connection = redis::Client::open(url.as_str())?
        .get_multiplexed_async_connection()
        .await?;
    let _: i64 = redis::cmd("DEL")
        .arg(&key)
        .query_async(&mut connection)
        .await?;
    println!("{subject} {op}: {ops} operations");
    Ok(())
}
