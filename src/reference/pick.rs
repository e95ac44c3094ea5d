//! One rule for the name a user types to pick an image among those a store holds, the cache's
//! or an archive's: the full name, or a short one that only one image's name ends with.

use std::collections::BTreeSet;

use crate::error::{Error, Result};
use crate::inert::inert;

use super::{Reference, split, split_host};

/// A name typed to pick a held image: the full name, normalised as Docker does (`nginx` is
/// `docker.io/library/nginx:latest`), or, written without a registry, a short name matching
/// every held name whose repository ends with the components written and whose tag or
/// digest is the same (`app:v1` and `team/app:v1` for `example.com/team/app:v1`).
#[derive(Clone, Debug)]
pub struct NameQuery {
    /// As the user wrote it, for messages.
    text: String,
    /// The full name it stands for.
    full: Reference,
    /// `/` and the repository as written, when it was written without a registry.
    suffix: Option<String>,
}

impl NameQuery {
    /// Reads a name; the error says what is wrong with it.
    pub fn parse(text: &str) -> Result<NameQuery, String> {
        let full = Reference::parse(text)?;
        let (written, ..) = split(text);
        let suffix = split_host(written).is_none().then(|| format!("/{written}"));
        Ok(NameQuery {
            text: text.into(),
            full,
            suffix,
        })
    }

    /// What the query picks among `held`, each a held name (`registry/repository` and its tag
    /// or digest) with what it stands for: the thing named in full when one is, else each
    /// the short name matches (none, or one). A short name matching names of more than one
    /// thing is refused (exit 2), naming them.
    pub fn pick<S: AsRef<str>, T: Ord>(
        &self,
        held: impl IntoIterator<Item = (S, S, T)>,
    ) -> Result<Vec<T>> {
        let (name, reference) = (self.full.name(), self.full.reference());
        let mut short = Vec::new();
        for (repository, held_reference, thing) in held {
            let (repository, held_reference) = (repository.as_ref(), held_reference.as_ref());
            if held_reference != reference {
                continue;
            }
            if repository == name {
                return Ok(vec![thing]);
            }
            if self
                .suffix
                .as_ref()
                .is_some_and(|s| repository.ends_with(s))
            {
                short.push((full_name(repository, held_reference), thing));
            }
        }
        let things: BTreeSet<&T> = short.iter().map(|(_, thing)| thing).collect();
        if things.len() > 1 {
            let names: Vec<String> = short
                .iter()
                .map(|(name, _)| inert(name).to_string())
                .collect();
            return Err(Error::Usage(format!(
                "\"{}\" is ambiguous: it could be {}; give the full name",
                inert(&self.text),
                names.join(", ")
            )));
        }
        let mut picked: Vec<T> = short.into_iter().map(|(_, thing)| thing).collect();
        picked.dedup();
        Ok(picked)
    }
}

/// `repository:tag`, or `repository@digest`.
fn full_name(repository: &str, reference: &str) -> String {
    match reference.starts_with("sha256:") {
        true => format!("{repository}@{reference}"),
        false => format!("{repository}:{reference}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HELD: [(&str, &str, u8); 4] = [
        ("example.com/team/app", "v1", 1),
        ("example.com/team/db", "v1", 2),
        ("other.example/app", "v1", 3),
        ("docker.io/library/nginx", "latest", 4),
    ];

    fn pick(query: &str) -> Result<Vec<u8>> {
        NameQuery::parse(query).unwrap().pick(HELD)
    }

    #[test]
    fn full_and_short_names_pick_one() {
        assert_eq!(pick("example.com/team/app:v1").unwrap(), [1]);
        assert_eq!(pick("team/app:v1").unwrap(), [1]);
        assert_eq!(pick("db:v1").unwrap(), [2]);
        assert_eq!(
            pick("nginx").unwrap(),
            [4],
            "docker.io/library/nginx:latest in full"
        );
        assert_eq!(pick("other.example/app:v1").unwrap(), [3]);
    }

    #[test]
    fn misses_and_ambiguous_short_names() {
        assert!(pick("db:v2").unwrap().is_empty(), "the tag differs");
        assert!(
            pick("eam/app:v1").unwrap().is_empty(),
            "whole components only"
        );
        assert!(
            pick("example.com/app:v1").unwrap().is_empty(),
            "a registry: in full only"
        );
        let error = pick("app:v1").unwrap_err();
        assert_eq!(error.exit_code(), 2);
        let message = error.to_string();
        assert!(
            message.contains("example.com/team/app:v1, other.example/app:v1"),
            "{message}"
        );
    }

    #[test]
    fn two_names_of_one_thing_are_not_ambiguous() {
        let held = [("a.example/app", "v1", 7), ("b.example/app", "v1", 7)];
        let query = NameQuery::parse("app:v1").unwrap();
        assert_eq!(query.pick(held).unwrap(), [7]);
    }
}
