//! Flags shared by every command (the global group), helpers that name the flag in every
//! parse error, and the `DOCKER_PUSHER_*` environment fallbacks, read here and nowhere else.

use std::ffi::OsString;
use std::io::{IsTerminal, Read};
use std::path::PathBuf;
use std::time::Duration;

use lexopt::{Arg, Parser};

use crate::archive::ImageQuery;
use crate::cache::Cache;
use crate::error::{Error, Result};
use crate::manifest::{Platform, Platforms};
use crate::progress::{Board, BoardDisplay, Progress, Verbosity};
use crate::registry::{Compress, Credentials, HttpOptions, RegistryOptions, UploadPlan};
use crate::retry::Pushbacks;
use crate::transfer::{Governor, RateLimit, Tuning};

/// What a command line asks for: the command's help, or a run with these arguments (each
/// command parses into a plain struct first, and opens or connects to anything only after).
pub enum Parsed<T> {
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

    /// The reporter for this run.
    pub fn progress(&self) -> Progress {
        Progress::new(self.verbosity)
    }

    /// The cache these flags name.
    pub fn cache(&self) -> Cache {
        Cache::new(self.cache_dir.clone())
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

/// The help lines of the registry flags.
pub const REGISTRY_HELP: &str = "\
Registry options:
  -u, --username USER          user name [env: DOCKER_PUSHER_USERNAME]
  -p, --password PASSWORD      password or token [env: DOCKER_PUSHER_PASSWORD]
      --password-stdin         read the password from standard input
      --ca-cert FILE           also trust this CA certificate (PEM); may be repeated
      --skip-tls               accept any certificate (insecure) [env: DOCKER_PUSHER_SKIP_TLS]
      --insecure-registry HOST allow plain HTTP for HOST when HTTPS fails (loopback always
                               may); may be repeated
      --timeout SECS           limit on connecting and on any stall, never on a whole
                               transfer [default: 300] [env: DOCKER_PUSHER_TIMEOUT]
      --retry-attempts N       retries after a failure that may pass: connection lost,
                               timeout, 408, 429, 5xx [default: 3]
                               [env: DOCKER_PUSHER_RETRY_ATTEMPTS]
  Without -u, credentials come from Docker's config.json (its credential helpers, then its
  auths), as 'login' or 'docker login' stored them.";

/// How to reach registries and who to be there.
pub struct RegistryArgs {
    username: Option<String>,
    password: Option<String>,
    password_stdin: bool,
    /// Whether the password came as `-p`, where `ps` shows it to every user.
    password_in_arguments: bool,
    ca_certs: Vec<PathBuf>,
    skip_tls: bool,
    insecure: Vec<String>,
    timeout: u64,
    retries: u32,
}

impl RegistryArgs {
    /// The defaults, overridden by the environment.
    pub fn from_env() -> Result<RegistryArgs> {
        Ok(RegistryArgs {
            username: env_value("DOCKER_PUSHER_USERNAME"),
            password: env_value("DOCKER_PUSHER_PASSWORD"),
            password_stdin: false,
            password_in_arguments: false,
            ca_certs: Vec::new(),
            skip_tls: env_bool("DOCKER_PUSHER_SKIP_TLS")?.unwrap_or(false),
            insecure: Vec::new(),
            timeout: env_number("DOCKER_PUSHER_TIMEOUT")?.unwrap_or(300),
            retries: env_number("DOCKER_PUSHER_RETRY_ATTEMPTS")?.unwrap_or(3),
        })
    }

    /// The options these flags describe; reads the password from standard input if asked.
    pub fn options(&self) -> Result<RegistryOptions> {
        let mut password = self.password.clone();
        if self.password_stdin {
            let mut text = String::new();
            std::io::stdin().read_to_string(&mut text).map_err(|e| {
                Error::Usage(format!("--password-stdin: cannot read standard input: {e}"))
            })?;
            password = Some(text.trim_end_matches(['\r', '\n']).to_string());
        }
        let credentials = match (&self.username, password) {
            (Some(username), Some(password)) => Some(Credentials {
                username: username.clone(),
                password,
            }),
            (None, None) => None,
            (Some(_), None) => {
                return Err(Error::Usage(
                    "--username needs --password or --password-stdin".into(),
                ));
            }
            (None, Some(_)) => {
                return Err(Error::Usage(
                    "a password was given without --username".into(),
                ));
            }
        };
        Ok(RegistryOptions {
            http: HttpOptions {
                ca_certs: self.ca_certs.clone(),
                skip_tls: self.skip_tls,
                timeout: Duration::from_secs(self.timeout.max(1)),
            },
            credentials,
            insecure: self.insecure.clone(),
            attempts: self.attempts(),
            pushbacks: Pushbacks::default(),
        })
    }

