//! Networks as companies have them: a forward proxy named by `HTTPS_PROXY` (upper or lower
//! case), hosts that `NO_PROXY` sends direct, loopback that never goes through a proxy, and a
//! private CA trusted through `SSL_CERT_FILE`. The registry's credentials reach the registry
//! only, inside TLS: the proxy never sees them.

mod support;

use std::path::Path;

use support::access::archive;
use support::images::{listed_identity, skopeo_identity};
use support::proxy::Proxy;
use support::registry::{ROBOT_PASSWORD, ROBOT_USER, Setup, TestRegistry};
use support::{Run, TempDir, TestCache, base64, command};

/// Runs the binary with this cache, only the proxy and certificate variables in `env` (all
/// others of those cleared), and standard input closed.
fn run_in_network(cache: &TestCache, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut command = command(&["--cache-dir", cache.path().to_str().unwrap()]);
    command.args(args);
    for name in [
        "HTTPS_PROXY",
        "https_proxy",
        "HTTP_PROXY",
        "http_proxy",
        "ALL_PROXY",
        "all_proxy",
        "NO_PROXY",
        "no_proxy",
        "SSL_CERT_FILE",
        "SSL_CERT_DIR",
    ] {
        command.env_remove(name);
    }
    command.envs(env.iter().copied());
    Run::from(command.output().expect("running the binary"))
}

fn ca_path(registry: &TestRegistry) -> &Path {
    registry.ca_cert.as_deref().expect("an HTTPS registry")
}

#[test]
fn through_a_proxy_credentials_reach_only_the_registry_and_ssl_cert_file_is_trusted() {
    let registry = TestRegistry::start(Setup::Basic {
        username: ROBOT_USER,
        password: ROBOT_PASSWORD,
    });
    let proxy = Proxy::start(Some(("proxy-user", "proxy-pass")));
    let dir = TempDir::new("proxy");
    let archive = archive(&dir);
    let image = format!("registry.test:{}/net/app:v1", registry.port());
    let proxy_url = proxy
        .url()
        .replace("http://", "http://proxy-user:proxy-pass@");
    let ca = ca_path(&registry).to_str().unwrap();
    let env = [("HTTPS_PROXY", proxy_url.as_str()), ("SSL_CERT_FILE", ca)];
    let login = ["-u", ROBOT_USER, "-p", ROBOT_PASSWORD];

    let pushed = run_in_network(
        &TestCache::new(),
        &[&["push", archive.to_str().unwrap(), &image][..], &login].concat(),
        &env,
    )
    .success();
    let cache = TestCache::new();
    run_in_network(
        &cache,
        &[&["pull", &image, "--verbose"][..], &login].concat(),
        &env,
    )
    .success()
    .stderr
    .contains("through the proxy http://***@127.0.0.1")
    .then_some(())
    .expect("--verbose names the proxy, without its password");
    assert_eq!(
        listed_identity(&cache.list()[0]),
        skopeo_identity(&format!("docker-archive:{}", archive.display()))
    );

    let targets = proxy.targets();
    assert!(!targets.is_empty(), "nothing went through the proxy");
    let registry_name = format!("registry.test:{}", registry.port());
    assert!(targets.iter().all(|t| *t == registry_name), "{targets:?}");
    for head in proxy.heads() {
        assert!(head.contains("Proxy-Authorization: Basic"), "{head}");
        assert!(
            !head.to_ascii_lowercase().contains("\nauthorization:"),
            "a registry credential in the CONNECT: {head}"
        );
    }
    let basic = base64(format!("{ROBOT_USER}:{ROBOT_PASSWORD}").as_bytes());
    assert!(!proxy.saw_bytes(ROBOT_PASSWORD.as_bytes()));
    assert!(!proxy.saw_bytes(basic.as_bytes()));
    assert!(!pushed.stderr.contains("proxy-pass"), "{}", pushed.stderr);

    // The same request without the private CA fails on the certificate, and says how to fix it.
    let untrusted = run_in_network(
        &TestCache::new(),
        &[&["pull", &image][..], &login].concat(),
        &[("https_proxy", proxy_url.as_str())],
    )
    .exits(5);
    assert!(
        untrusted.stderr.contains("certificate verification failed")
            && untrusted.stderr.contains("--ca-cert"),
        "{}",
        untrusted.stderr
    );
}

#[test]
fn no_proxy_and_loopback_go_direct() {
    let registry = TestRegistry::start(Setup::Tls);
    let proxy = Proxy::start(None);
    let dir = TempDir::new("no-proxy");
    let archive = archive(&dir);
    let ca = ca_path(&registry).to_str().unwrap();
    let url = proxy.url();
    let proxied = format!("registry.test:{}/net/app:v1", registry.port());

    // Loopback goes direct even with every proxy variable set.
    let everything = [
        ("HTTPS_PROXY", url.as_str()),
        ("HTTP_PROXY", url.as_str()),
        ("ALL_PROXY", url.as_str()),
        ("SSL_CERT_FILE", ca),
    ];
    let loopback = format!("{}/net/app:v1", registry.host());
    run_in_network(
        &TestCache::new(),
        &["push", archive.to_str().unwrap(), &loopback],
        &everything,
    )
    .success();
    assert_eq!(
        proxy.targets(),
        Vec::<String>::new(),
        "loopback was proxied"
    );

    // A NO_PROXY entry that names another domain leaves the proxy in use (lower case here).
    run_in_network(
        &TestCache::new(),
        &["pull", &proxied],
        &[
            ("https_proxy", url.as_str()),
            ("no_proxy", ".example.com,10.0.0.0/8"),
            ("SSL_CERT_FILE", ca),
        ],
    )
    .success();
    let through = proxy.targets().len();
    assert!(through > 0, "the pull did not use the proxy");

    // NO_PROXY naming the registry sends it direct: the proxy sees nothing, and the name,
    // which only the proxy resolves, is not found.
    let direct = run_in_network(
        &TestCache::new(),
        &["pull", &proxied, "--retry-attempts", "0"],
        &[
            ("HTTPS_PROXY", url.as_str()),
            ("NO_PROXY", "localhost,registry.test"),
            ("SSL_CERT_FILE", ca),
        ],
    )
    .exits(5);
    assert_eq!(proxy.targets().len(), through, "NO_PROXY was not obeyed");
    assert!(direct.stderr.contains("registry.test"), "{}", direct.stderr);
}

#[test]
fn plain_http_to_an_https_registry_says_to_use_https() {
    let registry = TestRegistry::start(Setup::Tls);
    let cache = TestCache::new();
    let image = format!("http://{}/team/app:v1", registry.host());
    let failed = run_in_network(&cache, &["pull", &image, "--retry-attempts", "2"], &[]).exits(5);
    let fix = format!(
        "this registry speaks HTTPS, not plain HTTP: use https://{}",
        registry.host()
    );
    assert!(failed.stderr.contains(&fix), "{}", failed.stderr);
    assert_eq!(
        failed.stderr.matches("GET ").count(),
        1,
        "said once, not retried: {}",
        failed.stderr
    );
}
