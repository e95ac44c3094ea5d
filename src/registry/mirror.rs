//! Registry mirrors (`--registry-mirror REGISTRY=URL`): pull-through caches such as a Harbor
//! proxy project, Nexus or a Distribution `proxy:` registry, which images of REGISTRY are read
//! from first, in the order given. A mirror that cannot be reached is left alone for the rest
//! of the run; one that lacks an image or fails on it gives way to the next, then to the
//! registry itself. Images keep their own names: only where their bytes come from changes.
//! Credentials for a mirror are its own (from Docker's config.json), never the registry's.

use std::sync::OnceLock;

use super::{Registry, RegistryOptions, RegistrySource};
use crate::error::{Error, Result};
use crate::progress::Progress;
use crate::reference::Reference;

/// One `REGISTRY=URL` as given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MirrorSpec {
    /// The registry it mirrors, normalised (`docker.io`).
    registry: String,
    /// `http` or `https` when the URL names one.
    scheme: Option<&'static str>,
    /// Its `host[:port]`.
    host: String,
    /// The path its images live under (`dockerhub-proxy/` for a Harbor proxy project), or
    /// empty.
    prefix: String,
}

impl MirrorSpec {
    /// Parses `REGISTRY=URL`, URL being `[http[s]://]host[:port][/path]`. `flag` names where it
    /// came from in errors.
    pub fn parse(text: &str, flag: &str) -> Result<MirrorSpec> {
        let invalid = |why: &str| {
            Error::Usage(format!(
                "{flag} {text}: {why}; give REGISTRY=URL, such as \
                 docker.io=https://mirror.example.com:5000"
            ))
        };
        let (registry, url) = text.split_once('=').ok_or_else(|| invalid("no '='"))?;
        let registry = Reference::parse_url(&format!("https://{}/probe", registry.trim()))
            .map_err(|_| invalid("REGISTRY is not a host[:port]"))?
            .1
            .registry()
            .to_string();
        let url = url.trim().trim_end_matches('/');
        let (scheme, rest) = match (url.strip_prefix("https://"), url.strip_prefix("http://")) {
            (Some(rest), _) => (Some("https"), rest),
            (_, Some(rest)) => (Some("http"), rest),
            _ if url.contains("://") => return Err(invalid("the URL is not http or https")),
            _ => (None, url),
        };
        let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
        let probe = format!(
            "https://{host}/{path}{}probe",
            if path.is_empty() { "" } else { "/" }
        );
        let parsed = Reference::parse_url(&probe)
            .map_err(|_| invalid("the URL is not [http[s]://]host[:port][/path]"))?
            .1;
        Ok(MirrorSpec {
            registry,
            scheme,
            host: parsed.registry().to_string(),
            prefix: match path {
                "" => String::new(),
                path => format!("{path}/"),
            },
        })
    }

    /// The URL, as the user gave it (less a trailing `/`).
    pub fn url(&self) -> String {
        let scheme = self.scheme.map(|s| format!("{s}://")).unwrap_or_default();
        format!("{scheme}{}/{}", self.host, self.prefix)
            .trim_end_matches('/')
            .to_string()
    }

    /// Where `reference` is found on this mirror.
    fn mirrored(&self, reference: &Reference) -> Result<Reference> {
        let tag = reference.tag().map(|t| format!(":{t}")).unwrap_or_default();
        let digest = (reference.digest())
            .map(|d| format!("@{d}"))
            .unwrap_or_default();
        let text = format!(
            "https://{}/{}{}{tag}{digest}",
            self.host,
            self.prefix,
            reference.repository()
        );
        Reference::parse_url(&text)
            .map(|(_, mirrored)| mirrored)
            .map_err(|e| Error::Usage(format!("mirror {}: {e}", self.url())))
    }
}

/// The mirrors of a run, each connected on first use.
pub struct Mirrors {
    mirrors: Vec<(MirrorSpec, OnceLock<Option<Registry>>)>,
    options: RegistryOptions,
    progress: Progress,
}

