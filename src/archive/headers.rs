//! A watch on the headers of a tar archive as the tar crate reads it: an extended header (pax
//! `x`/`g`, GNU long name `L` or long link `K`) larger than [`MAX_EXTENDED_HEADER`] is refused
//! before the crate reads it whole into memory, from a file as from a stream.
//!
//! The watch follows the archive block by block as the crate does (tar 0.4): each header's
//! data, rounded up to 512 bytes, is passed over, with the size a pax `x` header gives its
//! member and the extension blocks of a GNU sparse member. Where the crate would stop (a zero
//! block, a corrupt header) the watch stops too and lets the crate say what is wrong.

use std::io::{self, Read, Seek, SeekFrom};

use tar::{Header, PaxExtensions};

use crate::error::Error;

/// The largest extended header taken, in bytes: long names and pax records are a few hundred.
pub const MAX_EXTENDED_HEADER: u64 = 1024 * 1024;

/// The size of a tar block.
const BLOCK: usize = 512;

/// A reader of a tar archive that refuses oversized extended headers (see the module).
pub struct Watched<R> {
    inner: R,
    name: String,
    walk: Walk,
}

impl<R> Watched<R> {
    /// Watches the archive `name` read from `inner`, which is at its start.
    pub fn new(inner: R, name: &str) -> Watched<R> {
        Watched {
            inner,
            name: name.to_string(),
            walk: Walk::default(),
        }
    }
}

impl<R: Read> Read for Watched<R> {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buffer)?;
        self.walk
            .read(&buffer[..n])
            .map_err(|size| oversized(&self.name, size).into_io())?;
        Ok(n)
    }
}

impl<R: Seek> Seek for Watched<R> {
    /// The crate seeks only forward, over the data of members it does not read.
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let from = self.inner.stream_position()?;
        let at = self.inner.seek(to)?;
        match at.checked_sub(from) {
            Some(skipped) => self.walk.skip(skipped),
            None => self.walk.state = State::Stopped,
        }
        Ok(at)
    }
}

/// The error for an extended header of `size` bytes in the archive `name`.
fn oversized(name: &str, size: u64) -> Error {
    Error::BadInput(format!(
        "{name}: an extended header (pax or GNU long name) of {size} bytes, more than the \
         {MAX_EXTENDED_HEADER} allowed"
    ))
}

/// Where the walk is in the archive.
#[derive(Debug)]
enum State {
    /// Reading a header: these bytes of it so far.
    Header(Vec<u8>),
    /// Reading the extension blocks of a GNU sparse member, then its data (`data` bytes).
    Sparse { block: Vec<u8>, data: u64 },
    /// Reading a pax `x` header's records, `left` bytes more, then `padding`.
    Pax { left: u64, padding: u64 },
    /// Passing over data: `left` bytes more.
    Data { left: u64 },
    /// Past the end, or where the crate stops: nothing more is watched.
    Stopped,
}

/// The walk over an archive's blocks.
#[derive(Debug)]
struct Walk {
    state: State,
    /// The records of the pax `x` header being read.
    records: Vec<u8>,
    /// The member size the last pax `x` header gives the member it describes.
    pax_size: Option<u64>,
}

impl Default for Walk {
    fn default() -> Walk {
        Walk {
            state: State::Header(Vec::with_capacity(BLOCK)),
            records: Vec::new(),
            pax_size: None,
        }
    }
}

impl Walk {
    /// Follows `bytes`, read next; `Err(size)` at an extended header of `size` bytes, too large.
    fn read(&mut self, mut bytes: &[u8]) -> Result<(), u64> {
        while !bytes.is_empty() {
            let taken = match &mut self.state {
                State::Stopped => return Ok(()),
                State::Header(block) | State::Sparse { block, .. } => {
                    let taken = bytes.len().min(BLOCK - block.len());
                    block.extend_from_slice(&bytes[..taken]);
                    taken
                }
                State::Pax { left, .. } => {
                    let taken = bytes
                        .len()
                        .min(usize::try_from(*left).unwrap_or(usize::MAX));
                    self.records.extend_from_slice(&bytes[..taken]);
                    *left -= taken as u64;
                    taken
                }
                State::Data { left } => {
                    let taken = bytes
                        .len()
                        .min(usize::try_from(*left).unwrap_or(usize::MAX));
                    *left -= taken as u64;
                    taken
                }
            };
            bytes = &bytes[taken..];
            self.step()?;
        }
        Ok(())
    }

