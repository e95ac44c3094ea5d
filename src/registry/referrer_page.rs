//! One page of a repository's tag list that tells which of a subject's referrer tags (its
//! fallback tag `sha256-<hex>`, cosign's `.att`, `.sbom` and `.sig`) the repository has: one
//! request, `GET /v2/<name>/tags/list?n=100&last=<just below sha256-<hex>>`, instead of one
//! per tag. The distribution spec orders the list lexically, starts a page after `last`
//! (which need not be a tag) and sends `Link` while more follow; a registry that ignores
//! `last` starts at the first tag instead (Distribution 2.8 ignores `n`, `last` and the order
//! alike, and answers with every tag). So a tag the page lists is there, and one it does not
//! list is known absent only where the page shows that it would have listed it: a whole
//! answer (no `Link`, and not exactly `n` tags, a count a registry honouring `n` could have
//! cut at), or, on a page in lexical order whose every tag sorts after `last`, a tag below
//! its last one. Anything else is asked for as without the page; so is everything on a
//! connection whose registry refused a page once.

use std::sync::atomic::Ordering;

use serde::Deserialize;

use super::blobs::pull_scope;
use super::{Registry, url};
use crate::digest::Digest;
use crate::error::Result;
use crate::manifest::fallback::fallback_tag;

/// The tags asked for in the page.
const PAGE: usize = 100;
/// The most bytes of a page read (a registry ignoring `n` sends every tag): beyond, the
/// tags are asked for one by one.
const MAX_PAGE: u64 = 1 << 20;

/// What a page told of a subject's referrer tags.
#[derive(Debug, Default, PartialEq)]
pub struct Nearby {
    /// The subject's referrer tags it listed.
    listed: Vec<String>,
    /// Which of those it did not list are known absent.
    reach: Reach,
}

/// Which tags a page would have listed, were they there.
#[derive(Debug, Default, PartialEq)]
enum Reach {
    /// None can be told (no page, or one that proves nothing).
    #[default]
    Nothing,
    /// Those that sort below this tag, the page's last (a lexical page after `last`).
    Below(String),
    /// Every tag after `last` (the whole answer).
    All,
}

impl Nearby {
    /// What a page of `tags`, asked for [`PAGE`] tags after `last`, tells of `candidates`;
    /// `more`: it came with a `Link` to a next page.
    fn of(tags: &[String], last: &str, more: bool, candidates: &[String]) -> Nearby {
        let listed = (candidates.iter())
            .filter(|candidate| tags.contains(candidate))
            .cloned()
            .collect();
        let lexical = tags.iter().all(|tag| tag.as_str() > last)
            && tags.windows(2).all(|pair| pair[0] < pair[1]);
        let reach = match (tags.last(), more || tags.len() == PAGE) {
            (_, false) => Reach::All,
            (Some(end), true) if lexical => Reach::Below(end.clone()),
            _ => Reach::Nothing,
        };
        Nearby { listed, reach }
    }

    /// Whether the page listed `tag`.
    pub fn listed(&self, tag: &str) -> bool {
        self.listed.iter().any(|listed| listed == tag)
    }

    /// Whether `tag` is known absent: not listed where the page would have listed it.
    pub fn absent(&self, tag: &str) -> bool {
        !self.listed(tag)
            && match &self.reach {
                Reach::Nothing => false,
                Reach::Below(end) => tag < end.as_str(),
                Reach::All => true,
            }
    }
}

/// A page of the tag list, as far as it is read.
#[derive(Deserialize)]
struct Page {
    #[serde(default)]
    tags: Option<Vec<String>>,
}

