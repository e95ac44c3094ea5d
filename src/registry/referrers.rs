//! An image's referrers on a registry (OCI distribution 1.1): the signatures, SBOMs and
//! attestations whose manifests name it as their `subject`. They are listed by the Referrers
//! API (`GET /v2/<name>/referrers/<digest>`) where the registry has it, learned once per
//! connection (a 404 there means no; a manifest `PUT` answered with `OCI-Subject` means
//! yes), else by the fallback tag `sha256-<hex>` that holds an index of them; cosign's older
//! tags `sha256-<hex>.sig`, `.att` and `.sbom` are found, with the fallback tag, in one page
//! of the tag list where it tells ([`super::referrer_page`]), else with a request each. Every listing is
//! bounded (pages, entries, bytes) and its `Link` pages are followed on the registry's own
//! origin only. Where a registry has no API, linking a referrer there merges it into the
//! fallback index: read, add what is missing, re-read right before the write, never dropping
//! an entry someone else put there.

use std::collections::HashSet;

use super::blobs::pull_scope;
use super::referrer_page::Nearby;
use super::{Registry, url};
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::inert::inert;
use crate::manifest::fallback::{self, cosign_tags, entries_of, fallback_tag, merged, too_many};
use crate::manifest::{Descriptor, MAX_MANIFEST_SIZE, RawManifest, media_type};
use crate::transfer::ReferrerPolicy;

/// How many pages of a referrers listing are followed at most.
const MAX_PAGES: usize = 100;
/// How many times a fallback index that changed under a merge is read and merged again.
const MERGE_TRIES: usize = 3;

/// Where a registry's referrers of a subject were listed.
pub enum Listing {
    /// The Referrers API answered.
    Api(Vec<Descriptor>),
    /// The fallback tag holds this index (`None`: there is none).
    Tag(Option<RawManifest>),
}

impl Listing {
    /// The fallback index, when that is where they were listed.
    pub fn index(self) -> Option<RawManifest> {
        match self {
            Listing::Tag(index) => index,
            Listing::Api(_) => None,
        }
    }

    /// The referrers listed.
    pub fn entries(&self) -> Result<Vec<Descriptor>> {
        match self {
            Listing::Api(entries) => Ok(entries.clone()),
            Listing::Tag(index) => fallback::listed(index.as_ref()),
        }
    }
}

impl Registry {
    /// The referrers of `subject` in `repository`: through the API when the registry has it
    /// (asked the first time), else the fallback tag's index; and cosign's tags of it that the
    /// repository has. Which of those tags are there is read from one page of the tag list
    /// where it tells (see [`super::referrer_page`]); the others are asked for one by one.
    pub fn referrers(&self, repository: &str, subject: &Digest) -> Result<(Listing, Vec<String>)> {
        let api = self.listed_by_api(repository, subject)?;
        let fallback = fallback_tag(subject);
        let candidates: Vec<String> = (api.is_none().then(|| fallback.clone()).into_iter())
            .chain(cosign_tags(subject))
            .filter(|tag| self.may_have(repository, tag))
            .collect();
        // A listing of every tag (a sync's) already told which are there.
        let nearby = match candidates.is_empty() || self.listed_every_tag(repository) {
            true => Nearby::default(),
            false => self.nearby(repository, subject, &candidates)?,
        };
        let listing = match api {
            Some(entries) => Listing::Api(entries),
            None if candidates.contains(&fallback) && !nearby.absent(&fallback) => {
                Listing::Tag(self.fallback_index(repository, subject)?)
            }
            None => Listing::Tag(None),
        };
        let mut cosign = Vec::new();
        for tag in candidates.into_iter().filter(|tag| *tag != fallback) {
            if nearby.listed(&tag)
                || (!nearby.absent(&tag)
                    && self.manifest_digest(repository, &tag, false)?.is_some())
            {
                cosign.push(tag);
            }
        }
        Ok((listing, cosign))
    }

