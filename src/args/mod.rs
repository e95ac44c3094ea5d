//! Flags shared by the commands, in groups (one file each) that claim the flags they know,
//! with their help beside them; helpers that name the flag in every parse error; and the
//! `DOCKER_PUSHER_*` environment fallbacks, read here and nowhere else.

mod env;
mod globals;
mod platform;
mod progress;
mod referrers;
mod registry;
mod seed;
mod suggest;
mod transfer;
mod tuning;
mod upload;
mod uploading;
mod written;

use std::ffi::OsString;

use lexopt::{Arg, Parser};

use crate::archive::ImageQuery;
use crate::error::{Error, Result};

pub use env::Env;
pub use globals::{GLOBAL_HELP, Globals};
pub use platform::PlatformArgs;
pub use progress::{PROGRESS_HELP, ProgressArgs};
pub use referrers::{REFERRERS_HELP, ReferrerArgs};
pub use registry::{REGISTRY_HELP, RegistryArgs};
pub use seed::{SeedArgs, seed_reference};
pub use suggest::{HelpOption, nearest, option_names, options};
pub use transfer::{TRANSFER_HELP, TransferArgs};
pub use tuning::TUNING_HELP;
pub use upload::{UPLOAD_HELP, UploadArgs};
pub use uploading::UploadFlags;
pub use written::{WRITTEN_HELP, Written, WrittenArgs};

/// The flag groups of the commands that upload to a registry (push, copy, sync), as their
/// help shows them.
pub const UPLOAD_GROUPS: &[&str] = &[
    UPLOAD_HELP,
    REFERRERS_HELP,
    REGISTRY_HELP,
    TRANSFER_HELP,
    PROGRESS_HELP,
];

/// What a command line asks for: the command's help, or a run with these arguments (each
/// command parses into a plain struct first, and opens or connects to anything only after).
pub enum Invocation<T> {
    /// `-h` (short) or `--help` (long).
    Help { long: bool },
    /// The arguments, checked.
    Run(T),
}

/// A set of flags that several commands share: it takes the flags it knows.
pub trait FlagGroup {
    /// Takes `arg` (reading its value from `parser`) if it is one of this group's flags;
    /// `Ok(false)` leaves it to the next group or the command.
    fn claim(&mut self, arg: &Arg<'_>, parser: &mut Parser) -> Result<bool>;
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

/// The next argument that none of `groups` claims (they take theirs on the way); errors
/// point at `help_for`'s help.
pub fn next(
    parser: &mut Parser,
    groups: &mut [&mut dyn FlagGroup],
    help_for: &str,
) -> Result<Option<Flag>> {
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
        if let Some(flag) = unclaimed(flag, parser, groups)? {
            return Ok(Some(flag));
        }
    }
}

/// `flag` if none of `groups` claims it (a group that does reads its value from `parser`).
pub fn unclaimed(
    flag: Flag,
    parser: &mut Parser,
    groups: &mut [&mut dyn FlagGroup],
) -> Result<Option<Flag>> {
    for group in groups.iter_mut() {
        if group.claim(&flag.as_arg(), parser)? {
            return Ok(None);
        }
    }
    Ok(Some(flag))
}

/// The value of `flag`, which must be valid UTF-8.
pub fn value(parser: &mut Parser, flag: &str) -> Result<String> {
    let raw = parser
        .value()
        .map_err(|_| Error::Usage(format!("{flag} needs a value; see --help")))?;
    utf8(raw, flag)
}

/// The value of a flag that carries a secret: like [`value`], but never shown in an error.
pub fn secret(parser: &mut Parser, flag: &str) -> Result<String> {
    let raw = parser
        .value()
        .map_err(|_| Error::Usage(format!("{flag} needs a value; see --help")))?;
    raw.into_string()
        .map_err(|_| Error::Usage(format!("{flag}: the value is not valid UTF-8")))
}

/// The value of `--image`: a name or an image ID of an archive's image.
pub fn image_query(parser: &mut Parser) -> Result<ImageQuery> {
    ImageQuery::parse(&value(parser, "--image")?).map_err(|e| Error::Usage(format!("--image: {e}")))
}

/// The value of `flag` as a number.
pub fn number<T: std::str::FromStr>(parser: &mut Parser, flag: &str) -> Result<T> {
    let text = value(parser, flag)?;
    text.parse()
        .map_err(|_| Error::Usage(format!("{flag} {text:?}: expected a whole number")))
}

/// The value of `flag` as a byte size (`1048576`, `512K`, `50M`, `1G`; binary units).
pub fn size(parser: &mut Parser, flag: &str) -> Result<u64> {
    let text = value(parser, flag)?;
    parse_size(&text)
        .ok_or_else(|| Error::Usage(format!("{flag} {text:?}: expected a size like 50M or 1G")))
}

/// A byte size with an optional binary unit: K, M, G, T (also KiB, MB, …).
pub fn parse_size(text: &str) -> Option<u64> {
    let text = text.trim();
    let digits = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let number: u64 = text[..digits].parse().ok()?;
    let unit = text[digits..].trim().to_ascii_lowercase();
    let shift = match unit.trim_end_matches('b').trim_end_matches('i') {
        "" => 0,
        "k" => 10,
        "m" => 20,
        "g" => 30,
        "t" => 40,
        _ => return None,
    };
    number.checked_mul(1 << shift)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_take_binary_units() {
        assert_eq!(parse_size("1048576"), Some(1 << 20));
        assert_eq!(parse_size("512K"), Some(512 << 10));
        assert_eq!(parse_size("50M"), Some(50 << 20));
        assert_eq!(parse_size("50MiB"), Some(50 << 20));
        assert_eq!(parse_size("1g"), Some(1 << 30));
        for bad in ["", "M", "5X", "-1", "1.5G"] {
            assert_eq!(parse_size(bad), None, "{bad}");
        }
    }
}
