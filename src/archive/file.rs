//! The archive file itself, written whole or not at all: one file (through a new temporary
//! file beside it), or numbered parts of at most a given size (`--split`).

use std::fs;
use std::path::Path;

use crate::atomic::{self, Replace};
use crate::create;
use crate::error::{Context, Error, Result};
use crate::writeback::WriteBehind;

use super::{Part, PartsWriter, part_name};

/// Writes `path` whole or not at all: through a new temporary file beside it, written back
/// as it grows ([`WriteBehind`]), synced, then renamed.
pub fn write_whole<T>(
    path: &Path,
    write: impl FnOnce(&mut WriteBehind<'_>) -> Result<T>,
) -> Result<T> {
    let shown = path.display().to_string();
    atomic::replace(
        Replace::beside(path, create::ORDINARY_FILE, &shown),
        |file| write(&mut WriteBehind::new(file, 0)),
    )
}

/// Writes `path` as numbered parts of at most `limit` bytes (`path.000`, …) with `write`,
/// whole or not at all: each part as `.partial` until all are written, then renamed; `path`
/// itself, and parts an earlier, longer write left past the new last one, are removed (they
/// would be read as part of the archive). Returns what `write` returned and the parts.
pub fn write_parts<T>(
    path: &Path,
    limit: u64,
    write: impl FnOnce(&mut PartsWriter) -> Result<T>,
) -> Result<(T, Vec<Part>)> {
    let dir = path
        .parent()
        .filter(|dir| !dir.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let base = (path.file_name())
        .ok_or_else(|| Error::Usage(format!("-o {}: not a file name", path.display())))?
        .to_string_lossy()
        .into_owned();
    let partial = |name: &str| dir.join(format!("{name}.partial"));
    // What is not renamed yet goes, from part `from` on, however the write failed.
    let remove_partials = |from: usize| {
        for index in from.. {
            if fs::remove_file(partial(&part_name(&base, index))).is_err() {
                break;
            }
        }
    };
    let mut parts = PartsWriter::new(dir, &base, ".partial", limit);
    let written = write(&mut parts).and_then(|written| Ok((written, parts.finish()?)));
    let (written, parts) = written.inspect_err(|_| remove_partials(0))?;
    for (index, part) in parts.iter().enumerate() {
        fs::rename(partial(&part.name), dir.join(&part.name))
            .context(|| format!("renaming {}", partial(&part.name).display()))
            .inspect_err(|_| remove_partials(index))?;
    }
    let _ = fs::remove_file(path);
    for index in parts.len().. {
        if fs::remove_file(dir.join(part_name(&base, index))).is_err() {
            break;
        }
    }
    Ok((written, parts))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scratch;
    use std::io::Write;

    #[test]
    fn parts_replace_a_whole_file_and_longer_parts_of_before() {
        let dir = scratch::dir("save-replace");
        let path = dir.join("app.tar");
        fs::write(&path, b"old whole archive").unwrap();
        for index in 0..5 {
            fs::write(dir.join(part_name("app.tar", index)), b"old part").unwrap();
        }
        let (_, parts) = write_parts(&path, 10, |out| {
            out.write_all(&[7u8; 15]).context(|| "writing")
        })
        .unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!(scratch::names(&dir), ["app.tar.000", "app.tar.001"]);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn links_in_the_way_are_removed_never_followed() {
        let dir = scratch::dir("save-links");
        let outside = scratch::dir("save-links-outside");
        let keep = outside.join("precious");
        fs::write(&keep, b"not the archive's").unwrap();
        let path = dir.join("app.tar");
        for name in ["app.tar", "app.tar.000.partial", "app.tar.002"] {
            std::os::unix::fs::symlink(&keep, dir.join(name)).unwrap();
        }
        fs::write(dir.join("app.tar.001"), b"old part").unwrap();
        write_parts(&path, 10, |out| {
            out.write_all(&[7u8; 15]).context(|| "writing")
        })
        .unwrap();
        assert_eq!(scratch::names(&dir), ["app.tar.000", "app.tar.001"]);
        assert_eq!(fs::read(dir.join("app.tar.000")).unwrap(), [7u8; 10]);
        assert_eq!(fs::read(&keep).unwrap(), b"not the archive's");
        fs::remove_dir_all(&dir).unwrap();
        fs::remove_dir_all(&outside).unwrap();
    }

    #[test]
    fn a_failed_rename_leaves_no_partial_part() {
        let dir = scratch::dir("save-rename");
        let path = dir.join("app.tar");
        fs::create_dir_all(dir.join("app.tar.001/in the way")).unwrap();
        let failed = write_parts(&path, 10, |out| {
            out.write_all(&[7u8; 25]).context(|| "writing")
        });
        assert!(failed.is_err());
        assert_eq!(scratch::names(&dir), ["app.tar.000", "app.tar.001"]);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_failed_write_leaves_no_part() {
        let dir = scratch::dir("save-failed");
        let path = dir.join("app.tar");
        let failed = write_parts(&path, 10, |out| {
            out.write_all(&[7u8; 25]).context(|| "writing")?;
            Err::<(), _>(Error::BadInput("the source broke".into()))
        });
        assert!(failed.is_err());
        assert!(
            scratch::names(&dir).is_empty(),
            "{:?}",
            scratch::names(&dir)
        );
        fs::remove_dir_all(&dir).unwrap();
    }
}
