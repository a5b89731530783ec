//! What every Redis adapter's builder shares: where Redis is (one URL syntax for all
//! adapters), the namespace, policy, durability and timeouts, and the store it builds.

use std::time::Duration;

use super::layout::KeyLayout;
use super::{Durability, Store, Transport};
use crate::error::{Error, Result};
use crate::handle::Namespace;
use crate::policy::Policy;

/// Where the sessions live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Topology {
    /// One server: `redis://[user:password@]host:port[/db]`.
    Standalone(String),
    /// Redis Cluster: seed node URLs (`redis://[user:password@]host:port`).
    Cluster(Vec<String>),
    /// Redis Sentinel: sentinel URLs and the master's name.
    Sentinel {
        /// Sentinel URLs; credentials in them are the data nodes' (ACL user and password).
        sentinels: Vec<String>,
        /// The monitored master's name.
        master: String,
    },
}

fn bad(why: &str) -> Error {
    Error::InvalidInput(format!("redis URL: {why}"))
}

/// A URL split into `scheme://[auth@]hosts[/path]`, the one place a Redis URL is taken
/// apart: [`Topology::from_url`] reads whole URLs with it, and client crates read one
/// node's URL with [`NodeUrl::parse`] to build their own forms.
struct Split<'a> {
    scheme: &'a str,
    /// `user:password@`, or empty.
    auth: &'a str,
    /// One host, or several separated by commas.
    hosts: &'a str,
    /// `/path`, or empty.
    path: &'a str,
}

fn split(url: &str) -> Result<Split<'_>> {
    let (scheme, rest) = url.split_once("://").ok_or_else(|| bad("missing scheme"))?;
    let (auth, tail) = match rest.rfind('@') {
        Some(at) => (&rest[..=at], &rest[at + 1..]),
        None => ("", rest),
    };
    let (hosts, path) = match tail.find('/') {
        Some(slash) => (&tail[..slash], &tail[slash..]),
        None => (tail, ""),
    };
    if hosts.split(',').any(str::is_empty) {
        return Err(bad("empty host"));
    }
    Ok(Split {
        scheme,
        auth,
        hosts,
        path,
    })
}

fn check_base(base: &str) -> Result<()> {
    if base != "redis" && base != "rediss" {
        return Err(bad("scheme must be redis or rediss"));
    }
    Ok(())
}

/// One node's URL, `redis[s]://[user:password@]host:port[/path]`, in parts: what a client
/// crate needs to write the node in its own URL forms (fred's `redis-cluster://` and
/// `redis-sentinel://` among them). The URLs of a [`Topology`] are all of this form.
///
/// ```
/// use session_core::redis::NodeUrl;
/// let node = NodeUrl::parse("rediss://u:p@h:6380/2").unwrap();
/// assert_eq!((node.scheme, node.auth, node.host, node.path), ("rediss", "u:p@", "h:6380", "/2"));
/// assert!(NodeUrl::parse("redis://a:1,b:2").is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeUrl<'a> {
    /// `redis` or `rediss` (TLS).
    pub scheme: &'a str,
    /// `user:password@`, `:password@`, or empty.
    pub auth: &'a str,
    /// `host:port`.
    pub host: &'a str,
    /// `/path` (a database number), or empty.
    pub path: &'a str,
}

impl<'a> NodeUrl<'a> {
    /// Splits one node's URL; several hosts or a `+mode` scheme are
    /// [`Error::InvalidInput`].
    pub fn parse(url: &'a str) -> Result<Self> {
        let Split {
            scheme,
            auth,
            hosts,
            path,
        } = split(url)?;
        check_base(scheme)?;
        if hosts.contains(',') {
            return Err(bad("one host expected"));
        }
        Ok(NodeUrl {
            scheme,
            auth,
            host: hosts,
            path,
        })
    }
}

