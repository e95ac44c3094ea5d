//! An image's referrers (signatures, SBOMs, attestations) carried wherever it goes: after the
//! copy has stored an image, the referrers its source lists for each manifest stored as it
//! was (the image, an index and every child it took) are copied too, as images of their own,
//! then made findable at the destination (see [`Destination::link_referrers`]); a referrer's
//! own referrers follow, down to [`MAX_DEPTH`]. A referrer that names another subject than
//! the one it is listed for is left out with a warning, and the manifest bytes of all
//! referrers stay within [`MANIFEST_BUDGET`]. Where the run may start threads, a registry
//! source's listings are asked for while the blobs move ([`looking_ahead`]), so that their
//! round trips hide behind the blobs' instead of following them.

use std::collections::HashSet;

use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::manifest::{Descriptor, RawManifest, fallback, media_type};
use crate::progress::Progress;
use crate::reference::Reference;

use super::plan::{MANIFEST_BUDGET, Tree};
use super::{Destination, ImageCopy, Options, Platforms, Source, Summary, copy_images};

/// How deep referrers of referrers are followed (a signature of an SBOM of an image is 2).
pub const MAX_DEPTH: usize = 3;

/// Which referrers a copy carries (a copy without one carries none).
#[derive(Clone, Debug, Default)]
pub struct ReferrerPolicy {
    /// Only these artifact types (`--referrers-type`); every type when empty.
    pub types: Vec<String>,
}

impl ReferrerPolicy {
    /// Whether a referrer of this artifact type is carried.
    pub fn takes(&self, artifact_type: Option<&str>) -> bool {
        self.types.is_empty() || artifact_type.is_some_and(|t| self.types.iter().any(|k| k == t))
    }

    /// Whether the referrer `manifest` is carried, by its kind (see [`kind_of`]).
    pub fn takes_manifest(&self, manifest: &RawManifest) -> bool {
        self.types.is_empty() || self.takes(kind_of(manifest).as_deref())
    }
}

/// A referrer of a subject, as its source lists it.
#[derive(Clone, Debug)]
pub enum Referrer {
    /// A manifest that names the subject (listed by the Referrers API or the fallback index).
    Listed(Descriptor),
    /// One of cosign's tags of the subject (`sha256-<hex>.sig`), copied as a tag.
    Tagged(String),
}

/// What a source lists as the referrers of one subject.
#[derive(Default)]
pub struct Found {
    pub referrers: Vec<Referrer>,
    /// The source's own index of them (a fallback tag's), which a destination that keeps
    /// one may store as it is when nothing was left out.
    pub index: Option<RawManifest>,
}

impl Found {
    /// What a store that keeps referrers as a registry without the API does (the cache, an
    /// archive) lists for `subject`: the entries of its fallback index `recorded`, and those
    /// of cosign's tags of it that `holds` says it has.
    pub fn recorded(
        subject: &Digest,
        recorded: Option<RawManifest>,
        holds: impl Fn(&str) -> Result<bool>,
    ) -> Result<Found> {
        let mut referrers: Vec<Referrer> = (fallback::listed(recorded.as_ref())?.into_iter())
            .map(Referrer::Listed)
            .collect();
        for tag in fallback::cosign_tags(subject) {
            if holds(&tag)? {
                referrers.push(Referrer::Tagged(tag));
            }
        }
        Ok(Found {
            referrers,
            index: recorded,
        })
    }
}

/// What one artifact type of a manifest is, for `--referrers-type` and listings: its
/// `artifactType`, else its config's media type unless that is a plain image config (as
/// cosign's are), else its first layer's.
pub fn kind_of(manifest: &RawManifest) -> Option<String> {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Typed {
        artifact_type: Option<String>,
        config: Option<Descriptor>,
        #[serde(default)]
        layers: Vec<Descriptor>,
    }
    let typed: Typed = serde_json::from_slice(&manifest.bytes).ok()?;
    let config = typed
        .config
        .map(|c| c.media_type)
        .filter(|t| ![media_type::OCI_CONFIG, media_type::DOCKER_CONFIG].contains(&t.as_str()));
    (typed.artifact_type).or(config).or_else(|| {
        typed
            .layers
            .into_iter()
            .next()
            .map(|layer| layer.media_type)
    })
}

/// Referrers listed ahead, while the blobs of their subjects moved: each with the place of
/// its copy among the copies and the subject it was listed for.
#[derive(Default)]
pub struct Ahead(Vec<(usize, Digest, Found)>);

impl Ahead {
    /// What was listed ahead for `subject` of the copy at `place`, taken out.
    fn take(&mut self, place: usize, subject: &Digest) -> Option<Found> {
        let at = (self.0.iter()).position(|(p, listed, _)| *p == place && listed == subject)?;
        Some(self.0.swap_remove(at).2)
    }
}

