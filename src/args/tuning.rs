//! The older tool's tuning flags of `--concurrency dynamic`, mapped onto the governor's rules.

use std::time::Duration;

use lexopt::{Arg, Parser};

use crate::error::{Error, Result};
use crate::transfer::{Margin, Tuning};

use super::{FlagGroup, number, parse_size, value};

/// The help lines of the tuning flags of `--concurrency dynamic`.
pub const TUNING_HELP: &str = "\
Tuning of --concurrency dynamic (the older tool's names; each turns it on):
      --concurrency-strategy S        adaptive (the rules above), conservative (start at 1,
                                      2 s windows, one worker at a time, throughput only) or
                                      aggressive (start at 4, 0.5 s windows, 5 %, round trips
                                      bind at 10 %) [default: adaptive]
      --adjustment-factor F           what the workers are multiplied by when round trips
                                      bind [default: 2]; 1 adds one at a time
      --speed-threshold BYTES_PER_SEC the change in throughput that counts as a rise or a
                                      fall (1M is 1 MiB/s), or a share of it written with
                                      % [default: 10%]
      --sample-interval MS            how long throughput is measured before a decision
                                      [default: 1000]; the first window is half as long
      --auto-strategy-switching       let the round-trip rule multiply the workers (on, except
                                      with conservative)
      --strategy-switch-confidence 0.0-1.0
                                      the share of blob time on round trips above which they
                                      bind (20% works too) [default: 0.2]
      --confidence-threshold 0.0-1.0  how much of a window must pass before round trips may
                                      bind early [default: 0.25]; a whole number N above 1:
                                      the blobs a window must see done first [default: 1]";

/// The seeds' tuning flags of `--concurrency dynamic`, as given: a strategy, then any of its
/// numbers changed, whatever the order on the command line.
#[derive(Default)]
pub(super) struct TuningArgs {
    strategy: Option<Tuning>,
    factor: Option<f64>,
    margin: Option<Margin>,
    window: Option<u64>,
    switching: bool,
    share: Option<f64>,
    samples: Option<u32>,
    early: Option<f64>,
}

impl TuningArgs {
    /// The tuning: the strategy's, with what the flags changed.
    pub(super) fn tuning(&self) -> Tuning {
        let mut tuning = self.strategy.clone().unwrap_or_else(Tuning::adaptive);
        tuning.factor = self.factor.unwrap_or(tuning.factor);
        tuning.margin = self.margin.unwrap_or(tuning.margin);
        tuning.window = self.window.map_or(tuning.window, Duration::from_millis);
        tuning.switching |= self.switching;
        tuning.round_trip_share = self.share.unwrap_or(tuning.round_trip_share);
        tuning.min_samples = self.samples.unwrap_or(tuning.min_samples);
        tuning.early = self.early.unwrap_or(tuning.early);
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
                self.margin = Some(speed_threshold(&value(parser, "--speed-threshold")?)?)
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
                let flag = "--strategy-switch-confidence";
                self.share = Some(share(&value(parser, flag)?, flag)?)
            }
            Arg::Long("confidence-threshold") => {
                let flag = "--confidence-threshold";
                let text = value(parser, flag)?;
                match text.parse::<u32>() {
                    Ok(blobs) if blobs > 1 => self.samples = Some(blobs),
                    _ => self.early = Some(share(&text, flag)?),
                }
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

/// A share as the older tool's design gives it, 0.0 to 1.0 (`0.9`), or a percentage written
/// with its sign (`90%`), for `flag`.
fn share(text: &str, flag: &str) -> Result<f64> {
    let share = match text.strip_suffix('%') {
        Some(percent) => percent.trim().parse::<f64>().ok().map(|n| n / 100.0),
        None => text.parse::<f64>().ok(),
    };
    share.filter(|n| (0.0..=1.0).contains(n)).ok_or_else(|| {
        Error::Usage(format!(
            "{flag} {text:?}: a share from 0.0 to 1.0 (0.9), or a percentage written with % (90%)"
        ))
    })
}

/// `--speed-threshold`: bytes per second, as the older tool's design gives it (with K, M, G
/// as for --limit-rate), or a share of the throughput written with % (`10%`).
fn speed_threshold(text: &str) -> Result<Margin> {
    let flag = "--speed-threshold";
    if text.ends_with('%') {
        return share(text, flag).map(Margin::Share);
    }
    match parse_size(text) {
        Some(bytes) if bytes > 0 => Ok(Margin::PerSecond(bytes as f64)),
        _ => Err(Error::Usage(format!(
            "{flag} {text:?}: bytes per second (1048576, or 1M), or a share written with % (10%)"
        ))),
    }
}
