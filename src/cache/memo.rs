//! `compressed.json`: for each uncompressed layer once pushed compressed, the compressed
//! blob's descriptor, so the next push of that layer is a `HEAD`, not a recompression.

use std::collections::BTreeMap;
use std::fs;
use std::io;

use crate::digest::Digest;
use crate::error::{Context, Error, Result};
use crate::manifest::Descriptor;
use crate::transfer::CompressionMemo;

use super::{Cache, index, open_lock};

type Memo = BTreeMap<Digest, Descriptor>;

impl Cache {
    fn memo_path(&self) -> std::path::PathBuf {
        self.root.join("compressed.json")
    }

    fn read_memo(&self) -> Result<Memo> {
        match fs::read(self.memo_path()) {
            Ok(bytes) => Ok(serde_json::from_slice(&bytes).unwrap_or_default()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Memo::new()),
            Err(e) => Err(Error::io(
                format!("reading {}", self.memo_path().display()),
                e,
            )),
        }
    }
}

impl CompressionMemo for Cache {
    fn compressed(&self, uncompressed: &Digest) -> Option<Descriptor> {
        self.read_memo().ok()?.remove(uncompressed)
    }

    fn remember(&self, uncompressed: &Digest, compressed: &Descriptor) -> Result<()> {
        fs::create_dir_all(self.tmp_dir())
            .context(|| format!("creating {}", self.tmp_dir().display()))?;
        let lock = open_lock(&self.root.join("index.lock"))?;
        lock.lock()
            .map_err(|e| Error::io("locking index.lock", e))?;
        let mut memo = self.read_memo()?;
        memo.insert(uncompressed.clone(), compressed.clone());
        let bytes = serde_json::to_vec_pretty(&memo)
            .map_err(|e| Error::io("encoding compressed.json", io::Error::other(e)))?;
        index::write_atomically(&self.memo_path(), &bytes, &self.tmp_dir())
    }
}
