//! `--digestfile FILE` (`push`, `copy`, `sync`): the manifest digests written, for CI steps
//! that sign or pin what was pushed. `push` and `copy` write the digest alone, as skopeo does;
//! `sync` writes `DIGEST TARGET`, a line per image. The file is replaced whole, never left
//! half-written, and never written through a link: the temporary file beside it is new and
//! unpredictably named.

use std::io::{self, BufWriter, Write};
use std::path::Path;

use crate::atomic::{self, Replace};
use crate::create::ORDINARY_FILE;
use crate::error::{Context, Result};

/// Writes `lines` to `path`, each ended by a newline, through a temporary file beside it.
pub fn write(path: &Path, lines: &[String]) -> Result<()> {
    write_each(path, &mut |out| {
        lines.iter().try_for_each(|line| writeln!(out, "{line}"))
    })
}

/// Writes to `path` what `fill` writes, through a temporary file beside it.
pub fn write_each(
    path: &Path,
    fill: &mut dyn FnMut(&mut dyn Write) -> io::Result<()>,
) -> Result<()> {
    let shown = format!("--digestfile {}", path.display());
    atomic::replace(Replace::beside(path, ORDINARY_FILE, &shown), |file| {
        let mut out = BufWriter::new(file);
        (fill(&mut out).and_then(|()| out.flush())).context(|| format!("writing {shown}"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn the_file_holds_the_lines_and_nothing_else_is_left() {
        let dir = std::env::temp_dir().join(format!("dip-digestfile-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("digests");
        fs::write(&path, "old\nlonger old content\n").unwrap();
        write(&path, &["sha256:ab r/a:1".into(), "sha256:cd r/b:2".into()]).unwrap();
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            "sha256:ab r/a:1\nsha256:cd r/b:2\n"
        );
        assert_eq!(
            fs::read_dir(&dir).unwrap().count(),
            1,
            "no temporary file left"
        );
        let error = write(&dir.join("missing/digests"), &[]).unwrap_err();
        assert!(
            error.to_string().starts_with("writing --digestfile"),
            "{error}"
        );
        fs::remove_dir_all(&dir).unwrap();
    }
}