    /// Sets `--timeout` (the one-shot form's `-t`).
    pub fn set_timeout(&mut self, seconds: u64) {
        self.timeout = seconds;
    }

    /// Tries for a request or chunk that fails in a way that may pass.
    pub fn attempts(&self) -> u32 {
        self.retries.saturating_add(1)
    }

    /// Whether a user name was given (by flag or environment).
    pub fn has_username(&self) -> bool {
        self.username.is_some()
    }

    /// Whether `--password-stdin` was given (standard input is taken).
    pub fn reads_password_from_stdin(&self) -> bool {
        self.password_stdin
    }

    /// What the user should be warned of: certificates going unchecked, a password where
    /// `ps` shows it.
    pub fn cautions(&self) -> Vec<&'static str> {
        let mut cautions = Vec::new();
        if self.skip_tls {
            cautions.push("--skip-tls: certificates are not checked");
        }
        if self.password_in_arguments {
            cautions.push(
                "--password on the command line is visible to every user of this machine (ps); \
                 use --password-stdin or DOCKER_PUSHER_PASSWORD",
            );
        }
        cautions
    }
}

impl FlagGroup for RegistryArgs {
    fn claim(&mut self, arg: &Arg<'_>, parser: &mut Parser) -> Result<bool> {
        match arg {
            Arg::Short('u') | Arg::Long("username") => {
                self.username = Some(value(parser, "--username")?)
            }
            Arg::Short('p') | Arg::Long("password") => {
                self.password = Some(secret(parser, "--password")?);
                self.password_in_arguments = true;
            }
            Arg::Long("password-stdin") => self.password_stdin = true,
            Arg::Long("ca-cert") => self
                .ca_certs
                .push(PathBuf::from(value(parser, "--ca-cert")?)),
            Arg::Long("skip-tls") => self.skip_tls = true,
            Arg::Long("insecure-registry") => {
                self.insecure.push(value(parser, "--insecure-registry")?)
            }
            Arg::Long("timeout") => self.timeout = number(parser, "--timeout")?,
            Arg::Long("retry-attempts") => self.retries = number(parser, "--retry-attempts")?,
            _ => return Ok(false),
        }
        Ok(true)
    }
}

/// The help lines of the transfer flags.
pub const TRANSFER_HELP: &str = "\
Transfer options:
      --max-concurrent N       blobs moved at once, largest first [default: 1; with
                               --concurrency dynamic, at most 8] [env: DOCKER_PUSHER_MAX_CONCURRENT]
      --concurrency MODE       fixed, or dynamic: start at 2 workers and decide after
                               0.5 s, then every 1 s (0.5 s while rising): twice the workers
                               while blobs wait and over 20 % of their time goes on round
                               trips, one more while throughput rises by 10 %, one fewer when
                               it falls, one fewer at once when the registry pushes back
                               (429, 5xx, timeouts) [default: fixed]
                               [env: DOCKER_PUSHER_CONCURRENCY]
      --min-concurrent N       the fewest workers with --concurrency dynamic [default: 1]
      --limit-rate RATE        cap on bytes read per second, all blobs together (10M is
                               10 MiB/s; for a gzip push, bytes before compression)";

/// The help lines of the progress flags.
pub const PROGRESS_HELP: &str = "\
Progress options:
      --progress MODE          simple (one live line), detailed (a block), none
                               [default: simple]; not on a terminal, or with --verbose, a
                               plain line per blob and a status line every 10 s
      --progress-interval MS   how often the live display is redrawn [default: 200]
      --status-interval SECS   how often plain lines add a status line [default: 10]
      --json                   newline-delimited JSON events on stdout instead (start,
                               progress, blob, retry, result); the last line is the result";

