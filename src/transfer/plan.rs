//! The manifests a copy involves: read first (an index with every manifest it lists), and
//! stored last, each rewritten to what the destination holds, children before their index.
//! A child an index lists more than once is read, prepared and stored once, and the manifest
//! bytes held together stay within [`MANIFEST_BUDGET`], whatever a source sends.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::manifest::{self, Descriptor, ImageManifest, MAX_INDEX_DEPTH, Parsed, RawManifest};
use crate::reference::Reference;

use super::{Destination, Source, Stored};

/// The most manifest bytes one copy holds: a few thousand children of an index fit, and no
/// source can make the copy grow past it.
pub const MANIFEST_BUDGET: u64 = 64 * 1024 * 1024;

/// A manifest and what it lists.
pub struct Tree {
    manifest: RawManifest,
    node: Node,
}

enum Node {
    Image(ImageManifest),
    Index(Vec<Arc<Tree>>),
}

/// A manifest as the destination will store it, and for an index its children.
pub struct Prepared {
    pub manifest: RawManifest,
    children: Vec<Arc<Prepared>>,
}

/// What reading one source's manifests has gathered so far: each manifest read once, by
/// digest, and the bytes held.
struct Reading<'a> {
    source: &'a dyn Source,
    read: HashMap<Digest, Arc<Tree>>,
    held: u64,
}

impl Reading<'_> {
    /// Counts `manifest` against the budget.
    fn hold(&mut self, manifest: &RawManifest) -> Result<()> {
        self.held += manifest.bytes.len() as u64;
        if self.held > MANIFEST_BUDGET {
            return Err(Error::BadInput(format!(
                "{}: its manifests add up to more than {} MiB; refused",
                self.source.describe(),
                MANIFEST_BUDGET >> 20
            )));
        }
        Ok(())
    }

    /// The child `entry` of an index, read (and counted) only the first time it is listed.
    fn child(&mut self, entry: &Descriptor, depth: usize) -> Result<Arc<Tree>> {
        if let Some(tree) = self.read.get(&entry.digest) {
            return Ok(tree.clone());
        }
        let manifest = self.source.child_manifest(entry)?;
        self.hold(&manifest)?;
        let tree = Arc::new(self.tree(manifest, depth)?);
        self.read.insert(entry.digest.clone(), tree.clone());
        Ok(tree)
    }

    fn tree(&mut self, manifest: RawManifest, depth: usize) -> Result<Tree> {
        let source = self.source;
        let bad = |e: String| Error::BadInput(format!("{}: {e}", source.describe()));
        let node = match manifest::parse(&manifest.bytes).map_err(bad)? {
            Parsed::Image(image) => Node::Image(image),
            Parsed::Index(index) => {
                if depth >= MAX_INDEX_DEPTH {
                    return Err(bad(format!(
                        "indexes nest more than {MAX_INDEX_DEPTH} deep"
                    )));
                }
                let children = (index.entries().iter())
                    .map(|entry| self.child(entry, depth + 1))
                    .collect::<Result<_>>()?;
                Node::Index(children)
            }
        };
        Ok(Tree { manifest, node })
    }
}

impl Tree {
    /// Reads the source's manifest and, for an index, every manifest it lists.
    pub fn read(source: &dyn Source) -> Result<Tree> {
        let mut reading = Reading {
            source,
            read: HashMap::new(),
            held: 0,
        };
        let manifest = source.manifest()?;
        reading.hold(&manifest)?;
        reading.tree(manifest, 0)
    }

    /// Every blob the manifests name (configs and layers), in order, each once.
    pub fn blobs(&self) -> Vec<&Descriptor> {
        let mut seen = HashSet::new();
        let mut blobs = Vec::new();
        self.gather_blobs(&mut seen, &mut blobs);
        blobs
    }

    fn gather_blobs<'t>(&'t self, seen: &mut HashSet<&'t Digest>, blobs: &mut Vec<&'t Descriptor>) {
        match &self.node {
            Node::Image(image) => {
                for blob in std::iter::once(&image.config).chain(&image.layers) {
                    if seen.insert(&blob.digest) {
                        blobs.push(blob);
                    }
                }
            }
            Node::Index(children) => {
                for child in children {
                    if seen.insert(&child.manifest.digest) {
                        child.gather_blobs(seen, blobs);
                    }
                }
            }
        }
    }

    /// The manifests as the destination will store them, given what it holds of each blob
    /// (`stored`, by original digest).
    pub fn prepare(
        &self,
        stored: &HashMap<Digest, Descriptor>,
        destination: &dyn Destination,
    ) -> Result<Prepared> {
        self.prepare_once(stored, destination, &mut HashMap::new())
    }

    /// [`Tree::prepare`], with the children already prepared, by original digest.
    fn prepare_once(
        &self,
        stored: &HashMap<Digest, Descriptor>,
        destination: &dyn Destination,
        done: &mut HashMap<Digest, Arc<Prepared>>,
    ) -> Result<Prepared> {
        let bad = |e: String| Error::BadInput(format!("manifest {}: {e}", self.manifest.digest));
        match &self.node {
            Node::Image(image) => {
                let layers: Vec<Descriptor> = (image.layers.iter())
                    .map(|layer| {
                        stored
                            .get(&layer.digest)
                            .cloned()
                            .unwrap_or_else(|| layer.clone())
                    })
                    .collect();
                let manifest =
                    manifest::with_stored_layers(&self.manifest, &layers).map_err(bad)?;
                Ok(Prepared {
                    manifest: destination.prepare_manifest(manifest)?,
                    children: Vec::new(),
                })
            }
            Node::Index(children) => {
                let mut prepared = Vec::with_capacity(children.len());
                for child in children {
                    let digest = &child.manifest.digest;
                    let ready = match done.get(digest) {
                        Some(ready) => ready.clone(),
                        None => {
                            let ready = Arc::new(child.prepare_once(stored, destination, done)?);
                            done.insert(digest.clone(), ready.clone());
                            ready
                        }
                    };
                    prepared.push(ready);
                }
                let manifests: Vec<&RawManifest> =
                    prepared.iter().map(|child| &child.manifest).collect();
                let manifest =
                    manifest::with_stored_children(&self.manifest, &manifests).map_err(bad)?;
                Ok(Prepared {
                    manifest,
                    children: prepared,
                })
            }
        }
    }
}

