//! What several commands share, kept apart from `cmd/` (which holds the commands and only
//! them): the context a run builds once from its flags and how it ends (`context`), what goes
//! to stdout (`output`), uploads to a registry (`upload`, `delta`, `digestfile`), registries
//! as the command line names them (`remote`), and archives of cached images (`archive`).

pub mod archive;
pub mod context;
pub mod delta;
pub mod digestfile;
pub mod output;
pub mod remote;
pub mod upload;
