//! `tags`: the tags of a repository, on stdout.

use std::io::{BufWriter, Write};

use lexopt::{Arg, Parser};

use crate::args::{self, Globals, Invocation, REGISTRY_HELP, RegistryArgs};
use crate::error::{Error, Result};
use crate::inert::inert;
use crate::reference::{self, Reference};

use crate::run::output::{print_help, still_read};
use crate::run::remote::connect;

const COMMAND: &str = "docker-image-pusher tags";

/// The synopsis and options.
pub const USAGE: &str = "\
List the tags of a repository.

Usage: docker-image-pusher tags [OPTIONS] REPOSITORY

Arguments:
  REPOSITORY  [registry/]repository, or http[s]://registry/repository

Options:
      --page-size N  ask the registry for N tags per page (all pages are read)
      --json         print {\"repository\": ..., \"tags\": [...]} instead of a tag per line";

/// The flag groups it accepts besides the global ones, as shown in its help.
pub const GROUPS: &[&str] = &[REGISTRY_HELP];

/// The long help.
pub const DETAILS: &str = "

Reads the registry's tag list, following its Link headers from page to page (on the
registry's own host only) and printing each page as it arrives.

Examples:
  docker-image-pusher tags registry.example.com/team/app
  docker-image-pusher tags 127.0.0.1:5000/app --json | jq -r '.tags[]'";

/// What the command line of `tags` says, checked, before anything is opened.
pub struct TagsArgs {
    pub globals: Globals,
    pub registry: RegistryArgs,
    /// The repository, and the scheme a URL gave.
    pub repository: (Option<&'static str>, Reference),
    /// `--page-size N`: tags per page asked for.
    pub page_size: Option<u32>,
    /// `--json`: one JSON object instead of a tag per line.
    pub json: bool,
}

impl TagsArgs {
    /// Reads the rest of the command line.
    pub fn parse(parser: &mut Parser, mut globals: Globals) -> Result<Invocation<TagsArgs>> {
        let mut registry = RegistryArgs::from_env(&globals.env)?;
        let (mut repository, mut page_size, mut json) = (None, None, false);
        while let Some(flag) = args::next(parser, &mut [&mut globals, &mut registry], COMMAND)? {
            match flag.as_arg() {
                Arg::Short('h') => return Ok(Invocation::Help { long: false }),
                Arg::Long("help") => return Ok(Invocation::Help { long: true }),
                Arg::Long("page-size") => page_size = Some(args::number(parser, "--page-size")?),
                Arg::Long("json") => json = true,
                Arg::Value(value) if repository.is_none() => {
                    repository = Some(args::utf8(value, "REPOSITORY")?)
                }
                other => return Err(args::unexpected(other, COMMAND)),
            }
        }
        let text = repository
            .ok_or_else(|| Error::Usage(format!("no repository given; see '{COMMAND} --help'")))?;
        let repository =
            Reference::parse_url(&text).map_err(|e| Error::Usage(format!("REPOSITORY: {e}")))?;
        if reference::names_a_version(&text) {
            return Err(Error::Usage(format!(
                "REPOSITORY \"{text}\": give the repository alone, without a tag or digest"
            )));
        }
        Ok(Invocation::Run(TagsArgs {
            globals,
            registry,
            repository,
            page_size,
            json,
        }))
    }
}

/// Runs `tags` on the rest of the command line.
pub fn run(parser: &mut Parser, globals: Globals) -> Result<()> {
    let TagsArgs {
        globals,
        registry: registry_args,
        repository: (scheme, named),
        page_size,
        json,
    } = match TagsArgs::parse(parser, globals)? {
        Invocation::Help { long } => return print_help(USAGE, GROUPS, DETAILS, long),
        Invocation::Run(tags) => tags,
    };
    let (registry, _) = connect(&registry_args, named.registry(), scheme, globals.progress())?;
    let mut out = BufWriter::new(std::io::stdout().lock());
    let name = serde_json::Value::String(named.name());
    let (open, close) = match json {
        true => (format!("{{\"repository\":{name},\"tags\":["), "]}\n"),
        false => (String::new(), ""),
    };
    let mut listed = 0usize;
    let mut read = still_read(out.write_all(open.as_bytes()))?;
    registry.tags(named.repository(), page_size, &mut |tag| {
        let line = match json {
            true if listed > 0 => format!(",{}", serde_json::Value::String(tag.into())),
            true => serde_json::Value::String(tag.into()).to_string(),
            false => format!("{}\n", inert(tag)),
        };
        listed += 1;
        read = read && still_read(out.write_all(line.as_bytes()))?;
        Ok(read)
    })?;
    if read {
        still_read(out.write_all(close.as_bytes()).and_then(|()| out.flush()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &[&str]) -> Result<Invocation<TagsArgs>> {
        TagsArgs::parse(
            &mut Parser::from_args(line.iter().copied()),
            Globals::defaults(),
        )
    }

    #[test]
    fn a_repository_with_a_tag_is_refused_and_one_without_is_read() {
        let error = parse(&["registry.example.com/app:v1"]).err();
        assert_eq!(error.map(|e| e.exit_code()), Some(2));
        let Ok(Invocation::Run(tags)) = parse(&["registry.example.com/app", "--page-size", "5"])
        else {
            panic!("not parsed");
        };
        assert_eq!(tags.repository.1.repository(), "app");
        assert_eq!(tags.page_size, Some(5));
    }
}
