//! Which provider runs the Redis servers. Every part of the decision is made here, once, so
//! the tests, the check program and the benchmarks agree on it and can say why they took it.
//!
//! `auto` (the default) takes the first that works on this machine:
//! 1. containers, when Docker answers and the image is present or can be pulled (a failed
//!    pull is a reason to fall back, not an error: builds behind proxies, air-gapped CI and
//!    Docker Hub rate limits are common);
//! 2. local processes, when `redis-server` (or `valkey-server`) is on `PATH`;
//! 3. else nothing: [`TopologyError::NoProvider`], whose message names the install command
//!    that would add Redis.
//!
//! An explicit choice (`SESSION_TESTKIT_REDIS`, or a program's `--provider`) is obeyed, and
//! fails with one line ([`TopologyError::ProviderUnavailable`]) when it cannot be met.

use std::fmt;

use super::{TopologyError, containers, processes};

/// How the Redis servers are provided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Provider {
    /// Docker containers started with testcontainers.
    Containers,
    /// `redis-server` (or `valkey-server`) processes on loopback ports.
    Processes,
    /// An external deployment given by URLs in environment variables.
    Url,
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Provider::Containers => "containers",
            Provider::Processes => "processes",
            Provider::Url => "url",
        })
    }
}

impl Provider {
    /// The provider [`ProviderChoice::from_env`] takes (see there).
    pub fn from_env() -> Result<Provider, TopologyError> {
        ProviderChoice::from_env().map(|c| c.provider)
    }

    /// Whether this provider can be used on this machine right now: Docker answers and the
    /// image of `REDIS_TEST_IMAGE` is present or can be pulled; `redis-server` or
    /// `valkey-server` is on `PATH`; or the URL variable is set for the standalone topology.
    pub fn is_available(self) -> bool {
        self.unusable(&containers::image_spec()).is_none()
    }

    /// Why this provider cannot be used (with containers of `image`), or `None` if it can.
    /// The container probe is cached per image for the life of the process.
    fn unusable(self, image: &str) -> Option<String> {
        match self {
            Provider::Containers => containers::usable(image).err(),
            Provider::Processes => processes::binaries().is_none().then(processes::no_server),
            Provider::Url => std::env::var("SESSION_TESTKIT_REDIS_URL")
                .is_err()
                .then(|| "SESSION_TESTKIT_REDIS_URL is not set".to_string()),
        }
    }
}

/// What the user asked for: `SESSION_TESTKIT_REDIS`, or a program's `--provider`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProviderRequest {
    /// The first that works: containers, else processes (see [`ProviderChoice::choose`]).
    Auto,
    /// Exactly this provider, or an error saying why it cannot be used.
    Exactly(Provider),
}

impl fmt::Display for ProviderRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProviderRequest::Auto => f.write_str("auto"),
            ProviderRequest::Exactly(p) => p.fmt(f),
        }
    }
}

impl std::str::FromStr for ProviderRequest {
    type Err = TopologyError;

    /// `auto` (or empty), `containers`, `processes` or `url`.
    fn from_str(s: &str) -> Result<Self, TopologyError> {
        match s.trim() {
            "" | "auto" => Ok(ProviderRequest::Auto),
            "containers" => Ok(ProviderRequest::Exactly(Provider::Containers)),
            "processes" => Ok(ProviderRequest::Exactly(Provider::Processes)),
            "url" => Ok(ProviderRequest::Exactly(Provider::Url)),
            other => Err(TopologyError::Config(format!(
                "provider {other:?}: expected `auto`, `containers`, `processes` or `url`"
            ))),
        }
    }
}

impl ProviderRequest {
    /// `SESSION_TESTKIT_REDIS`; unset or empty is [`ProviderRequest::Auto`].
    pub fn from_env() -> Result<Self, TopologyError> {
        std::env::var("SESSION_TESTKIT_REDIS")
            .unwrap_or_default()
            .parse()
            .map_err(|e| match e {
                TopologyError::Config(msg) => TopologyError::Config(format!(
                    "SESSION_TESTKIT_REDIS: {}",
                    msg.trim_start_matches("provider ")
                )),
                other => other,
            })
    }
}

/// The provider taken, and why the ones before it in `auto` were passed over, so programs can
/// say which they took (`Display`: `processes (auto; containers: image redis:7.4 ...)`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderChoice {
    /// The provider to start deployments with.
    pub provider: Provider,
    /// What was asked for.
    pub requested: ProviderRequest,
    /// Providers `auto` tried first and could not use, each with the reason.
    pub skipped: Vec<(Provider, String)>,
}

impl fmt::Display for ProviderChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}", self.provider, self.requested)?;
        for (p, why) in &self.skipped {
            write!(f, "; {p}: {why}")?;
        }
        f.write_str(")")
    }
}

impl ProviderChoice {
    /// The choice for `SESSION_TESTKIT_REDIS`, with the image of `REDIS_TEST_IMAGE` (default
    /// the official `redis:7.4`).
    pub fn from_env() -> Result<Self, TopologyError> {
        Self::for_request(ProviderRequest::from_env()?)
    }

    /// The choice for `request` (a program's `--provider`), with the image of
    /// `REDIS_TEST_IMAGE` (default the official `redis:7.4`).
    pub fn for_request(request: ProviderRequest) -> Result<Self, TopologyError> {
        Self::choose(request, &containers::image_spec())
    }

    /// The choice for `request`, with containers of `image` (`name[:tag]`).
    ///
    /// `auto` takes containers when Docker answers and `image` is present or can be pulled
    /// (one pull, bounded), else processes when `redis-server` or `valkey-server` is on
    /// `PATH`, else fails with [`TopologyError::NoProvider`] naming what is missing and the
    /// install command that would add Redis. [`ProviderRequest::Exactly`] is checked the same
    /// way and fails with [`TopologyError::ProviderUnavailable`]; `url` is checked when a
    /// deployment starts, since each topology needs its own variables.
    pub fn choose(request: ProviderRequest, image: &str) -> Result<Self, TopologyError> {
        match request {
            ProviderRequest::Exactly(Provider::Url) => Ok(ProviderChoice {
                provider: Provider::Url,
                requested: request,
                skipped: Vec::new(),
            }),
            ProviderRequest::Exactly(provider) => match provider.unusable(image) {
                None => Ok(ProviderChoice {
                    provider,
                    requested: request,
                    skipped: Vec::new(),
                }),
                Some(reason) => Err(TopologyError::ProviderUnavailable { provider, reason }),
            },
            ProviderRequest::Auto => {
                let mut skipped = Vec::new();
                for provider in [Provider::Containers, Provider::Processes] {
                    match provider.unusable(image) {
                        None => {
                            return Ok(ProviderChoice {
                                provider,
                                requested: request,
                                skipped,
                            });
                        }
                        Some(reason) => skipped.push((provider, reason)),
                    }
                }
                let why: Vec<String> = skipped.iter().map(|(p, r)| format!("{p}: {r}")).collect();
                Err(TopologyError::NoProvider(format!(
                    "{}. To add Redis: {}",
                    why.join("; "),
                    processes::install_command()
                )))
            }
        }
    }
}
