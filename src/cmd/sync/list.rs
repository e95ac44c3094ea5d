//! The list `sync` runs: read from a file or standard input, one image (or repository) per line.

use std::fs;
use std::io::{IsTerminal, Read};
use std::path::{Path, PathBuf};

use crate::error::{Context, Error, Result};
use crate::progress::count;

/// Reads the list; returns its text and the folder relative archive paths start at.
pub fn read_list(list: &str) -> Result<(String, PathBuf)> {
    if list != "-" {
        let text = fs::read_to_string(list).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => Error::Usage(format!("--file {list}: no such file")),
            _ => Error::io(format!("reading {list}"), e),
        })?;
        let base = Path::new(list)
            .parent()
            .unwrap_or(Path::new(""))
            .to_path_buf();
        return Ok((text, base));
    }
    let mut stdin = std::io::stdin().lock();
    if stdin.is_terminal() {
        return Err(Error::Usage(
            "--file -: standard input is a terminal; pipe the list in".into(),
        ));
    }
    let mut text = String::new();
    stdin
        .read_to_string(&mut text)
        .context(|| "reading the list from standard input")?;
    Ok((text, PathBuf::new()))
}

/// The lines of a list that name images: each one's number and text, without comments (`#` on) and blank
/// lines.
pub fn lines(text: &str) -> Vec<(usize, &str)> {
    (text.lines().enumerate())
        .map(|(i, line)| (i + 1, line.split('#').next().unwrap_or_default().trim()))
        .filter(|(_, line)| !line.is_empty())
        .collect()
}

/// The SOURCE and optional TARGET of a job's line.
pub fn fields(line: &str) -> Result<(&str, Option<&str>)> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    match fields[..] {
        [source] => Ok((source, None)),
        [source, target] => Ok((source, Some(target))),
        _ => {
            let found = count(fields.len(), "field");
            Err(Error::Usage(format!(
                "expected SOURCE [TARGET], found {found}"
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_and_blank_lines_are_no_jobs() {
        let text = "# mirror\n\nsrc:1  dst:1  # same\n  img:2\n";
        assert_eq!(lines(text), vec![(3, "src:1  dst:1"), (4, "img:2")]);
    }

    #[test]
    fn a_line_has_one_or_two_fields() {
        assert_eq!(fields("a b").unwrap(), ("a", Some("b")));
        assert_eq!(fields("a").unwrap(), ("a", None));
        let error = fields("a b c").unwrap_err();
        assert_eq!(error.exit_code(), 2);
        assert!(error.to_string().contains("found 3 fields"), "{error}");
    }
}
