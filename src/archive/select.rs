//! Choosing images of an archive with `--image`: by a name the archive gives it, full or
//! short as for cached images ([`NameQuery`]), by an OCI ref name exactly as written (what
//! `DIR:NAME` picks by too), or by its image ID (`sha256:<hex>`, or a hex prefix of one), for
//! images saved without a name.

use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::image_id::id_prefix;
use crate::inert::inert;
use crate::reference::{NameQuery, Reference};

use super::{Archive, ArchiveImage};

/// The most bytes of an archive's listing of its images that a message shows: a folder's
/// index may list thousands, or names thousands of bytes long.
const MAX_HOLDINGS_SHOWN: usize = 2000;

/// What `--image` asks for.
#[derive(Clone, Debug)]
pub struct ImageQuery {
    /// As the user wrote it, for messages.
    text: String,
    /// The name it may be.
    name: Option<NameQuery>,
    /// The image ID prefix it may be, in hex.
    id: Option<String>,
}

impl ImageQuery {
    /// Reads `--image`: `sha256:<hex>` is an image ID (or a prefix of one); a bare hex word of
    /// 6 characters or more may be an ID prefix or a name; anything else is a name.
    pub fn parse(text: &str) -> Result<ImageQuery, String> {
        let id = id_prefix(text)?;
        // A bare word that is an ID prefix may be a name too, unless it cannot be one
        // (uppercase hex).
        let name = match (text.starts_with("sha256:"), &id) {
            (true, _) => None,
            (false, Some(_)) => NameQuery::parse(text).ok(),
            (false, None) => Some(NameQuery::parse(text)?),
        };
        Ok(ImageQuery {
            text: text.into(),
            name,
            id,
        })
    }

    /// The images of `archive` asked for: the one the name picks, those whose ref name it is,
    /// and those whose ID starts with the prefix. A short name that two images answer to is
    /// refused (exit 2).
    fn pick<'a>(&self, archive: &'a Archive) -> Result<Vec<&'a ArchiveImage>> {
        let mut picked = match &self.name {
            None => Vec::new(),
            Some(name) => {
                let held = (archive.images.iter().enumerate()).flat_map(|(at, image)| {
                    (image.names.iter()).map(move |name| (name.name(), name.reference(), at))
                });
                name.pick(held)?
            }
        };
        picked.extend(archive.by_ref_name(&self.text));
        if let Some(id) = &self.id {
            let by_id = (archive.images.iter().enumerate())
                .filter(|(_, image)| image.id().hex().starts_with(id))
                .map(|(at, _)| at);
            picked.extend(by_id);
        }
        picked.sort_unstable();
        picked.dedup();
        Ok(picked.into_iter().map(|at| &archive.images[at]).collect())
    }
}

impl Archive {
    /// The images `query` names, or the ref name `DIR:NAME` picks (every image without
    /// either; both is a usage error). None found is an error listing what the archive holds,
    /// by name and by image ID; so is a short name that names two.
    pub fn select(&self, query: Option<&ImageQuery>) -> Result<Vec<&ArchiveImage>> {
        let found: Vec<&ArchiveImage> = match (query, &self.picked) {
            (Some(query), Some(picked)) => {
                return Err(Error::Usage(format!(
                    "{}: the ref name \"{}\" picks the image already; drop --image {}, or \
                     name the folder alone",
                    self.name,
                    inert(picked),
                    inert(&query.text)
                )));
            }
            (Some(query), None) => query.pick(self)?,
            (None, Some(picked)) => (self.by_ref_name(picked).iter())
                .map(|&at| &self.images[at])
                .collect(),
            (None, None) => self.images.iter().collect(),
        };
        match (found.is_empty(), query, &self.picked) {
            (true, Some(query), _) => Err(Error::NotFound(format!(
                "--image {}: not in {}, which holds {}",
                inert(&query.text),
                self.name,
                self.holdings()
            ))),
            (true, None, Some(picked)) => Err(Error::NotFound(format!(
                "{}: no image has the ref name \"{}\"; the folder holds {}",
                self.name,
                inert(picked),
                self.holdings()
            ))),
            _ => Ok(found),
        }
    }

    /// Where the images whose ref name is `text`, exactly, are.
    fn by_ref_name(&self, text: &str) -> Vec<usize> {
        (self.images.iter().enumerate())
            .filter(|(_, image)| image.ref_names.iter().any(|name| name == text))
            .map(|(at, _)| at)
            .collect()
    }

    /// The one image `query` names, or the only one: several is a usage error asking for
    /// `--image`.
    pub fn select_one(&self, query: Option<&ImageQuery>) -> Result<&ArchiveImage> {
        match self.select(query)?.as_slice() {
            [one] => Ok(one),
            found => Err(Error::Usage(format!(
                "{} holds {} images ({}); pick one with --image NAME or --image sha256:ID",
                self.name,
                found.len(),
                self.holdings()
            ))),
        }
    }

    /// Each image, by its names (else its ref names, else "no name") and short ID.
    fn holdings(&self) -> String {
        let listed: Vec<String> = (self.images.iter())
            .map(|image| {
                let mut names: Vec<String> = image.names.iter().map(Reference::to_string).collect();
                if names.is_empty() {
                    names.extend(
                        (image.ref_names.iter())
                            .map(|name| format!("ref name \"{}\"", inert(name))),
                    );
                }
                let names = match names.is_empty() {
                    true => "no name".to_string(),
                    false => names.join(", "),
                };
                format!("{names} (ID sha256:{})", image.id().short())
            })
            .collect();
        if listed.is_empty() {
            return "no image".into();
        }
        let mut all = listed.join("; ");
        if all.len() > MAX_HOLDINGS_SHOWN {
            let mut end = MAX_HOLDINGS_SHOWN;
            while !all.is_char_boundary(end) {
                end -= 1;
            }
            all.truncate(end);
            all.push_str(&format!("... ({} images in all)", listed.len()));
        }
        all
    }
}

impl ArchiveImage {
    /// The image ID: its config's digest (an index's own digest, for a multi-platform image).
    pub fn id(&self) -> Digest {
        match self.manifest.image() {
            Ok(image) => image.config.digest,
            Err(_) => self.manifest.digest.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_read_ids_and_names() {
        let id = ImageQuery::parse("sha256:ABCdef").unwrap();
        assert_eq!(
            (id.name.is_none(), id.id.as_deref()),
            (true, Some("abcdef"))
        );
        let either = ImageQuery::parse("abcdef12").unwrap();
        assert!(either.name.is_some() && either.id.as_deref() == Some("abcdef12"));
        let name = ImageQuery::parse("app:v1").unwrap();
        assert!(name.name.is_some() && name.id.is_none());
        assert!(ImageQuery::parse("sha256:xyz").is_err());
        let upper = ImageQuery::parse("ABCDEF12").unwrap();
        assert!(upper.name.is_none() && upper.id.as_deref() == Some("abcdef12"));
    }
}
