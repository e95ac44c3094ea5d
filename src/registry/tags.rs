//! The tags of a repository: `GET /v2/<name>/tags/list`, following `Link: <…>; rel="next"`
//! from page to page, on the registry's own origin only, never to a page already read, and
//! handing each page on as it arrives so that no more than one page is held.

use std::collections::HashSet;

use serde::Deserialize;

use super::blobs::pull_scope;
use super::http::Body;
use super::{Registry, url};
use crate::error::{Error, Result};

/// A tag list answer is small; anything larger is refused.
const MAX_PAGE: u64 = 4 * 1024 * 1024;
/// How many pages are followed at most.
const MAX_PAGES: usize = 10_000;

impl Registry {
    /// The tags of `repository`, page by page: `page` gets each page's tags and returns
    /// whether to go on. Asks for `page_size` tags per page when given.
    pub fn tags(
        &self,
        repository: &str,
        page_size: Option<u32>,
        mut page: impl FnMut(Vec<String>) -> Result<bool>,
    ) -> Result<()> {
        #[derive(Deserialize)]
        struct Page {
            tags: Option<Vec<String>>,
        }
        let mut next = format!("{}/v2/{repository}/tags/list", self.base);
        if let Some(n) = page_size {
            next = url::with_query(&next, "n", &n.to_string());
        }
        let mut read = HashSet::new();
        for _ in 0..MAX_PAGES {
            read.insert(next.clone());
            let response = self.request(
                "GET",
                &next,
                &pull_scope(repository),
                &[],
                Body::Empty,
                &[200],
            )?;
            let link = response
                .headers()
                .get("link")
                .and_then(|v| v.to_str().ok())
                .and_then(next_link);
            let shown = url::shown(&next).to_string();
            let bytes = (response
                .into_body()
                .into_with_config()
                .limit(MAX_PAGE)
                .read_to_vec())
            .map_err(|e| Error::Registry(format!("GET {shown}: {e}")))?;
            let tags = serde_json::from_slice::<Page>(&bytes)
                .map_err(|e| Error::Registry(format!("GET {shown}: not a tag list ({e})")))?
                .tags;
            drop(bytes);
            if !page(tags.unwrap_or_default())? {
                return Ok(());
            }
            let Some(link) = link else { return Ok(()) };
            next = url::resolve(&next, &link);
            if !url::same_origin(&next, &self.base) {
                return Err(Error::Registry(format!(
                    "GET {shown}: the next page of tags is on another host ({}); refused",
                    url::origin(&next)
                )));
            }
            if read.contains(&next) {
                self.progress.warn(format_args!(
                    "{repository}: the registry's next page of tags is one already read; \
                     stopping there"
                ));
                return Ok(());
            }
        }
        Err(Error::Registry(format!(
            "{repository}: more than {MAX_PAGES} pages of tags"
        )))
    }
}

/// The target of the `rel="next"` link in a `Link` header, if any.
fn next_link(header: &str) -> Option<String> {
    header.split(',').find_map(|link| {
        let (target, params) = link.split_once(';')?;
        let is_next = params
            .split(';')
            .any(|p| p.trim().trim_start_matches("rel=").trim_matches('"') == "next");
        is_next.then(|| {
            target
                .trim()
                .trim_start_matches('<')
                .trim_end_matches('>')
                .to_string()
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_next_link() {
        assert_eq!(
            next_link(r#"</v2/a/tags/list?last=b&n=2>; rel="next""#).as_deref(),
            Some("/v2/a/tags/list?last=b&n=2")
        );
        assert_eq!(
            next_link(r#"<https://x/prev>; rel="prev", <https://x/next>; rel=next"#).as_deref(),
            Some("https://x/next")
        );
        assert_eq!(next_link(r#"<https://x/prev>; rel="prev""#), None);
    }
}
