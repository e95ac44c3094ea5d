//! Where each line of a sync writes, so that two lines that would overwrite each other are
//! caught before anything moves: under `--to` the source's registry is left out, so
//! `docker.io/library/redis:7` and `quay.io/redis:7` (say) both land on `MIRROR/redis:7`,
//! and the later copy would silently replace the earlier. The later line is refused, naming
//! the earlier. The same source written twice to one place is no conflict.

use std::collections::HashMap;

use crate::error::{Error, Result};
use crate::reference::Reference;

/// The places claimed so far: each image and each whole repository written, with the line
/// that writes it and from where. A line's worth, whatever the number of tags.
#[derive(Default)]
pub struct Claims {
    /// Target image (`registry/repository:tag`) -> (line, source image).
    images: HashMap<String, (usize, String)>,
    /// Target repository (`registry/repository`) of a whole repository's line -> (line,
    /// source repository).
    repositories: HashMap<String, (usize, String)>,
}

impl Claims {
    /// Claims `target` for line `line`, which copies the image `source` there.
    pub fn image(&mut self, line: usize, source: &Reference, target: &Reference) -> Result<()> {
        let (source_image, target_image) = (source.to_string(), target.to_string());
        if let Some((first, from)) = self.images.get(&target_image)
            && *from != source_image
        {
            return Err(overwrite(target, (*first, from)));
        }
        if let Some((first, from)) = self.repositories.get(&target.name())
            && *from != source.name()
        {
            return Err(overwrite(target, (*first, from)));
        }
        // The first line to claim a place is the one named.
        (self.images.entry(target_image)).or_insert((line, source_image));
        Ok(())
    }

    /// Claims the repository `target` for line `line`, which mirrors every tag of the
    /// repository `source` (`registry/repository`) into it.
    pub fn repository(&mut self, line: usize, source: &str, target: &str) -> Result<()> {
        if let Some((first, from)) = self.repositories.get(target)
            && from != source
        {
            return Err(overwrite(target, (*first, from)));
        }
        let image_there = (self.images.iter()).find(|(image, (_, from))| {
            in_repository(image, target) && !in_repository(from, source)
        });
        if let Some((_, (first, from))) = image_there {
            return Err(overwrite(target, (*first, from)));
        }
        (self.repositories.entry(target.to_string())).or_insert((line, source.to_string()));
        Ok(())
    }
}

/// Whether `image` (`registry/repository:tag`) is a tag of `repository`.
fn in_repository(image: &str, repository: &str) -> bool {
    (image.strip_prefix(repository)).is_some_and(|tag| tag.starts_with(':'))
}

/// The error for a line that would write `target`, which line `first` writes from `from`.
fn overwrite(target: impl std::fmt::Display, (first, from): (usize, &str)) -> Error {
    Error::Usage(format!(
        "writes {target}, as line {first} does from {from}: one would overwrite the other \
         (give one of them a TARGET of its own)"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named(text: &str) -> Reference {
        Reference::parse(text).unwrap()
    }

    #[test]
    fn two_sources_into_one_place_are_refused_and_one_source_twice_is_not() {
        let mut claims = Claims::default();
        let target = named("mirror.example.com/m/redis:7");
        claims
            .image(1, &named("docker.io/library/redis:7"), &target)
            .unwrap();
        claims
            .image(2, &named("docker.io/library/redis:7"), &target)
            .unwrap();
        let error = (claims.image(3, &named("quay.io/redis:7"), &target)).unwrap_err();
        assert_eq!(error.exit_code(), 2);
        assert!(
            error.to_string().contains(
                "writes mirror.example.com/m/redis:7, as line 1 does from docker.io/library/redis:7"
            ),
            "{error}"
        );
    }

    #[test]
    fn a_whole_repository_conflicts_with_another_source_of_its_images() {
        let mut claims = Claims::default();
        let (source, target) = ("docker.io/library/redis", "mirror.example.com/m/redis");
        claims.repository(1, source, target).unwrap();
        // Its own images again, or another repository's: no conflict.
        claims
            .image(
                2,
                &named("docker.io/library/redis:7"),
                &named("mirror.example.com/m/redis:7"),
            )
            .unwrap();
        claims
            .image(
                3,
                &named("quay.io/redis:7"),
                &named("mirror.example.com/m/redis-quay:7"),
            )
            .unwrap();
        let into_it = claims.image(
            4,
            &named("quay.io/redis:7"),
            &named("mirror.example.com/m/redis:7"),
        );
        assert!(into_it.is_err());
        let whole = claims.repository(5, "quay.io/redis", target);
        assert!(whole.unwrap_err().to_string().contains("as line 1 does"));
        // A whole repository after an image of another source into it.
        let mut claims = Claims::default();
        claims
            .image(
                1,
                &named("quay.io/redis:7"),
                &named("mirror.example.com/m/redis:7"),
            )
            .unwrap();
        assert!(claims.repository(2, source, target).is_err());
        assert!(claims.repository(3, "quay.io/redis", target).is_ok());
    }
}
