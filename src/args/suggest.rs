//! Reading flag names back out of help texts, and the nearest name to a typo: the help is
//! where every flag group lists its flags beside its parsing, so no second list can fall
//! behind.

/// One option line of a help text, with the lines its description wraps onto.
pub struct HelpOption<'a> {
    /// Its spellings: `-f`, `--file`.
    pub names: Vec<&'a str>,
    /// What it takes, as the help writes it (`FILE`, `=N`), if anything.
    pub value: Option<&'a str>,
    /// Its description, a line each as wrapped in the help (none for a bare flag).
    pub description: Vec<&'a str>,
}

/// The options a help text lists: lines like `  -f, --file FILE  the source` (option lines
/// start at column 2 or 6; wrapped descriptions further in).
pub fn options(help: &str) -> Vec<HelpOption<'_>> {
    let mut found: Vec<HelpOption<'_>> = Vec::new();
    let mut wrapping = false;
    for line in help.lines() {
        let option = (line.strip_prefix("      --").map(|_| &line[6..]))
            .or_else(|| line.strip_prefix("  -").map(|_| &line[2..]));
        if let Some(text) = option {
            found.push(option_line(text));
            wrapping = true;
        } else if let Some(last) = found.last_mut().filter(|_| wrapping) {
            wrapping = line.starts_with("       ") && !line.trim().is_empty();
            last.description.extend(wrapping.then(|| line.trim()));
        }
    }
    found
}

/// The flags a help text lists: `-f` and `--file` of a line `  -f, --file FILE  the source`.
pub fn option_names(help: &str) -> impl Iterator<Item = &str> {
    options(help).into_iter().flat_map(|option| option.names)
}

/// `-f, --file FILE  the source`: the names, the value and the description.
fn option_line(text: &str) -> HelpOption<'_> {
    let mut names = Vec::new();
    let mut rest = text;
    loop {
        let end = rest.find([' ', '=', '[', ',']).unwrap_or(rest.len());
        names.push(&rest[..end]);
        rest = &rest[end..];
        match rest.strip_prefix(", -") {
            Some(_) => rest = &rest[2..],
            None => break,
        }
    }
    let attached = rest.starts_with(['=', '[']);
    let spaced = rest.starts_with(' ') && !rest.starts_with("  ");
    let token = rest.trim_start().split(' ').next().unwrap_or_default();
    // A placeholder: FILE, OS/ARCH[/VARIANT], gzip|none; not a word of prose.
    let placeholder = !token.chars().any(|c| c.is_ascii_lowercase()) || token.contains('|');
    let value = (attached || (spaced && placeholder)).then_some(token);
    if value.is_some() {
        rest = rest.trim_start()[token.len()..].trim_start();
    }
    let description = Some(rest.trim()).filter(|line| !line.is_empty());
    HelpOption {
        names,
        value,
        description: description.into_iter().collect(),
    }
}

/// The candidate closest to `typed`, if one is close enough to be what was meant: at most
/// two edits away, and fewer than a third of its letters.
pub fn nearest<'a>(typed: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let typed: Vec<char> = typed.chars().collect();
    (candidates.into_iter())
        .map(|candidate| (edits(&typed, candidate), candidate))
        .filter(|&(distance, candidate)| distance <= 2 && distance * 3 < candidate.chars().count())
        .min_by_key(|&(distance, _)| distance)
        .map(|(_, candidate)| candidate)
}

/// The edits between `a` and `b`: insertions, deletions, substitutions and swaps of two
/// neighbours (the optimal string alignment distance; `psuh` is one from `push`).
fn edits(a: &[char], b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let substitution = d[i - 1][j - 1] + usize::from(a[i - 1] != b[j - 1]);
            let mut best = substitution.min(d[i - 1][j] + 1).min(d[i][j - 1] + 1);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn option_names_skip_wrapped_descriptions() {
        let help = "Options:\n  -f, --file FILE       the file\n      --level=N         \
                    a level, as with\n                        --other too\n";
        assert_eq!(
            option_names(help).collect::<Vec<_>>(),
            ["-f", "--file", "--level"]
        );
    }

    #[test]
    fn options_keep_their_value_and_whole_description() {
        let help = "  -f, --file FILE  the file\n      --level=N  a level,\n                 \
                    wrapped\n      --json  plain\n  prose -- not wrapped\n      --h HOST one space";
        let found = options(help);
        let values: Vec<_> = found.iter().map(|o| o.value).collect();
        assert_eq!(values, [Some("FILE"), Some("=N"), None, Some("HOST")]);
        assert_eq!(found[1].description, ["a level,", "wrapped"]);
        assert_eq!(found[2].description, ["plain"]);
        assert_eq!(found[3].description, ["one space"]);
    }

    #[test]
    fn a_typo_finds_what_was_meant_and_nonsense_finds_nothing() {
        let commands = ["pull", "push", "sync", "list", "clean"];
        assert_eq!(nearest("psuh", commands), Some("push"));
        assert_eq!(nearest("lsit", commands), Some("list"));
        assert_eq!(nearest("xyzzy", commands), None);
        assert_eq!(
            nearest("--dry-rn", ["--dry-run", "--digestfile"]),
            Some("--dry-run")
        );
        assert_eq!(nearest("--jbos", ["--jobs", "--json"]), Some("--jobs"));
        assert_eq!(nearest("-x", ["-n", "-v"]), None);
    }
}
