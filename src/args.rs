//! Flags shared by every command (the global group), helpers that name the flag in every
//! parse error, and the `DOCKER_PUSHER_*` environment fallbacks, read here and nowhere else.

use std::ffi::OsString;
use std::path::PathBuf;

use lexopt::{Arg, Parser};

use crate::cache::Cache;
use crate::error::{Error, Result};
use crate::progress::{Progress, Verbosity};

/// The help lines of the global flags, shown under every command's help.
pub const GLOBAL_HELP: &str = "\
Global options:
      --cache-dir DIR  cache directory [default: .cache] [env: DOCKER_PUSHER_CACHE_DIR]
  -v, --verbose        say more on stderr [env: DOCKER_PUSHER_VERBOSE]
  -q, --quiet          print errors only
  -h, --help           print help (-h short, --help long)";

/// The flags every command accepts, before or after its name.
pub struct Globals {
    pub cache_dir: PathBuf,
    pub verbosity: Verbosity,
}

impl Globals {
    /// The defaults, overridden by the environment.
    pub fn from_env() -> Result<Globals> {
        let cache_dir = env_value("DOCKER_PUSHER_CACHE_DIR")
            .map_or_else(|| PathBuf::from(".cache"), PathBuf::from);
        let verbosity = match env_bool("DOCKER_PUSHER_VERBOSE")? {
            Some(true) => Verbosity::Verbose,
            _ => Verbosity::Normal,
        };
        Ok(Globals {
            cache_dir,
            verbosity,
        })
    }

    /// Takes `arg` if it is a global flag; `Ok(false)` leaves it to the command.
    fn claim(&mut self, arg: &Arg<'_>, parser: &mut Parser) -> Result<bool> {
        match arg {
            Arg::Long("cache-dir") => self.cache_dir = PathBuf::from(value(parser, "--cache-dir")?),
            Arg::Short('v') | Arg::Long("verbose") => self.verbosity = Verbosity::Verbose,
            Arg::Short('q') | Arg::Long("quiet") => self.verbosity = Verbosity::Quiet,
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// The reporter for this run.
    pub fn progress(&self) -> Progress {
        Progress::new(self.verbosity)
    }

    /// The cache these flags name.
    pub fn cache(&self) -> Cache {
        Cache::new(self.cache_dir.clone())
    }
}

/// One command-line argument, owned, so that the parser stays free to read a flag's value
/// while the argument is matched.
pub enum Flag {
    Short(char),
    Long(String),
    Value(OsString),
}

impl Flag {
    /// The argument in lexopt's form, for matching.
    pub fn as_arg(&self) -> Arg<'_> {
        match self {
            Flag::Short(c) => Arg::Short(*c),
            Flag::Long(name) => Arg::Long(name),
            Flag::Value(value) => Arg::Value(value.clone()),
        }
    }
}

/// The next argument that is not a global flag (those are claimed into `globals` on the way);
/// errors point at `help_for`'s help.
pub fn next(parser: &mut Parser, globals: &mut Globals, help_for: &str) -> Result<Option<Flag>> {
    loop {
        let arg = parser
            .next()
            .map_err(|e| Error::Usage(format!("{e}; see '{help_for} --help'")))?;
        let flag = match arg {
            None => return Ok(None),
            Some(Arg::Short(c)) => Flag::Short(c),
            Some(Arg::Long(name)) => Flag::Long(name.to_string()),
            Some(Arg::Value(value)) => Flag::Value(value),
        };
        if !globals.claim(&flag.as_arg(), parser)? {
            return Ok(Some(flag));
        }
    }
}

/// The value of `flag`, which must be valid UTF-8.
pub fn value(parser: &mut Parser, flag: &str) -> Result<String> {
    let raw = parser
        .value()
        .map_err(|_| Error::Usage(format!("{flag} needs a value; see --help")))?;
    utf8(raw, flag)
}

/// A positional or flag value as UTF-8, or a usage error naming `what`.
pub fn utf8(raw: OsString, what: &str) -> Result<String> {
    raw.into_string()
        .map_err(|raw| Error::Usage(format!("{what}: {raw:?} is not valid UTF-8")))
}

/// A usage error for an argument no flag group claimed, pointing at `help_for`'s help.
pub fn unexpected(arg: Arg<'_>, help_for: &str) -> Error {
    let what = match arg {
        Arg::Short(c) => format!("unknown option -{c}"),
        Arg::Long(name) => format!("unknown option --{name}"),
        Arg::Value(value) => format!("unexpected argument {value:?}"),
    };
    Error::Usage(format!("{what}; see '{help_for} --help'"))
}

fn env_value(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|value| !value.is_empty())
}

/// A boolean environment variable: true/false/1/0 (any case); anything else names the
/// variable in a usage error.
fn env_bool(name: &str) -> Result<Option<bool>> {
    let Some(value) = env_value(name) else {
        return Ok(None);
    };
    match value.to_ascii_lowercase().as_str() {
        "true" | "1" => Ok(Some(true)),
        "false" | "0" => Ok(Some(false)),
        _ => Err(Error::Usage(format!(
            "{name}={value:?}: expected true, false, 1 or 0"
        ))),
    }
}
