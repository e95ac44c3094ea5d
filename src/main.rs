//! docker-image-pusher: move container images between registries, `docker save` archives and a
//! local cache, streaming every layer with flat memory. See README.md and ARCHITECTURE.md.

mod archive;
mod args;
mod cache;
mod cmd;
mod create;
mod digest;
mod error;
mod gzip;
mod inert;
mod manifest;
mod progress;
mod reference;
mod registry;
mod retry;
mod transfer;
mod writeback;

use std::process::ExitCode;

fn main() -> ExitCode {
    match cmd::run(std::env::args_os().skip(1).collect()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            progress::say(format_args!("error: {error}"));
            ExitCode::from(error.exit_code())
        }
    }
}
