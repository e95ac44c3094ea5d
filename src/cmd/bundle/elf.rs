//! Whether the program put in a bundle will run on the other side: it must be an ELF
//! executable (not an archive or a script given by mistake), for a machine said aloud when it
//! is not this one's, and a dynamically linked one needs the same C library there.

use std::fs::{self, File};
use std::io::{self, Read};
use std::path::Path;

use crate::error::{Error, Result};

/// What the ELF header of a program says.
#[derive(Debug, PartialEq)]
pub struct Program {
    /// The machine it runs on, as Rust names it (`x86_64`, `aarch64`), or the ELF number.
    pub machine: String,
    /// Whether it asks for a dynamic loader (a `PT_INTERP` header).
    pub dynamic: bool,
}

impl Program {
    /// Whether it is for another machine than this program's.
    pub fn is_foreign(&self) -> bool {
        self.machine != std::env::consts::ARCH
    }
}

/// The program at `path` (`--binary`), checked before anything is written: it must be a
/// regular file holding an ELF executable; anything else is a usage error naming `--binary`.
pub fn check_program(path: &Path) -> Result<Program> {
    let refused = |why: String| Error::Usage(format!("--binary {}: {why}", path.display()));
    let meta = fs::metadata(path).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => refused("no such file".into()),
        _ => refused(e.to_string()),
    })?;
    if !meta.is_file() {
        return Err(refused(
            "not a regular file; give the program to carry".into(),
        ));
    }
    // The ELF header and the program headers sit at the start; the rest is not read.
    let mut head = Vec::new();
    File::open(path)
        .and_then(|file| file.take(HEAD).read_to_end(&mut head))
        .map_err(|e| refused(e.to_string()))?;
    read_program(&head).map_err(|what| {
        refused(format!(
            "{what}, not a program; give the static build of docker-image-pusher \
             (scripts/build-static.sh), which push.sh runs"
        ))
    })
}

/// How much of a program is read: its ELF header and program headers are at the start.
const HEAD: u64 = 64 * 1024;

/// Reads the ELF header at the start of `bytes`; what the bytes are instead, when they are
/// not an ELF executable.
fn read_program(bytes: &[u8]) -> std::result::Result<Program, String> {
    const PT_INTERP: u64 = 3;
    if bytes.get(..4) != Some(b"\x7fELF") {
        return Err(what_it_is(bytes).into());
    }
    let (wide, big) = match (bytes.get(4), bytes.get(5)) {
        (Some(1), Some(1)) => (false, false),
        (Some(1), Some(2)) => (false, true),
        (Some(2), Some(1)) => (true, false),
        (Some(2), Some(2)) => (true, true),
        _ => return Err("an ELF file of an unknown class".into()),
    };
    let field = |at: usize, len: usize| -> Option<u64> {
        let slice = bytes.get(at..at.checked_add(len)?)?;
        let fold = |value: u64, &byte: &u8| value << 8 | u64::from(byte);
        Some(match big {
            true => slice.iter().fold(0, fold),
            false => slice.iter().rev().fold(0, fold),
        })
    };
    let truncated = || "a truncated ELF file".to_string();
    let kind = field(0x10, 2).ok_or_else(truncated)?;
    // ET_EXEC, or ET_DYN: a position-independent program (or a shared library, alike here).
    if kind != 2 && kind != 3 {
        let what = match kind {
            1 => "an ELF object file (.o)",
            4 => "an ELF core dump",
            _ => "an ELF file that is not an executable",
        };
        return Err(what.into());
    }
    let machine = field(0x12, 2).ok_or_else(truncated)?;
    let (offset, size, count) = match wide {
        true => (field(0x20, 8), field(0x36, 2), field(0x38, 2)),
        false => (field(0x1c, 4), field(0x2a, 2), field(0x2c, 2)),
    };
    let (Some(offset), Some(size), Some(count)) = (offset, size, count) else {
        return Err(truncated());
    };
    let dynamic = (0..count).any(|i| {
        let at = offset.saturating_add(i.saturating_mul(size));
        usize::try_from(at).is_ok_and(|at| field(at, 4) == Some(PT_INTERP))
    });
    Ok(Program {
        machine: machine_name(machine),
        dynamic,
    })
}

/// The machine an ELF `e_machine` number stands for, as Rust names it.
fn machine_name(number: u64) -> String {
    let name = match number {
        3 => "x86",
        8 => "mips",
        20 => "powerpc",
        21 => "powerpc64",
        22 => "s390x",
        40 => "arm",
        62 => "x86_64",
        183 => "aarch64",
        243 => "riscv64",
        258 => "loongarch64",
        _ => return format!("ELF machine {number}"),
    };
    name.to_string()
}

/// What a file that is not ELF looks like, from its first bytes.
fn what_it_is(bytes: &[u8]) -> &'static str {
    if bytes.get(257..262) == Some(b"ustar") {
        "a tar archive"
    } else if bytes.starts_with(b"\x1f\x8b") {
        "a gzip-compressed file"
    } else if bytes.starts_with(b"\x28\xb5\x2f\xfd") {
        "a zstd-compressed file"
    } else if bytes.starts_with(b"#!") {
        "a script"
    } else if bytes.is_empty() {
        "an empty file"
    } else if std::str::from_utf8(bytes).is_ok() {
        "a text file"
    } else {
        "not an ELF file"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tells_a_dynamic_program_from_anything_else() {
        let this = std::env::current_exe().unwrap();
        // Test binaries are linked against the C library of the machine that builds them.
        let program = check_program(&this).unwrap();
        assert!(program.dynamic && !program.is_foreign(), "{program:?}");
        let text = check_program(Path::new("Cargo.toml")).unwrap_err();
        assert!(text.to_string().contains("a text file"), "{text}");
        assert_eq!(text.exit_code(), 2);
        let missing = check_program(Path::new("/nonexistent")).unwrap_err();
        assert!(missing.to_string().contains("--binary"), "{missing}");
        let folder = check_program(Path::new("src")).unwrap_err();
        assert!(folder.to_string().contains("regular file"), "{folder}");
    }

    #[test]
    fn reads_32_bit_and_big_endian_headers() {
        // A 32-bit big-endian ET_EXEC for s390 (22) with no program headers.
        let mut header = vec![0u8; 52];
        header[..6].copy_from_slice(b"\x7fELF\x01\x02");
        header[0x10..0x14].copy_from_slice(&[0, 2, 0, 22]);
        let program = read_program(&header).unwrap();
        assert_eq!(program.machine, "s390x");
        assert!(!program.dynamic);
        header[0x11] = 1;
        assert_eq!(
            read_program(&header).unwrap_err(),
            "an ELF object file (.o)"
        );
        assert!(read_program(&header[..0x11]).is_err());
    }
}
