//! The manifests a copy involves: read first, and stored last, each rewritten to what the
//! destination holds, children before their index. Reading is where the platform of an index
//! is chosen, once, for every kind of source: the one asked for, this host's, the index
//! with every manifest it lists, or the index narrowed to several platforms (rewritten). A
//! child an index lists more than once is read, prepared and stored once, and the manifest
//! bytes held together stay within [`MANIFEST_BUDGET`], whatever a source sends.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::manifest::{
    self, Descriptor, ImageIndex, ImageManifest, MAX_INDEX_DEPTH, Parsed, Platform, Platforms,
    RawManifest,
};
use crate::reference::Reference;

use super::{Destination, Source, Stored, read_config};

/// The most manifest bytes one copy holds: a few thousand children of an index fit, and no
/// source can make the copy grow past it.
pub const MANIFEST_BUDGET: u64 = 64 * 1024 * 1024;

/// What reading a source's manifests says of what it took.
#[derive(Debug)]
pub enum Remark {
    /// Told as information: a source that holds only part of its index gives what it holds.
    Note(String),
    /// Warned of: something the source holds was left out, or an index rewritten.
    Warning(String),
}

/// Which platforms a copy took of what it read: the rule that applied.
#[derive(Clone, Debug, PartialEq)]
pub enum PlatformsTaken {
    /// A single image, not an index: there was nothing to choose.
    Image,
    /// The index whole, with every platform it lists.
    All,
    /// These platforms of the index: one image, or an index narrowed to them.
    Chosen(Vec<String>),
}

/// A manifest and what it lists.
pub struct Tree {
    manifest: RawManifest,
    node: Node,
}

// One per manifest of a copy (a few thousand at most): boxing would cost more than it saves.
#[allow(clippy::large_enum_variant)]
enum Node {
    Image(ImageManifest),
    Index(Vec<Arc<Tree>>),
}

/// How an index entry is named in messages: its platform, else its digest.
fn label(entry: &Descriptor) -> String {
    (entry.platform.as_ref()).map_or_else(|| entry.digest.to_string(), Platform::to_string)
}

/// The images `index` lists (never an attestation): those the source holds (`holds`), and
/// those it does not.
fn images<'i>(
    index: &'i ImageIndex,
    holds: &HashSet<&Digest>,
) -> (Vec<&'i Descriptor>, Vec<&'i Descriptor>) {
    (index.entries().iter())
        .filter(|entry| !entry.platform.as_ref().is_some_and(Platform::is_unknown))
        .partition(|entry| holds.contains(&entry.digest))
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
    /// What was taken, once known (the innermost choice, where indexes nest).
    taken: Option<PlatformsTaken>,
    /// Read only the children of an index the source holds (else every one).
    only_held: bool,
}

