//! `inspect`: what an image is, from the cache or a registry: its manifest digest and media
//! type, its platforms or layers, and a summary of its config; or the exact manifest or config
//! bytes; or the signatures, SBOMs and attestations that name it (see [`referrers`]).

mod referrers;

use lexopt::{Arg, Parser};
use serde_json::{Value, json};

use crate::args::{self, Globals, REGISTRY_HELP, RegistryArgs};
use crate::error::{Error, Result};
use crate::inert::inert;
use crate::manifest::{self, Parsed, Platform, Platforms, RawManifest};
use crate::progress::human_bytes;
use crate::reference::Reference;
use crate::registry::{Mirrors, Registry};
use crate::transfer::{self, Source};

use crate::run::output::{print_help, write_stdout};
use crate::run::remote;

const COMMAND: &str = "docker-image-pusher inspect";

/// The synopsis and options.
pub const USAGE: &str = "\
Show what an image is: from the cache when it holds it, else from its registry.

Usage: docker-image-pusher inspect [OPTIONS] IMAGE

Arguments:
  IMAGE  a cached image, or [registry/]repository[:tag|@digest] (http[s]:// URLs too)

Options:
      --raw                         print the manifest bytes exactly as stored
      --config                      print the config bytes exactly as stored
      --json                        print the description as JSON
      --platform OS/ARCH[/VARIANT]  for an index: this platform's image (with --raw and
                                    --config too)
      --referrers                   list its signatures, SBOMs and attestations (with
                                    --json as JSON)
      --remote                      ask the registry even when the cache holds the image";

/// The flag groups it accepts besides the global ones, as shown in its help.
pub const GROUPS: &[&str] = &[REGISTRY_HELP];

/// The long help.
pub const DETAILS: &str = "

