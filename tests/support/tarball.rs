//! Archives built byte by byte with the `tar` crate: malformed inputs no real tool would
//! write, and large legacy archives of generated data, streamed so they never sit in memory.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::Path;

use sha2::{Digest, Sha256};

use super::sha256;

/// One entry of a hand-built archive.
pub enum Item {
    File(String, Vec<u8>),
    Symlink(String, String),
    /// A file whose name is written into the header as is, unchecked (`../x`, `/etc/x`).
    RawName(String, Vec<u8>),
    /// An extended header of this kind (`x`, `g`: pax; `L`, `K`: GNU long name, long link)
    /// with a body of this many bytes, describing the entry that follows.
    Extended(u8, usize),
}

/// Writes `items` as a tar file.
pub fn write_tar(path: &Path, items: &[Item]) {
    let mut builder = tar::Builder::new(File::create(path).unwrap());
    for item in items {
        let mut header = tar::Header::new_gnu();
        header.set_mode(0o644);
        match item {
            Item::File(name, data) => {
                header.set_size(data.len() as u64);
                builder
                    .append_data(&mut header, name, data.as_slice())
                    .unwrap();
            }
            Item::Symlink(name, target) => {
                header.set_entry_type(tar::EntryType::Symlink);
                header.set_size(0);
                builder.append_link(&mut header, name, target).unwrap();
            }
            Item::Extended(kind, size) => {
                let mut header = match kind {
                    b'x' | b'g' => tar::Header::new_ustar(),
                    _ => tar::Header::new_gnu(),
                };
                header.set_entry_type(tar::EntryType::new(*kind));
                header.set_path("././@LongLink").unwrap();
                header.set_size(*size as u64);
                header.set_cksum();
                builder
                    .append(&header, extended_body(*kind, *size).as_slice())
                    .unwrap();
            }
            Item::RawName(name, data) => {
                let field = &mut header.as_old_mut().name;
                field[..name.len()].copy_from_slice(name.as_bytes());
                header.set_size(data.len() as u64);
                header.set_cksum();
                builder.append(&header, data.as_slice()).unwrap();
            }
        }
    }
    builder.into_inner().unwrap().flush().unwrap();
}

/// The body of an extended header of `kind` and `size` bytes: one pax record (a comment), or
/// a long name ending in NUL.
fn extended_body(kind: u8, size: usize) -> Vec<u8> {
    if !matches!(kind, b'x' | b'g') {
        let mut name = vec![b'n'; size - 1];
        name.push(0);
        return name;
    }
    let digits = size.to_string().len();
    let comment = "c".repeat(size - digits - " comment=\n".len());
    let record = format!("{size} comment={comment}\n").into_bytes();
    assert_eq!(record.len(), size, "one record of {size} bytes");
    record
}

/// The entries of a legacy `docker save` archive of one image with these layers; the layer
/// files are `<n>/layer.tar`, the config `config.json`.
pub fn legacy_items(layers: &[&[u8]], repo_tags: &str) -> Vec<Item> {
    let diff_ids: Vec<String> = layers
        .iter()
        .map(|layer| format!("sha256:{}", sha256(layer)))
        .collect();
    let mut items: Vec<Item> = (layers.iter().enumerate())
        .map(|(i, layer)| Item::File(format!("{i}/layer.tar"), layer.to_vec()))
        .collect();
    items.push(Item::File(
        "config.json".into(),
        config(&diff_ids).into_bytes(),
    ));
    items.push(Item::File(
        "manifest.json".into(),
        manifest(
            repo_tags,
            (0..layers.len()).map(|i| format!("{i}/layer.tar")),
        ),
    ));
    items
}

/// An image config with these diff_ids.
pub fn config(diff_ids: &[String]) -> String {
    serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "rootfs": { "type": "layers", "diff_ids": diff_ids },
    })
    .to_string()
}

/// A legacy `manifest.json` naming `config.json` and these layer paths; `repo_tags` is JSON.
fn manifest(repo_tags: &str, layers: impl Iterator<Item = String>) -> Vec<u8> {
    let layers: Vec<String> = layers.collect();
    format!(
        r#"[{{"Config":"config.json","RepoTags":{repo_tags},"Layers":{}}}]"#,
        serde_json::to_string(&layers).unwrap()
    )
    .into_bytes()
}

/// `len` bytes no compressor can shrink (xorshift from `seed`, which must not be 0).
pub fn noise(len: usize, mut seed: u64) -> Vec<u8> {
    (0..len)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed as u8
        })
        .collect()
}

/// `dir/noisy.tar`: a legacy archive of `example.com/noisy:v1`, one layer of `size` bytes that
/// gzip cannot shrink much, and one tiny layer.
pub fn noisy_archive(dir: &Path, size: usize) -> std::path::PathBuf {
    let layer = noise(size, 0x9e37_79b9_7f4a_7c15);
    let path = dir.join("noisy.tar");
    write_tar(
        &path,
        &legacy_items(&[&layer, b"small"], r#"["example.com/noisy:v1"]"#),
    );
    path
}

/// Streams a legacy archive of generated layers of the given sizes to `path`: layers first,
/// then config and `manifest.json` (so a streaming reader must keep what it read). Returns
/// the diff_ids.
pub fn write_big_legacy(path: &Path, name: &str, layer_sizes: &[u64]) -> Vec<String> {
    let mut builder = tar::Builder::new(io::BufWriter::new(File::create(path).unwrap()));
    let mut diff_ids = Vec::new();
    for (i, &size) in layer_sizes.iter().enumerate() {
        let mut data = Generated::new(size, i as u64 + 1);
        let mut header = tar::Header::new_gnu();
        header.set_mode(0o644);
        header.set_size(size);
        builder
            .append_data(&mut header, format!("{i}/layer.tar"), &mut data)
            .unwrap();
        diff_ids.push(format!("sha256:{:x}", data.hasher.finalize()));
    }
    for (file, bytes) in [
        ("config.json", config(&diff_ids).into_bytes()),
        (
            "manifest.json",
            manifest(
                &format!(r#"["{name}"]"#),
                (0..layer_sizes.len()).map(|i| format!("{i}/layer.tar")),
            ),
        ),
    ] {
        let mut header = tar::Header::new_gnu();
        header.set_mode(0o644);
        header.set_size(bytes.len() as u64);
        builder
            .append_data(&mut header, file, bytes.as_slice())
            .unwrap();
    }
    builder.into_inner().unwrap().flush().unwrap();
    diff_ids
}

/// `size` bytes of incompressible-looking data from a seed, hashed as they are read.
struct Generated {
    remaining: u64,
    block: Vec<u8>,
    block_number: u64,
    offset: usize,
    hasher: Sha256,
}

impl Generated {
    fn new(size: u64, seed: u64) -> Generated {
        let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let block = (0..1 << 17)
            .flat_map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state.to_le_bytes()
            })
            .collect();
        Generated {
            remaining: size,
            block,
            block_number: 0,
            offset: 0,
            hasher: Sha256::new(),
        }
    }
}

impl Read for Generated {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        if self.remaining == 0 {
            return Ok(0);
        }
        if self.offset == self.block.len() {
            self.block_number += 1;
            self.block[..8].copy_from_slice(&self.block_number.to_le_bytes());
            self.offset = 0;
        }
        let n = buffer
            .len()
            .min(self.block.len() - self.offset)
            .min(self.remaining as usize);
        buffer[..n].copy_from_slice(&self.block[self.offset..self.offset + n]);
        self.hasher.update(&buffer[..n]);
        self.offset += n;
        self.remaining -= n as u64;
        Ok(n)
    }
}