/// `--platform` and `--all-platforms`: which images of a multi-platform index a command
/// takes from a registry (the help lines are in each command's options).
#[derive(Default)]
pub struct PlatformArgs {
    platform: Option<Platform>,
    all: bool,
}

impl PlatformArgs {
    /// The choice made: every platform, the one named, or this host's.
    pub fn choice(&self) -> Result<Platforms> {
        match (&self.platform, self.all) {
            (Some(_), true) => Err(Error::Usage(
                "--platform and --all-platforms: give one or the other".into(),
            )),
            (_, true) => Ok(Platforms::All),
            (Some(platform), false) => Ok(Platforms::One(platform.clone())),
            (None, false) => Ok(Platforms::Host),
        }
    }
}

impl FlagGroup for PlatformArgs {
    fn claim(&mut self, arg: &Arg<'_>, parser: &mut Parser) -> Result<bool> {
        match arg {
            Arg::Long("platform") => {
                let text = value(parser, "--platform")?;
                let platform =
                    Platform::parse(&text).map_err(|e| Error::Usage(format!("--platform: {e}")))?;
                self.platform = Some(platform);
            }
            Arg::Long("all-platforms") => self.all = true,
            _ => return Ok(false),
        }
        Ok(true)
    }
}

/// The most workers `--concurrency dynamic` takes when `--max-concurrent` does not say.
pub const DYNAMIC_CEILING: u32 = 8;

/// How transfers run: concurrency, rate, and how their progress is shown.
pub struct TransferArgs {
    /// `--max-concurrent`, when given (by flag or environment).
    max_concurrent: Option<u32>,
    min_concurrent: u32,
    dynamic: bool,
    limit_rate: Option<u64>,
    tuning: TuningArgs,
    /// How the progress is shown.
    pub shown: ProgressArgs,
}

impl TransferArgs {
    /// The defaults, overridden by the environment.
    pub fn from_env() -> Result<TransferArgs> {
        let max_concurrent = env_number("DOCKER_PUSHER_MAX_CONCURRENT")?;
        if let Some(max) = max_concurrent {
            check_concurrency(max, "DOCKER_PUSHER_MAX_CONCURRENT")?;
        }
        let dynamic = match env_value("DOCKER_PUSHER_CONCURRENCY") {
            Some(mode) => concurrency_mode(&mode, "DOCKER_PUSHER_CONCURRENCY")?,
            None => false,
        };
        Ok(TransferArgs {
            max_concurrent,
            min_concurrent: 1,
            dynamic,
            limit_rate: None,
            tuning: TuningArgs::default(),
            shown: ProgressArgs::default(),
        })
    }

    /// One blob at a time, no cap: what a command that writes one stream (an archive) uses,
    /// with only its progress flags.
    pub fn one_stream() -> TransferArgs {
        TransferArgs {
            max_concurrent: Some(1),
            min_concurrent: 1,
            dynamic: false,
            limit_rate: None,
            tuning: TuningArgs::default(),
            shown: ProgressArgs::default(),
        }
    }

    /// Blobs moved at once, at most: `--max-concurrent`, else 1, or with `--concurrency
    /// dynamic` [`DYNAMIC_CEILING`].
    pub fn workers(&self) -> u32 {
        match (self.max_concurrent, self.dynamic) {
            (Some(max), _) => max,
            (None, true) => DYNAMIC_CEILING,
            (None, false) => 1,
        }
    }

    /// With `--concurrency dynamic`, the governor of the worker count, watching `pushbacks`.
    pub fn governor(&self, pushbacks: &Pushbacks) -> Result<Option<Governor>> {
        if !self.dynamic {
            return Ok(None);
        }
        if self.min_concurrent > self.workers() {
            return Err(Error::Usage(format!(
                "--min-concurrent {} is more than --max-concurrent {}",
                self.min_concurrent,
                self.workers()
            )));
        }
        Ok(Some(Governor::new(
            self.min_concurrent,
            self.workers(),
            self.tuning.tuning(),
            pushbacks.clone(),
        )))
    }

