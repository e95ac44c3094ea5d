//! The tags of a repository: `GET /v2/<name>/tags/list`, following `Link: <…>; rel="next"`
//! from page to page.

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
    /// Every tag of `repository`, asking for `page_size` per page when given.
    pub fn tags(&self, repository: &str, page_size: Option<u32>) -> Result<Vec<String>> {
        #[derive(Deserialize)]
        struct Page {
            tags: Option<Vec<String>>,
        }
        let mut next = format!("{}/v2/{repository}/tags/list", self.base);
        if let Some(n) = page_size {
            next = url::with_query(&next, "n", &n.to_string());
        }
        let mut tags = Vec::new();
        for _ in 0..MAX_PAGES {
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
            let bytes = (response
                .into_body()
                .into_with_config()
                .limit(MAX_PAGE)
                .read_to_vec())
            .map_err(|e| Error::Registry(format!("GET {next}: {e}")))?;
            let page: Page = serde_json::from_slice(&bytes)
                .map_err(|e| Error::Registry(format!("GET {next}: not a tag list ({e})")))?;
            tags.extend(page.tags.unwrap_or_default());
            match link {
                Some(link) => next = url::resolve(&next, &link),
                None => return Ok(tags),
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
