//! The little URL handling the registry protocol needs: resolving a `Location` against the
//! request URL, telling whether two URLs share an origin (scheme, host and port), and
//! percent-encoding query values.

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