    /// Whether `--json` asked for events on stdout.
    pub fn json(&self) -> bool {
        self.shown.json
    }

    /// The bandwidth cap, when `--limit-rate` gave one.
    pub fn rate_limit(&self) -> Option<RateLimit> {
        self.limit_rate.map(RateLimit::new)
    }
}

impl FlagGroup for TransferArgs {
    fn claim(&mut self, arg: &Arg<'_>, parser: &mut Parser) -> Result<bool> {
        match arg {
            Arg::Long("max-concurrent") => {
                let max = number(parser, "--max-concurrent")?;
                check_concurrency(max, "--max-concurrent")?;
                self.max_concurrent = Some(max);
            }
            Arg::Long("concurrency") | Arg::Long("concurrency-manager") => {
                self.dynamic = concurrency_mode(&value(parser, "--concurrency")?, "--concurrency")?
            }
            Arg::Long("enable-dynamic-concurrency") => self.dynamic = true,
            Arg::Long("min-concurrent") => {
                self.min_concurrent = number(parser, "--min-concurrent")?;
                check_concurrency(self.min_concurrent, "--min-concurrent")?;
            }
            Arg::Long("limit-rate") => {
                let rate = size(parser, "--limit-rate")?;
                if rate == 0 {
                    return Err(Error::Usage("--limit-rate must be more than 0".into()));
                }
                self.limit_rate = Some(rate);
            }
            _ if self.tuning.claim(arg, parser)? => self.dynamic = true,
            _ => return self.shown.claim(arg, parser),
        }
        Ok(true)
    }
}

/// How progress is shown: `--progress`, `--progress-interval`, `--json`.
pub struct ProgressArgs {
    display: Option<BoardDisplay>,
    interval: u64,
    status_every: u64,
    json: bool,
    /// `--enable-monitoring`: each change of the worker count said on a line.
    monitor: bool,
}

impl Default for ProgressArgs {
    fn default() -> ProgressArgs {
        ProgressArgs {
            display: None,
            interval: 200,
            status_every: 10,
            json: false,
            monitor: false,
        }
    }
}

impl ProgressArgs {
    /// The progress board: JSON events, nothing (`--quiet`, `--progress none`), plain lines
    /// (`--verbose`, or stderr not a terminal), else a live display.
    pub fn board(&self, verbosity: Verbosity) -> Board {
        let display = match self.display {
            _ if self.json => BoardDisplay::Json,
            Some(BoardDisplay::Off) => BoardDisplay::Off,
            _ if verbosity == Verbosity::Quiet => BoardDisplay::Off,
            _ if verbosity == Verbosity::Verbose || !std::io::stderr().is_terminal() => {
                BoardDisplay::Lines
            }
            Some(live) => live,
            None => BoardDisplay::Live { detailed: false },
        };
        let board = Board::new(
            display,
            Duration::from_millis(self.interval.max(10)),
            Duration::from_secs(self.status_every.max(1)),
        );
        match self.monitor && verbosity != Verbosity::Quiet {
            true => board.monitored(),
            false => board,
        }
    }
}

impl FlagGroup for ProgressArgs {
    fn claim(&mut self, arg: &Arg<'_>, parser: &mut Parser) -> Result<bool> {
        match arg {
            Arg::Long("progress") | Arg::Long("progress-detail") => {
                self.display = Some(match value(parser, "--progress")?.as_str() {
                    "simple" => BoardDisplay::Live { detailed: false },
                    "detailed" => BoardDisplay::Live { detailed: true },
                    "none" => BoardDisplay::Off,
                    other => {
                        return Err(Error::Usage(format!(
                            "--progress {other:?}: expected simple, detailed or none"
                        )));
                    }
                })
            }
            Arg::Long("disable-progress") => self.display = Some(BoardDisplay::Off),
            Arg::Long("progress-interval") => {
                self.interval = number(parser, "--progress-interval")?
            }
            Arg::Long("status-interval") => {
                self.status_every = number(parser, "--status-interval")?
            }
            Arg::Long("json") => self.json = true,
            Arg::Long("enable-monitoring") => self.monitor = true,
            _ => return Ok(false),
        }
        Ok(true)
    }
}

