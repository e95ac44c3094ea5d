//! `bundle.json`: what a bundle holds and relies on, written into every bundle, and read back
//! from an earlier one by `bundle --since OLD` to leave out the layers OLD carried (or relied
//! on: a chain of deltas reaches back to the first full bundle). OLD is a bundle folder, its
//! `bundle.json`, or a folder made before bundles wrote one, whose archive is read instead.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::Read;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::archive::{Archive, Input, Omitted, Since, WrittenReferrer, is_archive_path};
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::manifest::Descriptor;
use crate::transfer::blobs_of;

/// The largest `bundle.json` read back: thousands of images fit in far less.
const MAX_RECORD: u64 = 64 * 1024 * 1024;
/// The version of the format written.
const FORMAT: u32 = 1;

/// What `bundle.json` says.
#[derive(Debug, Serialize, Deserialize)]
pub struct BundleRecord {
    /// The format's version.
    pub bundle: u32,
    /// When it was made (RFC 3339, UTC).
    pub created: String,
    /// The bundle it was made `--since`, if any.
    pub since: Option<Since>,
    /// The files that make up the archive, in order (one, or its parts).
    pub archive: Vec<String>,
    /// Whether the archive leaves blobs out (then `docker load` cannot read it).
    pub delta: bool,
    pub images: Vec<RecordedImage>,
    /// The images' referrers (signatures, SBOMs, attestations) in the archive, each with
    /// its subject and blobs (a bundle made before they were carried lists none).
    #[serde(default)]
    pub referrers: Vec<WrittenReferrer>,
    /// The blobs in the archive (the images' and their referrers').
    pub holds: Vec<Held>,
    /// The blobs the images use that the archive leaves out: a registry that received the
    /// earlier bundles has them.
    pub relies_on: Vec<Omitted>,
}

/// One image of a bundle.
#[derive(Debug, Serialize, Deserialize)]
pub struct RecordedImage {
    /// Its full name (or image ID).
    pub name: String,
    pub manifest: Digest,
    /// Every blob it uses: configs and layers (for an index, of each image it holds).
    pub blobs: Vec<Digest>,
}

/// One blob in a bundle's archive.
#[derive(Debug, Serialize, Deserialize)]
pub struct Held {
    pub digest: Digest,
    pub size: u64,
}

impl BundleRecord {
    /// A record of a bundle made now.
    pub fn new(
        since: Option<Since>,
        archive: Vec<String>,
        (images, referrers): (Vec<RecordedImage>, Vec<WrittenReferrer>),
        holds: Vec<Held>,
        relies_on: Vec<Omitted>,
    ) -> BundleRecord {
        BundleRecord {
            bundle: FORMAT,
            created: crate::cache::now_rfc3339(),
            since,
            archive,
            delta: !relies_on.is_empty(),
            images,
            referrers,
            holds,
            relies_on,
        }
    }
}

/// An earlier bundle, as `--since` reads it: itself, and every blob a registry that received
/// it has (what it held and what it relied on), with the images that hold each.
pub struct Earlier {
    pub since: Since,
    blobs: HashMap<Digest, (u64, Vec<String>)>,
}

impl Earlier {
    /// Reads the bundle `given`: a folder with `bundle.json`, that file, or a folder of an
    /// older bundle, whose archive is read (gzip ones are spooled into `spool_dir`).
    pub fn read(given: &Path, spool_dir: &Path) -> Result<Earlier> {
        let shown = given.display().to_string();
        let record = match given.is_dir() {
            true => given.join("bundle.json"),
            false => given.to_path_buf(),
        };
        if record.is_file() {
            return Earlier::from_record(&record, shown);
        }
        if given.is_dir() {
            return Earlier::from_archive(given, spool_dir, shown);
        }
        Err(Error::Usage(format!(
            "--since {shown}: no such bundle (give its folder or its bundle.json)"
        )))
    }