impl<'a> Reading<'a> {
    /// Nothing read yet of `source`.
    fn new(source: &'a dyn Source, only_held: bool) -> Reading<'a> {
        Reading {
            source,
            read: HashMap::new(),
            held: 0,
            taken: None,
            only_held,
        }
    }

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

    /// The tree of `manifest` as `platforms` say: an index is kept whole for `All` when the
    /// source holds all it lists, narrowed to the images for `Several`, else the image for
    /// the platform is chosen in it (adding to `remarks` what is left out).
    fn choose(
        &mut self,
        manifest: RawManifest,
        platforms: &Platforms,
        depth: usize,
        remarks: &mut Vec<Remark>,
    ) -> Result<Tree> {
        let source = self.source;
        let bad = |e: String| Error::BadInput(format!("{}: {e}", source.describe()));
        let index = match manifest::parse(&manifest.bytes).map_err(bad)? {
            Parsed::Image(image) => {
                self.check_platform(&image, platforms)?;
                return Ok(Tree {
                    manifest,
                    node: Node::Image(image),
                });
            }
            Parsed::Index(index) => index,
        };
        if depth >= MAX_INDEX_DEPTH {
            return Err(bad(format!(
                "indexes nest more than {MAX_INDEX_DEPTH} deep"
            )));
        }
        // Asked once per manifest, however many times the index lists it.
        let mut held = HashSet::new();
        for entry in index.entries() {
            if !held.contains(&entry.digest) && source.holds(entry) {
                held.insert(&entry.digest);
            }
        }
        // An index the source holds only part of gives what it holds (see `chosen_entry`).
        if *platforms == Platforms::All
            && (index.entries().iter()).all(|entry| held.contains(&entry.digest))
        {
            self.taken.get_or_insert(PlatformsTaken::All);
            return self.tree(manifest, depth);
        }
        if let Platforms::Several(wanted) = platforms {
            let narrowed = self.narrowed(&manifest, &index, &held, wanted)?;
            remarks.push(Remark::Warning(format!(
                "--platform {}: the index was rewritten to list only these, so its digest is \
                 {}, not the source's {}",
                (wanted.iter().map(Platform::to_string))
                    .collect::<Vec<_>>()
                    .join(","),
                narrowed.digest,
                manifest.digest
            )));
            return self.tree(narrowed, depth);
        }
        let entry = self.chosen_entry(&index, &held, platforms, remarks)?;
        self.taken = Some(PlatformsTaken::Chosen(vec![label(entry)]));
        let child = source.child_manifest(entry)?;
        self.hold(&child)?;
        self.choose(child, platforms, depth + 1, remarks)
    }

    /// `manifest`, the index `index`, rewritten to list only the images for `wanted` (each the
    /// first the source holds for its platform), in the index's order, held and noted as
    /// the platforms taken; refused when the source holds none for one of them.
    fn narrowed(
        &mut self,
        manifest: &RawManifest,
        index: &ImageIndex,
        holds: &HashSet<&Digest>,
        wanted: &[Platform],
    ) -> Result<RawManifest> {
        let (held, _) = images(index, holds);
        let kept = (wanted.iter())
            .map(|platform| Ok(&self.pick(&held, platform, None)?.digest))
            .collect::<Result<HashSet<&Digest>>>()?;
        let labels = (held.iter())
            .filter(|entry| kept.contains(&entry.digest))
            .map(|entry| label(entry))
            .collect();
        let narrowed = manifest::with_entries_only(manifest, &kept)
            .map_err(|e| Error::BadInput(format!("{}: {e}", self.source.describe())))?;
        self.taken = Some(PlatformsTaken::Chosen(labels));
        self.hold(&narrowed)?;
        Ok(narrowed)
    }

    /// The entry of `index` to take, by the one rule: the first image (never an attestation)
    /// for the platform asked for, or else for this host's, among those the source holds;
    /// with nothing asked for, when the source holds only part of the index (as `docker
    /// save` writes it) and nothing for this host, the first image it holds.
    fn chosen_entry<'i>(
        &self,
        index: &'i ImageIndex,
        holds: &HashSet<&Digest>,
        platforms: &Platforms,
        remarks: &mut Vec<Remark>,
    ) -> Result<&'i Descriptor> {
        let (held, missing) = images(index, holds);
        let (wanted, asked) = match platforms {
            Platforms::One(platform) => (platform.clone(), true),
            _ => (Platform::host(), false),
        };
        let fallback = (!asked && !missing.is_empty()).then(|| held.first().copied());
        let chosen = self.pick(&held, &wanted, fallback.flatten())?;
        let labels = |entries: &[&Descriptor]| {
            (entries.iter().map(|entry| label(entry)))
                .collect::<Vec<_>>()
                .join(", ")
        };
        // A local source tells what it leaves out; a registry's other platforms stay there.
        let others: Vec<&Descriptor> = (held.iter().copied())
            .filter(|entry| !std::ptr::eq(*entry, chosen))
            .collect();
        if !missing.is_empty() {
            remarks.push(Remark::Note(format!(
                "it holds only part of its index, as docker save writes it (not the blobs of \
                 {}): {} taken{}",
                labels(&missing),
                label(chosen),
                match others.is_empty() {
                    true => String::new(),
                    false => format!("; it also holds {}", labels(&others)),
                }
            )));
        } else if !others.is_empty() && self.source.repository().is_none() {
            remarks.push(Remark::Warning(format!(
                "it also holds {}; only {} was taken (--all-platforms takes them all)",
                labels(&others),
                label(chosen)
            )));
        }
        Ok(chosen)
    }

    /// The first of `held` for `wanted`, else `fallback`; with neither, refused, naming the
    /// platforms the source offers.
    fn pick<'i>(
        &self,
        held: &[&'i Descriptor],
        wanted: &Platform,
        fallback: Option<&'i Descriptor>,
    ) -> Result<&'i Descriptor> {
        wanted
            .choose(held.iter().copied())
            .or(fallback)
            .ok_or_else(|| {
                let offered: Vec<String> = held.iter().map(|entry| label(entry)).collect();
                Error::NotFound(format!(
                    "{} has no image for {wanted}; it offers {} (choose with --platform)",
                    self.source.describe(),
                    match offered.is_empty() {
                        true => "none".to_string(),
                        false => offered.join(", "),
                    }
                ))
            })
    }

    /// Refuses a single-platform image whose config names a platform none of those asked
    /// for accepts (Docker refuses it too); nothing to check when none were asked for.
    fn check_platform(&self, image: &ImageManifest, platforms: &Platforms) -> Result<()> {
        let wanted = match platforms {
            Platforms::One(platform) => std::slice::from_ref(platform),
            Platforms::Several(wanted) => wanted,
            Platforms::Host | Platforms::All => return Ok(()),
        };
        let bytes = read_config(self.source, &image.config)?;
        let config = manifest::parse_config(&bytes)
            .map_err(|e| Error::BadInput(format!("config {}: {e}", image.config.digest)))?;
        match config.platform() {
            Some(offered) if !wanted.iter().any(|platform| platform.accepts(&offered)) => {
                let wanted: Vec<String> = wanted.iter().map(Platform::to_string).collect();
                Err(Error::NotFound(format!(
                    "{} is an image for {offered} only, not {} (no index offers others)",
                    self.source.describe(),
                    wanted.join(" or ")
                )))
            }
            _ => Ok(()),
        }
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
                let only_held = self.only_held;
                let children = (index.entries().iter())
                    .filter(|entry| !only_held || source.holds(entry))
                    .map(|entry| self.child(entry, depth + 1))
                    .collect::<Result<_>>()?;
                Node::Index(children)
            }
        };
        Ok(Tree { manifest, node })
    }
}

