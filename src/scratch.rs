//! Scratch folders for unit tests: made new under the system's temporary folder, named by
//! the test (module and purpose) and this process, so tests running at once never share one.

use std::fs;
use std::path::{Path, PathBuf};

/// An empty folder for the test named `label` (`atomic-whole`, say).
pub fn dir(label: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("dip-{label}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

/// The names of what `dir` holds, sorted.
pub fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = (fs::read_dir(dir).unwrap())
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}
