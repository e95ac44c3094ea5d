//! docker-image-pusher: move container images between registries, `docker save` archives and a
//! local cache, streaming every layer with flat memory. README.md says how to use it; this is
//! how it is built, kept true by whoever changes it.
//!
//! # One idea: every command is a copy from a source to a destination
//!
//! | command | source | destination |
//! |---|---|---|
//! | `pull IMAGE` | registry | cache |
//! | `extract FILE` | archive (or an OCI layout folder) | cache |
//! | `push SOURCE TARGET` (and the one-shot `-r URL -f FILE`) | cache, archive or layout folder | registry |
//! | `save IMAGE… -o FILE`, `bundle IMAGE… -o DIR` | cache | archive (and a folder with `push.sh`) |
//! | `save --layout IMAGE… -o DIR` | cache | OCI layout folder, added to |
//! | `copy SOURCE TARGET`, `sync` | registry (or archive) | registry |
//!
//! Each place is one type that implements [`transfer::Source`], [`transfer::Destination`]
//! or both (as containers/image's `ImageSource` and `ImageDestination`): the registry
//! (`registry/image.rs`), an archive (`archive/`), the cache (`cache/`). [`transfer::copy`]
//! reads every manifest first (`transfer/plan.rs`: an index kept whole, or narrowed by
//! `--platform`, within a manifest budget, each child read once), copies each blob once,
//! largest first, on the calling thread or `--max-concurrent` scoped threads (or as many as the
//! `dynamic` governor allows), stores the manifests last (children before their index), then
//! the referrers of what it stored (`transfer/referrers.rs`: signatures, SBOMs and
//! attestations, to a fixed depth), and publishes. A failure in any blob stores no manifest.
//!
//! # Layers, and what each may import
//!
//! ```text
//! main.rs        dispatch to cmd, print the error, map it to an exit code
//! cmd/           one file or folder per command (USAGE, parse into a struct, run), and the
//!                dispatcher (mod.rs); nothing else
//! run/           what several commands share: the run's context and its end (context.rs),
//!                stdout (output.rs), uploads (upload.rs, delta.rs, digestfile.rs), registries
//!                as named (remote.rs), archives of cached images (archive.rs)
//! args/          flag groups, each with its help beside its parsing; DOCKER_PUSHER_* fallbacks
//! transfer/      the copy loop, the plan, one blob, the pool, the governor, --limit-rate,
//!                referrers; the Source and Destination traits
//! registry/      the distribution protocol: http, auth and tokens, blobs, manifests, tags,
//!                referrers (API or fallback tag), mirrors, credentials (credentials.rs;
//!                config.json, podman's auth.json in auth_file.rs, and helpers); refusal.rs
//!                is the one way an answer becomes an error, whole.rs the one bounded body
//!                reader
//! archive/       tar entries, layouts (legacy manifest.json, OCI), layout folders read in place
//!                (folder.rs) and written (layout_folder.rs), writing archives (file.rs: whole
//!                or in parts), delta and split parts
//! cache/         blobs, manifests, index.json, memo, staging, gc
//! manifest.rs    OCI and Docker manifests, indexes, platforms; manifest/fallback.rs the
//!                fallback index of referrers and cosign's tags
//! digest.rs reference/ (names; pick.rs: a name as typed against those given) error.rs
//! retry.rs (the one retry policy and loop) inert.rs create.rs writeback.rs gzip/ progress/
//! atomic.rs (replacing a file whole) image_id.rs (image IDs as typed)
//! ```
//!
//! `cmd` uses everything below it (`run` too, which `cmd` alone uses); the stores
//! (`registry`, `archive`, `cache`) implement `transfer`'s traits and use `manifest`,
//! `digest` and the small modules, never each other;
//! `transfer` imports no store. Only `progress` writes to the terminal (progress and logs on
//! stderr, data on stdout).
//!
//! # The cache
//!
//! ```text
//! blobs/sha256/<hex>                  every blob once, shared by all images
//! manifests/<repository>/<reference>  raw manifest bytes, as received; referrers beside
//!                                     their image (@<digest>, :sha256-<hex>, cosign's tags)
//! index.json                          name -> manifest digest, media type, config, layers, source
//! memo.json                           compressed forms of uncompressed layers (with their gzip
//!                                     level), and holders
//! index.lock, gc.lock                 index writes; shared by commands, exclusive for clean
//! tmp/run-*/, tmp/partial/            a running command's staged blobs; resumable partial blobs
//! ```
//!
//! # Invariants (each has a test)
//!
//! 1. **One pass.** Every byte of a layer is read once from its source and written once to
//!    its destination, hashed on the way; no layer is held whole in memory.
//! 2. **Flat, bounded memory.** Only manifests and configs are held whole, each capped, all of
//!    them within a budget; every read is bounded by what was declared. What grows with a
//!    sync's images (its rows, a repository's tags) is spooled to an unnamed file
//!    (`cmd/sync/spool.rs`).
//! 3. **Nothing unverified lands.** Blobs are staged, checked (digest and size), synced
//!    (one `syncfs` for all of a commit's) and renamed; the index is written once, under a
//!    lock. Killed at any instant, the cache
//!    stays consistent.
//! 4. **Secrets stay secret.** Credentials go only to their registry's own origin (scheme,
//!    host, port), never appear in output or the cache, and https never falls back to http
//!    with them.
//! 5. **Bad input is refused cleanly**: one line naming the file or reference, a documented
//!    exit code, nothing half-written; archive paths never escape.
//! 6. **No async runtime**: blocking I/O; threads only when more than one worker is asked for.
//! 7. **Byte-exact and whole unless asked.** Digests are kept; an index moved between
//!    registries stays whole unless `--platform` narrows it; an image's referrers go wherever
//!    it goes; re-encoding is deterministic.
//! 8. **Nothing written reaches outside where it belongs**: every file is created new
//!    (`O_EXCL`, `O_NOFOLLOW`), no link is followed, a folder others can write is not trusted;
//!    a file replaced whole goes through `atomic::replace` (new temporary, sync, rename).
//! 9. **What came from outside is shown inert**, and every wait on the outside has a
//!    deadline and every answer a bound.
//!
//! Exit codes: 0 success, 1 other failure, 2 usage, 3 bad input, 4 denied, 5 network or
//! registry after retries, 6 not found.

mod archive;
mod args;
mod atomic;
mod cache;
mod cmd;
mod create;
mod digest;
mod error;
mod gzip;
mod image_id;
mod inert;
mod manifest;
mod progress;
mod reference;
mod registry;
mod retry;
mod run;
#[cfg(test)]
mod scratch;
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
