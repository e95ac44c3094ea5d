//! The tags of a repository: `GET /v2/<name>/tags/list`, following `Link: <…>; rel="next"`
//! from page to page, on the registry's own origin only, never to a page already read, and
//! handing each tag on as it is parsed, so that no more than one page's bytes are held.

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::blobs::pull_scope;
use super::{Registry, url};
use crate::error::{Error, Result};

/// A tag list answer is small; anything larger is refused.
const MAX_PAGE: u64 = 4 * 1024 * 1024;
/// How many pages are followed at most.
const MAX_PAGES: usize = 10_000;

/// What receives the tags: each one in turn, returning whether to go on.
type Each<'a> = dyn FnMut(&str) -> Result<bool> + 'a;

impl Registry {
    /// The tags of `repository`, one at a time: `each` gets every tag and returns whether to
    /// go on. Asks for `page_size` tags per page when given.
    pub fn tags(
        &self,
        repository: &str,
        page_size: Option<u32>,
        each: &mut Each<'_>,
    ) -> Result<()> {
        let mut next = format!("{}/v2/{repository}/tags/list", self.base);
        if let Some(n) = page_size {
            next = url::with_query(&next, "n", &n.to_string());
        }
        let mut read = HashSet::new();
        for _ in 0..MAX_PAGES {
            read.insert(next.clone());
            let scope = pull_scope(repository);
            let (headers, bytes) =
                self.get_whole(&next, &scope, &[], MAX_PAGE, "the page of tags")?;
            let link = (headers.get("link").and_then(|v| v.to_str().ok())).and_then(next_link);
            let shown = url::shown(&next).to_string();
            let mut going = Ok(true);
            let mut page = serde_json::Deserializer::from_slice(&bytes);
            (PageSeed {
                each: &mut *each,
                going: &mut going,
            })
            .deserialize(&mut page)
            .and_then(|()| page.end())
            .map_err(|e| Error::Registry(format!("GET {shown}: not a tag list ({e})")))?;
            if !going? {
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

/// Reads a page (`{"name": …, "tags": [...]}`), handing each tag to `each` as it is parsed;
/// `going` ends false once `each` asks to stop, or holds its error.
struct PageSeed<'a, 'e> {
    each: &'a mut Each<'e>,
    going: &'a mut Result<bool>,
}

impl<'de> DeserializeSeed<'de> for PageSeed<'_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for PageSeed<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a tag list object")
    }

    fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<(), M::Error> {
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            match key.as_ref() {
                "tags" => map.next_value_seed(TagsSeed {
                    each: &mut *self.each,
                    going: &mut *self.going,
                })?,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

/// The `tags` array (or `null`), tag by tag.
struct TagsSeed<'a, 'e> {
    each: &'a mut Each<'e>,
    going: &'a mut Result<bool>,
}

impl<'de> DeserializeSeed<'de> for TagsSeed<'_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_option(self)
    }
}

impl<'de> Visitor<'de> for TagsSeed<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of tags")
    }

    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_seq(self)
    }

    fn visit_seq<S: SeqAccess<'de>>(self, mut seq: S) -> Result<(), S::Error> {
        /// One tag, borrowed from the page unless it holds escapes.
        #[derive(Deserialize)]
        struct Tag<'a>(#[serde(borrow)] Cow<'a, str>);
        while let Some(Tag(tag)) = seq.next_element::<Tag<'de>>()? {
            if matches!(self.going, Ok(true)) {
                *self.going = (self.each)(&tag);
            }
        }
        Ok(())
    }
}

/// The target of the `rel="next"` link in a `Link` header, if any.
pub(super) fn next_link(header: &str) -> Option<String> {
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

    /// The tags `page` hands on, stopping after `stop_after` when given.
    fn tags_of(page: &str, stop_after: Option<usize>) -> Vec<String> {
        let mut tags = Vec::new();
        let mut going = Ok(true);
        let mut each = |tag: &str| {
            tags.push(tag.to_string());
            Ok(stop_after.is_none_or(|n| tags.len() < n))
        };
        let mut page = serde_json::Deserializer::from_str(page);
        (PageSeed {
            each: &mut each,
            going: &mut going,
        })
        .deserialize(&mut page)
        .and_then(|()| page.end())
        .unwrap();
        assert!(going.is_ok());
        tags
    }

    #[test]
    fn pages_hand_on_each_tag_as_it_is_parsed() {
        let page = r#"{"name":"a/b","tags":["v1","v\u0032",  "v3"],"extra":{"x":[1]}}"#;
        assert_eq!(tags_of(page, None), ["v1", "v2", "v3"]);
        assert_eq!(tags_of(page, Some(1)), ["v1"]);
        assert!(tags_of(r#"{"name":"a/b","tags":null}"#, None).is_empty());
        assert!(tags_of(r#"{"name":"a/b"}"#, None).is_empty());
    }

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