impl Tree {
    /// Reads the source's manifest, choosing in an index as `platforms` say (what is left out
    /// is added to `remarks`), and says what was taken; an index kept whole is read with
    /// every manifest it lists.
    pub fn read(
        source: &dyn Source,
        platforms: &Platforms,
        remarks: &mut Vec<Remark>,
    ) -> Result<(Tree, PlatformsTaken)> {
        let mut reading = Reading::new(source, false);
        let manifest = source.manifest()?;
        reading.hold(&manifest)?;
        let tree = reading.choose(manifest, platforms, 0, remarks)?;
        Ok((tree, reading.taken.unwrap_or(PlatformsTaken::Image)))
    }

    /// The tree of `manifest` of `source` as it stands, choosing nothing: for an index, every
    /// child the source holds (each read once, all within [`MANIFEST_BUDGET`]).
    pub fn read_held(source: &dyn Source, manifest: RawManifest) -> Result<Tree> {
        let mut reading = Reading::new(source, true);
        reading.hold(&manifest)?;
        reading.tree(manifest, 0)
    }

    /// The configs and the layers of its images, image by image in the order the indexes
    /// list them (an image listed twice, twice).
    pub fn configs_and_layers(&self) -> (Vec<Descriptor>, Vec<Descriptor>) {
        let (mut configs, mut layers) = (Vec::new(), Vec::new());
        self.gather_images(&mut configs, &mut layers);
        (configs, layers)
    }

    fn gather_images(&self, configs: &mut Vec<Descriptor>, layers: &mut Vec<Descriptor>) {
        match &self.node {
            Node::Image(image) => {
                configs.push(image.config.clone());
                layers.extend(image.layers.iter().cloned());
            }
            Node::Index(children) => {
                for child in children {
                    child.gather_images(configs, layers);
                }
            }
        }
    }

    /// The manifest at the root.
    pub fn manifest(&self) -> &RawManifest {
        &self.manifest
    }

