//! Reading Redis' own accounting (`INFO cpu`, `INFO commandstats`), because what a session
//! store costs a deployment is the server's CPU, not the client's view of latency.
//! `commandstats` alone would miss the network I/O of large values, so both are read.

use std::collections::BTreeMap;

/// Commands the benchmark itself or the clients' housekeeping send; not counted as work of
/// a request cycle.
const HOUSEKEEPING: [&str; 14] = [
    "info", "config", "cluster", "ping", "client", "hello", "command", "select", "readonly",
    "memory", "script", "replconf", "psync", "sync",
];

/// The server's counters at one instant (summed over the masters of a cluster).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    /// `used_cpu_user` + `used_cpu_sys`, in seconds.
    pub cpu_seconds: f64,
    /// Calls per command (`get`, `hgetall`, `evalsha`, …), housekeeping excluded.
    pub calls: BTreeMap<String, u64>,
}

impl Snapshot {
    /// Adds one server's `INFO` text (sections `cpu` and `commandstats`).
    pub fn add_info(&mut self, info: &str) {
        self.cpu_seconds += field(info, "used_cpu_user").unwrap_or(0.0)
            + field(info, "used_cpu_sys").unwrap_or(0.0);
        for (command, calls) in command_calls(info) {
            *self.calls.entry(command).or_default() += calls;
        }
    }

    /// What happened between `self` (earlier) and `later`.
    pub fn until(&self, later: &Snapshot) -> Snapshot {
        let calls = later
            .calls
            .iter()
            .map(|(c, n)| {
                (
                    c.clone(),
                    n.saturating_sub(self.calls.get(c).copied().unwrap_or(0)),
                )
            })
            .filter(|(_, n)| *n > 0)
            .collect();
        Snapshot {
            cpu_seconds: (later.cpu_seconds - self.cpu_seconds).max(0.0),
            calls,
        }
    }

    /// Total calls.
    pub fn total_calls(&self) -> u64 {
        self.calls.values().sum()
    }
}

/// A numeric `name:value` field of an `INFO` reply.
pub fn field(info: &str, name: &str) -> Option<f64> {
    text_field(info, name)?.trim().parse().ok()
}

/// A `name:value` field of an `INFO` reply, as text.
pub fn text_field<'a>(info: &'a str, name: &str) -> Option<&'a str> {
    info.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        (key == name).then_some(value.trim_end())
    })
}

/// `cmdstat_<command>:calls=N,…` lines as (command, calls), housekeeping excluded. Redis 7
/// names subcommands `config|resetstat`; they count under their command.
pub fn command_calls(info: &str) -> Vec<(String, u64)> {
    info.lines()
        .filter_map(|line| {
            let (key, value) = line.split_once(':')?;
            let command = key.strip_prefix("cmdstat_")?;
            let calls = value
                .split(',')
                .find_map(|kv| kv.strip_prefix("calls="))?
                .trim()
                .parse()
                .ok()?;
            let base = command.split('|').next().unwrap_or(command);
            (!HOUSEKEEPING.contains(&base)).then(|| (command.to_owned(), calls))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const INFO: &str = "# CPU\r\nused_cpu_sys:1.500000\r\nused_cpu_user:2.250000\r\n\
        used_cpu_sys_children:9.0\r\n\r\n# Commandstats\r\n\
        cmdstat_hgetall:calls=10,usec=30,usec_per_call=3.00,rejected_calls=0,failed_calls=0\r\n\
        cmdstat_evalsha:calls=4,usec=40,usec_per_call=10.00,rejected_calls=0,failed_calls=0\r\n\
        cmdstat_config|resetstat:calls=1,usec=5,usec_per_call=5.00\r\n\
        cmdstat_info:calls=3,usec=50,usec_per_call=16.67\r\n";

    #[test]
    fn reads_cpu_and_commands() {
        let mut s = Snapshot::default();
        s.add_info(INFO);
        assert!((s.cpu_seconds - 3.75).abs() < 1e-9);
        assert_eq!(s.total_calls(), 14);
        assert_eq!(s.calls.get("evalsha"), Some(&4));
        let mut later = s.clone();
        later.add_info(INFO);
        let d = s.until(&later);
        assert!((d.cpu_seconds - 3.75).abs() < 1e-9);
        assert_eq!(d.total_calls(), 14);
        assert_eq!(
            text_field("redis_version:7.0.15\r\n", "redis_version"),
            Some("7.0.15")
        );
    }
}
