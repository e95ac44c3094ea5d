//! How blobs are sent to a registry: compression, chunks, skipping what is there.

use lexopt::{Arg, Parser};

use crate::error::{Error, Result};
use crate::registry::{Compress, UploadPlan};

use super::{Env, FlagGroup, number, size, value};

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
    pub fn from_env(env: &Env) -> Result<UploadArgs> {
        Ok(UploadArgs {
            gzip: None,
            level: 2,
            force: !env.bool("DOCKER_PUSHER_SKIP_EXISTING")?.unwrap_or(true),
            threshold: env
                .size("DOCKER_PUSHER_LARGE_LAYER_THRESHOLD")?
                .unwrap_or(1 << 30),
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

    /// The gzip level layers are compressed at, when they are (`--compress-level`).
    pub fn level(&self) -> u32 {
        self.level
    }

    /// Whether `--compress` was given.
    pub fn reencodes(&self) -> bool {
        self.gzip.is_some()
    }

    /// When and how large blobs go in chunks, and whether gzipped layers may be compressed
    /// ahead on helper threads (`compress_ahead`).
    pub fn plan(&self, compress_ahead: bool) -> UploadPlan {
        UploadPlan {
            threshold: self.threshold,
            chunk_size: self.chunk_size,
            compress_ahead,
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