    /// Passes over `skipped` bytes the reader sought past, which must be data.
    fn skip(&mut self, skipped: u64) {
        match &mut self.state {
            State::Data { left } if skipped <= *left => {
                *left -= skipped;
                if *left == 0 {
                    self.state = State::Header(Vec::with_capacity(BLOCK));
                }
            }
            State::Header(block) if block.is_empty() && skipped == 0 => {}
            _ => self.state = State::Stopped,
        }
    }

    /// Moves on when the current part is complete.
    fn step(&mut self) -> Result<(), u64> {
        let next = match &mut self.state {
            State::Header(block) if block.len() == BLOCK => {
                let block = std::mem::take(block);
                self.header(&block)?
            }
            State::Sparse { block, data } if block.len() == BLOCK => match block[504] {
                1 => State::Sparse {
                    block: Vec::with_capacity(BLOCK),
                    data: *data,
                },
                _ => data_of(*data),
            },
            State::Pax { left: 0, padding } => {
                let padding = *padding;
                let records = std::mem::take(&mut self.records);
                self.pax_size = pax_size(&records);
                data_of(padding)
            }
            State::Data { left: 0 } => State::Header(Vec::with_capacity(BLOCK)),
            _ => return Ok(()),
        };
        self.state = next;
        Ok(())
    }

    /// What follows the header `block`.
    fn header(&mut self, block: &[u8]) -> Result<State, u64> {
        let header = Header::from_byte_slice(block);
        if block.iter().all(|&b| b == 0) || !checksum_holds(header) {
            return Ok(State::Stopped);
        }
        let Ok(mut size) = header.entry_size() else {
            return Ok(State::Stopped);
        };
        let kind = header.entry_type();
        let extended = kind.is_gnu_longname()
            || kind.is_gnu_longlink()
            || kind.is_pax_local_extensions()
            || kind.is_pax_global_extensions();
        if extended && size > MAX_EXTENDED_HEADER {
            return Err(size);
        }
        let recognized = header.as_gnu().is_some() || header.as_ustar().is_some();
        // The crate keeps a pax header's records for the next member that is not a long
        // name, a long link or another pax header, and gives it their size.
        let kept = recognized && (kind.is_gnu_longname() || kind.is_gnu_longlink());
        let pax_size = match kept {
            true => None,
            false => self.pax_size.take(),
        };
        if let Some(pax_size) = pax_size.filter(|_| !extended) {
            size = pax_size;
        }
        let rounded = size.div_ceil(BLOCK as u64).saturating_mul(BLOCK as u64);
        Ok(match header.as_gnu() {
            _ if recognized && kind.is_pax_local_extensions() && size > 0 => {
                self.records.clear();
                State::Pax {
                    left: size,
                    padding: rounded - size,
                }
            }
            Some(gnu) if kind.is_gnu_sparse() && gnu.is_extended() => State::Sparse {
                block: Vec::with_capacity(BLOCK),
                data: rounded,
            },
            _ => data_of(rounded),
        })
    }
}

/// Data of `left` bytes to pass over, or the next header when there is none.
fn data_of(left: u64) -> State {
    match left {
        0 => State::Header(Vec::with_capacity(BLOCK)),
        left => State::Data { left },
    }
}

/// Whether the header's checksum is right, as the crate checks it.
fn checksum_holds(header: &Header) -> bool {
    let bytes = header.as_bytes();
    let sum = (bytes[..148].iter().chain(&bytes[156..])).fold(8 * 32, |a, &b| a + u32::from(b));
    header.cksum().is_ok_and(|cksum| cksum == sum)
}