    /// Records the referrer tags (see [`fallback::subject_of_tag`]) of a listing of every tag of
    /// `repository`: from then on, a tag not among them is known absent without a request.
    pub fn learn_referrer_tags(&self, repository: &str, tags: HashSet<String>) {
        let mut known = self.referrer_tags.lock().unwrap_or_else(|e| e.into_inner());
        known.insert(repository.to_string(), tags);
    }

    /// Whether every tag of `repository` was listed (by a sync), so that its referrer tags are
    /// known.
    fn listed_every_tag(&self, repository: &str) -> bool {
        let known = self.referrer_tags.lock().unwrap_or_else(|e| e.into_inner());
        known.contains_key(repository)
    }

    /// Whether `repository` may have the referrer tag `tag`: false only when a listing of all
    /// its tags lacked it.
    fn may_have(&self, repository: &str, tag: &str) -> bool {
        let known = self.referrer_tags.lock().unwrap_or_else(|e| e.into_inner());
        known.get(repository).is_none_or(|tags| tags.contains(tag))
    }

    /// What the API lists for `subject`, or `None` where the registry has no API. Until that
    /// is known, one thread asks and the others wait for its answer, so a run of many workers
    /// asks a registry without the API once.
    fn listed_by_api(&self, repository: &str, subject: &Digest) -> Result<Option<Vec<Descriptor>>> {
        let _asking = match self.referrers_api() {
            Some(false) => return Ok(None),
            Some(true) => None,
            None => Some(
                self.referrers_probe
                    .lock()
                    .unwrap_or_else(|e| e.into_inner()),
            ),
        };
        if self.referrers_api() == Some(false) {
            return Ok(None);
        }
        let listed = self.referrers_by_api(repository, subject)?;
        if listed.is_none() {
            self.learn_referrers_api(false);
        }
        Ok(listed)
    }

    /// What the API lists for `subject`, page after page, or `None` when the registry
    /// answers 404 (it has no API).
    fn referrers_by_api(
        &self,
        repository: &str,
        subject: &Digest,
    ) -> Result<Option<Vec<Descriptor>>> {
        let mut next = format!("{}/v2/{repository}/referrers/{subject}", self.base);
        let headers = [("Accept", media_type::OCI_INDEX.to_string())];
        let scope = pull_scope(repository);
        let mut entries = Vec::new();
        for _ in 0..MAX_PAGES {
            let shown = url::shown(&next).to_string();
            let answered =
                self.get_whole(&next, &scope, &headers, MAX_MANIFEST_SIZE, "the referrers");
            let (answer, bytes) = match answered {
                Err(e) if e.status() == Some(404) && entries.is_empty() => return Ok(None),
                other => other?,
            };
            self.learn_referrers_api(true);
            entries.extend(entries_of(&bytes, &format!("GET {shown}"))?);
            too_many(entries.len(), &format!("GET {shown}"))?;
            let link =
                (answer.get("link").and_then(|v| v.to_str().ok())).and_then(super::tags::next_link);
            let Some(link) = link else {
                return Ok(Some(entries));
            };
            next = url::resolve(&next, &link);
            if !url::same_origin(&next, &self.base) {
                return Err(Error::Registry(format!(
                    "GET {shown}: the next page of referrers is on another host ({}); refused",
                    inert(url::origin(&next))
                )));
            }
        }
        Err(Error::Registry(format!(
            "{repository}: more than {MAX_PAGES} pages of referrers of {subject}"
        )))
    }

    /// The index at `subject`'s fallback tag, if there is one.
    pub fn fallback_index(
        &self,
        repository: &str,
        subject: &Digest,
    ) -> Result<Option<RawManifest>> {
        match self.get_manifest(repository, &fallback_tag(subject)) {
            Err(Error::NotFound(_)) => Ok(None),
            other => other.map(Some),
        }
    }

