//! `clean`: remove images from the cache and whatever nothing refers to any more.

use lexopt::{Arg, Parser};

use crate::args::{self, Globals, Invocation};
use crate::cache::{Report, Sweep};
use crate::error::{Error, Result};
use crate::progress::{Progress, count, human_bytes};

use crate::run::output::print_help;

const COMMAND: &str = "docker-image-pusher clean";

/// The synopsis and options.
pub const USAGE: &str = "\
Remove cached images, then every blob and file that no remaining image uses.

Usage: docker-image-pusher clean [OPTIONS] [IMAGE]...

Arguments:
  IMAGE  a cached image: full or unambiguous short name (removes that name only), or
         image ID (prefix)

Options:
      --all        remove every image
      --all-names  let an image ID remove every name of its image (refused without,
                   when the image has several)
      --verify     also hash every blob and remove those that do not match their digest
                   (exit 3 when any did)
  -n, --dry-run    only report what would be removed";

/// The flag groups it accepts besides the global ones, as shown in its help.
pub const GROUPS: &[&str] = &[];

/// The long help.
pub const DETAILS: &str = "

A name removes that name only; the image's blobs go once no name uses them. An image
ID (or ID prefix) names every name of its image: when it has several, clean lists them
and removes nothing unless --all-names says to remove them all. Each name removed is
listed, with the referrers (signatures, SBOMs) that went with it.

With no IMAGE and no --all, removes only what no image uses: blobs left by removed
images and temporary files of interrupted runs. Waits for other commands using the
same cache to finish first.

--verify reads every blob the cached images use and removes each whose bytes no longer
hash to its digest (a disk error, a hand edit). The images stay listed; the next pull or
extract of each fetches the removed blobs again.

Examples:
  docker-image-pusher clean nginx:latest
  docker-image-pusher clean 3f2a9c --all-names
  docker-image-pusher clean --all --dry-run
  docker-image-pusher clean --verify";

/// What the command line of `clean` says, checked, before anything is opened.
pub struct CleanArgs {
    pub globals: Globals,
    /// The images to remove; `None` with `--all`.
    pub images: Option<Vec<String>>,
    /// What else the sweep does: `--all-names`, `--dry-run`, `--verify`.
    pub sweep: Sweep,
}

impl CleanArgs {
    /// Reads the rest of the command line.
    pub fn parse(parser: &mut Parser, mut globals: Globals) -> Result<Invocation<CleanArgs>> {
        let mut images = Vec::new();
        let mut all = false;
        let mut sweep = Sweep::default();
        while let Some(flag) = args::next(parser, &mut [&mut globals], COMMAND)? {
            match flag.as_arg() {
                Arg::Short('h') => return Ok(Invocation::Help { long: false }),
                Arg::Long("help") => return Ok(Invocation::Help { long: true }),
                Arg::Long("all") => all = true,
                Arg::Long("all-names") => sweep.all_names = true,
                Arg::Short('n') | Arg::Long("dry-run") => sweep.dry_run = true,
                Arg::Long("verify") => sweep.verify = true,
                Arg::Value(value) => images.push(args::utf8(value, "IMAGE")?),
                other => return Err(args::unexpected(other, COMMAND)),
            }
        }
        if all && !images.is_empty() {
            return Err(Error::Usage(format!(
                "give IMAGEs or --all, not both; see '{COMMAND} --help'"
            )));
        }
        Ok(Invocation::Run(CleanArgs {
            globals,
            images: (!all).then_some(images),
            sweep,
        }))
    }
}

/// Runs `clean` on the rest of the command line.
pub fn run(parser: &mut Parser, globals: Globals) -> Result<()> {
    let CleanArgs {
        globals,
        images,
        sweep,
    } = match CleanArgs::parse(parser, globals)? {
        Invocation::Help { long } => return print_help(USAGE, GROUPS, DETAILS, long),
        Invocation::Run(clean) => clean,
    };
    let report = globals.cache().clean(images.as_deref(), sweep)?;
    said(&report, sweep, globals.progress())
}

/// What `clean` says of `report`: what it removed (or would), what it freed, and with
/// `--verify` the blobs that failed (exit 3 when any did).
fn said(report: &Report, sweep: Sweep, progress: Progress) -> Result<()> {
    let (removed, free) = if sweep.dry_run {
        ("would remove", "would free")
    } else {
        ("removed", "freed")
    };
    for image in &report.images {
        progress.info(format_args!("{removed} {image}"));
    }
    progress.info(format_args!(
        "{free} {}: {}, {}, {}, {}",
        human_bytes(report.bytes),
        count(report.images.len(), "image"),
        count(report.blobs, "blob"),
        count(report.manifests, "manifest file"),
        count(report.temporary, "temporary file")
    ));
    if !sweep.verify {
        return Ok(());
    }
    for damaged in &report.damaged {
        progress.warn(format_args!(
            "blob {damaged} does not match its digest; {removed} it"
        ));
    }
    match report.damaged.len() {
        0 => {
            progress.info(format_args!(
                "verified {}: all match their digests",
                count(report.verified, "blob")
            ));
            Ok(())
        }
        n => Err(Error::BadInput(format!(
            "{} of {} did not match their digests; pull or extract their images again",
            count(n, "blob"),
            report.verified
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_and_all_together_are_refused_before_the_cache_is_opened() {
        let line = ["app:v1", "--all", "--cache-dir", "/nonexistent/dip-cache"];
        let parsed = CleanArgs::parse(&mut Parser::from_args(line), Globals::defaults());
        assert_eq!(parsed.err().map(|e| e.exit_code()), Some(2));
        let line = ["--all", "-n"];
        let Ok(Invocation::Run(clean)) =
            CleanArgs::parse(&mut Parser::from_args(line), Globals::defaults())
        else {
            panic!("not parsed");
        };
        assert!(clean.images.is_none() && clean.sweep.dry_run);
    }
}
