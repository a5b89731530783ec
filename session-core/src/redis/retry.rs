//! The retry policy of every Redis client, in one place: when a batch is sent again, when a
//! script is sent with its source, and what an error that ends the batch means.
//!
//! A [`Transport`] sends a batch once ([`Transport::send`]) and sorts its client's failures
//! into a [`SendError`]; error replies of single commands come back as [`Reply::Error`]. This
//! module reads both, the same way for every client:
//! - a reply `NOSCRIPT` (a restarted or newly promoted node has an empty script cache):
//!   the batch again at once, scripts with their source (`EVAL`), which also caches them;
//! - a reply that proves Redis did not run the command ([`refused`]: a cluster redirect, a
//!   node loading or demoted, a cluster or master down), or a batch not sent at all: the
//!   batch again after [`REDIRECT_PAUSE`], until the transport's
//!   [`retry_budget`](Transport::retry_budget) is spent, then [`Error::Unavailable`];
//! - a batch that may have reached Redis (a dropped connection, no reply in time): never
//!   sent again if it writes, because an increment sent twice counts twice
//!   ([`Error::OutcomeUnknown`]); a read is sent again unless it timed out.
//!
//! A batch holds at most one script, and every other command of it is a read or `WAIT`, so
//! sending the whole batch again after a refusal or `NOSCRIPT` runs no write twice.

use std::time::{Duration, Instant};

use super::{Command, REDIRECT_PAUSE, Reply, Transport};
use crate::error::{BoxError, Error, Result};

/// Error codes (an error reply's first word) by which Redis says it did not run a command:
/// a cluster redirect (`MOVED`, `ASK`), a slot in migration or a cluster without quorum
/// (`TRYAGAIN`, `CLUSTERDOWN`), a node still loading its data (`LOADING`), a write to a
/// replica, such as a master demoted by a failover (`READONLY`), and a replica cut off from
/// its master (`MASTERDOWN`).
const REFUSALS: [&str; 7] = [
    "MOVED",
    "ASK",
    "TRYAGAIN",
    "CLUSTERDOWN",
    "LOADING",
    "READONLY",
    "MASTERDOWN",
];

/// Why a transport could not hand back a batch's replies: the one kind every client's
/// errors are sorted into, so that the retry policy is decided once.
#[derive(Debug)]
#[non_exhaustive]
pub enum SendError {
    /// The batch was not sent (no connection, no node known for the key's slot), or Redis
    /// refused the whole batch without running it: sending it again is safe.
    NotSent(BoxError),
    /// The batch may have reached Redis, and no complete answer came back: the connection
    /// dropped, or the reply did not come in time (`timed_out`).
    MaybeRan {
        /// No reply within the response timeout (rather than a connection lost).
        timed_out: bool,
        /// The client's error.
        source: BoxError,
    },
    /// Anything else (a reply the client could not parse, say): reported as
    /// [`Error::Backend`], never retried.
    Fatal(BoxError),
}

/// Whether an error reply's text (`CODE detail`) says Redis did not run the command.
pub fn refused(error: &str) -> bool {
    let code = error.split_whitespace().next().unwrap_or("");
    REFUSALS.contains(&code)
}

fn code_is(reply: &Reply, code: &str) -> bool {
    matches!(reply, Reply::Error(e) if e.split_whitespace().next() == Some(code))
}

