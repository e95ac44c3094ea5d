//! What `save` and `bundle` both write: the cached images, `-o/--output`, `--gzip`,
//! `--split SIZE`, and which referrers go with them.

use std::fs;
use std::path::Path;

use lexopt::{Arg, Parser};

use crate::archive::part_limit;
use crate::error::{Error, Result};
use crate::transfer::ReferrerPolicy;

use super::{FlagGroup, ReferrerArgs, size, utf8, value};

/// What `save` and `bundle` both take: the cached images (the words), `-o/--output` (a file,
/// or for `bundle` a folder), `--gzip` and `--split SIZE`.
#[derive(Default)]
pub struct Written {
    images: Vec<String>,
    output: Option<String>,
    gzip: bool,
    split: Option<u64>,
    referrers: ReferrerArgs,
}

/// What [`Written::checked`] gives: everything `save` and `bundle` write.
pub struct WrittenArgs {
    /// The cached images, as named.
    pub images: Vec<String>,
    /// The archive (`-`: standard output) or the folder.
    pub output: String,
    pub gzip: bool,
    /// The largest part the archive may be written in (`--split`), if it is split.
    pub split: Option<u64>,
    /// Which referrers of the images go into it (none with `--no-referrers`).
    pub referrers: Option<ReferrerPolicy>,
}

/// The help of `--gzip` and `--split`.
pub const WRITTEN_HELP: &str = "\
Archive options:
      --gzip                   compress the archive
      --split SIZE             write the archive as numbered parts of at most SIZE each
                               (700M; 4G means the 4 GiB - 1 byte FAT32 holds); they
                               concatenate to the archive, and extract, push and sync read
                               them as it";

impl Written {
    /// What was given; a usage error of `command` without an output (`missing` says what:
    /// `archive given (-o FILE)`) or without an image.
    pub fn checked(self, missing: &str, command: &str) -> Result<WrittenArgs> {
        let output = (self.output)
            .ok_or_else(|| Error::Usage(format!("no {missing}; see '{command} --help'")))?;
        if self.images.is_empty() {
            return Err(Error::Usage(format!(
                "no image given; see '{command} --help'"
            )));
        }
        if output != "-" {
            existing_parent(&output)?;
        }
        Ok(WrittenArgs {
            images: self.images,
            output,
            gzip: self.gzip,
            split: self.split.map(part_limit),
            referrers: self.referrers.policy()?,
        })
    }
}

impl FlagGroup for Written {
    fn claim(&mut self, arg: &Arg<'_>, parser: &mut Parser) -> Result<bool> {
        match arg {
            Arg::Short('o') | Arg::Long("output") => self.output = Some(value(parser, "--output")?),
            Arg::Long("gzip") => self.gzip = true,
            Arg::Long("split") => self.split = Some(size(parser, "--split")?),
            Arg::Value(image) => self.images.push(utf8(image.clone(), "IMAGE")?),
            _ => return self.referrers.claim(arg, parser),
        }
        Ok(true)
    }
}

/// A usage error unless the folder `-o PATH` goes in exists: neither save nor bundle makes
/// missing folders, so a mistyped path is named rather than created.
fn existing_parent(output: &str) -> Result<()> {
    let parent = (Path::new(output).parent())
        .filter(|parent| !parent.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    match fs::metadata(parent) {
        Ok(meta) if meta.is_dir() => Ok(()),
        Ok(_) => Err(Error::Usage(format!(
            "-o {output}: {} is not a folder",
            parent.display()
        ))),
        Err(_) => Err(Error::Usage(format!(
            "-o {output}: the folder {} does not exist; create it first (save and bundle \
             make no missing folders)",
            parent.display()
        ))),
    }
}
