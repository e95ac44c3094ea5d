//! The older tool's tuning flags of `--concurrency dynamic`, mapped onto the governor's rules.

use std::time::Duration;

use lexopt::{Arg, Parser};

use crate::error::{Error, Result};
use crate::transfer::Tuning;

use super::{FlagGroup, number, value};

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
pub(super) struct TuningArgs {
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
    pub(super) fn tuning(&self) -> Tuning {
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
