//! How transfers run: how many blobs at once (fixed or dynamic), and the rate cap.

use lexopt::{Arg, Parser};

use crate::error::{Error, Result};
use crate::retry::Pushbacks;
use crate::transfer::{Governor, RateLimit};

use super::tuning::TuningArgs;
use super::{Env, FlagGroup, ProgressArgs, number, size, value};

/// The help lines of the transfer flags.
pub const TRANSFER_HELP: &str = "\
Transfer options:
      --max-concurrent N       blobs moved at once, largest first [default: 1; with
                               --concurrency dynamic, at most 8] [env: DOCKER_PUSHER_MAX_CONCURRENT]
      --concurrency MODE       fixed, or dynamic: start at 2 workers and decide after
                               0.5 s, then every 1 s (0.5 s while rising): twice the workers
                               while blobs wait and over 20 % of their time goes on round
                               trips (known after a quarter of that), one more while
                               throughput rises by 10 %, one fewer when it falls, one
                               fewer at once when a registry pushes back (429, 5xx,
                               timeouts) [default: fixed]
                               [env: DOCKER_PUSHER_CONCURRENCY]
      --min-concurrent N       the fewest workers with --concurrency dynamic [default: 1]
      --limit-rate RATE        cap on bytes read per second, all blobs together (10M is
                               10 MiB/s; for a gzip push, bytes before compression)
  The older tool's spellings work too: --concurrency-manager MODE is --concurrency MODE
  (adaptive there is dynamic), and --enable-dynamic-concurrency is --concurrency dynamic.";

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
    pub fn from_env(env: &Env) -> Result<TransferArgs> {
        let max_concurrent = env.number("DOCKER_PUSHER_MAX_CONCURRENT")?;
        if let Some(max) = max_concurrent {
            check_concurrency(max, "DOCKER_PUSHER_MAX_CONCURRENT")?;
        }
        let dynamic = match env.value("DOCKER_PUSHER_CONCURRENCY") {
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
        self.shown.json()
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

/// Whether `mode` (of `what`) is `dynamic` rather than `fixed`.
fn concurrency_mode(mode: &str, what: &str) -> Result<bool> {
    match mode {
        "fixed" => Ok(false),
        // The older tool's design names the adaptive governor by its strategy.
        "dynamic" | "adaptive" => Ok(true),
        other => Err(Error::Usage(format!(
            "{what} {other:?}: expected fixed or dynamic (adaptive is dynamic)"
        ))),
    }
}

fn check_concurrency(value: u32, what: &str) -> Result<()> {
    if value == 0 {
        return Err(Error::Usage(format!("{what}: must be at least 1")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args::next;
    use crate::transfer::{Margin, Tuning};
    use std::time::Duration;

    /// The transfer flags `line` gives.
    fn transfer(line: &[&str]) -> Result<TransferArgs> {
        let mut parser = Parser::from_args(line.iter().copied());
        let mut args = TransferArgs::from_env(&Env::default())?;
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
            "40%",
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
                margin: Margin::Share(0.25),
                factor: 1.5,
                switching: true,
                round_trip_share: 0.40,
                min_samples: 3,
                early: 0.25,
            }
        );
        // As the older tool's design writes them.
        let design = transfer(&[
            "--concurrency-manager",
            "adaptive",
            "--speed-threshold",
            "1048576",
            "--confidence-threshold",
            "0.7",
            "--strategy-switch-confidence",
            "0.9",
        ])
        .unwrap();
        assert!(design.dynamic);
        let tuning = design.tuning.tuning();
        assert_eq!(tuning.margin, Margin::PerSecond(1_048_576.0));
        assert_eq!(tuning.early, 0.7);
        assert_eq!(tuning.round_trip_share, 0.9, "0.9 is 90 %, not 0.9 %");
        assert_eq!(tuning.min_samples, 1);
        let aggressive = transfer(&["--concurrency-strategy", "aggressive"]).unwrap();
        assert_eq!(aggressive.tuning.tuning(), Tuning::aggressive());
        for bad in [
            &["--concurrency-strategy", "fast"][..],
            &["--adjustment-factor", "0.5"],
            &["--speed-threshold", "150%"],
            &["--speed-threshold", "fast"],
            &["--strategy-switch-confidence", "20"],
            &["--confidence-threshold", "1.5"],
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
