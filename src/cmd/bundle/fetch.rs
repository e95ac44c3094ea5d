//! The registry images a bundle names that the cache does not hold yet: fetched first, whole
//! (an index with every platform it lists), into the cache, as a mirror would take them.

use crate::cache::is_id;
use crate::error::{Context, Error, Result};
use crate::manifest::Platforms;
use crate::progress::{count, human_bytes};
use crate::reference::Reference;
use crate::registry::RegistryOptions;
use crate::transfer::{Options, ReferrerPolicy};

use crate::run::context::RunContext;

/// Fetches into the cache, whole and with the referrers `referrers` takes, each of `queries`
/// that names a registry image the cache lacks; an image ID it lacks is refused as before,
/// and a name it holds is left alone.
pub fn fetch_missing(
    run: &RunContext<'_>,
    registry_options: &RegistryOptions,
    queries: &[String],
    referrers: Option<&ReferrerPolicy>,
) -> Result<()> {
    for query in queries {
        let missing = match run.cache.image(query) {
            Ok(_) => continue,
            Err(Error::NotFound(message)) => message,
            Err(other) => return Err(other),
        };
        let reference = match Reference::parse_url(query) {
            Ok((scheme, reference)) if !is_id(query) => (scheme, reference),
            _ => return Err(Error::NotFound(missing)),
        };
        let board = run.board();
        let options = Options {
            referrers,
            ..run.options(Some(&board), registry_options.attempts)
        };
        let summary = run
            .pull_into_cache(
                registry_options,
                (reference.0, &reference.1),
                &Platforms::All,
                options,
            )
            .context(|| format!("{query} is not in the cache; fetching it from its registry"))?;
        run.progress.info(format_args!(
            "fetched {} whole into the cache, as it was not there: {} ({})",
            reference.1,
            count(summary.blobs_copied, "blob"),
            human_bytes(summary.bytes_copied)
        ));
    }
    Ok(())
}