/// The `size` a pax header's records give, as the crate reads it.
fn pax_size(records: &[u8]) -> Option<u64> {
    for record in PaxExtensions::new(records) {
        let record = record.ok()?;
        if record.key() == Ok("size") {
            return record.value().ok()?.parse().ok();
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;
    use tar::{Builder, EntryType};

    /// A header of `kind` and `size` for `path`, its checksum set.
    fn header(kind: EntryType, path: &str, size: u64, gnu: bool) -> Header {
        let mut header = if gnu {
            Header::new_gnu()
        } else {
            Header::new_ustar()
        };
        header.set_entry_type(kind);
        header.set_path(path).unwrap();
        header.set_size(size);
        header.set_cksum();
        header
    }

    /// What the tar crate lists of `archive` read through the watch, by seeking or not.
    fn listed(archive: &[u8], seek: bool) -> crate::error::Result<Vec<(String, u64)>> {
        let mut archive = tar::Archive::new(Watched::new(Cursor::new(archive), "a.tar"));
        let entries = match seek {
            true => archive.entries_with_seek(),
            false => archive.entries(),
        };
        let mut listed = Vec::new();
        for entry in entries.map_err(|e| Error::from_io("a.tar", e))? {
            let mut entry = entry.map_err(|e| Error::from_io("a.tar", e))?;
            let path = entry.path().unwrap().display().to_string();
            if !seek {
                io::copy(&mut entry, &mut io::sink()).unwrap();
            }
            listed.push((path, entry.size()));
        }
        Ok(listed)
    }

    #[test]
    fn the_watch_follows_a_pax_size_and_is_not_fooled_by_data() {
        // A member whose header says 0 bytes and whose pax record says 1024, holding what
        // looks like an oversized long-name header: the watch steps over it, as the crate does.
        let lookalike = header(EntryType::GNULongName, "././@LongLink", 8 << 20, true);
        let mut data = lookalike.as_bytes().to_vec();
        data.resize(1024, 7);
        let mut builder = Builder::new(Vec::new());
        let record = b"13 size=1024\n";
        let pax = header(EntryType::XHeader, "pax", record.len() as u64, false);
        builder.append(&pax, &record[..]).unwrap();
        builder
            .append(&header(EntryType::Regular, "big", 0, false), &data[..])
            .unwrap();
        let small = b"after";
        let after = header(EntryType::Regular, "after", small.len() as u64, true);
        builder.append(&after, &small[..]).unwrap();
        let archive = builder.into_inner().unwrap();
        for seek in [false, true] {
            let listed = listed(&archive, seek).unwrap();
            assert_eq!(
                listed,
                [("big".into(), 1024), ("after".into(), 5)],
                "{seek}"
            );
        }
    }

    #[test]
    fn an_oversized_long_name_is_refused_before_it_is_read() {
        let mut builder = Builder::new(Vec::new());
        let name = vec![b'n'; 2 << 20];
        let long = header(
            EntryType::GNULongName,
            "././@LongLink",
            name.len() as u64,
            true,
        );
        builder.append(&long, &name[..]).unwrap();
        let archive = builder.into_inner().unwrap();
        for seek in [false, true] {
            let error = listed(&archive, seek).unwrap_err();
            assert_eq!(error.exit_code(), 3);
            assert!(error.to_string().contains("of 2097152 bytes"), "{error}");
        }
    }

    #[test]
    fn the_extension_blocks_of_a_sparse_member_are_passed_over() {
        let mut walk = Walk::default();
        let mut sparse = Header::new_gnu();
        sparse.set_entry_type(EntryType::GNUSparse);
        sparse.set_size(512);
        sparse.as_gnu_mut().unwrap().set_is_extended(true);
        sparse.set_cksum();
        let mut extension = [0u8; BLOCK];
        extension[504] = 1;
        let oversized = header(EntryType::XHeader, "x", 4 << 20, false);
        let mut bytes = sparse.as_bytes().to_vec();
        bytes.extend_from_slice(&extension);
        bytes.extend_from_slice(&[0; BLOCK]);
        bytes.extend_from_slice(oversized.as_bytes());
        // Two extension blocks, then 512 bytes of data that look like a header; the walk
        // reaches the real oversized header only after them.
        assert!(walk.read(&bytes[..3 * BLOCK]).is_ok());
        walk.read(&oversized.as_bytes()[..]).unwrap();
        assert_eq!(walk.read(&bytes[3 * BLOCK..]), Err(4 << 20));
    }
}
