//! The provider choice on this machine: a pull that cannot succeed is a reason to fall back
//! to local processes, not an error, and an explicit choice that cannot be met fails with one
//! line. Needs `redis-server` (or `valkey-server`) on `PATH`, as the README's set-up says.

use std::time::Duration;

use session_testkit::topology::{
    Provider, ProviderChoice, ProviderRequest, RedisDeployment, Shape, TopologyError,
};

/// An image no registry has, so its pull fails wherever the test runs.
const UNPULLABLE: &str = "session-testkit/no-such-image-ever-published:never";

#[tokio::test]
async fn a_pull_that_cannot_succeed_falls_back_to_processes() {
    let choice = ProviderChoice::choose(ProviderRequest::Auto, UNPULLABLE)
        .unwrap_or_else(|e| panic!("auto must fall back to processes: {e}"));
    assert_eq!(choice.provider, Provider::Processes, "{choice}");
    assert_eq!(choice.requested, ProviderRequest::Auto);
    let [(skipped, why)] = choice.skipped.as_slice() else {
        panic!("exactly containers must have been skipped: {choice}");
    };
    assert_eq!(*skipped, Provider::Containers);
    // Where Docker answers, the reason is the image; elsewhere, Docker itself.
    assert!(
        why.contains(UNPULLABLE) || why.contains("Docker does not answer"),
        "{why}"
    );
    assert!(!why.contains('\n'), "one line: {why:?}");
    let shown = choice.to_string();
    assert!(
        shown.starts_with("processes (auto; containers: "),
        "{shown}"
    );

    // And the choice works: a server on it answers.
    let dep = RedisDeployment::start_with(Shape::Standalone, choice.provider)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    dep.wait_healthy(Duration::from_secs(10))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn an_explicit_choice_that_cannot_be_met_fails_in_one_line() {
    let err = ProviderChoice::choose(ProviderRequest::Exactly(Provider::Containers), UNPULLABLE)
        .expect_err("the image cannot be pulled");
    assert!(
        matches!(
            err,
            TopologyError::ProviderUnavailable {
                provider: Provider::Containers,
                ..
            }
        ),
        "{err:?}"
    );
    let line = err.to_string();
    assert!(!line.contains('\n'), "one line: {line:?}");
    assert!(
        line.starts_with("the containers provider was requested but cannot be used: "),
        "{line}"
    );
}

#[test]
fn an_explicit_processes_choice_is_obeyed() {
    // Obeyed even though auto would consider containers first.
    let choice = ProviderChoice::choose(ProviderRequest::Exactly(Provider::Processes), "redis:7.4")
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(choice.provider, Provider::Processes);
    assert!(choice.skipped.is_empty());
}

#[test]
fn requests_parse_and_unknown_ones_are_refused() {
    assert_eq!(
        "".parse::<ProviderRequest>().unwrap(),
        ProviderRequest::Auto
    );
    assert_eq!(
        " auto ".parse::<ProviderRequest>().unwrap(),
        ProviderRequest::Auto
    );
    assert_eq!(
        "containers".parse::<ProviderRequest>().unwrap(),
        ProviderRequest::Exactly(Provider::Containers)
    );
    assert_eq!(
        "url".parse::<ProviderRequest>().unwrap(),
        ProviderRequest::Exactly(Provider::Url)
    );
    let err = "docker".parse::<ProviderRequest>().unwrap_err();
    assert!(matches!(err, TopologyError::Config(_)), "{err:?}");
}

/// With a registry, or an image at hand, containers stay the first choice. CI runs this with
/// `REDIS_TEST_IMAGE` set to its local image; without the variable it says so and returns.
#[test]
fn auto_takes_containers_when_the_image_is_present() {
    let Some(image) = std::env::var("REDIS_TEST_IMAGE")
        .ok()
        .filter(|i| !i.trim().is_empty())
    else {
        eprintln!("skipped: set REDIS_TEST_IMAGE to an image Docker has or can pull");
        return;
    };
    let choice =
        ProviderChoice::choose(ProviderRequest::Auto, &image).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(choice.provider, Provider::Containers, "{choice}");
    assert!(choice.skipped.is_empty(), "{choice}");
    assert_eq!(choice.to_string(), "containers (auto)");
}
