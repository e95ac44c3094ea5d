//! Image references: `[registry/]repository[:tag][@sha256:…]`, normalised the way Docker does
//! (`nginx` is `docker.io/library/nginx:latest`).

use std::fmt;

use crate::digest::Digest;
use crate::inert::inert;

mod pick;
pub use pick::NameQuery;

/// The registry a reference without a host names.
pub const DEFAULT_REGISTRY: &str = "docker.io";
/// The host Docker Hub's registry API answers at ([`DEFAULT_REGISTRY`] names it).
pub const DOCKER_HUB_API: &str = "registry-1.docker.io";
/// Every name Docker Hub goes by: in references, in `config.json` keys, as its API host.
const DOCKER_HUB_NAMES: [&str; 3] = [DEFAULT_REGISTRY, "index.docker.io", DOCKER_HUB_API];
/// The tag a reference without a tag or digest names.
pub const DEFAULT_TAG: &str = "latest";
const MAX_NAME_LENGTH: usize = 255;
const MAX_TAG_LENGTH: usize = 128;

/// A repository of a registry (`registry/path`), as mounts and the memo's holders name it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RepositoryName {
    /// The registry host, with its port if one was given.
    pub registry: String,
    /// The repository path inside the registry.
    pub path: String,
}

impl RepositoryName {
    /// Reads `registry/path` (a registry host never holds a `/`).
    pub fn parse(text: &str) -> Option<RepositoryName> {
        let (registry, path) = text.split_once('/')?;
        (!registry.is_empty() && !path.is_empty()).then(|| RepositoryName {
            registry: registry.to_string(),
            path: path.to_string(),
        })
    }
}

impl fmt::Display for RepositoryName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.path)
    }
}

/// A parsed, normalised image reference.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Reference {
    registry: String,
    repository: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

impl Reference {
    /// Parses and normalises `text`; the error says what is wrong with it.
    pub fn parse(text: &str) -> Result<Reference, String> {
        refuse_credentials(text)?;
        Reference::parse_with_host(text, text, None)
    }

    /// Parses `[http[s]://]host/repository[:tag][@digest]`: with a scheme, the first component
    /// is the host whatever it looks like, and the scheme is returned too.
    pub fn parse_url(text: &str) -> Result<(Option<&'static str>, Reference), String> {
        refuse_credentials(text)?;
        let (scheme, rest) = match (text.strip_prefix("https://"), text.strip_prefix("http://")) {
            (Some(rest), _) => ("https", rest),
            (_, Some(rest)) => ("http", rest),
            _ => return Reference::parse(text).map(|reference| (None, reference)),
        };
        let Some((host, path)) = rest.trim_end_matches('/').split_once('/') else {
            return Err(format!(
                "invalid reference \"{}\": a repository must follow the host",
                inert(text)
            ));
        };
        Reference::parse_with_host(text, path, Some(host))
            .map(|reference| (Some(scheme), reference))
    }

    /// Parses `text` (the part after the host, when `host` is given); `whole` names the input
    /// in errors.
    fn parse_with_host(whole: &str, text: &str, host: Option<&str>) -> Result<Reference, String> {
        let invalid = |why: &str| format!("invalid reference \"{}\": {why}", inert(whole));
        if text.is_empty() {
            return Err(invalid("it is empty"));
        }
        let (name, tag, digest) = split(text);
        let digest = match digest {
            Some(digest) => Some(Digest::parse(digest).map_err(|e| invalid(&e))?),
            None => None,
        };
        if let Some(tag) = tag {
            check_tag(tag).map_err(|e| invalid(&e))?;
        }
        let (registry, path) = match host.map(|host| (host, name)).or_else(|| split_host(name)) {
            Some((host, path)) => {
                check_host(host).map_err(|e| invalid(&e))?;
                (normalise_host(host), path)
            }
            None => (DEFAULT_REGISTRY.to_string(), name),
        };
        check_path(path).map_err(|e| invalid(&e))?;
        let repository = if registry == DEFAULT_REGISTRY && !path.contains('/') {
            format!("library/{path}")
        } else {
            path.to_string()
        };
        if registry.len() + 1 + repository.len() > MAX_NAME_LENGTH {
            return Err(invalid(&format!(
                "name longer than {MAX_NAME_LENGTH} characters"
            )));
        }
        let tag = match (tag, &digest) {
            (None, None) => Some(DEFAULT_TAG.to_string()),
            (tag, _) => tag.map(str::to_string),
        };
        Ok(Reference {
            registry,
            repository,
            tag,
            digest,
        })
    }

