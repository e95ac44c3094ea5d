//! The little URL handling the registry protocol needs: resolving a `Location` against the
//! request URL, telling whether two URLs share an origin (scheme, host and port) and whether
//! a host is this machine, and percent-encoding query values.

/// `scheme://host[:port]` of an absolute URL.
pub fn origin(url: &str) -> &str {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    let end = url[after_scheme..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |i| after_scheme + i);
    &url[..end]
}

/// Whether two absolute URLs have the same scheme, host and port.
pub fn same_origin(a: &str, b: &str) -> bool {
    origin(a).eq_ignore_ascii_case(origin(b))
}

/// Where a request to `url` goes, seen from the registry at `base`: `Ok(true)` on the
/// registry's own origin (its credentials may go along), `Ok(false)` on another origin (they
/// may not), and an error when it would leave an https registry for plain http.
pub fn own_origin(base: &str, url: &str) -> Result<bool, String> {
    let secure = |u: &str| {
        u.get(..8)
            .is_some_and(|s| s.eq_ignore_ascii_case("https://"))
    };
    if secure(base) && !secure(url) {
        return Err(format!(
            "the registry {base} sent the client to {} over plain http; refused",
            origin(url)
        ));
    }
    Ok(same_origin(base, url))
}

/// Whether `host` (`name`, `name:port`, `[v6]:port`, or a bare address) is this machine:
/// `localhost` or a loopback address.
pub fn is_loopback(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or_default(),
        None if host.parse::<std::net::IpAddr>().is_ok() => host,
        None => host.split(':').next().unwrap_or_default(),
    };
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// `url` without its query, for messages: a storage host's signed query is a credential.
pub fn shown(url: &str) -> &str {
    url.split(['?', '#']).next().unwrap_or(url)
}

/// `location` (absolute, absolute-path or relative, as registries send) resolved against `base`.
pub fn resolve(base: &str, location: &str) -> String {
    if location.starts_with("http://") || location.starts_with("https://") {
        return location.to_string();
    }
    if location.starts_with('/') {
        return format!("{}{location}", origin(base));
    }
    let path_end = base.find(['?', '#']).unwrap_or(base.len());
    let directory = base[..path_end]
        .rfind('/')
        .map_or(base, |slash| &base[..=slash]);
    format!("{directory}{location}")
}

/// `url` with `name=value` added to its query, keeping what is there.
pub fn with_query(url: &str, name: &str, value: &str) -> String {
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}{name}={}", encode(value))
}

/// Percent-encodes everything but the unreserved characters.
pub fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts_are_recognised() {
        for host in [
            "localhost",
            "localhost:5000",
            "127.0.0.1:5000",
            "127.1.2.3",
            "[::1]:5000",
            "::1",
        ] {
            assert!(is_loopback(host), "{host}");
        }
        for host in [
            "registry.example.com",
            "10.0.0.1:5000",
            "localhost.example.com",
        ] {
            assert!(!is_loopback(host), "{host}");
        }
    }

    #[test]
    fn locations_resolve_like_a_browser() {
        let base = "https://r.example.com:5000/v2/a/blobs/uploads/";
        assert_eq!(
            resolve(base, "/v2/a/blobs/uploads/u1?_state=x"),
            "https://r.example.com:5000/v2/a/blobs/uploads/u1?_state=x"
        );
        assert_eq!(
            resolve(base, "https://s3.example.com/b?sig=1"),
            "https://s3.example.com/b?sig=1"
        );
        assert_eq!(
            resolve(base, "u2"),
            "https://r.example.com:5000/v2/a/blobs/uploads/u2"
        );
    }

    #[test]
    fn origins_include_the_port() {
        assert!(same_origin(
            "https://a.example.com/x",
            "HTTPS://A.example.com/y?z"
        ));
        assert!(!same_origin(
            "https://a.example.com/x",
            "https://a.example.com:8443/x"
        ));
        assert!(!same_origin(
            "https://a.example.com/x",
            "http://a.example.com/x"
        ));
    }

    #[test]
    fn credentials_stay_on_the_registrys_own_origin() {
        let base = "https://registry.example.com";
        assert_eq!(
            own_origin(base, "https://registry.example.com/v2/a/x?s=1"),
            Ok(true)
        );
        for elsewhere in [
            "https://registry.example.com.evil.net/v2/",
            "https://registry.example.com:8443/v2/",
            "https://storage.example.com/b?sig=1",
            "https://evil.net/registry.example.com/v2/",
        ] {
            assert_eq!(own_origin(base, elsewhere), Ok(false), "{elsewhere}");
        }
        assert!(own_origin(base, "http://registry.example.com/v2/").is_err());
        assert!(own_origin(base, "http://storage.example.com/u").is_err());
        let plain = "http://127.0.0.1:5000";
        assert_eq!(own_origin(plain, "http://127.0.0.1:5000/v2/"), Ok(true));
        assert_eq!(own_origin(plain, "http://127.0.0.1:5001/v2/"), Ok(false));
        assert_eq!(own_origin(plain, "https://127.0.0.1:5000/v2/"), Ok(false));
    }

    #[test]
    fn shown_urls_lose_their_query() {
        assert_eq!(
            shown("https://s3.example.com/b/x?X-Amz-Signature=abc"),
            "https://s3.example.com/b/x"
        );
    }

    #[test]
    fn queries_keep_what_is_there() {
        assert_eq!(
            with_query("https://r/u?_state=a", "digest", "sha256:ab"),
            "https://r/u?_state=a&digest=sha256%3Aab"
        );
        assert_eq!(
            encode("repository:a/b:pull,push"),
            "repository%3Aa%2Fb%3Apull%2Cpush"
        );
    }
}