impl Topology {
    /// Parses `redis://...` (standalone), `redis+cluster://h1:p1,h2:p2` (cluster seeds) or
    /// `redis+sentinel://h1:p1,h2:p2/master` (the `rediss` forms for TLS). Credentials in the
    /// URL (`user:password@`, an ACL user, or `:password@`) apply to every data node.
    ///
    /// ```
    /// use session_core::redis::Topology;
    /// assert_eq!(
    ///     Topology::from_url("redis+cluster://a:1,b:2").unwrap(),
    ///     Topology::Cluster(vec!["redis://a:1".into(), "redis://b:2".into()])
    /// );
    /// assert!(Topology::from_url("http://x").is_err());
    /// ```
    pub fn from_url(url: &str) -> Result<Self> {
        let Split {
            scheme,
            auth,
            hosts,
            path,
        } = split(url)?;
        let (base, mode) = match scheme.split_once('+') {
            Some((base, mode)) => (base, Some(mode)),
            None => (scheme, None),
        };
        check_base(base)?;
        let urls: Vec<String> = hosts
            .split(',')
            .map(|h| format!("{base}://{auth}{h}"))
            .collect();
        match mode {
            None if hosts.contains(',') => Err(bad("several hosts need +cluster or +sentinel")),
            None => Ok(Topology::Standalone(url.to_owned())),
            Some("cluster") => Ok(Topology::Cluster(urls)),
            Some("sentinel") if path.len() > 1 => Ok(Topology::Sentinel {
                sentinels: urls,
                master: path[1..].to_owned(),
            }),
            Some("sentinel") => Err(bad("sentinel URLs end in /<master name>")),
            Some(other) => Err(bad(&format!("unknown mode {other:?}"))),
        }
    }
}

/// The builder methods every adapter shares, for a builder struct with a `settings:
/// Settings` field and a `Default` impl: `from_settings`, `url`, `topology`, `namespace`,
/// `policy`, `durability`, `connect_timeout`, `response_timeout`.
#[macro_export]
macro_rules! redis_builder_settings {
    () => {
        /// A builder starting from shared settings (as the testkit and the check program
        /// make them).
        pub fn from_settings(settings: $crate::redis::Settings) -> Self {
            let mut builder = Self::default();
            builder.settings = settings;
            builder
        }

        /// Where Redis is, as a URL (see [`Topology::from_url`](
        /// $crate::redis::Topology::from_url)). Errors surface in `build`.
        pub fn url(mut self, url: &str) -> Self {
            self.settings.url(url);
            self
        }

        /// Where Redis is.
        pub fn topology(mut self, topology: $crate::redis::Topology) -> Self {
            self.settings.topology = Some(topology);
            self
        }

        /// Key prefix (default `session`). Invalid names are reported by `build`.
        pub fn namespace(mut self, namespace: &str) -> Self {
            self.settings.namespace(namespace);
            self
        }

        /// Limits, grace periods, touch interval.
        pub fn policy(mut self, policy: $crate::Policy) -> Self {
            self.settings.policy = policy;
            self
        }

        /// `WAIT`-based durability after every write (see [`Durability`](
        /// $crate::redis::Durability)).
        pub fn durability(mut self, durability: Option<$crate::redis::Durability>) -> Self {
            self.settings.durability = durability;
            self
        }

        /// Time to establish a connection (default 2 s).
        pub fn connect_timeout(mut self, d: std::time::Duration) -> Self {
            self.settings.connect_timeout = d;
            self
        }

        /// Time to wait for a batch's replies (default 2 s). With durability on, it is
        /// raised above the `WAIT` timeout.
        pub fn response_timeout(mut self, d: std::time::Duration) -> Self {
            self.settings.response_timeout = d;
            self
        }
    };
}