    /// Whether `repository` has referrers of `subject` that `target`'s copy of it (in
    /// `target_repository`) lacks, of the types `policy` takes: for `sync`'s skip-when-equal,
    /// told cheaply. Where the source has the Referrers API, its listing is read and each
    /// entry looked for at the target by digest. Its referrer tags (the fallback index,
    /// cosign's) are asked for with a `HEAD` at the source: those a listing of every tag of
    /// `repository` named, or without one all four candidates; each one there is asked for at
    /// the target too. A cosign tag that differs is news (read, under `--referrers-type`, for
    /// its kind); a fallback index that differs is read, and what it lists looked for at the
    /// target by digest, as a target that merged others' entries into it, or that has the
    /// API, keeps another index.
    pub fn has_new_referrers(
        &self,
        (repository, subject): (&str, &Digest),
        (target, target_repository): (&Registry, &str),
        policy: &ReferrerPolicy,
    ) -> Result<bool> {
        let lacks = |entries: &[Descriptor]| -> Result<bool> {
            for entry in entries {
                let digest = entry.digest.to_string();
                if policy.takes(entry.artifact_type.as_deref())
                    && (target.manifest_digest(target_repository, &digest, true)?).is_none()
                {
                    return Ok(true);
                }
            }
            Ok(false)
        };
        if let Some(entries) = self.listed_by_api(repository, subject)?
            && lacks(&entries)?
        {
            return Ok(true);
        }
        let fallback = fallback_tag(subject);
        let candidates = std::iter::once(fallback.clone())
            .filter(|_| self.referrers_api() != Some(true))
            .chain(cosign_tags(subject));
        for tag in candidates.filter(|tag| self.may_have(repository, tag)) {
            let Some(here) = self.manifest_digest(repository, &tag, false)? else {
                continue;
            };
            if Some(&here)
                == target
                    .manifest_digest(target_repository, &tag, true)?
                    .as_ref()
            {
                continue;
            }
            if tag != fallback {
                // One of cosign's tags: news unless its kind stays behind.
                let taken = policy.types.is_empty()
                    || policy.takes_manifest(&self.get_manifest(repository, &tag)?);
                match taken {
                    true => return Ok(true),
                    false => continue,
                }
            }
            let listing = Listing::Tag(self.fallback_index(repository, subject)?);
            if lacks(&listing.entries()?)? {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Makes `added` (referrers of `subject` just stored in `repository`) findable there: a
    /// registry with the API lists them already; one without gets them merged into the
    /// fallback index. `verbatim` is the source's own fallback index when it lists exactly
    /// `added`: stored as it is when the target has none, so its digest stays the source's.
    pub fn link_referrers(
        &self,
        repository: &str,
        subject: &Digest,
        added: &[Descriptor],
        verbatim: Option<&RawManifest>,
    ) -> Result<()> {
        if added.is_empty() || self.has_referrers_api(repository, subject)? {
            return Ok(());
        }
        for _ in 0..MERGE_TRIES {
            let there = self.fallback_index(repository, subject)?;
            let Some(merged) = merged(there.as_ref(), added, verbatim)? else {
                return Ok(());
            };
            // Re-read right before the write: another writer's entries are merged, not lost.
            let now = self.manifest_digest(repository, &fallback_tag(subject), true)?;
            if now != there.as_ref().map(|index| index.digest.clone()) {
                continue;
            }
            return self.put_manifest(repository, &fallback_tag(subject), &merged);
        }
        Err(Error::Registry(format!(
            "{repository}: the referrers index {} kept changing while it was merged; try again",
            fallback_tag(subject)
        )))
    }

    /// Whether the registry has the Referrers API, asked once (about `subject`) if not known.
    fn has_referrers_api(&self, repository: &str, subject: &Digest) -> Result<bool> {
        match self.referrers_api() {
            Some(known) => Ok(known),
            None => Ok(self.listed_by_api(repository, subject)?.is_some()),
        }
    }
}