    /// The image ID: the config's digest, or an index's own digest.
    pub fn id(&self) -> Digest {
        match &self.node {
            Node::Image(image) => image.config.digest.clone(),
            Node::Index(_) => self.manifest.digest.clone(),
        }
    }

    /// The manifests it holds, the root first, each once.
    pub fn manifests(&self) -> Vec<Descriptor> {
        let mut seen = HashSet::new();
        let mut manifests = Vec::new();
        self.gather_manifests(&mut seen, &mut manifests);
        manifests
    }

    fn gather_manifests(&self, seen: &mut HashSet<Digest>, manifests: &mut Vec<Descriptor>) {
        if seen.insert(self.manifest.digest.clone()) {
            manifests.push(self.manifest.descriptor());
            if let Node::Index(children) = &self.node {
                for child in children {
                    child.gather_manifests(seen, manifests);
                }
            }
        }
    }

    /// How many layers its images have, each counted once.
    pub fn layers(&self) -> usize {
        self.blobs().len() - self.configs().len()
    }

    /// The configs of its images, each once.
    fn configs(&self) -> HashSet<&Digest> {
        match &self.node {
            Node::Image(image) => HashSet::from([&image.config.digest]),
            Node::Index(children) => children.iter().flat_map(|child| child.configs()).collect(),
        }
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

    /// An index and the children it holds in memory (with their configs), counting the
    /// children fetched.
    struct Listed {
        index: RawManifest,
        children: HashMap<Digest, RawManifest>,
        configs: HashMap<Digest, Vec<u8>>,
        fetched: AtomicUsize,
    }

    impl Source for Listed {
        fn manifest(&self) -> Result<RawManifest> {
            Ok(self.index.clone())
        }
        fn open_blob(&self, blob: &Descriptor, _: u64) -> Result<Box<dyn Read + Send + '_>> {
            let config = self
                .configs
                .get(&blob.digest)
                .expect("planning reads configs only");
            Ok(Box::new(config.as_slice()))
        }
        fn describe(&self) -> String {
            "listed".into()
        }
        fn child_manifest(&self, entry: &Descriptor) -> Result<RawManifest> {
            self.fetched.fetch_add(1, Ordering::Relaxed);
            Ok(self.children[&entry.digest].clone())
        }
        fn holds(&self, entry: &Descriptor) -> bool {
            self.children.contains_key(&entry.digest)
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

    /// An index listing `children` in this order (repeats included), holding them all.
    fn listed(children: &[RawManifest]) -> Listed {
        let entries: Vec<(RawManifest, Option<&str>, bool)> = (children.iter())
            .map(|child| (child.clone(), None, true))
            .collect();
        index_of(&entries, HashMap::new())
    }

    /// An index listing `entries` (a manifest, its platform, whether the source holds it).
    fn index_of(
        entries: &[(RawManifest, Option<&str>, bool)],
        configs: HashMap<Digest, Vec<u8>>,
    ) -> Listed {
        let listed: Vec<serde_json::Value> = (entries.iter())
            .map(|(child, platform, _)| {
                let mut entry = serde_json::json!({
                    "mediaType": child.media_type,
                    "digest": child.digest.to_string(),
                    "size": child.bytes.len(),
                });
                if let Some((os, architecture)) = platform.and_then(|p| p.split_once('/')) {
                    entry["platform"] = serde_json::json!({"os": os, "architecture": architecture});
                }
                entry
            })
            .collect();
        let index = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": media_type::OCI_INDEX,
            "manifests": listed,
        });
        Listed {
            index: RawManifest::new(index.to_string().into_bytes(), media_type::OCI_INDEX),
            children: (entries.iter())
                .filter(|(_, _, held)| *held)
                .map(|(child, ..)| (child.digest.clone(), child.clone()))
                .collect(),
            configs,
            fetched: AtomicUsize::new(0),
        }
    }