/// The help lines of the tuning flags of `--concurrency dynamic`.
pub const TUNING_HELP: &str = "\
Tuning of --concurrency dynamic (the older tool's names; all but the last turn it on):
      --concurrency-strategy S        adaptive (the rules above), conservative (start at 1,
                                      2 s windows, one worker at a time, throughput only) or
                                      aggressive (start at 4, 0.5 s windows, 5 %, round trips
                                      bind at 10 %) [default: adaptive]
      --adjustment-factor F           what the workers are multiplied by when round trips
                                      bind [default: 2]; 1 adds one at a time
      --speed-threshold PCT           the change in throughput that counts as a rise or a
                                      fall [default: 10]
      --sample-interval MS            how long throughput is measured before a decision
                                      [default: 1000]; the first window is half as long
      --auto-strategy-switching       let the round-trip rule multiply the workers (on, except
                                      with conservative)
      --strategy-switch-confidence PCT
                                      the share of blob time on round trips above which they
                                      bind [default: 20]
      --confidence-threshold N        blobs a window must see done before their round trips
                                      count [default: 1]
      --enable-monitoring             print each change of the worker count and the samples
                                      that led to it, whatever the progress display";

/// The seeds' tuning flags of `--concurrency dynamic`, as given: a strategy, then any of its
/// numbers changed, whatever the order on the command line.
#[derive(Default)]
struct TuningArgs {
    strategy: Option<Tuning>,
    factor: Option<f64>,
    margin: Option<f64>,
    window: Option<u64>,
    switching: bool,
    share: Option<f64>,
    samples: Option<u32>,
}

impl TuningArgs {
    /// The tuning: the strategy's, with what the flags changed.
    fn tuning(&self) -> Tuning {
        let mut tuning = self.strategy.clone().unwrap_or_else(Tuning::adaptive);
        tuning.factor = self.factor.unwrap_or(tuning.factor);
        tuning.margin = self.margin.unwrap_or(tuning.margin);
        tuning.window = self.window.map_or(tuning.window, Duration::from_millis);
        tuning.switching |= self.switching;
        tuning.round_trip_share = self.share.unwrap_or(tuning.round_trip_share);
        tuning.min_samples = self.samples.unwrap_or(tuning.min_samples);
        tuning
    }
}

impl FlagGroup for TuningArgs {
    fn claim(&mut self, arg: &Arg<'_>, parser: &mut Parser) -> Result<bool> {
        match arg {
            Arg::Long("concurrency-strategy") => {
                self.strategy = Some(match value(parser, "--concurrency-strategy")?.as_str() {
                    "adaptive" => Tuning::adaptive(),
                    "conservative" => Tuning::conservative(),
                    "aggressive" => Tuning::aggressive(),
                    other => {
                        return Err(Error::Usage(format!(
                            "--concurrency-strategy {other:?}: expected adaptive, conservative \
                             or aggressive"
                        )));
                    }
                })
            }
            Arg::Long("adjustment-factor") => {
                let factor = fraction(parser, "--adjustment-factor")?;
                if !(1.0..=16.0).contains(&factor) {
                    return Err(Error::Usage("--adjustment-factor: between 1 and 16".into()));
                }
                self.factor = Some(factor);
            }
            Arg::Long("speed-threshold") => {
                self.margin = Some(percent(parser, "--speed-threshold")?)
            }
            Arg::Long("sample-interval") => {
                let ms: u64 = number(parser, "--sample-interval")?;
                if ms < 100 {
                    return Err(Error::Usage(
                        "--sample-interval: at least 100 (milliseconds)".into(),
                    ));
                }
                self.window = Some(ms);
            }
            Arg::Long("auto-strategy-switching") => self.switching = true,
            Arg::Long("strategy-switch-confidence") => {
                self.share = Some(percent(parser, "--strategy-switch-confidence")?)
            }
            Arg::Long("confidence-threshold") => {
                self.samples = Some(number(parser, "--confidence-threshold")?)
            }
            _ => return Ok(false),
        }
        Ok(true)
    }
}