/// Runs `copy`, and meanwhile, on a thread of its own, lists the referrers of the manifests
/// of `copies` (read into `trees`) that will need them: only with `look` (the referrers of
/// these copies are carried), when the run may start threads (more than one worker), and for
/// a registry source whose manifests the destination stores as they are. A listing that
/// fails is left out, to be asked again after the copy, where its failure counts.
pub fn looking_ahead<R>(
    (copies, trees): (&[ImageCopy<'_>], &[Tree]),
    destination: &dyn Destination,
    (options, look): (Options<'_>, bool),
    copy: impl FnOnce() -> R,
) -> (R, Ahead) {
    let wanted: Vec<(usize, &dyn Source, Vec<Descriptor>)> = (copies.iter().zip(trees))
        .enumerate()
        .filter(|(_, (one, tree))| {
            one.source.repository().is_some()
                && !tree
                    .blobs()
                    .into_iter()
                    .any(|blob| destination.transforms(blob))
        })
        .map(|(place, (one, tree))| (place, one.source, tree.manifests()))
        .collect();
    let ahead = look && options.referrers.is_some() && !options.dry_run && options.workers > 1;
    if !ahead || wanted.is_empty() {
        return (copy(), Ahead::default());
    }
    std::thread::scope(|scope| {
        let listing = scope.spawn(move || {
            let mut listed = Vec::new();
            for (place, source, subjects) in wanted {
                for subject in subjects {
                    if let Ok(found) = source.referrers(&subject) {
                        listed.push((place, subject.digest, found));
                    }
                }
            }
            Ahead(listed)
        });
        let copied = copy();
        let listed = (listing.join()).unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        (copied, listed)
    })
}

/// One source's subjects at one depth: the manifests stored, and the name the first of
/// them went to (where cosign's tags go, beside it).
pub struct Subjects<'a> {
    pub source: &'a dyn Source,
    pub subjects: Vec<Descriptor>,
    pub name: Option<Reference>,
}

/// A referrer to copy: its source, its name at the destination (cosign's tag, or the
/// subject's repository with the referrer's digest), and the subject it is listed for.
struct Taken<'s> {
    source: Box<dyn Source + 's>,
    names: Vec<Reference>,
    /// How the destination's listing of referrers names it (none for cosign's tags).
    listed: Option<Descriptor>,
    /// The name its own cosign tags go beside: its subject's (a referrer listed by digest
    /// has no name of its own).
    beside: Option<Reference>,
}

/// Copies the referrers of `level`'s subjects (those listed `ahead` taken as they were),
/// then theirs, to `depth` [`MAX_DEPTH`], adding to `summary`; `seen` holds the referrers
/// already taken and `held` the bytes of their manifests.
pub fn carry(
    (level, ahead): (&[Subjects<'_>], Ahead),
    destination: &dyn Destination,
    options: Options<'_>,
    progress: &Progress,
    (summary, seen, held): (&mut Summary, &mut HashSet<Digest>, &mut u64),
    depth: usize,
) -> Result<()> {
    let Some(policy) = options.referrers else {
        return Ok(());
    };
    if depth >= MAX_DEPTH || level.is_empty() {
        return Ok(());
    }
    let (taken, links) = gather((level, ahead), policy, progress, (seen, held))?;
    if taken.is_empty() {
        return Ok(());
    }
    let all = Platforms::All;
    let copies: Vec<ImageCopy<'_>> = (taken.iter())
        .map(|one| ImageCopy {
            source: &*one.source,
            names: one.names.clone(),
            platforms: &all,
        })
        .collect();
    let mut copied = copy_images(
        &copies,
        destination,
        options,
        progress,
        depth + 1 < MAX_DEPTH,
    )?;
    summary.add(&copied);
    let ahead = std::mem::take(&mut copied.ahead);
    summary.referrers += copies.len();
    for (subject, linked, index) in &links {
        destination.link_referrers(subject, linked, index.as_ref())?;
    }
    let next: Vec<Subjects<'_>> = (taken.iter().zip(&copied.outcomes))
        .map(|(one, outcome)| Subjects {
            source: &*one.source,
            subjects: outcome.subjects.clone(),
            name: one.beside.clone(),
        })
        .collect();
    carry(
        (&next, ahead),
        destination,
        options,
        progress,
        (summary, seen, held),
        depth + 1,
    )
}

/// How a subject's carried referrers are made findable at the destination: the subject, the
/// descriptors of those listed for it, and the source's own index of them when none was left
/// out.
type Link = (Descriptor, Vec<Descriptor>, Option<RawManifest>);

/// The referrers of `level`'s subjects to carry (each once, as the policy says, their
/// manifests within [`MANIFEST_BUDGET`] with those `held` already), and for each subject its
/// link; a subject's listing is taken from `ahead` where it was listed there.
fn gather<'s>(
    (level, mut ahead): (&[Subjects<'s>], Ahead),
    policy: &ReferrerPolicy,
    progress: &Progress,
    (seen, held): (&mut HashSet<Digest>, &mut u64),
) -> Result<(Vec<Taken<'s>>, Vec<Link>)> {
    let (mut taken, mut links) = (Vec::new(), Vec::new());
    for (place, subjects) in level.iter().enumerate() {
        for subject in &subjects.subjects {
            let found = match ahead.take(place, &subject.digest) {
                Some(found) => found,
                None => subjects.source.referrers(subject)?,
            };
            let listed = found.referrers.len();
            let before = taken.len();
            for referrer in found.referrers {
                if let Some(one) = take(subjects, subject, referrer, policy, progress, seen)? {
                    *held += one.source.manifest()?.bytes.len() as u64;
                    if *held > MANIFEST_BUDGET {
                        return Err(Error::BadInput(format!(
                            "{}: the manifests of its referrers add up to more than {} MiB; \
                             refused (--no-referrers leaves them)",
                            subjects.source.describe(),
                            MANIFEST_BUDGET >> 20
                        )));
                    }
                    taken.push(one);
                }
            }
            let linked: Vec<Descriptor> = (taken[before..].iter())
                .filter_map(|one| one.listed.clone())
                .collect();
            let whole = taken.len() - before == listed;
            links.push((subject.clone(), linked, found.index.filter(|_| whole)));
        }
    }
    Ok((taken, links))
}

/// The referrer `referrer` of `subject`, opened at its source, if it is to be carried: once,
/// of a type the policy takes, naming `subject` when it is listed as naming it.
fn take<'s>(
    subjects: &Subjects<'s>,
    subject: &Descriptor,
    referrer: Referrer,
    policy: &ReferrerPolicy,
    progress: &Progress,
    seen: &mut HashSet<Digest>,
) -> Result<Option<Taken<'s>>> {
    // A listing that states the type spares fetching what the policy leaves out.
    if let Referrer::Listed(entry) = &referrer
        && (seen.contains(&entry.digest)
            || (entry.artifact_type.is_some() && !policy.takes(entry.artifact_type.as_deref())))
    {
        return Ok(None);
    }
    let source = subjects.source.referrer(&referrer)?;
    let manifest = source.manifest()?;
    if !seen.insert(manifest.digest.clone()) {
        return Ok(None);
    }
    let (names_subject, own) = manifest.as_referrer();
    let listed = match referrer {
        Referrer::Tagged(tag) => {
            let names = (subjects.name.iter())
                .map(|name| name.with_tag(&tag))
                .collect::<Result<Vec<_>>>()?;
            return Ok(policy.takes_manifest(&manifest).then(|| Taken {
                source,
                names,
                listed: None,
                beside: subjects.name.clone(),
            }));
        }
        Referrer::Listed(entry) => entry,
    };
    if !names_listed_subject(subjects, subject, &manifest, names_subject, progress)
        || !policy.takes_manifest(&manifest)
    {
        return Ok(None);
    }
    let listed = Descriptor {
        artifact_type: listed.artifact_type.or(own.artifact_type),
        annotations: listed.annotations.or(own.annotations),
        ..own
    };
    // Named by digest beside its subject: a registry stores it by digest either way, the
    // cache and an archive file it under the subject's repository, and its own cosign tags
    // (a signature of an SBOM) then have a repository to go to.
    let names = (subjects.name.iter())
        .map(|name| name.with_digest(manifest.digest.clone()))
        .collect();
    Ok(Some(Taken {
        source,
        names,
        listed: Some(listed),
        beside: subjects.name.clone(),
    }))
}

/// Whether a referrer listed for `subject` names it as its subject; when it does not (a
/// listing that lies, or is stale), it is left out with a warning.
fn names_listed_subject(
    subjects: &Subjects<'_>,
    subject: &Descriptor,
    manifest: &RawManifest,
    names_subject: Option<Digest>,
    progress: &Progress,
) -> bool {
    if names_subject.as_ref() == Some(&subject.digest) {
        return true;
    }
    progress.warn(format_args!(
        "{}: referrer {} is listed for {} but names {}; left out",
        subjects.source.describe(),
        manifest.digest,
        subject.digest,
        names_subject.map_or_else(|| "no subject".to_string(), |d| d.to_string())
    ));
    false
}