    /// An index of images for `platforms` (`os/arch`, and whether the source holds it), with
    /// this host's platform written as `host`; returns it and each image's manifest digest.
    fn platforms_index(platforms: &[(&str, bool)]) -> (Listed, Vec<Digest>) {
        let host = Platform::host().to_string();
        let mut configs = HashMap::new();
        let mut entries = Vec::new();
        for &(platform, held) in platforms {
            let platform = if platform == "host" {
                host.as_str()
            } else {
                platform
            };
            let (os, architecture) = platform.split_once('/').unwrap();
            let config = serde_json::json!({"os": os, "architecture": architecture, "rootfs": {"type": "layers", "diff_ids": []}});
            let config = config.to_string().into_bytes();
            let digest = Digest::of(&config);
            let manifest = serde_json::json!({
                "schemaVersion": 2,
                "mediaType": media_type::OCI_MANIFEST,
                "config": {"mediaType": media_type::OCI_CONFIG, "digest": digest.to_string(), "size": config.len()},
                "layers": [],
            });
            let manifest =
                RawManifest::new(manifest.to_string().into_bytes(), media_type::OCI_MANIFEST);
            configs.insert(digest, config);
            entries.push((manifest, Some(platform), held));
        }
        let digests = entries.iter().map(|(m, ..)| m.digest.clone()).collect();
        (index_of(&entries, configs), digests)
    }

    /// What reading `source` as `platforms` say chooses, and the remarks.
    fn choice(source: &Listed, platforms: &Platforms) -> (Result<Digest>, Vec<Remark>) {
        let mut remarks = Vec::new();
        let tree = Tree::read(source, platforms, &mut remarks);
        (
            tree.map(|(tree, _)| tree.manifest().digest.clone()),
            remarks,
        )
    }

    #[test]
    fn the_host_platform_is_chosen_and_attestations_never() {
        let (source, digests) = platforms_index(&[
            ("unknown/unknown", true),
            ("plan9/mips", true),
            ("host", true),
        ]);
        let (chosen, remarks) = choice(&source, &Platforms::Host);
        assert_eq!(chosen.unwrap(), digests[2]);
        assert_eq!(remarks.len(), 1, "{remarks:?}");
        assert!(
            matches!(&remarks[0], Remark::Warning(text) if text.contains("also holds plan9/mips")),
            "a local source says what it leaves out: {remarks:?}"
        );
        let asked = Platforms::One(Platform::parse("plan9/mips").unwrap());
        assert_eq!(choice(&source, &asked).0.unwrap(), digests[1]);
        let error = choice(
            &source,
            &Platforms::One(Platform::parse("linux/s390x").unwrap()),
        )
        .0
        .unwrap_err();
        assert_eq!(error.exit_code(), 6);
        let message = error.to_string();
        assert!(
            message.contains("plan9/mips") && !message.contains("unknown"),
            "{message}"
        );
    }

    #[test]
    fn a_partial_index_gives_what_it_holds_unless_a_platform_was_asked_for() {
        let (source, digests) = platforms_index(&[("host", false), ("plan9/mips", true)]);
        let (chosen, remarks) = choice(&source, &Platforms::Host);
        assert_eq!(
            chosen.unwrap(),
            digests[1],
            "docker save kept only plan9/mips"
        );
        let told = |remarks: &[Remark]| {
            matches!(remarks, [Remark::Note(text)]
                if text.contains(&format!("(not the blobs of {})", Platform::host()))
                    && text.contains("plan9/mips taken"))
        };
        assert!(told(&remarks), "said once, as a note: {remarks:?}");
        let asked = Platforms::One(Platform::host());
        let error = choice(&source, &asked).0.unwrap_err();
        assert_eq!(error.exit_code(), 6, "{error}");
        let (chosen, remarks) = choice(&source, &Platforms::All);
        assert_eq!(chosen.unwrap(), digests[1], "what it holds, not the index");
        assert!(told(&remarks), "{remarks:?}");
    }

