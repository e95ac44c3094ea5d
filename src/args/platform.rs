//! `--platform` and `--all-platforms`.

use lexopt::{Arg, Parser};

use crate::error::{Error, Result};
use crate::manifest::{Platform, Platforms};

use super::{FlagGroup, value};

/// `--platform` and `--all-platforms`: which images of a multi-platform index a command
/// takes (the help lines are in each command's options); without either, the command's own
/// default: the index whole for those that mirror (copy, sync, push), this host's image for
/// those that keep it here (pull, extract).
#[derive(Default)]
pub struct PlatformArgs {
    /// What `--platform` named: one platform, or several separated by commas.
    platforms: Vec<Platform>,
    all: bool,
}

impl PlatformArgs {
    /// The choice made: every platform, the one or several named, or `unless_asked` when
    /// neither flag was given.
    pub fn choice(&self, unless_asked: Platforms) -> Result<Platforms> {
        match (self.platforms.as_slice(), self.all) {
            ([_, ..], true) => Err(Error::Usage(
                "--platform and --all-platforms: give one or the other".into(),
            )),
            (_, true) => Ok(Platforms::All),
            ([], false) => Ok(unless_asked),
            ([platform], false) => Ok(Platforms::One(platform.clone())),
            (several, false) => Ok(Platforms::Several(several.to_vec())),
        }
    }
}

impl FlagGroup for PlatformArgs {
    fn claim(&mut self, arg: &Arg<'_>, parser: &mut Parser) -> Result<bool> {
        match arg {
            Arg::Long("platform") => {
                let text = value(parser, "--platform")?;
                self.platforms = (text.split(','))
                    .map(|one| {
                        Platform::parse(one).map_err(|e| Error::Usage(format!("--platform: {e}")))
                    })
                    .collect::<Result<_>>()?;
            }
            Arg::Long("all-platforms") => self.all = true,
            _ => return Ok(false),
        }
        Ok(true)
    }
}