    /// The registry host, with its port if one was given (`docker.io`, `localhost:5000`).
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// The repository path inside the registry (`library/nginx`).
    pub fn repository(&self) -> &str {
        &self.repository
    }

    /// The manifest digest, if one was given.
    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// The tag, if the reference names one.
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The name as Docker shows it and `docker load` wants it in `RepoTags`: `busybox:latest`,
    /// `user/app:v1`, `registry.example.com/app:v1`; `None` without a tag.
    pub fn familiar(&self) -> Option<String> {
        let tag = self.tag.as_ref()?;
        let repository = self.familiar_repository();
        Some(match self.registry.as_str() {
            DEFAULT_REGISTRY => format!("{repository}:{tag}"),
            registry => format!("{registry}/{repository}:{tag}"),
        })
    }

    /// The repository as Docker shows it: Docker Hub's `library/` left out (`nginx`).
    pub fn familiar_repository(&self) -> &str {
        match self.registry.as_str() {
            DEFAULT_REGISTRY => {
                (self.repository.strip_prefix("library/")).unwrap_or(&self.repository)
            }
            _ => &self.repository,
        }
    }

    /// The same repository, pinned to `digest` (without a tag).
    pub fn with_digest(&self, digest: Digest) -> Reference {
        Reference {
            tag: None,
            digest: Some(digest),
            ..self.clone()
        }
    }

    /// The same repository, at `tag` (without a digest); a tag that is not one is refused.
    pub fn with_tag(&self, tag: &str) -> crate::error::Result<Reference> {
        check_tag(tag).map_err(crate::error::Error::BadInput)?;
        Ok(Reference {
            tag: Some(tag.to_string()),
            digest: None,
            ..self.clone()
        })
    }

    /// `registry/repository`, the full name without tag or digest.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// The repository it names, on its registry.
    pub fn repository_name(&self) -> RepositoryName {
        RepositoryName {
            registry: self.registry.clone(),
            path: self.repository.clone(),
        }
    }

