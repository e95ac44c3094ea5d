//! `--digestfile FILE` (`push`, `copy`, `sync`): the manifest digests written, for CI steps
//! that sign or pin what was pushed. `push` and `copy` write the digest alone, as skopeo does;
//! `sync` writes `DIGEST TARGET`, a line per image. The file is replaced whole, never left
//! half-written, and never written through a link: the temporary file beside it is new and
//! unpredictably named.

use std::fs;
use std::io::Write;
use std::path::Path;

use crate::create::{self, ORDINARY_FILE};
use crate::error::{Error, Result};

/// Writes `lines` to `path`, each ended by a newline, through a temporary file beside it.
pub fn write(path: &Path, lines: &[String]) -> Result<()> {
    let what = || format!("writing --digestfile {}", path.display());
    let name = path
        .file_name()
        .ok_or_else(|| Error::Usage(format!("--digestfile {}: not a file name", path.display())))?;
    let dir = path
        .parent()
        .filter(|dir| !dir.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let (mut file, temporary) = create::new_temporary(dir, &name.to_string_lossy(), ORDINARY_FILE)
        .map_err(|e| Error::io(what(), e))?;
    let written = (|| {
        for line in lines {
            writeln!(file, "{line}")?;
        }
        file.sync_all()?;
        fs::rename(&temporary, path)
    })();
    written.map_err(|e| {
        let _ = fs::remove_file(&temporary);
        Error::io(what(), e)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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