/// A number with a fraction (`1.5`) for `flag`.
fn fraction(parser: &mut Parser, flag: &str) -> Result<f64> {
    let text = value(parser, flag)?;
    text.parse::<f64>()
        .ok()
        .filter(|n| n.is_finite())
        .ok_or_else(|| Error::Usage(format!("{flag} {text:?}: not a number")))
}

/// A percentage, 0 to 100 (`10` or `10%`), for `flag`, as a share (0.10).
fn percent(parser: &mut Parser, flag: &str) -> Result<f64> {
    let text = value(parser, flag)?;
    (text.trim_end_matches('%').parse::<f64>().ok())
        .filter(|n| (0.0..=100.0).contains(n))
        .map(|n| n / 100.0)
        .ok_or_else(|| Error::Usage(format!("{flag} {text:?}: a percentage, 0 to 100")))
}

/// Whether `mode` (of `what`) is `dynamic` rather than `fixed`.
fn concurrency_mode(mode: &str, what: &str) -> Result<bool> {
    match mode {
        "fixed" => Ok(false),
        "dynamic" => Ok(true),
        other => Err(Error::Usage(format!(
            "{what} {other:?}: expected fixed or dynamic"
        ))),
    }
}

fn check_concurrency(value: u32, what: &str) -> Result<()> {
    if value == 0 {
        return Err(Error::Usage(format!("{what}: must be at least 1")));
    }
    Ok(())
}

/// The help lines of the upload flags (`push`, `copy`).
pub const UPLOAD_HELP: &str = "\
Upload options:
      --compress gzip|none          re-encode uncompressed layers: gzip, or as they are in an
                                    OCI manifest [default: gzip for docker save layers;
                                    images from a registry are copied byte for byte]
      --compress-level 0-9          gzip level: 1 fastest, 9 smallest [default: 2]
      --large-layer-threshold SIZE  layers larger than this go in chunks [default: 1G]
                                    [env: DOCKER_PUSHER_LARGE_LAYER_THRESHOLD]
      --chunk-size SIZE             chunk size for large layers; a failure costs at most one
                                    [default: 50M]
      --force-upload                upload every blob, even those the registry has
      --skip-existing               skip blobs the registry has (the default)
                                    [env: DOCKER_PUSHER_SKIP_EXISTING]";

/// How blobs are sent to a registry.
pub struct UploadArgs {
    /// `--compress`: gzip (true) or none (false); not given, the source decides.
    gzip: Option<bool>,
    level: u32,
    force: bool,
    threshold: u64,
    chunk_size: u64,
}

impl UploadArgs {
    /// The defaults, overridden by the environment.
    pub fn from_env() -> Result<UploadArgs> {
        Ok(UploadArgs {
            gzip: None,
            level: 2,
            force: !env_bool("DOCKER_PUSHER_SKIP_EXISTING")?.unwrap_or(true),
            threshold: env_size("DOCKER_PUSHER_LARGE_LAYER_THRESHOLD")?.unwrap_or(1 << 30),
            chunk_size: 50 << 20,
        })
    }

    /// How uncompressed layers are sent: as `--compress` says; without it, gzipped when they
    /// are `docker save` layers (`saved_layers`), else everything as it is.
    pub fn compress(&self, saved_layers: bool) -> Compress {
        match (self.gzip, saved_layers) {
            (Some(true), _) | (None, true) => Compress::Gzip(self.level),
            (Some(false), _) => Compress::None,
            (None, false) => Compress::Keep,
        }
    }

    /// Whether `--compress` was given.
    pub fn reencodes(&self) -> bool {
        self.gzip.is_some()
    }

    /// When and how large blobs go in chunks.
    pub fn plan(&self) -> UploadPlan {
        UploadPlan {
            threshold: self.threshold,
            chunk_size: self.chunk_size,
        }
    }

    /// Whether every blob is sent, even those the registry has.
    pub fn force(&self) -> bool {
        self.force
    }
}