/// The settings an adapter's builder collects. Invalid input is remembered and reported by
/// [`Settings::check`], so builder methods can stay chainable.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Where Redis is.
    pub topology: Option<Topology>,
    /// Key prefix (default `session`).
    pub namespace: Namespace,
    /// Limits, grace periods, touch interval.
    pub policy: Policy,
    /// `WAIT` after every write.
    pub durability: Option<Durability>,
    /// Time to establish a connection (default 2 s).
    pub connect_timeout: Duration,
    /// Time to wait for a reply (default 2 s).
    pub response_timeout: Duration,
    invalid: Option<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            topology: None,
            namespace: Namespace::default(),
            policy: Policy::default(),
            durability: None,
            connect_timeout: Duration::from_secs(2),
            response_timeout: Duration::from_secs(2),
            invalid: None,
        }
    }
}

impl Settings {
    /// Records an invalid setting (the first one is reported).
    pub fn invalid(&mut self, why: impl Into<String>) {
        self.invalid.get_or_insert(why.into());
    }

    /// Sets the topology from a URL (see [`Topology::from_url`]).
    pub fn url(&mut self, url: &str) {
        match Topology::from_url(url) {
            Ok(t) => self.topology = Some(t),
            Err(e) => self.invalid(e.to_string()),
        }
    }

    /// Sets the namespace.
    pub fn namespace(&mut self, namespace: &str) {
        match Namespace::new(namespace) {
            Ok(n) => self.namespace = n,
            Err(e) => self.invalid(e.to_string()),
        }
    }

    /// The first invalid setting, as [`Error::InvalidInput`].
    pub fn check(&self) -> Result<()> {
        match &self.invalid {
            Some(why) => Err(Error::InvalidInput(why.clone())),
            None => Ok(()),
        }
    }

    /// The topology, or an error if none was given.
    pub fn topology(&self) -> Result<&Topology> {
        self.check()?;
        self.topology
            .as_ref()
            .ok_or_else(|| Error::InvalidInput("no Redis URL or topology given".into()))
    }

    /// The reply timeout, raised above the `WAIT` timeout when durability is on (a `WAIT`
    /// must not time out the batch it ends).
    pub fn effective_response_timeout(&self) -> Duration {
        match self.durability {
            Some(d) => self
                .response_timeout
                .max(d.timeout + Duration::from_secs(1)),
            None => self.response_timeout,
        }
    }

    /// The store over `transport` with these settings.
    pub fn into_store<T: Transport>(self, transport: T) -> Result<Store<T>> {
        Ok(
            Store::new(transport, KeyLayout::new(self.namespace), self.policy)?
                .with_durability(self.durability),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_into_topologies() {
        assert_eq!(
            Topology::from_url("redis+sentinel://u:p@s1:26379,s2:26379/mymaster").unwrap(),
            Topology::Sentinel {
                sentinels: vec!["redis://u:p@s1:26379".into(), "redis://u:p@s2:26379".into()],
                master: "mymaster".into()
            }
        );
        assert_eq!(
            Topology::from_url("rediss+cluster://:pw@a:1,b:2").unwrap(),
            Topology::Cluster(vec!["rediss://:pw@a:1".into(), "rediss://:pw@b:2".into()])
        );
        assert_eq!(
            Topology::from_url("redis://h:1/2").unwrap(),
            Topology::Standalone("redis://h:1/2".into())
        );
        for bad in [
            "redis+sentinel://s1:26379",
            "redis+cluster://a:1,,b:2",
            "http://x",
            "redis+nope://a",
            "nourl",
        ] {
            assert!(
                matches!(Topology::from_url(bad), Err(Error::InvalidInput(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn invalid_settings_are_reported_once_asked() {
        let mut s = Settings::default();
        s.namespace("a{b}");
        s.url("redis://h:1");
        assert!(matches!(s.topology(), Err(Error::InvalidInput(why)) if why.contains("namespace")));
        let mut s = Settings {
            durability: Some(Durability {
                replicas: 1,
                timeout: Duration::from_secs(3),
            }),
            ..Settings::default()
        };
        assert_eq!(s.effective_response_timeout(), Duration::from_secs(4));
        s.durability = None;
        assert_eq!(s.effective_response_timeout(), Duration::from_secs(2));
        assert!(
            matches!(s.topology(), Err(Error::InvalidInput(_))),
            "no topology given"
        );
    }
}
