//! The flags of every command that uploads to a registry (`push`, `copy`, `sync`), gathered:
//! the registry, transfer, upload, platform and referrer groups, `-n/--dry-run` and
//! `--digestfile FILE`.

use std::path::PathBuf;

use lexopt::{Arg, Parser};

use crate::error::Result;

use super::{
    Env, FlagGroup, PlatformArgs, ReferrerArgs, RegistryArgs, TransferArgs, UploadArgs, value,
};

/// The flags of every command that uploads to a registry: the registry, transfer, upload and
/// platform groups, and `-n/--dry-run` (each command's help describes it in its own words).
pub struct UploadFlags {
    pub registry: RegistryArgs,
    pub transfer: TransferArgs,
    pub upload: UploadArgs,
    pub platform: PlatformArgs,
    pub referrers: ReferrerArgs,
    pub dry_run: bool,
    /// `--digestfile FILE`: where the manifest digests written go.
    pub digestfile: Option<PathBuf>,
}

impl UploadFlags {
    /// The defaults, overridden by the environment.
    pub fn from_env(env: &Env) -> Result<UploadFlags> {
        Ok(UploadFlags {
            registry: RegistryArgs::from_env(env)?,
            transfer: TransferArgs::from_env(env)?,
            upload: UploadArgs::from_env(env)?,
            platform: PlatformArgs::default(),
            referrers: ReferrerArgs::default(),
            dry_run: false,
            digestfile: None,
        })
    }
}

impl FlagGroup for UploadFlags {
    fn claim(&mut self, arg: &Arg<'_>, parser: &mut Parser) -> Result<bool> {
        match arg {
            Arg::Short('n') | Arg::Long("dry-run") => {
                self.dry_run = true;
                return Ok(true);
            }
            Arg::Long("digestfile") => {
                self.digestfile = Some(PathBuf::from(value(parser, "--digestfile")?));
                return Ok(true);
            }
            _ => {}
        }
        Ok(self.registry.claim(arg, parser)?
            || self.transfer.claim(arg, parser)?
            || self.upload.claim(arg, parser)?
            || self.platform.claim(arg, parser)?
            || self.referrers.claim(arg, parser)?)
    }
}