The description gives the name, the manifest digest and media type, and then either the
platforms an index lists (with each image's digest) or the layers (digest, size, media type)
and a summary of the config (image ID, platform, creation time, entrypoint, command,
working directory, user, environment, labels). --raw bytes hash to the manifest digest.

--referrers lists the artifacts that name the image as their subject (through the
registry's Referrers API, else its sha256-<hex> fallback tag) and cosign's sha256-<hex>.sig,
.att and .sbom tags: for an index, those of the index and of each image it lists, each with
its artifact type, digest, size, creation time and subject.

Examples:
  docker-image-pusher inspect registry.example.com/team/app:v1
  docker-image-pusher inspect --raw 127.0.0.1:5000/app:v1 | sha256sum
  docker-image-pusher inspect --referrers ghcr.io/org/app:v1
  docker-image-pusher inspect nginx:1.27 --config --remote | jq .config.Env";

/// What to print.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Show {
    Description,
    Json,
    Raw,
    Config,
}

/// What `inspect` was asked to show.
struct Asked {
    show: Show,
    platform: Option<Platform>,
    /// The image's referrers rather than the image.
    referrers: bool,
}

/// What the command line of `inspect` says, checked, before anything is opened.
struct InspectArgs {
    globals: Globals,
    registry: RegistryArgs,
    /// The image as given: a cached image, else a reference (read only when the cache does
    /// not hold it).
    image: String,
    /// `--remote`: ask the registry even when the cache holds the image.
    remote: bool,
    asked: Asked,
}

impl InspectArgs {
    /// Reads the rest of the command line.
    fn parse(parser: &mut Parser, mut globals: Globals) -> Result<args::Invocation<InspectArgs>> {
        let mut registry = RegistryArgs::from_env(&globals.env)?;
        let (mut image, mut remote) = (None, false);
        let (mut show, mut platform, mut referrers) = (Show::Description, None, false);
        while let Some(flag) = args::next(parser, &mut [&mut globals, &mut registry], COMMAND)? {
            match flag.as_arg() {
                Arg::Short('h') => return Ok(args::Invocation::Help { long: false }),
                Arg::Long("help") => return Ok(args::Invocation::Help { long: true }),
                Arg::Long("raw") => show = Show::Raw,
                Arg::Long("config") => show = Show::Config,
                Arg::Long("json") => show = Show::Json,
                Arg::Long("remote") => remote = true,
                Arg::Long("referrers") => referrers = true,
                Arg::Long("platform") => {
                    let text = args::value(parser, "--platform")?;
                    platform = Some(
                        Platform::parse(&text)
                            .map_err(|e| Error::Usage(format!("--platform: {e}")))?,
                    );
                }
                Arg::Value(value) if image.is_none() => image = Some(args::utf8(value, "IMAGE")?),
                other => return Err(args::unexpected(other, COMMAND)),
            }
        }
        let image =
            image.ok_or_else(|| Error::Usage(format!("no image given; see '{COMMAND} --help'")))?;
        if referrers && matches!(show, Show::Raw | Show::Config) {
            return Err(Error::Usage(
                "--referrers lists referrers; --raw and --config print one manifest's bytes: \
                 give one or the other"
                    .into(),
            ));
        }
        Ok(args::Invocation::Run(InspectArgs {
            globals,
            registry,
            image,
            remote,
            asked: Asked {
                show,
                platform,
                referrers,
            },
        }))
    }
}

/// Runs `inspect` on the rest of the command line.
pub fn run(parser: &mut Parser, globals: Globals) -> Result<()> {
    let InspectArgs {
        globals,
        registry: registry_args,
        image,
        remote,
        asked,
    } = match InspectArgs::parse(parser, globals)? {
        args::Invocation::Help { long } => return print_help(USAGE, GROUPS, DETAILS, long),
        args::Invocation::Run(inspect) => inspect,
    };
    let cache = globals.cache();
    let cached = match remote {
        false => cache
            .index()?
            .find(&image)
            .ok()
            .and_then(|_| cache.image(&image).ok()),
        true => None,
    };
    if let Some(cached) = cached {
        return inspect(&cached, &cached.key.clone(), asked);
    }
    let (scheme, reference) =
        Reference::parse_url(&image).map_err(|e| Error::Usage(format!("IMAGE: {e}")))?;
    let progress = globals.progress();
    let options = remote::options(&registry_args, progress)?;
    let mirrors = Mirrors::new(&options, progress);
    let mut upstream = None;
    let source = mirrors.source_or(&reference, &mut upstream, || {
        Registry::connect(reference.registry(), scheme, &options, progress)
    })?;
    inspect(&source, &reference.to_string(), asked)
}

/// Prints what `asked` asks of the image `source` gives (for an index, the image of its
/// platform when one is given, chosen as a copy would).
fn inspect(source: &dyn Source, name: &str, asked: Asked) -> Result<()> {
    let Asked { show, platform, .. } = asked;
    let manifest = match platform {
        Some(platform) => transfer::chosen(source, &Platforms::One(platform))?,
        None => source.manifest()?,
    };
    if asked.referrers {
        let rows = referrers::listed(source, &manifest)?;
        let text = match show {
            Show::Json => format!(
                "{}\n",
                json!({ "name": name, "digest": manifest.digest, "referrers": rows })
            ),
            _ => referrers::table(&rows),
        };
        return write_stdout(text.as_bytes());
    }
    let bad = |e: String| Error::BadInput(format!("{name}: {e}"));
    match show {
        Show::Raw => return write_stdout(&manifest.bytes),
        Show::Config => {
            let image = manifest
                .image()
                .map_err(|e| bad(format!("{e}; choose one with --platform")))?;
            return write_stdout(&transfer::read_config(source, &image.config)?);
        }
        Show::Description | Show::Json => {}
    }
    let description = describe(source, name, &manifest)?;
    let text = match show {
        Show::Json => format!("{description}\n"),
        _ => render(&description),
    };
    write_stdout(text.as_bytes())
}

/// What `inspect` shows of `manifest`: its platforms for an index, its layers and config for
/// an image.
fn describe(source: &dyn Source, name: &str, manifest: &RawManifest) -> Result<Value> {
    let bad = |e: String| Error::BadInput(format!("{name}: {e}"));
    let mut description =
        json!({ "name": name, "digest": manifest.digest, "media_type": manifest.media_type });
    match manifest::parse(&manifest.bytes).map_err(bad)? {
        Parsed::Index(index) => {
            let platforms: Vec<Value> = (index.entries().iter())
                .map(|entry| json!({ "platform": entry.platform.as_ref().map(Platform::to_string), "digest": entry.digest }))
                .collect();
            description["platforms"] = platforms.into();
        }
        Parsed::Image(image) => {
            let layers: Vec<Value> = image
                .layers
                .iter()
                .map(|l| json!({ "digest": l.digest, "size": l.size, "media_type": l.media_type }))
                .collect();
            description["layers"] = layers.into();
            let config: Value =
                serde_json::from_slice(&transfer::read_config(source, &image.config)?)
                    .map_err(|e| bad(e.to_string()))?;
            let inner = &config["config"];
            description["config"] = json!({
                "digest": image.config.digest,
                "os": config["os"], "architecture": config["architecture"], "variant": config["variant"],
                "created": config["created"], "entrypoint": inner["Entrypoint"], "cmd": inner["Cmd"],
                "working_dir": inner["WorkingDir"], "user": inner["User"], "env": inner["Env"], "labels": inner["Labels"],
            });
        }
    }
    Ok(description)
}

/// The description for people, every string of it shown inert (a config is anyone's text).
fn render(description: &Value) -> String {
    let mut out = format!(
        "Name:        {}\nDigest:      {}\nMedia type:  {}\n",
        shown(&description["name"]),
        shown(&description["digest"]),
        shown(&description["media_type"])
    );
    if let Some(platforms) = description["platforms"].as_array() {
        out.push_str("Platforms:\n");
        for entry in platforms {
            out.push_str(&format!(
                "  {:<16} {}\n",
                shown(&entry["platform"]),
                shown(&entry["digest"])
            ));
        }
    }
    if let Some(layers) = description["layers"].as_array() {
        let total: u64 = layers.iter().filter_map(|l| l["size"].as_u64()).sum();
        out.push_str(&format!(
            "Layers:      {} ({})\n",
            layers.len(),
            human_bytes(total)
        ));
        for layer in layers {
            let size = human_bytes(layer["size"].as_u64().unwrap_or_default());
            out.push_str(&format!(
                "  {}  {:>9}  {}\n",
                shown(&layer["digest"]),
                size,
                shown(&layer["media_type"])
            ));
        }
        out.push_str(&config_lines(&description["config"]));
    }
    out
}

/// The config's lines of the description for people.
fn config_lines(config: &Value) -> String {
    let platform = [&config["os"], &config["architecture"], &config["variant"]]
        .iter()
        .filter(|v| !v.is_null())
        .map(|v| shown(v))
        .collect::<Vec<_>>()
        .join("/");
    let mut out = String::new();
    for (label, value) in [
        ("Image ID", shown(&config["digest"])),
        ("Platform", platform),
        ("Created", shown(&config["created"])),
        ("Entrypoint", shown(&config["entrypoint"])),
        ("Cmd", shown(&config["cmd"])),
        ("WorkingDir", shown(&config["working_dir"])),
        ("User", shown(&config["user"])),
        ("Env", shown(&config["env"])),
        ("Labels", shown(&config["labels"])),
    ] {
        out.push_str(&format!("{:<12} {}\n", format!("{label}:"), value));
    }
    out
}

/// A value of the description as shown to people: inert, `-` for nothing.
fn shown(value: &Value) -> String {
    match value {
        Value::String(s) => inert(s).to_string(),
        Value::Null => "-".into(),
        // JSON escapes C0 controls but not DEL or C1 ones.
        other => inert(&other.to_string()).to_string(),
    }
}
