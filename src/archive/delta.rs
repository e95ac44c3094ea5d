//! Delta archives (`bundle --since`): an archive that leaves out the layers an earlier bundle
//! carried, and says so in one entry, `docker-image-pusher-delta.json`, naming each blob left
//! out, its size, the images of earlier bundles that hold it, and the bundle it came with.
//! Readers take a left-out layer as held when the entry names it at the size its manifest
//! declares; `docker load` cannot read such an archive (its blobs are missing).

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::error::{Error, Result};

use super::entries::Entries;

/// The entry that makes an archive a delta.
pub const DELTA_ENTRY: &str = "docker-image-pusher-delta.json";

/// What a delta archive leaves out, and since what.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Delta {
    /// The bundle the left-out blobs came with.
    pub since: Since,
    pub omitted: Vec<Omitted>,
}

/// An earlier bundle, as its `bundle.json` names it.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Since {
    /// When it was made (RFC 3339, UTC).
    pub created: String,
    /// The digest of its `bundle.json` (none for a bundle made before they were written).
    pub bundle_json: Option<Digest>,
    /// Its folder or file, as given to `--since`.
    pub given: String,
}

/// One blob a delta archive leaves out.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Omitted {
    pub digest: Digest,
    pub size: u64,
    /// The images of earlier bundles that hold it (full names), where a registry that
    /// received them has it.
    pub held_by: Vec<String>,
}

impl Delta {
    /// The delta entry of `entries`, if the archive has one.
    pub fn read(entries: &Entries, name: &str) -> Result<Option<Delta>> {
        if !entries.contains(DELTA_ENTRY) {
            return Ok(None);
        }
        let bytes = entries.read_small(DELTA_ENTRY)?;
        serde_json::from_slice(&bytes).map(Some).map_err(|e| {
            Error::BadInput(format!("{name}: {DELTA_ENTRY}: not a delta listing ({e})"))
        })
    }

    /// The sizes of the blobs left out, by digest.
    pub fn sizes(&self) -> HashMap<Digest, u64> {
        (self.omitted.iter())
            .map(|blob| (blob.digest.clone(), blob.size))
            .collect()
    }
}
