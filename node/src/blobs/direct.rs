//! Blob file I/O past the page cache (`O_DIRECT`), where the file system
//! allows it.
//!
//! Why: on the standard machine (a virtual machine), copying an upload into
//! fresh page-cache pages cost about 0.5 s of CPU per GB written, a quarter
//! of the machine during the 3-node upload bench, because each new page is
//! first touched there (docs/benchmarks.md). Direct I/O copies once into
//! this thread's buffer, which stays mapped, and lets the disk take the
//! bytes from there. A file system that refuses it (tmpfs) gets ordinary
//! I/O.

use std::cell::RefCell;
use std::fs::{File, OpenOptions};
use std::path::Path;

use sha2::{Digest, Sha256};

/// What direct I/O needs lined up: buffer address, file offset and length.
pub const ALIGN: usize = 4096;

/// Bytes per read when a blob is hashed.
const READ_SIZE: usize = 1 << 20;

thread_local! {
    /// A blocking thread's buffer for direct I/O, reused call after call so
    /// its memory stays mapped.
    static BUF: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Opens `path` with `opts` plus `O_DIRECT`; `None` when the file system
/// (or the platform) does not do direct I/O.
fn open_direct(opts: &mut OpenOptions, path: &Path) -> std::io::Result<Option<File>> {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::fs::OpenOptionsExt;
        match opts.custom_flags(libc::O_DIRECT).open(path) {
            Ok(f) => Ok(Some(f)),
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => Ok(None),
            Err(e) => Err(e),
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (opts, path);
        Ok(None)
    }
}

/// Runs `f` on `len` bytes of this thread's buffer, lined up for direct I/O.
fn with_lined<R>(len: usize, f: impl FnOnce(&mut [u8]) -> R) -> R {
    BUF.with(|buf| {
        let mut buf = buf.borrow_mut();
        if buf.len() < len + ALIGN {
            *buf = vec![0u8; len + ALIGN];
        }
        let at = buf.as_ptr().align_offset(ALIGN);
        f(&mut buf[at..at + len])
    })
}

/// Writes a whole piece at `offset` of `tmp` straight to the disk when its
/// offset and length allow it (every piece but a blob's last, which is
/// usually short), and returns the open file; `None`, having written
/// nothing, when they do not or direct I/O is refused.
pub fn write_piece(tmp: &Path, offset: u64, bytes: &[u8]) -> std::io::Result<Option<File>> {
    use std::os::unix::fs::FileExt;
    let lined_up = !bytes.is_empty() && offset.is_multiple_of(ALIGN as u64) && bytes.len().is_multiple_of(ALIGN);
    if !lined_up {
        return Ok(None);
    }
    let Some(f) = open_direct(OpenOptions::new().create(true).write(true).truncate(false), tmp)? else {
        return Ok(None);
    };
    with_lined(bytes.len(), |lined| {
        lined.copy_from_slice(bytes);
        f.write_all_at(lined, offset)
    })?;
    Ok(Some(f))
}

/// The sha256 of the file at `path`, read straight from the disk where the
/// file system allows (its lined-up pieces were written past the page
/// cache, and reading them through it would fill fresh pages), in large
/// reads into this thread's buffer.
pub fn hash_file(path: &Path) -> std::io::Result<[u8; 32]> {
    use std::io::Read;
    let mut f = match open_direct(OpenOptions::new().read(true), path)? {
        Some(f) => f,
        None => File::open(path)?,
    };
    let mut h = Sha256::new();
    with_lined(READ_SIZE, |lined| loop {
        // A direct read returns short only at the end of the file.
        match f.read(lined)? {
            0 => return Ok(h.finalize().into()),
            n => h.update(&lined[..n]),
        }
    })
}

/// Asks the kernel to start writing `len` bytes at `offset` of `f` to disk
/// now, without waiting, for a piece written through the page cache.
/// Otherwise its pages stay dirty until the final fsync (or the kernel's
/// own flush, up to 30 s later), which then waits for all of them at once.
/// Only a hint: the final fsync is what makes the blob durable, so a
/// failure is ignored.
pub fn start_writeback(f: &File, offset: u64, len: u64) {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        // SAFETY: the descriptor is open for the duration of the call, and
        // sync_file_range only reads its integer arguments.
        let _ = unsafe { libc::sync_file_range(f.as_raw_fd(), offset as i64, len as i64, libc::SYNC_FILE_RANGE_WRITE) };
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (f, offset, len);
}
