//! The manifests a copy involves: read first (an index with every manifest it lists), and
//! stored last, each rewritten to what the destination holds, children before their index.

use std::collections::HashMap;

use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::manifest::{self, Descriptor, ImageManifest, MAX_INDEX_DEPTH, Parsed, RawManifest};
use crate::reference::Reference;

use super::{Destination, Source, Stored};

/// A manifest and what it lists.
pub struct Tree {
    manifest: RawManifest,
    node: Node,
}

enum Node {
    Image(ImageManifest),
    Index(Vec<Tree>),
}

/// A manifest as the destination will store it, and for an index its children.
pub struct Prepared {
    pub manifest: RawManifest,
    children: Vec<Prepared>,
}

impl Tree {
    /// Reads the source's manifest and, for an index, every manifest it lists.
    pub fn read(source: &dyn Source) -> Result<Tree> {
        Tree::read_manifest(source, source.manifest()?, 0)
    }

    fn read_manifest(source: &dyn Source, manifest: RawManifest, depth: usize) -> Result<Tree> {
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
                    .map(|entry| {
                        Tree::read_manifest(source, source.child_manifest(entry)?, depth + 1)
                    })
                    .collect::<Result<_>>()?;
                Node::Index(children)
            }
        };
        Ok(Tree { manifest, node })
    }

    /// Every blob the manifests name (configs and layers), in order, repeats included.
    pub fn blobs(&self) -> Vec<&Descriptor> {
        match &self.node {
            Node::Image(image) => std::iter::once(&image.config)
                .chain(&image.layers)
                .collect(),
            Node::Index(children) => children.iter().flat_map(Tree::blobs).collect(),
        }
    }

    /// The manifests as the destination will store them, given what it holds of each blob
    /// (`stored`, by original digest).
    pub fn prepare(
        &self,
        stored: &HashMap<Digest, Descriptor>,
        destination: &dyn Destination,
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
                let children = children
                    .iter()
                    .map(|child| child.prepare(stored, destination))
                    .collect::<Result<Vec<_>>>()?;
                let manifests: Vec<RawManifest> = children
                    .iter()
                    .map(|child| child.manifest.clone())
                    .collect();
                let manifest =
                    manifest::with_stored_children(&self.manifest, &manifests).map_err(bad)?;
                Ok(Prepared { manifest, children })
            }
        }
    }
}

impl Prepared {
    /// Stores the manifest under `name` (`None`: known by its ID), children first, each under
    /// the name's repository and its digest.
    pub fn store(&self, name: Option<&Reference>, destination: &dyn Destination) -> Result<Stored> {
        for child in &self.children {
            let child_name = name.map(|name| name.with_digest(child.manifest.digest.clone()));
            child.store(child_name.as_ref(), destination)?;
        }
        destination.put_manifest(name, &self.manifest)
    }
}
