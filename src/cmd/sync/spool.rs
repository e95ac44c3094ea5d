//! A spool: records a sync need not hold in memory (the tags of a whole repository, the rows
//! of images done), appended to an unnamed file in the temporary folder (`$TMPDIR`) and read
//! back by where they begin. The file is made at the first record, so a sync that keeps
//! nothing touches no folder, and it is gone when the sync ends, however it ends. Where no
//! file can be made or written there (a read-only root file system, a full one), the records
//! are held in memory: the sync runs all the same.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

use crate::create;

/// Records appended one after another, each read back from where it begins.
#[derive(Default)]
pub struct Spool {
    /// None until the first record.
    store: Option<Store>,
    /// Where the next record begins: the bytes written.
    end: u64,
}

/// Where a spool's records are.
enum Store {
    File(File),
    /// No file could be made in the temporary folder.
    Memory(Vec<u8>),
}

/// A record is its length in 4 bytes (little-endian), then its bytes.
const FRAME: usize = 4;

impl Spool {
    /// Where the next record will begin.
    pub fn end(&self) -> u64 {
        self.end
    }

    /// Appends `record`; returns where it begins.
    pub fn push(&mut self, record: &[u8]) -> io::Result<u64> {
        let length = u32::try_from(record.len())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a record over 4 GiB"))?;
        let store =
            self.store
                .get_or_insert_with(|| match create::unnamed_file(&std::env::temp_dir()) {
                    Ok(file) => Store::File(file),
                    Err(_) => Store::Memory(Vec::new()),
                });
        let at = self.end;
        let mut framed = Vec::with_capacity(FRAME + record.len());
        framed.extend_from_slice(&length.to_le_bytes());
        framed.extend_from_slice(record);
        match store {
            Store::File(file) => {
                if file.write_all_at(&framed, at).is_err() {
                    // The temporary folder is full, say: go on in memory with what it holds.
                    let mut bytes = vec![0; at as usize];
                    file.read_exact_at(&mut bytes, 0)?;
                    bytes.extend_from_slice(&framed);
                    *store = Store::Memory(bytes);
                }
            }
            Store::Memory(bytes) => bytes.extend_from_slice(&framed),
        }
        self.end += framed.len() as u64;
        Ok(at)
    }

    /// The record that begins at `*at`; moves `at` to the next one.
    pub fn read(&self, at: &mut u64) -> io::Result<Vec<u8>> {
        let mut length = [0; FRAME];
        self.read_exact_at(&mut length, *at)?;
        let length = u32::from_le_bytes(length) as usize;
        if *at + (FRAME + length) as u64 > self.end {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "a record past the spool's end",
            ));
        }
        let mut record = vec![0; length];
        self.read_exact_at(&mut record, *at + FRAME as u64)?;
        *at += (FRAME + length) as u64;
        Ok(record)
    }

    /// Fills `buffer` from `at`, which must be within what was written.
    fn read_exact_at(&self, buffer: &mut [u8], at: u64) -> io::Result<()> {
        let past = io::Error::new(io::ErrorKind::UnexpectedEof, "no record there in the spool");
        if at + buffer.len() as u64 > self.end {
            return Err(past);
        }
        match &self.store {
            Some(Store::File(file)) => file.read_exact_at(buffer, at),
            Some(Store::Memory(bytes)) => {
                let from = at as usize;
                buffer.copy_from_slice(&bytes[from..from + buffer.len()]);
                Ok(())
            }
            None => Err(past),
        }
    }

    /// Forgets every record from `end` on (an [`Spool::end`] said earlier).
    pub fn truncate(&mut self, end: u64) -> io::Result<()> {
        let end = end.min(self.end);
        match &mut self.store {
            Some(Store::File(file)) => file.set_len(end)?,
            Some(Store::Memory(bytes)) => bytes.truncate(end as usize),
            None => {}
        }
        self.end = end;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_come_back_in_order_from_where_they_begin() {
        for store in [None, Some(Store::Memory(Vec::new()))] {
            // A file in the temporary folder, or memory where none can be made.
            in_order(Spool { store, end: 0 });
        }
    }

    fn in_order(mut spool: Spool) {
        let mut at = 0;
        assert!(spool.read(&mut at).is_err(), "nothing is there yet");
        let first = spool.push(b"v1").unwrap();
        let second = spool.push(b"").unwrap();
        let third = spool.push("tag-\u{e9}".as_bytes()).unwrap();
        assert_eq!(spool.read(&mut at).unwrap(), b"v1");
        assert_eq!(at, second);
        assert_eq!(spool.read(&mut at).unwrap(), b"");
        assert_eq!(spool.read(&mut at).unwrap(), "tag-\u{e9}".as_bytes());
        assert!(spool.read(&mut at).is_err(), "past the last record");
        let mut at = third;
        assert_eq!(spool.read(&mut at).unwrap(), "tag-\u{e9}".as_bytes());
        spool.truncate(second).unwrap();
        assert_eq!(spool.end(), second);
        spool.push(b"v2").unwrap();
        let mut at = first;
        let back: Vec<Vec<u8>> = (0..2).map(|_| spool.read(&mut at).unwrap()).collect();
        assert_eq!(back, [b"v1".to_vec(), b"v2".to_vec()]);
    }
}
