//! `memo.json`: what the cache remembers about blobs it may not hold. For each uncompressed
//! layer pushed compressed, the compressed blob's descriptor, so the next push of that layer is
//! a `HEAD`, not a recompression; for each blob, the repositories (`registry/repository`) known
//! to hold it, so a push to a sibling repository can mount it instead of uploading it.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io;

use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::error::{Context, Error, Result};
use crate::manifest::Descriptor;
use crate::transfer::BlobMemo;

use super::{Cache, index, open_lock};

/// The file's content.
#[derive(Default, Serialize, Deserialize)]
struct Memo {
    #[serde(default)]
    compressed: BTreeMap<Digest, Descriptor>,
    #[serde(default)]
    holders: BTreeMap<Digest, BTreeSet<String>>,
}

impl Cache {
    fn memo_path(&self) -> std::path::PathBuf {
        self.root.join("memo.json")
    }

    /// The memo as it is; an unreadable one is treated as empty (it only saves work).
    fn read_memo(&self) -> Memo {
        fs::read(self.memo_path())
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default()
    }

    /// Changes the memo under `index.lock`.
    fn update_memo(&self, change: impl FnOnce(&mut Memo) -> bool) -> Result<()> {
        fs::create_dir_all(self.tmp_dir())
            .context(|| format!("creating {}", self.tmp_dir().display()))?;
        let lock = open_lock(&self.root.join("index.lock"))?;
        lock.lock()
            .map_err(|e| Error::io("locking index.lock", e))?;
        let mut memo = self.read_memo();
        if !change(&mut memo) {
            return Ok(());
        }
        let bytes = serde_json::to_vec_pretty(&memo)
            .map_err(|e| Error::io("encoding memo.json", io::Error::other(e)))?;
        index::write_atomically(&self.memo_path(), &bytes, &self.tmp_dir())
    }
}

impl BlobMemo for Cache {
    fn compressed(&self, uncompressed: &Digest) -> Option<Descriptor> {
        self.read_memo().compressed.remove(uncompressed)
    }

    fn remember_compressed(&self, uncompressed: &Digest, compressed: &Descriptor) -> Result<()> {
        self.update_memo(|memo| {
            memo.compressed
                .insert(uncompressed.clone(), compressed.clone())
                .as_ref()
                != Some(compressed)
        })
    }

    fn holders(&self, digest: &Digest) -> Vec<String> {
        self.read_memo()
            .holders
            .remove(digest)
            .unwrap_or_default()
            .into_iter()
            .collect()
    }

    fn remember_holder(&self, digest: &Digest, repository: &str) -> Result<()> {
        self.update_memo(|memo| {
            memo.holders
                .entry(digest.clone())
                .or_default()
                .insert(repository.to_string())
        })
    }
}
