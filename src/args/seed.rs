//! The seed form of naming an image, kept for scripts written for the older tool:
//! `--registry URL --repository NAME --reference TAG` (`pull`, `push`; `sync --to` builds its
//! targets the same way).

use lexopt::{Arg, Parser};

use crate::error::{Error, Result};
use crate::inert::inert;
use crate::reference::{DOCKER_HUB_API, Reference};

use super::{FlagGroup, value};

/// `--registry`, `--repository` and `--reference`, as given.
#[derive(Default)]
pub struct SeedArgs {
    registry: Option<String>,
    repository: Option<String>,
    reference: Option<String>,
}

impl SeedArgs {
    /// Sets the repository (`-r` of `pull`, and of `push` beside `-t`).
    pub fn set_repository(&mut self, repository: String) {
        self.repository = Some(repository);
    }

    /// Sets the reference (`-t` of `pull` and `push`).
    pub fn set_reference(&mut self, reference: String) {
        self.reference = Some(reference);
    }

    /// Whether a reference was given, so that `push -r` names a repository, not a URL.
    pub fn has_reference(&self) -> bool {
        self.reference.is_some()
    }

    /// What to tell the user when the seed form names a repository without a reference: the
    /// tag `latest` is then taken, which should not go unsaid.
    pub fn caution(&self) -> Option<&'static str> {
        (self.repository.is_some() && self.reference.is_none())
            .then_some("--repository without --reference (-t): the tag latest is taken")
    }

    /// The image named by `given` (the positional IMAGE or TARGET, read with `parse`) or by
    /// the seed flags, which must not both be there; `what` names the positional in errors.
    pub fn choose(
        &self,
        given: Option<String>,
        (what, command): (&str, &str),
        parse: impl FnOnce(&str) -> Result<(Option<&'static str>, Reference)>,
    ) -> Result<(Option<&'static str>, Reference)> {
        let seeds: Vec<&str> = [
            (self.registry.is_some(), "--registry"),
            (self.repository.is_some(), "--repository"),
            (self.reference.is_some(), "--reference (-t)"),
        ]
        .into_iter()
        .filter_map(|(given, flag)| given.then_some(flag))
        .collect();
        match (given, &self.repository) {
            // Each part would otherwise be dropped without a word (`push app.tar R/team/app
            // -t v11` pushing :latest).
            (Some(given), _) if seeds.is_empty() => parse(&given),
            (Some(given), _) => Err(Error::Usage(format!(
                "give {what} or {}, not both: {what} {given} names the image whole (write its \
                 tag there, as REPOSITORY:TAG); see '{command} --help'",
                seeds.join(" and "),
                given = inert(&given)
            ))),
            (None, Some(repository)) => seed_reference(
                self.registry.as_deref(),
                repository,
                self.reference.as_deref(),
            ),
            (None, None) => Err(Error::Usage(format!(
                "no {} given; see '{command} --help'",
                what.to_lowercase()
            ))),
        }
    }
}

impl FlagGroup for SeedArgs {
    fn claim(&mut self, arg: &Arg<'_>, parser: &mut Parser) -> Result<bool> {
        let (slot, flag) = match arg {
            Arg::Long("registry") => (&mut self.registry, "--registry"),
            Arg::Long("repository") => (&mut self.repository, "--repository"),
            Arg::Long("reference") => (&mut self.reference, "--reference"),
            _ => return Ok(false),
        };
        *slot = Some(value(parser, flag)?);
        Ok(true)
    }
}

/// The reference the seed form names (`--registry URL --repository NAME --reference TAG`);
/// a registry without a scheme is tried as Docker would (HTTPS, then HTTP on loopback).
pub fn seed_reference(
    registry: Option<&str>,
    repository: &str,
    reference: Option<&str>,
) -> Result<(Option<&'static str>, Reference)> {
    let docker_hub = format!("https://{DOCKER_HUB_API}");
    let registry = registry.unwrap_or(&docker_hub).trim_end_matches('/');
    let with_scheme = registry.contains("://");
    let url = if with_scheme {
        registry.to_string()
    } else {
        format!("https://{registry}")
    };
    let reference = match reference {
        Some(digest) if digest.starts_with("sha256:") => format!("@{digest}"),
        Some(tag) => format!(":{tag}"),
        None => String::new(),
    };
    let (scheme, parsed) = Reference::parse_url(&format!("{url}/{repository}{reference}"))
        .map_err(|e| Error::Usage(format!("--registry/--repository/--reference: {e}")))?;
    Ok((if with_scheme { scheme } else { None }, parsed))
}