/// Sends `commands` to the node serving `key` through `transport`, under the policy above.
pub(crate) async fn batch<T: Transport + ?Sized>(
    transport: &T,
    key: &str,
    commands: &[Command<'_>],
    unsafe_to_resend: bool,
) -> Result<Vec<Reply>> {
    let mut eval = false;
    let mut refusals = 0u32;
    // The budget runs from the first failure: the clock stays off the path of a batch that
    // succeeds.
    let mut failed_at: Option<Instant> = None;
    let mut retry_left = || {
        let since = *failed_at.get_or_insert_with(Instant::now);
        since.elapsed() < transport.retry_budget()
    };
    loop {
        let replies = match transport.send(key, commands, eval).await {
            Ok(replies) => replies,
            Err(SendError::NotSent(e)) if retry_left() => {
                refusals += 1;
                tracing::debug!(error = %e, refusals, "batch not sent, sending again");
                pause().await;
                continue;
            }
            // Refused until the retry budget ran out: nothing ran.
            Err(SendError::NotSent(e)) => return Err(Error::Unavailable(e)),
            Err(SendError::MaybeRan { source, .. }) if unsafe_to_resend => {
                return Err(Error::OutcomeUnknown(source));
            }
            Err(SendError::MaybeRan {
                timed_out: true, ..
            }) => return Err(Error::Timeout),
            // A read may be sent again.
            Err(SendError::MaybeRan { source, .. }) if retry_left() => {
                refusals += 1;
                tracing::debug!(error = %source, refusals, "read failed, sending again");
                pause().await;
                continue;
            }
            // A read that kept failing (a lost connection): nothing changed.
            Err(SendError::MaybeRan { source, .. }) => return Err(Error::Unavailable(source)),
            Err(SendError::Fatal(e)) => return Err(Error::Backend(e)),
        };
        if replies.len() != commands.len() {
            return Err(Error::backend(format!(
                "{} replies to a batch of {} commands",
                replies.len(),
                commands.len()
            )));
        }
        if !eval && replies.iter().any(|r| code_is(r, "NOSCRIPT")) {
            eval = true;
            continue;
        }
        if let Some(Reply::Error(refusal)) = replies
            .iter()
            .find(|r| matches!(r, Reply::Error(e) if refused(e)))
        {
            if !retry_left() {
                // Refused until the retry budget ran out: nothing ran.
                return Err(Error::Unavailable(refusal.clone().into()));
            }
            refusals += 1;
            tracing::debug!(%refusal, refusals, "batch refused, sending again");
            pause().await;
            continue;
        }
        return Ok(replies);
    }
}

/// Waits [`REDIRECT_PAUSE`]. The timer is boxed because it is rarely needed, and every
/// batch's future would otherwise carry its size.
fn pause() -> std::pin::Pin<Box<tokio::time::Sleep>> {
    Box::pin(tokio::time::sleep(REDIRECT_PAUSE))
}

/// The retry budget of a transport that does not say: the default response timeout.
pub(crate) const DEFAULT_BUDGET: Duration = Duration::from_secs(2);

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::sync::Mutex;

    use super::*;

    /// A transport that answers each send with the next outcome of a script, and records
    /// whether each send asked for scripts' sources. It stands for no Redis: it feeds the
    /// policy the outcomes a client reports (the real clients are tested against real
    /// servers, faults included, by the testkit).
    #[derive(Debug)]
    struct Replay {
        outcomes: Mutex<VecDeque<std::result::Result<Vec<Reply>, SendError>>>,
        sends: Mutex<Vec<bool>>,
        budget: Duration,
    }

    impl Replay {
        fn new(
            budget: Duration,
            outcomes: impl IntoIterator<Item = std::result::Result<Vec<Reply>, SendError>>,
        ) -> Self {
            Replay {
                outcomes: Mutex::new(outcomes.into_iter().collect()),
                sends: Mutex::new(Vec::new()),
                budget,
            }
        }

        fn sends(&self) -> Vec<bool> {
            self.sends.lock().unwrap().clone()
        }
    }

    impl Transport for Replay {
        async fn send(
            &self,
            _key: &str,
            _commands: &[Command<'_>],
            eval: bool,
        ) -> std::result::Result<Vec<Reply>, SendError> {
            self.sends.lock().unwrap().push(eval);
            self.outcomes
                .lock()
                .unwrap()
                .pop_front()
                .unwrap_or_else(|| Err(SendError::Fatal("no more outcomes".into())))
        }

        fn retry_budget(&self) -> Duration {
            self.budget
        }
    }

    fn ok() -> std::result::Result<Vec<Reply>, SendError> {
        Ok(vec![Reply::Int(1)])
    }

    fn error(text: &str) -> std::result::Result<Vec<Reply>, SendError> {
        Ok(vec![Reply::Error(text.into())])
    }

    fn maybe_ran(timed_out: bool) -> std::result::Result<Vec<Reply>, SendError> {
        Err(SendError::MaybeRan {
            timed_out,
            source: "connection lost".into(),
        })
    }

    const ONE: [Command<'static>; 1] = [Command::Plain("PING", Vec::new())];
    const LONG: Duration = Duration::from_secs(5);

    async fn run(t: &Replay, unsafe_to_resend: bool) -> Result<Vec<Reply>> {
        t.batch("k", &ONE, unsafe_to_resend).await
    }

    #[tokio::test]
    async fn noscript_sends_the_sources_once() {
        let t = Replay::new(LONG, [error("NOSCRIPT No matching script"), ok()]);
        assert_eq!(run(&t, true).await.unwrap(), vec![Reply::Int(1)]);
        assert_eq!(t.sends(), [false, true]);
        // A second NOSCRIPT (the sources were sent) is the answer.
        let t = Replay::new(LONG, [error("NOSCRIPT x"), error("NOSCRIPT x")]);
        assert!(matches!(
            &run(&t, true).await.unwrap()[..],
            [Reply::Error(_)]
        ));
        assert_eq!(t.sends(), [false, true]);
    }

    #[tokio::test]
    async fn refusals_are_sent_again_within_the_budget() {
        let t = Replay::new(
            LONG,
            [
                error("MOVED 1 127.0.0.1:1"),
                Err(SendError::NotSent("no connection".into())),
                ok(),
            ],
        );
        assert_eq!(run(&t, true).await.unwrap(), vec![Reply::Int(1)]);
        assert_eq!(t.sends().len(), 3);
        // Refused or not sent until the budget is spent: unavailable, nothing ran.
        let t = Replay::new(Duration::ZERO, [error("TRYAGAIN x")]);
        assert!(matches!(run(&t, true).await, Err(Error::Unavailable(_))));
        let t = Replay::new(Duration::ZERO, [Err(SendError::NotSent("down".into()))]);
        assert!(matches!(run(&t, true).await, Err(Error::Unavailable(_))));
        assert_eq!(t.sends().len(), 1);
    }

    #[tokio::test]
    async fn a_write_that_may_have_run_is_never_sent_again() {
        for timed_out in [false, true] {
            let t = Replay::new(LONG, [maybe_ran(timed_out), ok()]);
            assert!(matches!(run(&t, true).await, Err(Error::OutcomeUnknown(_))));
            assert_eq!(t.sends().len(), 1);
        }
    }

    #[tokio::test]
    async fn a_read_is_sent_again_after_a_lost_connection_not_after_a_timeout() {
        let t = Replay::new(LONG, [maybe_ran(false), ok()]);
        assert_eq!(run(&t, false).await.unwrap(), vec![Reply::Int(1)]);
        assert_eq!(t.sends().len(), 2);
        let t = Replay::new(LONG, [maybe_ran(true), ok()]);
        assert!(matches!(run(&t, false).await, Err(Error::Timeout)));
        assert_eq!(t.sends().len(), 1);
        let t = Replay::new(Duration::ZERO, [maybe_ran(false)]);
        assert!(matches!(run(&t, false).await, Err(Error::Unavailable(_))));
    }

    #[tokio::test]
    async fn other_failures_and_short_answers_are_backend_errors() {
        let t = Replay::new(LONG, [Err(SendError::Fatal("parse".into()))]);
        assert!(matches!(run(&t, false).await, Err(Error::Backend(_))));
        let t = Replay::new(LONG, [Ok(Vec::new())]);
        assert!(matches!(run(&t, false).await, Err(Error::Backend(_))));
        assert_eq!(t.sends().len(), 1);
    }

    #[test]
    fn refusals_are_known_by_their_first_word() {
        for reply in [
            "MOVED 3999 127.0.0.1:6381",
            "ASK 3999 127.0.0.1:6381",
            "TRYAGAIN Multiple keys request during rehashing of slot",
            "CLUSTERDOWN The cluster is down",
            "LOADING Redis is loading the dataset in memory",
            "READONLY You can't write against a read only replica.",
            "MASTERDOWN Link with MASTER is down",
        ] {
            assert!(refused(reply), "{reply}");
        }
        for reply in [
            "NOSCRIPT No matching script",
            "WRONGTYPE Operation against a key holding the wrong kind of value",
            "ERR MOVED is not a code here",
            "",
        ] {
            assert!(!refused(reply), "{reply}");
        }
    }
}