impl FlagGroup for UploadArgs {
    fn claim(&mut self, arg: &Arg<'_>, parser: &mut Parser) -> Result<bool> {
        match arg {
            Arg::Long("compress") => {
                self.gzip = match value(parser, "--compress")?.as_str() {
                    "gzip" => Some(true),
                    "none" => Some(false),
                    other => {
                        return Err(Error::Usage(format!(
                            "--compress {other:?}: expected gzip or none"
                        )));
                    }
                }
            }
            Arg::Long("compress-level") => {
                self.level = number(parser, "--compress-level")?;
                if self.level > 9 {
                    return Err(Error::Usage(format!(
                        "--compress-level {}: expected 0 to 9",
                        self.level
                    )));
                }
            }
            Arg::Long("large-layer-threshold") => {
                self.threshold = size(parser, "--large-layer-threshold")?
            }
            Arg::Long("chunk-size") => {
                self.chunk_size = size(parser, "--chunk-size")?;
                if self.chunk_size == 0 {
                    return Err(Error::Usage("--chunk-size must be more than 0".into()));
                }
            }
            Arg::Long("force-upload") => self.force = true,
            Arg::Long("skip-existing") => self.force = false,
            _ => return Ok(false),
        }
        Ok(true)
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

/// A byte-size environment variable; a bad value names the variable in a usage error.
pub fn env_size(name: &str) -> Result<Option<u64>> {
    match env_value(name) {
        None => Ok(None),
        Some(text) => parse_size(&text).map(Some).ok_or_else(|| {
            Error::Usage(format!("{name}={text:?}: expected a size like 50M or 1G"))
        }),
    }
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

/// A numeric environment variable; a bad value names the variable in a usage error.
fn env_number<T: std::str::FromStr>(name: &str) -> Result<Option<T>> {
    match env_value(name) {
        None => Ok(None),
        Some(text) => text
            .parse()
            .map(Some)
            .map_err(|_| Error::Usage(format!("{name}={text:?}: expected a whole number"))),
    }
}

/// A boolean environment variable: true/false/1/0 (any case); anything else names the
/// variable in a usage error.
pub fn env_bool(name: &str) -> Result<Option<bool>> {
    let Some(value) = env_value(name) else {
        return Ok(None);
    };
    match value.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Ok(Some(true)),
        "false" | "0" | "no" => Ok(Some(false)),
        _ => Err(Error::Usage(format!(
            "{name}={value:?}: expected true, false, yes, no, 1 or 0"
        ))),
    }
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

    /// The transfer flags `line` gives.
    fn transfer(line: &[&str]) -> Result<TransferArgs> {
        let mut parser = Parser::from_args(line.iter().copied());
        let mut args = TransferArgs::from_env()?;
        if let Some(flag) = next(&mut parser, &mut [&mut args], "test")? {
            panic!("{:?} not claimed", flag.as_arg());
        }
        Ok(args)
    }

    #[test]
    fn the_seeds_tuning_flags_set_the_rules_and_turn_dynamic_on() {
        let args = transfer(&[
            "--concurrency-strategy",
            "conservative",
            "--adjustment-factor",
            "1.5",
            "--speed-threshold",
            "25%",
            "--sample-interval",
            "3000",
            "--auto-strategy-switching",
            "--strategy-switch-confidence",
            "40",
            "--confidence-threshold",
            "3",
        ])
        .unwrap();
        assert!(args.dynamic, "a tuning flag means --concurrency dynamic");
        assert_eq!(args.workers(), DYNAMIC_CEILING);
        let tuning = args.tuning.tuning();
        assert_eq!(
            tuning,
            Tuning {
                start: 1,
                window: Duration::from_secs(3),
                margin: 0.25,
                factor: 1.5,
                switching: true,
                round_trip_share: 0.40,
                min_samples: 3,
            }
        );
        let aggressive = transfer(&["--concurrency-strategy", "aggressive"]).unwrap();
        assert_eq!(aggressive.tuning.tuning(), Tuning::aggressive());
        for bad in [
            &["--concurrency-strategy", "fast"][..],
            &["--adjustment-factor", "0.5"],
            &["--speed-threshold", "150"],
            &["--sample-interval", "10"],
        ] {
            let error = transfer(bad).err().map(|e| e.to_string());
            assert!(
                error.as_ref().is_some_and(|e| e.contains(bad[0])),
                "{bad:?}: {error:?}"
            );
        }
    }
}
