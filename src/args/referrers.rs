//! `--no-referrers` and `--referrers-type`: which of an image's referrers (signatures, SBOMs,
//! attestations) go with it.

use lexopt::{Arg, Parser};

use crate::error::{Error, Result};
use crate::transfer::ReferrerPolicy;

use super::{FlagGroup, value};

/// The help lines of the referrer flags.
pub const REFERRERS_HELP: &str = "\
Referrer options (signatures, SBOMs, attestations):
      --no-referrers                leave the image's referrers behind
      --referrers-type TYPE         take only referrers of this artifact type (repeatable;
                                    cosign's tags by their layers' type, as
                                    application/vnd.dev.cosign.simplesigning.v1+json)";

/// Which referrers go with an image: all of them unless told otherwise.
#[derive(Default)]
pub struct ReferrerArgs {
    off: bool,
    types: Vec<String>,
}

impl ReferrerArgs {
    /// The policy, or `None` with `--no-referrers`; both flags together are refused.
    pub fn policy(&self) -> Result<Option<ReferrerPolicy>> {
        match (self.off, self.types.is_empty()) {
            (true, false) => Err(Error::Usage(
                "--no-referrers and --referrers-type: give one or the other".into(),
            )),
            (true, true) => Ok(None),
            (false, _) => Ok(Some(ReferrerPolicy {
                types: self.types.clone(),
            })),
        }
    }
}

impl FlagGroup for ReferrerArgs {
    fn claim(&mut self, arg: &Arg<'_>, parser: &mut Parser) -> Result<bool> {
        match arg {
            Arg::Long("no-referrers") => self.off = true,
            Arg::Long("referrers-type") => {
                let kind = value(parser, "--referrers-type")?;
                if kind.is_empty() || kind.chars().any(char::is_control) {
                    return Err(Error::Usage(
                        "--referrers-type: give a media type, like application/spdx+json".into(),
                    ));
                }
                self.types.push(kind);
            }
            _ => return Ok(false),
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &[&str]) -> Result<Option<ReferrerPolicy>> {
        let mut parser = Parser::from_args(line.iter().copied());
        let mut flags = ReferrerArgs::default();
        let left = super::super::next(&mut parser, &mut [&mut flags], "test")?;
        assert!(left.is_none(), "every argument is one of the group's");
        flags.policy()
    }

    #[test]
    fn every_referrer_by_default_some_types_or_none() {
        assert!(parse(&[]).unwrap().unwrap().types.is_empty());
        let some = parse(&["--referrers-type", "a/b", "--referrers-type=c/d"]).unwrap();
        assert_eq!(some.unwrap().types, ["a/b", "c/d"]);
        assert!(parse(&["--no-referrers"]).unwrap().is_none());
        let both = parse(&["--no-referrers", "--referrers-type", "a/b"]).err();
        assert!(both.is_some_and(|e| e.to_string().contains("one or the other")));
    }
}