impl Registry {
    /// What one page of `repository`'s tag list, starting just below `subject`'s fallback tag,
    /// tells of its referrer tags `candidates`. A registry that refuses the page, or answers
    /// with something else than a tag list, is asked no more pages on this connection; a
    /// network failure is one, as the request per tag would have met it.
    pub(super) fn nearby(
        &self,
        repository: &str,
        subject: &Digest,
        candidates: &[String],
    ) -> Result<Nearby> {
        if self.tag_pages_refused.load(Ordering::Relaxed) {
            return Ok(Nearby::default());
        }
        let fallback = fallback_tag(subject);
        let last = &fallback[..fallback.len() - 1];
        let listing = format!("{}/v2/{repository}/tags/list", self.base);
        let page = url::with_query(
            &url::with_query(&listing, "n", &PAGE.to_string()),
            "last",
            last,
        );
        let answered = self.get_whole(
            &page,
            &pull_scope(repository),
            &[],
            MAX_PAGE,
            "the page of tags",
        );
        let why = match answered {
            Ok((headers, bytes)) => match serde_json::from_slice::<Page>(&bytes) {
                Ok(read) => {
                    let more = headers.get("link").is_some();
                    let tags = read.tags.unwrap_or_default();
                    return Ok(Nearby::of(&tags, last, more, candidates));
                }
                Err(e) => format!("not a tag list ({e})"),
            },
            Err(e) if e.is_retryable() => return Err(e),
            Err(e) => e.to_string(),
        };
        self.tag_pages_refused.store(true, Ordering::Relaxed);
        self.progress.detail(format_args!(
            "{repository}: no page of tags to find referrer tags in ({}); asking for each",
            crate::inert::inert(&why)
        ));
        Ok(Nearby::default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LAST: &str = "sha256-aaa";

    fn tags(tags: &[&str]) -> Vec<String> {
        tags.iter().map(|tag| tag.to_string()).collect()
    }

    fn candidates() -> Vec<String> {
        tags(&[
            "sha256-aaab",
            "sha256-aaab.att",
            "sha256-aaab.sbom",
            "sha256-aaab.sig",
        ])
    }

    #[test]
    fn a_whole_answer_tells_every_tag_in_any_order_after_last_or_not() {
        // Distribution 2.8: every tag, unsorted, `last` ignored.
        let page = Nearby::of(
            &tags(&["latest", "v1", "sha256-aaab.sig", "zeta"]),
            LAST,
            false,
            &candidates(),
        );
        assert!(page.listed("sha256-aaab.sig") && !page.absent("sha256-aaab.sig"));
        for absent in ["sha256-aaab", "sha256-aaab.att", "sha256-aaab.sbom"] {
            assert!(page.absent(absent), "{absent}");
        }
        let empty = Nearby::of(&[], LAST, false, &candidates());
        assert!(candidates().iter().all(|tag| empty.absent(tag)));
    }

    #[test]
    fn a_page_cut_short_tells_only_below_its_last_tag_and_only_in_lexical_order() {
        let cut = Nearby::of(
            &tags(&["sha256-aaab", "sha256-aaab.p"]),
            LAST,
            true,
            &candidates(),
        );
        assert!(cut.listed("sha256-aaab"));
        assert!(cut.absent("sha256-aaab.att"));
        assert!(!cut.absent("sha256-aaab.sbom") && !cut.absent("sha256-aaab.sig"));
        let unsorted = Nearby::of(&tags(&["zeta", "sha256-aaab.p"]), LAST, true, &candidates());
        assert_eq!(unsorted.reach, Reach::Nothing);
        let before_last = Nearby::of(&tags(&["latest", "zeta"]), LAST, true, &candidates());
        assert_eq!(before_last.reach, Reach::Nothing, "last was not honoured");
        assert!(!before_last.absent("sha256-aaab"));
    }

    #[test]
    fn exactly_the_tags_asked_for_may_be_a_page_cut_without_a_link() {
        let full: Vec<String> = (0..PAGE).map(|i| format!("v{i:03}")).collect();
        let page = Nearby::of(&full, LAST, false, &candidates());
        assert_eq!(page.reach, Reach::Below("v099".into()));
        let more: Vec<String> = (0..=PAGE).map(|i| format!("v{i:03}")).collect();
        assert_eq!(
            Nearby::of(&more, LAST, false, &candidates()).reach,
            Reach::All
        );
        assert!(!Nearby::default().absent("sha256-aaab"));
    }
}
