//! The narrow view of a kernel's pseudo-filesystem the producers work through.
//!
//! Gramine's `/dev/attestation` and Linux's configfs-tsm are files and directories whose
//! reads and writes are requests to the platform. Producers touch them only through
//! [`DeviceFs`], so tests can put a fake kernel in a temporary directory; [`OsFs`] is the
//! real thing, on `std::fs`. Every read is bounded: the kernel is outside the TEE's
//! application and a misbehaving one must not make us allocate without limit.

use std::fs;
use std::io::{self, Read};
use std::path::Path;

/// The four operations producers need on a kernel pseudo-filesystem.
pub trait DeviceFs: Send {
    /// Make a directory (a configfs-tsm report entry).
    fn create_dir(&mut self, path: &Path) -> io::Result<()>;
    /// Write `bytes` to an attribute in one go (open, write, close: configfs-tsm commits a
    /// binary attribute on close).
    fn write(&mut self, path: &Path, bytes: &[u8]) -> io::Result<()>;
    /// Read an attribute whole; more than `bytes_max` bytes is an error, not a truncation.
    fn read(&mut self, path: &Path, bytes_max: usize) -> io::Result<Vec<u8>>;
    /// Remove a directory (a configfs-tsm entry; configfs removes its attributes with it).
    fn remove_dir(&mut self, path: &Path) -> io::Result<()>;
}

/// The real filesystem.
#[derive(Debug, Default, Clone, Copy)]
pub struct OsFs;

impl DeviceFs for OsFs {
    fn create_dir(&mut self, path: &Path) -> io::Result<()> {
        fs::create_dir(path)
    }

    fn write(&mut self, path: &Path, bytes: &[u8]) -> io::Result<()> {
        fs::write(path, bytes)
    }

    fn read(&mut self, path: &Path, bytes_max: usize) -> io::Result<Vec<u8>> {
        read_bounded(path, bytes_max)
    }

    fn remove_dir(&mut self, path: &Path) -> io::Result<()> {
        fs::remove_dir(path)
    }
}

/// Read `path` whole, refusing more than `bytes_max` bytes (without reading past them).
pub(crate) fn read_bounded(path: &Path, bytes_max: usize) -> io::Result<Vec<u8>> {
    let file = fs::File::open(path)?;
    let mut bytes = Vec::new();
    let limit = u64::try_from(bytes_max)
        .unwrap_or(u64::MAX)
        .saturating_add(1);
    file.take(limit).read_to_end(&mut bytes)?;
    if bytes.len() > bytes_max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("more than the {bytes_max} bytes allowed"),
        ));
    }
    Ok(bytes)
}

/// A short text attribute (`provider`, `generation`, `attestation_type`): UTF-8, without
/// the trailing newline the kernel adds.
pub(crate) fn read_text(
    fs: &mut dyn DeviceFs,
    path: &Path,
    bytes_max: usize,
) -> io::Result<String> {
    let bytes = fs.read(path, bytes_max)?;
    let text = String::from_utf8(bytes)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "not UTF-8 text"))?;
    Ok(text.trim_end_matches(['\n', '\0']).to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_are_bounded_and_say_so() {
        let path = std::env::temp_dir().join(format!(
            "cloister-platform-device-{}-bounded",
            std::process::id()
        ));
        fs::write(&path, [7u8; 65]).unwrap();
        assert_eq!(OsFs.read(&path, 65).unwrap(), [7u8; 65]);
        let error = OsFs.read(&path, 64).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidData);
        assert!(error.to_string().contains("64 bytes"), "{error}");
        fs::write(&path, b"tdx_guest\n").unwrap();
        assert_eq!(read_text(&mut OsFs, &path, 64).unwrap(), "tdx_guest");
        fs::write(&path, [0xff, 0xfe]).unwrap();
        assert!(read_text(&mut OsFs, &path, 64).is_err());
        fs::remove_file(&path).unwrap();
        assert_eq!(
            OsFs.read(&path, 64).unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
    }
}