    fn from_record(path: &Path, given: String) -> Result<Earlier> {
        let mut bytes = Vec::new();
        File::open(path)
            .and_then(|file| file.take(MAX_RECORD + 1).read_to_end(&mut bytes))
            .map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
        if bytes.len() as u64 > MAX_RECORD {
            return Err(Error::BadInput(format!(
                "{}: larger than {MAX_RECORD} bytes; not a bundle.json",
                path.display()
            )));
        }
        let record: BundleRecord = serde_json::from_slice(&bytes)
            .map_err(|e| Error::BadInput(format!("{}: not a bundle.json ({e})", path.display())))?;
        let mut holders: HashMap<&Digest, Vec<String>> = HashMap::new();
        for image in &record.images {
            for blob in &image.blobs {
                holders.entry(blob).or_default().push(image.name.clone());
            }
        }
        // A referrer's blobs went where its image went.
        for referrer in &record.referrers {
            let names = (record.images.iter())
                .filter(|image| image.manifest == referrer.subject)
                .map(|image| image.name.clone());
            let names: Vec<String> = names.collect();
            for blob in &referrer.blobs {
                holders
                    .entry(&blob.digest)
                    .or_default()
                    .extend(names.clone());
            }
        }
        let mut blobs = HashMap::new();
        for held in &record.holds {
            let names = holders.get(&held.digest).cloned().unwrap_or_default();
            blobs.insert(held.digest.clone(), (held.size, names));
        }
        for relied in &record.relies_on {
            (blobs.entry(relied.digest.clone()))
                .or_insert_with(|| (relied.size, relied.held_by.clone()));
        }
        Ok(Earlier {
            since: Since {
                created: record.created,
                bundle_json: Some(Digest::of(&bytes)),
                given,
            },
            blobs,
        })
    }

    fn from_archive(dir: &Path, spool_dir: &Path, given: String) -> Result<Earlier> {
        let archive = ["images.tar", "images.tar.gz"]
            .iter()
            .map(|name| dir.join(name))
            .find(|path| is_archive_path(path))
            .ok_or_else(|| {
                Error::Usage(format!(
                    "--since {given}: neither bundle.json nor images.tar in it; not a bundle"
                ))
            })?;
        let opened = Archive::open(&Input::Path(archive.clone()), spool_dir)?;
        let mut blobs: HashMap<Digest, (u64, Vec<String>)> = HashMap::new();
        for image in opened.images() {
            let source = opened.source(image);
            let (configs, layers) = blobs_of(&source)?;
            let name = (image.names.first())
                .map_or_else(|| image.manifest.digest.to_string(), ToString::to_string);
            for blob in configs.into_iter().chain(layers) {
                let entry = blobs.entry(blob.digest).or_insert((blob.size, Vec::new()));
                entry.1.push(name.clone());
            }
        }
        let created = modified(&archive);
        Ok(Earlier {
            since: Since {
                created,
                bundle_json: None,
                given,
            },
            blobs,
        })
    }

    /// The layers of `layers` a registry that received this bundle has, each with the images
    /// that hold it: what a bundle made since it leaves out.
    pub fn leaves_out(&self, layers: &[Descriptor]) -> Vec<Omitted> {
        let mut found: BTreeMap<&Digest, Omitted> = BTreeMap::new();
        for layer in layers {
            if let Some((size, held_by)) = self.blobs.get(&layer.digest)
                && *size == layer.size
            {
                found.entry(&layer.digest).or_insert_with(|| Omitted {
                    digest: layer.digest.clone(),
                    size: *size,
                    held_by: held_by.clone(),
                });
            }
        }
        found.into_values().collect()
    }
}

/// When a file was last written, RFC 3339 (or `unknown`).
fn modified(path: &Path) -> String {
    let seconds = (std::fs::metadata(path).and_then(|m| m.modified()))
        .ok()
        .and_then(|time| time.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_secs());
    seconds.map_or_else(|| "unknown".into(), crate::cache::rfc3339)
}