impl Mirrors {
    /// The mirrors `options` names, reached with `options` less its credentials.
    pub fn new(options: &RegistryOptions, progress: Progress) -> Mirrors {
        let mirrors = (options.mirrors.iter())
            .map(|spec| (spec.clone(), OnceLock::new()))
            .collect();
        let options = RegistryOptions {
            credentials: None,
            ..options.clone()
        };
        Mirrors {
            mirrors,
            options,
            progress,
        }
    }

    /// `reference` from the first of its registry's mirrors that has it, saying (with
    /// `--verbose`) which one served it; `None` when none did, each failure said.
    pub fn source(&self, reference: &Reference) -> Option<RegistrySource<'_>> {
        let progress = self.progress;
        for (spec, connection) in &self.mirrors {
            if spec.registry != reference.registry() {
                continue;
            }
            let url = spec.url();
            let registry = connection.get_or_init(|| {
                Registry::connect(&spec.host, spec.scheme, &self.options, progress)
                    .inspect_err(|e| {
                        progress.warn(format_args!("mirror {url} is not used in this run: {e}"))
                    })
                    .ok()
            });
            let Some(registry) = registry else { continue };
            let opened = spec
                .mirrored(reference)
                .and_then(|mirrored| RegistrySource::new(registry, &mirrored));
            match opened {
                Ok(source) => {
                    progress.detail(format_args!("{reference}: served by the mirror {url}"));
                    return Some(source);
                }
                Err(e) if e.exit_code() == 6 => {
                    progress.detail(format_args!("{reference}: not on the mirror {url}"))
                }
                Err(e) => progress.warn(format_args!(
                    "{reference}: the mirror {url} failed ({e}); trying the next source"
                )),
            }
        }
        None
    }

    /// `reference` from a mirror, else from its registry: connected with `connect` into
    /// `upstream`, which must outlive the source.
    pub fn source_or<'a>(
        &'a self,
        reference: &Reference,
        upstream: &'a mut Option<Registry>,
        connect: impl FnOnce() -> Result<Registry>,
    ) -> Result<RegistrySource<'a>> {
        if let Some(source) = self.source(reference) {
            return Ok(source);
        }
        let registry = upstream.insert(connect()?);
        if !self.mirrors.is_empty() {
            self.progress.detail(format_args!(
                "{reference}: served by {}",
                reference.registry()
            ));
        }
        RegistrySource::new(registry, reference)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mirror_names_its_registry_host_and_path() {
        let spec = MirrorSpec::parse(
            "index.docker.io=https://harbor.example.com/dockerhub-proxy/",
            "--registry-mirror",
        )
        .unwrap();
        assert_eq!(spec.registry, "docker.io");
        assert_eq!(spec.url(), "https://harbor.example.com/dockerhub-proxy");
        let nginx = Reference::parse("nginx:1.27").unwrap();
        assert_eq!(
            spec.mirrored(&nginx).unwrap().to_string(),
            "harbor.example.com/dockerhub-proxy/library/nginx:1.27"
        );
        let plain = MirrorSpec::parse("quay.io=mirror.local:5000", "-").unwrap();
        assert_eq!(
            (plain.scheme, plain.url().as_str()),
            (None, "mirror.local:5000")
        );
        let pinned = Reference::parse(
            "quay.io/a/b@sha256:0123456789012345678901234567890123456789012345678901234567890123",
        )
        .unwrap();
        assert!(
            (plain.mirrored(&pinned).unwrap().to_string())
                .starts_with("mirror.local:5000/a/b@sha256:0123")
        );
    }

    #[test]
    fn malformed_mirrors_are_refused_naming_the_flag() {
        for bad in [
            "docker.io",
            "docker.io=",
            "=https://m.example.com",
            "docker.io=ftp://m.example.com",
            "docker.io=https://m.example.com/UPPER",
        ] {
            let error = MirrorSpec::parse(bad, "--registry-mirror").unwrap_err();
            assert!(
                error.to_string().starts_with("--registry-mirror"),
                "{error}"
            );
            assert_eq!(error.exit_code(), 2);
        }
    }
}