impl Prepared {
    /// Stores the manifest under `name` (`None`: known by its ID), children first, each under
    /// the name's repository and its digest, each once.
    pub fn store(&self, name: Option<&Reference>, destination: &dyn Destination) -> Result<Stored> {
        self.store_once(name, destination, &mut HashSet::new())
    }

    fn store_once(
        &self,
        name: Option<&Reference>,
        destination: &dyn Destination,
        stored: &mut HashSet<Digest>,
    ) -> Result<Stored> {
        for child in &self.children {
            if stored.insert(child.manifest.digest.clone()) {
                let child_name = name.map(|name| name.with_digest(child.manifest.digest.clone()));
                child.store_once(child_name.as_ref(), destination, stored)?;
            }
        }
        destination.put_manifest(name, &self.manifest)
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::manifest::media_type;

    /// An index and its children in memory, counting the children fetched.
    struct Listed {
        index: RawManifest,
        children: HashMap<Digest, RawManifest>,
        fetched: AtomicUsize,
    }

    impl Source for Listed {
        fn manifest(&self) -> Result<RawManifest> {
            Ok(self.index.clone())
        }
        fn open_blob(&self, _: &Descriptor, _: u64) -> Result<Box<dyn Read + Send + '_>> {
            unreachable!("planning opens no blob")
        }
        fn describe(&self) -> String {
            "listed".into()
        }
        fn child_manifest(&self, entry: &Descriptor) -> Result<RawManifest> {
            self.fetched.fetch_add(1, Ordering::Relaxed);
            Ok(self.children[&entry.digest].clone())
        }
    }

    /// An image manifest padded with an annotation of `padding` bytes (made distinct by `n`).
    fn child(n: usize, padding: usize) -> RawManifest {
        let config = format!("sha256:{:064x}", n);
        let bytes = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": media_type::OCI_MANIFEST,
            "config": {"mediaType": media_type::OCI_CONFIG, "digest": config, "size": 2},
            "layers": [],
            "annotations": {"padding": "x".repeat(padding)},
        });
        RawManifest::new(bytes.to_string().into_bytes(), media_type::OCI_MANIFEST)
    }

    /// An index listing `children` in this order (repeats included).
    fn listed(children: &[RawManifest]) -> Listed {
        let entries: Vec<serde_json::Value> = (children.iter())
            .map(|child| {
                serde_json::json!({
                    "mediaType": child.media_type,
                    "digest": child.digest.to_string(),
                    "size": child.bytes.len(),
                })
            })
            .collect();
        let index = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": media_type::OCI_INDEX,
            "manifests": entries,
        });
        Listed {
            index: RawManifest::new(index.to_string().into_bytes(), media_type::OCI_INDEX),
            children: (children.iter())
                .map(|child| (child.digest.clone(), child.clone()))
                .collect(),
            fetched: AtomicUsize::new(0),
        }
    }

    #[test]
    fn a_child_listed_many_times_is_read_once() {
        let one = child(1, 1000);
        let source = listed(&vec![one.clone(); 150]);
        let tree = Tree::read(&source).unwrap();
        assert_eq!(source.fetched.load(Ordering::Relaxed), 1);
        assert_eq!(tree.blobs().len(), 1, "the config, once");
    }

    #[test]
    fn manifests_past_the_budget_are_refused() {
        let big = (MANIFEST_BUDGET / 4) as usize;
        let children: Vec<RawManifest> = (0..5).map(|n| child(n, big)).collect();
        let error = Tree::read(&listed(&children)).err().unwrap();
        assert_eq!(error.exit_code(), 3);
        assert!(error.to_string().contains("MiB"), "{error}");
        let within: Vec<RawManifest> = (0..3).map(|n| child(n, big)).collect();
        assert!(Tree::read(&listed(&within)).is_ok());
    }
}
