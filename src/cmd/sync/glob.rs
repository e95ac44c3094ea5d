//! Shell-style patterns for `--tags` and `--exclude-tags`: `*` (any run of characters), `?`
//! (one character), `[abc]`, `[a-z]` and `[!abc]` (one character of a set, or not of it); any
//! other character stands for itself. A pattern matches a whole tag.

/// One pattern, checked when given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Glob {
    pattern: Vec<char>,
}

impl Glob {
    /// Parses `pattern`; `flag` names it in the error for an unclosed `[`.
    pub fn parse(pattern: &str, flag: &str) -> Result<Glob, String> {
        let chars: Vec<char> = pattern.chars().collect();
        let mut i = 0;
        while i < chars.len() {
            if chars[i] == '[' {
                i = class_end(&chars, i)
                    .ok_or_else(|| format!("{flag} {pattern}: '[' without its ']'"))?;
            }
            i += 1;
        }
        Ok(Glob { pattern: chars })
    }

    /// Whether the whole of `text` matches.
    pub fn matches(&self, text: &str) -> bool {
        let text: Vec<char> = text.chars().collect();
        // Iterative matching with one backtrack point for the last `*`: linear in practice,
        // never exponential.
        let (mut p, mut t) = (0, 0);
        let mut star: Option<(usize, usize)> = None;
        while t < text.len() {
            let step = match self.pattern.get(p) {
                Some('*') => {
                    star = Some((p, t));
                    p += 1;
                    continue;
                }
                Some('?') => Some(p + 1),
                Some('[') => class_end(&self.pattern, p)
                    .filter(|end| in_class(&self.pattern[p + 1..*end], text[t]))
                    .map(|end| end + 1),
                Some(c) if *c == text[t] => Some(p + 1),
                _ => None,
            };
            match (step, star) {
                (Some(next), _) => {
                    p = next;
                    t += 1;
                }
                (None, Some((star_p, star_t))) => {
                    p = star_p + 1;
                    t = star_t + 1;
                    star = Some((star_p, star_t + 1));
                }
                (None, None) => return false,
            }
        }
        self.pattern[p..].iter().all(|c| *c == '*')
    }
}

/// `--tags` and `--exclude-tags`: which tags of a whole repository a sync takes.
#[derive(Debug, Default)]
pub struct TagFilter {
    /// A tag must match one of these, when there are any.
    pub include: Vec<Glob>,
    /// A tag matching one of these is left out.
    pub exclude: Vec<Glob>,
}

impl TagFilter {
    /// Whether any pattern was given.
    pub fn filters(&self) -> bool {
        !(self.include.is_empty() && self.exclude.is_empty())
    }

    /// Whether `tag` is taken.
    pub fn takes(&self, tag: &str) -> bool {
        (self.include.is_empty() || self.include.iter().any(|g| g.matches(tag)))
            && !self.exclude.iter().any(|g| g.matches(tag))
    }
}

/// The index of the `]` closing the class that opens at `start`; a `]` right after `[` or
/// `[!` belongs to the set.
fn class_end(pattern: &[char], start: usize) -> Option<usize> {
    let mut i = start + 1;
    if pattern.get(i) == Some(&'!') {
        i += 1;
    }
    if pattern.get(i) == Some(&']') {
        i += 1;
    }
    (i..pattern.len()).find(|&j| pattern[j] == ']')
}

/// Whether `c` is in the set `class` (what is between the brackets).
fn in_class(class: &[char], c: char) -> bool {
    let (negated, set) = match class.first() {
        Some('!') => (true, &class[1..]),
        _ => (false, class),
    };
    let mut found = false;
    let mut i = 0;
    while i < set.len() {
        if i + 2 < set.len() && set[i + 1] == '-' {
            found |= set[i] <= c && c <= set[i + 2];
            i += 3;
        } else {
            found |= set[i] == c;
            i += 1;
        }
    }
    found != negated
}

#[cfg(test)]
mod tests {
    use super::*;

    fn glob(pattern: &str) -> Glob {
        Glob::parse(pattern, "--tags").unwrap()
    }

    #[test]
    fn stars_and_question_marks_match_whole_tags() {
        assert!(glob("v1.*").matches("v1.2.3"));
        assert!(glob("v1.*").matches("v1."));
        assert!(!glob("v1.*").matches("v10.0"));
        assert!(glob("*-alpine").matches("1.27-alpine"));
        assert!(!glob("*-alpine").matches("1.27-alpine3.20"));
        assert!(glob("*").matches(""));
        assert!(glob("1.?").matches("1.9") && !glob("1.?").matches("1.10"));
        assert!(glob("*a*b*c").matches("xxaxxbxxbxc"));
        assert!(!glob("latest").matches("latest2"));
    }

    #[test]
    fn classes_ranges_and_negation() {
        assert!(glob("v[0-9]").matches("v7") && !glob("v[0-9]").matches("vx"));
        assert!(glob("[!v]*").matches("latest") && !glob("[!v]*").matches("v1"));
        assert!(glob("[]a]").matches("]"));
        assert!(glob("[a-c_]x").matches("_x"));
    }

    #[test]
    fn a_filter_takes_what_one_include_matches_and_no_exclude_does() {
        let filter = TagFilter {
            include: vec![glob("v1.*"), glob("v2.*")],
            exclude: vec![glob("*-rc*")],
        };
        assert!(filter.takes("v1.2") && filter.takes("v2.0"));
        assert!(!filter.takes("v3.0") && !filter.takes("v1.3-rc1"));
        assert!(TagFilter::default().takes("anything"));
    }

    #[test]
    fn an_unclosed_class_is_refused_naming_the_flag() {
        let error = Glob::parse("v[1", "--exclude-tags").unwrap_err();
        assert_eq!(error, "--exclude-tags v[1: '[' without its ']'");
    }

    #[test]
    fn a_long_pattern_against_a_long_tag_stays_fast() {
        let tag = "a".repeat(128);
        assert!(!glob(&format!("{}b", "*a".repeat(20))).matches(&tag));
    }
}