    /// What the registry API calls the reference: the digest when there is one, else the tag.
    pub fn reference(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(digest), _) => digest.to_string(),
            (None, Some(tag)) => tag.clone(),
            (None, None) => DEFAULT_TAG.to_string(),
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

/// Refuses a reference that carries `user[:password]@` before its host, naming it with the
/// credentials hidden: a password never reaches a message.
fn refuse_credentials(text: &str) -> Result<(), String> {
    match credentials_span(text) {
        None => Ok(()),
        Some(_) => Err(format!(
            "invalid reference \"{}\": credentials in references are not accepted; give -u \
             USER with --password-stdin (or DOCKER_PUSHER_PASSWORD)",
            inert(&hide_credentials(text))
        )),
    }
}

/// `text` (a line a user wrote) with the `user[:password]` of every word that carries one
/// before a host replaced by `***`.
pub fn hide_credentials(text: &str) -> String {
    (text.split(' '))
        .map(|word| match credentials_span(word) {
            Some((start, end)) => format!("{}***{}", &word[..start], &word[end..]),
            None => word.to_string(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Where the `user[:password]` of `[scheme://]user[:password]@host/…` lies in `word`. An `@`
/// that starts a digest (`name:tag@sha256:…`) or follows a `/` is not one.
fn credentials_span(word: &str) -> Option<(usize, usize)> {
    let (scheme, start) = match word.find("://") {
        Some(i) => (true, i + 3),
        None => (false, 0),
    };
    let rest = &word[start..];
    let (before, after) = rest.split_once('@')?;
    let credentials = !before.contains('/')
        && (scheme
            || after.contains('/')
            || (before.contains(':') && !after.starts_with("sha256:")));
    credentials.then_some((start, start + before.len()))
}

/// Splits `name[:tag][@digest]` into its parts as written, without checking them.
pub fn split(text: &str) -> (&str, Option<&str>, Option<&str>) {
    let (rest, digest) = match text.split_once('@') {
        Some((rest, digest)) => (rest, Some(digest)),
        None => (text, None),
    };
    let last_component = rest.rfind('/').map_or(0, |slash| slash + 1);
    match rest[last_component..].find(':') {
        Some(colon) => {
            let colon = last_component + colon;
            (&rest[..colon], Some(&rest[colon + 1..]), digest)
        }
        None => (rest, None, digest),
    }
}

/// Whether `text` (a reference or `http[s]://` URL, as written) names a tag or a digest, rather
/// than a repository alone (which [`Reference::parse`] would take as `:latest`).
pub fn names_a_version(text: &str) -> bool {
    let written = without_scheme(text);
    !matches!(split(written), (_, None, None))
}

/// Splits off the first path component when it names a registry host: it contains `.` or
/// `:`, is `localhost`, or has uppercase letters (repository paths cannot).
pub fn split_host(name: &str) -> Option<(&str, &str)> {
    let (first, rest) = name.split_once('/')?;
    let is_host = first.contains(['.', ':'])
        || first == "localhost"
        || first.chars().any(|c| c.is_ascii_uppercase());
    is_host.then_some((first, rest))
}

/// Whether `host` is one of Docker Hub's names (`docker.io`, `index.docker.io`, its API host).
pub fn is_docker_hub(host: &str) -> bool {
    DOCKER_HUB_NAMES.contains(&host)
}

/// `text` without its `scheme://`, when it has one.
pub fn without_scheme(text: &str) -> &str {
    text.split_once("://").map_or(text, |(_, rest)| rest)
}

fn normalise_host(host: &str) -> String {
    match is_docker_hub(host) {
        true => DEFAULT_REGISTRY.to_string(),
        false => host.to_string(),
    }
}

fn check_host(host: &str) -> Result<(), String> {
    let (name, port) = if let Some(bracketed) = host.strip_prefix('[') {
        let Some((address, after)) = bracketed.split_once(']') else {
            return Err(format!(
                "registry host \"{}\" has an unclosed '['",
                inert(host)
            ));
        };
        if address.is_empty() || !address.chars().all(|c| c.is_ascii_hexdigit() || c == ':') {
            return Err(format!(
                "registry host \"{}\" is not an IPv6 address",
                inert(host)
            ));
        }
        (None, after.strip_prefix(':'))
    } else {
        match host.split_once(':') {
            Some((name, port)) => (Some(name), Some(port)),
            None => (Some(host), None),
        }
    };
    if let Some(name) = name {
        let label_ok = |label: &str| {
            !label.is_empty()
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        };
        if !name.split('.').all(label_ok) {
            return Err(format!(
                "registry host \"{}\" is not a valid host name",
                inert(host)
            ));
        }
    }
    if let Some(port) = port {
        let valid = !port.is_empty()
            && port.len() <= 5
            && port.bytes().all(|b| b.is_ascii_digit())
            && port.parse::<u32>().is_ok_and(|p| (1..=65535).contains(&p));
        if !valid {
            return Err(format!(
                "registry port \"{}\" is not a number from 1 to 65535",
                inert(port)
            ));
        }
    }
    Ok(())
}

/// Checks a repository path: `/`-separated components of `[a-z0-9]` joined by `.`, `_`,
/// `__` or runs of `-`.
fn check_path(path: &str) -> Result<(), String> {
    if path.is_empty() {
        return Err("repository name is missing".into());
    }
    if path.chars().any(|c| c.is_ascii_uppercase()) {
        return Err("repository name must be lowercase".into());
    }
    for component in path.split('/') {
        if component.is_empty() {
            return Err("repository name has an empty path component".into());
        }
        if !component_is_valid(component) {
            return Err(format!(
                "repository path component \"{}\" may only hold a-z, 0-9 and \
                 single separators (., _, __, -) between them",
                inert(component)
            ));
        }
    }
    Ok(())
}

fn component_is_valid(component: &str) -> bool {
    let bytes = component.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let mut i = 0;
    while i < bytes.len() {
        if alnum(bytes[i]) {
            i += 1;
            continue;
        }
        // A separator: it must sit between alphanumerics.
        let start = i;
        while i < bytes.len() && !alnum(bytes[i]) {
            i += 1;
        }
        let separator = &component[start..i];
        let allowed = matches!(separator, "." | "_" | "__") || separator.bytes().all(|b| b == b'-');
        if start == 0 || i == bytes.len() || !allowed {
            return false;
        }
    }
    !component.is_empty()
}

/// Checks that `tag` is a valid tag: 1 to 128 of `A-Z a-z 0-9 _ . -`, not starting with `.`
/// or `-`.
pub fn check_tag(tag: &str) -> Result<(), String> {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut chars = tag.chars();
    let valid = chars.next().is_some_and(word)
        && chars.all(|c| word(c) || c == '.' || c == '-')
        && tag.len() <= MAX_TAG_LENGTH;
    if valid {
        Ok(())
    } else {
        Err(format!(
            "tag \"{}\" must be 1 to {MAX_TAG_LENGTH} of A-Z a-z 0-9 _ . - and not start with . or -",
            inert(tag)
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_hub_is_one_registry_by_every_name() {
        for name in ["docker.io", "index.docker.io", "registry-1.docker.io"] {
            assert!(is_docker_hub(name), "{name}");
            let parsed = Reference::parse(&format!("{name}/library/nginx")).unwrap();
            assert_eq!(parsed.to_string(), "docker.io/library/nginx:latest");
        }
        assert!(!is_docker_hub("docker.example.com"));
        assert_eq!(without_scheme("https://h:5000/v2/"), "h:5000/v2/");
        assert_eq!(without_scheme("h:5000"), "h:5000");
    }

    #[test]
    fn a_version_is_a_tag_or_a_digest_as_written() {
        assert!(!names_a_version("ghcr.io/org/tool"));
        assert!(!names_a_version("http://127.0.0.1:5000/team/app"));
        assert!(names_a_version("127.0.0.1:5000/team/app:v1"));
        assert!(names_a_version("https://r.example.com/app@sha256:0123"));
    }

    const HEX: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn valid_references_normalise() {
        let cases = [
            ("nginx", "docker.io/library/nginx:latest"),
            ("nginx:1.25", "docker.io/library/nginx:1.25"),
            ("library/nginx", "docker.io/library/nginx:latest"),
            ("docker.io/nginx", "docker.io/library/nginx:latest"),
            (
                "index.docker.io/library/nginx:x",
                "docker.io/library/nginx:x",
            ),
            ("user/app", "docker.io/user/app:latest"),
            ("a/b/c/d:v1", "docker.io/a/b/c/d:v1"),
            ("localhost/x", "localhost/x:latest"),
            ("localhost:5000/x", "localhost:5000/x:latest"),
            ("host:5000/a/b:tag", "host:5000/a/b:tag"),
            ("127.0.0.1:5000/app:v1", "127.0.0.1:5000/app:v1"),
            ("[::1]:5000/app:v1", "[::1]:5000/app:v1"),
            (
                "registry.example.com/project/app",
                "registry.example.com/project/app:latest",
            ),
            (
                "Registry.Example.com/app",
                "Registry.Example.com/app:latest",
            ),
            ("MyHost/app", "MyHost/app:latest"),
            ("a/b@sha256:HEX", "docker.io/a/b@sha256:HEX"),
            ("a/b:tag@sha256:HEX", "docker.io/a/b:tag@sha256:HEX"),
            (
                "org/my-app_x.y__z/a--b",
                "docker.io/org/my-app_x.y__z/a--b:latest",
            ),
            ("my_org/app", "docker.io/my_org/app:latest"),
            ("app:V1.0-rc_1", "docker.io/library/app:V1.0-rc_1"),
            ("app:_x", "docker.io/library/app:_x"),
            ("0/1:2", "docker.io/0/1:2"),
        ];
        for (input, expected) in cases {
            let input = input.replace("HEX", HEX);
            let expected = expected.replace("HEX", HEX);
            let parsed = Reference::parse(&input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(parsed.to_string(), expected, "{input}");
        }
    }

    #[test]
    fn invalid_references_are_refused() {
        let cases = [
            ("", "empty"),
            ("Nginx", "lowercase"),
            ("user/App", "lowercase"),
            ("a//b", "empty path component"),
            ("a/", "empty path component"),
            ("/a", "empty path component"),
            ("nginx:", "tag"),
            ("nginx:-x", "tag"),
            ("nginx:.x", "tag"),
            ("nginx:a b", "tag"),
            ("a@sha256:abc", "64"),
            ("a@md5:abc", "unsupported algorithm"),
            ("a@", "invalid digest"),
            ("a@sha256:HEXA", "64"),
            ("-a", "path component"),
            ("a-", "path component"),
            ("a..b", "path component"),
            ("a___b", "path component"),
            ("a.-b", "path component"),
            ("host:0/app", "port"),
            ("host:99999/app", "port"),
            ("host:port/app", "port"),
            ("-host.com/app", "host"),
            ("[::1/app", "'['"),
            ("localhost:5000/", "missing"),
            (":tag", "missing"),
            ("a b", "path component"),
        ];
        for (input, why) in cases {
            let input = input.replace("HEX", HEX);
            let error = Reference::parse(&input).expect_err(&input);
            assert!(
                error.contains(why),
                "{input}: {error} does not mention {why}"
            );
        }
        let long = format!("a/{}", "b".repeat(300));
        assert!(Reference::parse(&long).unwrap_err().contains("longer"));
        let long_tag = format!("a:{}", "t".repeat(129));
        assert!(Reference::parse(&long_tag).unwrap_err().contains("tag"));
    }

    #[test]
    fn parts_are_available() {
        let r = Reference::parse("localhost:5000/team/app:v2").unwrap();
        assert_eq!(r.name(), "localhost:5000/team/app");
        assert_eq!(r.reference(), "v2");
        let pinned = Reference::parse(&format!("app@sha256:{HEX}")).unwrap();
        assert_eq!(pinned.reference(), format!("sha256:{HEX}"));
        let both = Reference::parse(&format!("app:v1@sha256:{HEX}")).unwrap();
        assert_eq!(
            both.reference(),
            format!("sha256:{HEX}"),
            "the digest wins over the tag"
        );
    }

    #[test]
    fn urls_take_the_first_component_as_the_host() {
        let (scheme, r) = Reference::parse_url("https://registry/project/app:v1").unwrap();
        assert_eq!(
            (scheme, r.to_string().as_str()),
            (Some("https"), "registry/project/app:v1")
        );
        let (scheme, r) = Reference::parse_url("http://127.0.0.1:5000/app").unwrap();
        assert_eq!(
            (scheme, r.to_string().as_str()),
            (Some("http"), "127.0.0.1:5000/app:latest")
        );
        let (scheme, r) =
            Reference::parse_url("https://registry-1.docker.io/library/busybox").unwrap();
        assert_eq!(
            (scheme, r.to_string().as_str()),
            (Some("https"), "docker.io/library/busybox:latest")
        );
        let (scheme, r) = Reference::parse_url("app/web:v1").unwrap();
        assert_eq!(
            (scheme, r.to_string().as_str()),
            (None, "docker.io/app/web:v1")
        );
        assert!(Reference::parse_url("https://bad_host/app").is_err());
        assert!(
            Reference::parse_url("https://host")
                .unwrap_err()
                .contains("repository must follow")
        );
    }

    #[test]
    fn familiar_names_are_what_docker_shows() {
        let familiar = |text: &str| Reference::parse(text).unwrap().familiar();
        assert_eq!(familiar("busybox").as_deref(), Some("busybox:latest"));
        assert_eq!(
            familiar("docker.io/user/app:v1").as_deref(),
            Some("user/app:v1")
        );
        assert_eq!(
            familiar("localhost:5000/app:v2").as_deref(),
            Some("localhost:5000/app:v2")
        );
        assert_eq!(familiar(&format!("app@sha256:{HEX}")), None);
    }

    #[test]
    fn split_keeps_the_port_out_of_the_tag() {
        assert_eq!(
            split("localhost:5000/app"),
            ("localhost:5000/app", None, None)
        );
        assert_eq!(
            split("localhost:5000/app:v1"),
            ("localhost:5000/app", Some("v1"), None)
        );
        assert_eq!(split("app@sha256:x"), ("app", None, Some("sha256:x")));
    }

    #[test]
    fn credentials_in_references_are_refused_without_being_shown() {
        for text in [
            "user:hunter2@registry.example.com/app:v1",
            "https://user:hunter2@registry.example.com/app:v1",
            "http://user:hunter2@127.0.0.1:5000/app",
            "user:hunter2@127.0.0.1:5000",
            "user@registry.example.com/app",
        ] {
            let error = Reference::parse_url(text).unwrap_err();
            assert!(
                error.contains("credentials in references"),
                "{text}: {error}"
            );
            assert!(!error.contains("hunter2"), "{error}");
            let error = Reference::parse(text).unwrap_err();
            assert!(!error.contains("hunter2"), "{error}");
        }
        assert_eq!(
            hide_credentials("https://u:hunter2@r.example/a:1 u:pw@s.example/b:2 ./app@2.tar"),
            "https://***@r.example/a:1 ***@s.example/b:2 ./app@2.tar"
        );
        for text in [
            &format!("app@sha256:{HEX}"),
            &format!("app:v1@sha256:{HEX}"),
            &format!("a/b:tag@sha256:{HEX}"),
            &format!("registry.example.com:5000/a/b@sha256:{HEX}"),
        ] {
            assert!(Reference::parse(text).is_ok(), "{text}");
        }
    }
}
