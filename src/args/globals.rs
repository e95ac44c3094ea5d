//! The flags every command accepts, before or after its name.

use std::path::PathBuf;

use lexopt::{Arg, Parser};

use crate::cache::Cache;
use crate::error::Result;
use crate::progress::{Progress, Verbosity};

use super::{Env, FlagGroup, value};

/// The help lines of the global flags, shown under every command's help.
pub const GLOBAL_HELP: &str = "\
Global options:
      --cache-dir DIR  cache directory [default: .cache] [env: DOCKER_PUSHER_CACHE_DIR]
  -v, --verbose        say more on stderr [env: DOCKER_PUSHER_VERBOSE]
  -q, --quiet          print errors only
  -h, --help           print help (-h short, --help long)
  -V, --version        print the version";

/// The flags every command accepts, before or after its name.
pub struct Globals {
    pub cache_dir: PathBuf,
    pub verbosity: Verbosity,
    /// The environment the other flag groups take their defaults from.
    pub env: Env,
}

impl Globals {
    /// The defaults, overridden by `env`.
    pub fn from_env(env: Env) -> Result<Globals> {
        let cache_dir = (env.value("DOCKER_PUSHER_CACHE_DIR"))
            .map_or_else(|| PathBuf::from(".cache"), PathBuf::from);
        let verbosity = match env.bool("DOCKER_PUSHER_VERBOSE")? {
            Some(true) => Verbosity::Verbose,
            _ => Verbosity::Normal,
        };
        Ok(Globals {
            cache_dir,
            verbosity,
            env,
        })
    }

    /// The defaults alone, with no environment.
    #[cfg(test)]
    pub fn defaults() -> Globals {
        Globals::from_env(Env::default()).expect("an empty environment is valid")
    }

    /// The reporter for this run.
    pub fn progress(&self) -> Progress {
        Progress::new(self.verbosity)
    }

    /// The cache these flags name.
    pub fn cache(&self) -> Cache {
        Cache::new(self.cache_dir.clone()).with_progress(self.progress())
    }
}

impl FlagGroup for Globals {
    fn claim(&mut self, arg: &Arg<'_>, parser: &mut Parser) -> Result<bool> {
        match arg {
            Arg::Long("cache-dir") => self.cache_dir = PathBuf::from(value(parser, "--cache-dir")?),
            Arg::Short('v') | Arg::Long("verbose") => self.verbosity = Verbosity::Verbose,
            Arg::Short('q') | Arg::Long("quiet") => self.verbosity = Verbosity::Quiet,
            _ => return Ok(false),
        }
        Ok(true)
    }
}