    #[test]
    fn several_platforms_narrow_the_index_to_those_and_refuse_one_it_lacks() {
        let (source, digests) = platforms_index(&[
            ("plan9/mips", true),
            ("unknown/unknown", true),
            ("host", true),
            ("linux/s390x", true),
        ]);
        let several = |text: &[&str]| {
            Platforms::Several(text.iter().map(|p| Platform::parse(p).unwrap()).collect())
        };
        let mut remarks = Vec::new();
        let asked = several(&["linux/s390x", "plan9/mips"]);
        let (tree, taken) = Tree::read(&source, &asked, &mut remarks).unwrap();
        let taken_expected =
            PlatformsTaken::Chosen(vec!["plan9/mips".into(), "linux/s390x".into()]);
        assert_eq!(taken, taken_expected);
        let listed: Vec<Digest> = (tree.manifests().iter().skip(1))
            .map(|m| m.digest.clone())
            .collect();
        assert_eq!(
            listed,
            [digests[0].clone(), digests[3].clone()],
            "in the index's order"
        );
        assert_ne!(tree.manifest().digest, source.index.digest);
        assert!(
            remarks.iter().any(
                |r| matches!(r, Remark::Warning(text) if text.contains("rewritten")
                && text.contains(&tree.manifest().digest.to_string()))
            ),
            "{remarks:?}"
        );
        let error = Tree::read(
            &source,
            &several(&["plan9/mips", "linux/ppc64le"]),
            &mut remarks,
        )
        .err()
        .unwrap();
        assert_eq!(error.exit_code(), 6);
        assert!(error.to_string().contains("plan9/mips, "), "{error}");
    }

    #[test]
    fn a_single_image_for_another_platform_is_refused_only_when_one_was_asked_for() {
        let (listed, _) = platforms_index(&[("plan9/mips", true)]);
        let image = listed.children.values().next().unwrap().clone();
        let source = Listed {
            index: image.clone(),
            ..listed
        };
        assert_eq!(choice(&source, &Platforms::Host).0.unwrap(), image.digest);
        let error = choice(
            &source,
            &Platforms::One(Platform::parse("linux/arm64").unwrap()),
        )
        .0
        .unwrap_err();
        assert!(
            error.to_string().contains("only, not linux/arm64"),
            "{error}"
        );
    }

    #[test]
    fn a_child_listed_many_times_is_read_once() {
        let one = child(1, 1000);
        let source = listed(&vec![one.clone(); 150]);
        let (tree, _) = Tree::read(&source, &Platforms::All, &mut Vec::new()).unwrap();
        assert_eq!(source.fetched.load(Ordering::Relaxed), 1);
        assert_eq!(tree.blobs().len(), 1, "the config, once");
    }

    #[test]
    fn a_tree_as_it_stands_reads_what_is_held_once_within_the_budget() {
        let (one, two) = (child(1, 10), child(2, 10));
        let entries = [
            (one.clone(), None, true),
            (two, None, false),
            (one.clone(), None, true),
        ];
        let source = index_of(&entries, HashMap::new());
        let tree = Tree::read_held(&source, source.manifest().unwrap()).unwrap();
        assert_eq!(source.fetched.load(Ordering::Relaxed), 1, "read once");
        let (configs, layers) = tree.configs_and_layers();
        let config = format!("sha256:{:064x}", 1);
        let configs: Vec<String> = configs.iter().map(|c| c.digest.to_string()).collect();
        assert_eq!(
            configs,
            [config.clone(), config],
            "as listed, the unheld left out"
        );
        assert!(layers.is_empty());

        let big = (MANIFEST_BUDGET / 4) as usize;
        let children: Vec<RawManifest> = (0..5).map(|n| child(n, big)).collect();
        let source = listed(&children);
        let error = Tree::read_held(&source, source.manifest().unwrap())
            .err()
            .unwrap();
        assert!(error.to_string().contains("MiB"), "{error}");
    }

    #[test]
    fn manifests_past_the_budget_are_refused() {
        let big = (MANIFEST_BUDGET / 4) as usize;
        let children: Vec<RawManifest> = (0..5).map(|n| child(n, big)).collect();
        let error = Tree::read(&listed(&children), &Platforms::All, &mut Vec::new())
            .err()
            .unwrap();
        assert_eq!(error.exit_code(), 3);
        assert!(error.to_string().contains("MiB"), "{error}");
        let within: Vec<RawManifest> = (0..3).map(|n| child(n, big)).collect();
        assert!(Tree::read(&listed(&within), &Platforms::All, &mut Vec::new()).is_ok());
    }
}
