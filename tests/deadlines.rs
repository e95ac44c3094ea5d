//! Small bodies from a hostile registry and token server: token lifetimes out of any range,
//! manifests, tag pages and token answers cut short or trickled a byte at a time, and a token
//! server that asks to be given time. Each run ends, by itself, with the exit code the
//! failure calls for: retried and successful when the failure passes, exit 5 when it does not.

mod support;

use support::front::{Action, Front};
use support::images;
use support::registry::{Setup, TestRegistry};
use support::{TempDir, TestCache};

/// A plain registry holding a small image as `deadlines/app:v1`.
fn registry_with_image(dir: &TempDir) -> TestRegistry {
    let registry = TestRegistry::start(Setup::Plain);
    let archive = images::docker_archive(dir.path(), "example.com/app:v1");
    let target = format!("{}/deadlines/app:v1", registry.host());
    TestCache::new()
        .run(&["push", archive.to_str().unwrap(), &target])
        .success();
    registry
}

/// A front that asks for a Bearer token from `issuer` on every request without one, and
/// forwards the rest to `registry` (which takes any token: it asks for none).
fn bearer_front(registry: &TestRegistry, issuer: &Front) -> Front {
    let realm = format!("http://{}/token", issuer.host());
    Front::start(registry.port(), move |request, _| {
        match request.authorization {
            Some(_) => Action::Forward,
            None => Action::Respond(
                401,
                vec![(
                    "WWW-Authenticate".into(),
                    format!("Bearer realm=\"{realm}\",service=\"deadlines\""),
                )],
            ),
        }
    })
}

/// A token answer with this `expires_in` (as JSON text).
fn token_answer(expires_in: &str) -> Action {
    let body = format!(r#"{{"token":"t0k3n","expires_in":{expires_in}}}"#);
    let json = vec![("Content-Type".into(), "application/json".into())];
    Action::Reply(200, json, body)
}

#[test]
fn a_token_lifetime_out_of_any_range_is_clamped() {
    let dir = TempDir::new("expires-in");
    let registry = registry_with_image(&dir);
    for expires_in in [
        "18446744073709551615",
        "9223372036854775807",
        "-5",
        "1.5",
        "1e300",
        "\"soon\"",
        "null",
    ] {
        let issuer = Front::start(registry.port(), move |_, _| token_answer(expires_in));
        let front = bearer_front(&registry, &issuer);
        let run = TestCache::new().run(&["pull", &format!("{}/deadlines/app:v1", front.host())]);
        assert_eq!(
            run.code, 0,
            "expires_in {expires_in}:\n{}{}",
            run.stdout, run.stderr
        );
        assert!(!issuer.seen().is_empty(), "no token was asked for");
    }
}
