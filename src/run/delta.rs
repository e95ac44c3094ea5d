//! Before any upload from a delta archive (`bundle --since`): every layer it leaves out must
//! be in the registry already, in the image's own repository or in one an earlier bundle's
//! image went to (it is then mounted from there). When some are missing, they are named with
//! the bundle they came with, and nothing is pushed (exit 6).

use crate::archive::{Archive, ArchiveImage, Delta, Omitted};
use crate::error::{Error, Result};
use crate::progress::human_bytes;
use crate::reference::{Reference, RepositoryName};
use crate::registry::Registry;

use super::upload::Uploads;

/// The images of a delta archive to push, each with its target and the registry it is on.
pub type Pushes<'a> = [(&'a ArchiveImage, Reference, &'a Registry)];

/// Checks that the registries hold every layer `archive` leaves out that `pushes` need;
/// `went` says where an earlier bundle's image went (under `sync --to`, or its own name).
pub fn check(
    uploads: &Uploads<'_>,
    archive: &Archive,
    pushes: &Pushes<'_>,
    went: &dyn Fn(&Reference) -> Result<Reference>,
) -> Result<()> {
    let Some(delta) = archive.delta() else {
        return Ok(());
    };
    let mut missing = Vec::new();
    for (image, target, registry) in pushes {
        let layers = uploads.layers_to_push(&archive.source(image))?;
        for omitted in
            (delta.omitted.iter()).filter(|o| layers.iter().any(|l| l.digest == o.digest))
        {
            let holder = match registry.has_blob(target.repository(), &omitted.digest)? {
                true => continue,
                false => earlier_holder(registry, target, omitted, went)?,
            };
            match holder {
                Some(holder) => uploads.known_holder(&omitted.digest, holder),
                None => missing.push(format!(
                    "  {} ({}) for {target}, carried by {}",
                    omitted.digest,
                    human_bytes(omitted.size),
                    omitted.held_by.join(", ")
                )),
            }
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    Err(Error::NotFound(said(archive, delta, &missing)))
}

/// The repository of `registry` where an earlier bundle's image holding `omitted` went, if
/// it has the blob there.
fn earlier_holder(
    registry: &Registry,
    target: &Reference,
    omitted: &Omitted,
    went: &dyn Fn(&Reference) -> Result<Reference>,
) -> Result<Option<RepositoryName>> {
    for name in &omitted.held_by {
        let Ok(earlier) = Reference::parse(name) else {
            continue;
        };
        let went = went(&earlier)?;
        if went.registry() == target.registry()
            && registry.has_blob(went.repository(), &omitted.digest)?
        {
            return Ok(Some(went.repository_name()));
        }
    }
    Ok(None)
}

/// What a failed check says.
fn said(archive: &Archive, delta: &Delta, missing: &[String]) -> String {
    let since = &delta.since;
    let record = match &since.bundle_json {
        Some(digest) => format!(", bundle.json {digest}"),
        None => String::new(),
    };
    format!(
        "{}: this delta bundle relies on {} the registry does not have:\n{}\nthey came with \
         the bundle {} (made {}{record}): push that bundle to this registry first. Nothing was \
         pushed.",
        archive.name(),
        crate::progress::count(missing.len(), "blob"),
        missing.join("\n"),
        since.given,
        since.created
    )
}
