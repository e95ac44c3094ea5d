//! Whether the program put in a bundle will run on the other side: a dynamically linked one
//! needs the same C library there.

use std::fs::File;
use std::io::Read;
use std::path::Path;

/// Whether `path` is an ELF program that asks for a dynamic loader (a `PT_INTERP` header);
/// false for a static one, and for anything it cannot read as 64-bit little-endian ELF
/// with its program headers in the first 64 KiB.
pub fn is_dynamically_linked(path: &Path) -> bool {
    const PT_INTERP: u32 = 3;
    const ELF_HEAD: u64 = 64 * 1024;
    // The ELF header and the program headers sit at the start; the rest is not read.
    let mut bytes = Vec::new();
    let read = File::open(path).and_then(|file| file.take(ELF_HEAD).read_to_end(&mut bytes));
    if read.is_err() {
        return false;
    }
    let field = |at: usize, len: usize| -> Option<u64> {
        let slice = bytes.get(at..at + len)?;
        Some(
            slice
                .iter()
                .rev()
                .fold(0, |value, &byte| value << 8 | u64::from(byte)),
        )
    };
    if bytes.get(..6) != Some(b"\x7fELF\x02\x01") {
        return false;
    }
    let (Some(offset), Some(size), Some(count)) = (field(0x20, 8), field(0x36, 2), field(0x38, 2))
    else {
        return false;
    };
    (0..count).any(|i| field((offset + i * size) as usize, 4) == Some(u64::from(PT_INTERP)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tells_a_dynamic_program_from_anything_else() {
        let this = std::env::current_exe().unwrap();
        // Test binaries are linked against the C library of the machine that builds them.
        assert!(is_dynamically_linked(&this));
        assert!(!is_dynamically_linked(Path::new("Cargo.toml")));
        assert!(!is_dynamically_linked(Path::new("/nonexistent")));
    }
}
