//! The Nitro Secure Module's one ioctl: the only unsafe code in Cloister.
//!
//! ```text
//!  struct nsm_raw { struct { u64 addr, len } request, response; }     (32 bytes)
//!  NSM_IOCTL_RAW = _IOWR(0x0A, 0, struct nsm_raw)
//!  the driver copies the request in, the response out, and sets response.len to its size
//! ```
//!
//! The layout is the kernel's `include/uapi/linux/nsm.h` (and AWS's earlier out-of-tree
//! driver's `nsm_message`, two `iovec`s: the same bytes on 64-bit machines).

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::path::Path;

use crate::nitro::{NsmDevice, REQUEST_BYTES_MAX, RESPONSE_BYTES_MAX};

/// One buffer the driver reads or writes.
#[repr(C)]
struct NsmBuffer {
    address: u64,
    length: u64,
}

/// The ioctl's argument.
#[repr(C)]
struct NsmRaw {
    request: NsmBuffer,
    response: NsmBuffer,
}

const _: () = assert!(std::mem::size_of::<NsmRaw>() == 32);

/// `_IOWR(0x0A, 0, struct nsm_raw)`: direction read|write (3) in bits 30-31, the argument's
/// size in bits 16-29, the type (0x0A) in bits 8-15, the number (0) in bits 0-7.
const NSM_IOCTL_RAW: u32 = (3 << 30) | ((std::mem::size_of::<NsmRaw>() as u32) << 16) | (0x0A << 8);

/// The NSM driver's device file.
pub(crate) struct NsmDriver {
    file: File,
}

impl NsmDriver {
    pub(crate) fn open(path: &Path) -> io::Result<Self> {
        let file = OpenOptions::new().read(true).write(true).open(path)?;
        Ok(Self { file })
    }
}

impl NsmDevice for NsmDriver {
    fn request(&mut self, request: &[u8]) -> io::Result<Vec<u8>> {
        if request.len() > REQUEST_BYTES_MAX {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("a request of more than {REQUEST_BYTES_MAX} bytes"),
            ));
        }
        let mut response = vec![0u8; RESPONSE_BYTES_MAX];
        let mut raw = NsmRaw {
            request: NsmBuffer {
                address: request.as_ptr() as u64,
                length: request.len() as u64,
            },
            response: NsmBuffer {
                address: response.as_mut_ptr() as u64,
                length: response.len() as u64,
            },
        };
        // SAFETY: `raw` has the kernel's `struct nsm_raw` layout (repr(C), asserted 32 bytes)
        // and lives across the call. It points at `request` (the driver only reads it, at
        // most its length) and at `response` (the driver writes at most `response.len()`
        // bytes, the length we give it), both alive and unaliased until the call returns.
        // The file descriptor is open for the whole call.
        let result = unsafe {
            libc::ioctl(
                self.file.as_raw_fd(),
                NSM_IOCTL_RAW as libc::Ioctl,
                &mut raw as *mut NsmRaw,
            )
        };
        if result < 0 {
            return Err(io::Error::last_os_error());
        }
        let length = usize::try_from(raw.response.length)
            .ok()
            .filter(|length| *length <= response.len())
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    "the driver reported a response longer than its buffer",
                )
            })?;
        response.truncate(length);
        Ok(response)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ioctl_number_is_the_kernels() {
        // _IOWR(0x0A, 0, 32 bytes), as <linux/nsm.h> and AWS's nsm-api compute it.
        assert_eq!(NSM_IOCTL_RAW, 0xC020_0A00);
    }

    #[test]
    fn a_file_that_is_not_the_nsm_refuses_the_ioctl() {
        let mut driver = NsmDriver::open(Path::new("/dev/null")).unwrap();
        let error = driver.request(b"\xa0").unwrap_err();
        // /dev/null has no ioctls: ENOTTY, an error rather than a response.
        assert_eq!(error.raw_os_error(), Some(libc::ENOTTY));
    }
}
