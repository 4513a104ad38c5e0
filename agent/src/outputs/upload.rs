//! Reads one planned file for upload and decides whether what was read can
//! be trusted.
//!
//! The spec's promise: without `%`, a file whose size or modification time
//! changes while it is uploaded fails the job, because a background process
//! still writing an artefact means a corrupt artefact; so does a file that
//! vanishes. With `%` a change is accepted (the caller may warn), and a file
//! removed before it could be opened is skipped.
//!
//! "While it is uploaded" is measured from the plan: the size and mtime the
//! walk saw, the ones at open, and the ones after the last byte must all
//! agree, the bytes read must equal the size, and the path must still name
//! the same file. A `%` file removed after it was opened is still uploaded:
//! the open file gives a complete snapshot.

use std::fs::{self, File, Metadata};
use std::io::{self, Read};
use std::time::SystemTime;

use bytes::Bytes;
use sha2::{Digest, Sha256};
use thiserror::Error;

use super::collect::PlannedFile;

/// How much is read, hashed and handed on at a time.
pub const READ_CHUNK: usize = 1 << 20;

/// Why a file's upload failed. Every variant fails the job; they are apart
/// so the caller can word its message and tests can tell them apart.
#[derive(Debug, Error)]
pub enum UploadError {
    /// The file changed during its upload and no `%` rule allows that.
    #[error("{path} changed while it was uploaded; use the % prefix to allow that")]
    Changed {
        /// The worker path.
        path: String,
    },
    /// A `%` file got shorter than it was when its upload started, so the
    /// length announced cannot be sent; the caller reads it whole instead.
    #[error("{path} got shorter while it was uploaded")]
    Shrank {
        /// The worker path.
        path: String,
    },
    /// The file was removed before or during its upload and no `%` rule
    /// allows that.
    #[error("{path} was removed before or while it was uploaded; use the % prefix to allow that")]
    Vanished {
        /// The worker path.
        path: String,
    },
    /// The file could not be opened or read.
    #[error("{path}: {source}")]
    Io {
        /// The worker path.
        path: String,
        /// The read error.
        source: io::Error,
    },
    /// The sink refused a chunk (e.g. the connection went away).
    #[error("sending {path} failed: {source}")]
    Sink {
        /// The worker path.
        path: String,
        /// The sink's error.
        source: io::Error,
    },
}

/// What reading a file produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadOutcome {
    /// Every byte went to the sink; this is its digest.
    Read {
        /// SHA-256 of the bytes read, lower-case hex.
        sha256: String,
        /// How many bytes were read and given to the sink.
        bytes: u64,
        /// The file changed (or was removed) during the read and a `%`
        /// rule allowed it; worth a warning in the job log.
        changed: bool,
    },
    /// A `%` file that was gone before it could be read; nothing went to
    /// the sink, and it does not count for `=` rules.
    Skipped {
        /// Why, for the job log.
        reason: String,
    },
}

/// Reads `file` in [`READ_CHUNK`] pieces, hashing them and passing each to
/// `sink`, then checks the file held still unless `%` allows otherwise.
///
/// On `Err`, whatever the sink received must be thrown away.
pub fn read_for_upload(
    file: &PlannedFile,
    mut sink: impl FnMut(&[u8]) -> io::Result<()>,
) -> Result<ReadOutcome, UploadError> {
    let mut reader = match FileReader::open(file)? {
        Opened::Reader(r) => r,
        Opened::Skipped(reason) => return Ok(ReadOutcome::Skipped { reason }),
    };
    while let Some(piece) = reader.next_piece()? {
        sink(&piece).map_err(|source| UploadError::Sink { path: file.path.clone(), source })?;
    }
    reader.finish()
}

/// What opening a planned file gave.
pub enum Opened {
    /// A reader over it.
    Reader(Box<FileReader>),
    /// A `%` file that was gone; the reason, for the job log.
    Skipped(String),
}

/// A planned file opened for upload, read a piece at a time (so an upload
/// can stream it without holding it whole), and checked at the end.
pub struct FileReader {
    file: PlannedFile,
    f: File,
    opened: Metadata,
    changed: bool,
    hasher: Sha256,
    bytes: u64,
    /// Reads stop here (an upload announces its length first).
    limit: u64,
}

impl FileReader {
    /// Opens `file`, noting whether it already differs from the plan.
    pub fn open(file: &PlannedFile) -> Result<Opened, UploadError> {
        let path = &file.path;
        let io_err = |source| UploadError::Io { path: path.clone(), source };
        let vanished = || {
            if file.allow_change {
                Ok(Opened::Skipped(format!("{path} was removed before it could be uploaded")))
            } else {
                Err(UploadError::Vanished { path: path.clone() })
            }
        };
        // Look before opening, so a file replaced by a FIFO is not opened
        // (which would block) and a missing one is told apart from other errors.
        match fs::metadata(&file.host_path) {
            Ok(meta) if meta.is_file() => {}
            Ok(_) => return vanished(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return vanished(),
            Err(e) => return Err(io_err(e)),
        }
        let f = match File::open(&file.host_path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return vanished(),
            Err(e) => return Err(io_err(e)),
        };
        let opened = f.metadata().map_err(io_err)?;
        let changed = !opened.is_file() || stamp(&opened) != (file.size, file.mtime);
        Ok(Opened::Reader(Box::new(FileReader {
            file: file.clone(),
            f,
            opened,
            changed,
            hasher: Sha256::new(),
            bytes: 0,
            limit: u64::MAX,
        })))
    }

    /// The worker path.
    pub fn path(&self) -> &str {
        &self.file.path
    }

    /// Whether a `%` rule lets the file change while it is read.
    pub fn allows_change(&self) -> bool {
        self.file.allow_change
    }

    /// The length an upload of this file announces: the size the walk saw,
    /// or for a `%` file, which may change, its size when it was opened.
    pub fn upload_size(&self) -> u64 {
        if self.file.allow_change {
            self.opened.len()
        } else {
            self.file.size
        }
    }

    /// Reads no further than `limit` bytes: a `%` file still growing is
    /// sent as it was when opened, and bytes a file without `%` gained are
    /// never sent (its end checks fail it anyway).
    pub fn limit_to(&mut self, limit: u64) {
        self.limit = limit;
    }

    /// The next piece (at most [`READ_CHUNK`] bytes, hashed), or `None` at
    /// the end of the file or the limit.
    pub fn next_piece(&mut self) -> Result<Option<Bytes>, UploadError> {
        let want = (READ_CHUNK as u64).min(self.limit - self.bytes) as usize;
        if want == 0 {
            return Ok(None);
        }
        let mut buf = vec![0u8; want];
        let n = loop {
            match self.f.read(&mut buf) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(source) => return Err(UploadError::Io { path: self.file.path.clone(), source }),
            }
        };
        if n == 0 {
            return Ok(None);
        }
        buf.truncate(n);
        self.hasher.update(&buf);
        self.bytes += n as u64;
        Ok(Some(Bytes::from(buf)))
    }

    /// Checks the file held still since the plan (unless `%` allows a
    /// change) and gives the digest of what was read.
    pub fn finish(self) -> Result<ReadOutcome, UploadError> {
        let FileReader { file, f, opened, mut changed, hasher, bytes, .. } = self;
        let path = &file.path;
        let io_err = |source| UploadError::Io { path: path.clone(), source };
        let after = f.metadata().map_err(io_err)?;
        changed |= stamp(&after) != stamp(&opened) || bytes != opened.len();
        let removed = match fs::metadata(&file.host_path) {
            Ok(now) => {
                changed |= !same_file(&now, &after);
                false
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => true,
            Err(e) => return Err(io_err(e)),
        };
        if !file.allow_change {
            if removed {
                return Err(UploadError::Vanished { path: path.clone() });
            }
            if changed {
                return Err(UploadError::Changed { path: path.clone() });
            }
        }
        Ok(ReadOutcome::Read { sha256: hex::encode(hasher.finalize()), bytes, changed: changed || removed })
    }
}

fn stamp(meta: &Metadata) -> (u64, SystemTime) {
    (meta.len(), meta.modified().unwrap_or(SystemTime::UNIX_EPOCH))
}

/// Whether two stats are of the same file, so a file replaced by a rename
/// during the read counts as a change.
#[cfg(unix)]
fn same_file(a: &Metadata, b: &Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    a.dev() == b.dev() && a.ino() == b.ino()
}

#[cfg(not(unix))]
fn same_file(a: &Metadata, b: &Metadata) -> bool {
    stamp(a) == stamp(b)
}

#[cfg(test)]
mod tests {
    use super::{read_for_upload, ReadOutcome, UploadError, READ_CHUNK};
    use crate::outputs::collect::{plan, PlannedFile};
    use bm_api::output_rule::OutputRule;
    use sha2::{Digest, Sha256};
    use std::fs::{self, OpenOptions};
    use std::io::Write;
    use std::path::Path;
    use std::time::{Duration, SystemTime};

    /// Plans `/tmp/x.log` under `root` with `rule` and returns it.
    fn planned(root: &Path, rule: &str, contents: &[u8]) -> PlannedFile {
        fs::create_dir_all(root.join("tmp")).unwrap();
        fs::write(root.join("tmp/x.log"), contents).unwrap();
        let mut p = plan(&[OutputRule::parse(rule).unwrap()], root).unwrap();
        assert_eq!(p.files.len(), 1);
        p.files.remove(0)
    }

    fn big() -> Vec<u8> {
        (0..READ_CHUNK * 2 + 12345).map(|i| (i % 251) as u8).collect()
    }

    #[test]
    fn a_still_file_is_read_whole_with_its_digest() {
        let t = tempfile::tempdir().unwrap();
        let data = big();
        let f = planned(t.path(), "/tmp/*.log", &data);
        let mut got = Vec::new();
        let mut chunks = 0;
        let out = read_for_upload(&f, |c| {
            chunks += 1;
            got.extend_from_slice(c);
            Ok(())
        })
        .unwrap();
        assert_eq!(
            out,
            ReadOutcome::Read { sha256: hex::encode(Sha256::digest(&data)), bytes: data.len() as u64, changed: false }
        );
        assert_eq!(got, data);
        assert!(chunks >= 3);
    }

    #[test]
    fn an_empty_file_is_uploaded() {
        let t = tempfile::tempdir().unwrap();
        let f = planned(t.path(), "/tmp/*.log", b"");
        let out = read_for_upload(&f, |_| Ok(())).unwrap();
        assert_eq!(out, ReadOutcome::Read { sha256: hex::encode(Sha256::digest(b"")), bytes: 0, changed: false });
    }

    /// Appends to the file from inside the read, as a background process
    /// still logging would.
    fn grow_during_read(rule: &str) -> (Result<ReadOutcome, UploadError>, usize) {
        let t = tempfile::tempdir().unwrap();
        let data = big();
        let f = planned(t.path(), rule, &data);
        let mut first = true;
        let out = read_for_upload(&f, |_| {
            if std::mem::take(&mut first) {
                OpenOptions::new().append(true).open(&f.host_path).unwrap().write_all(b"more log\n").unwrap();
            }
            Ok(())
        });
        (out, data.len())
    }

    #[test]
    fn growth_during_the_upload_fails_without_percent() {
        let (out, _) = grow_during_read("/tmp/*.log");
        let err = out.unwrap_err();
        assert!(matches!(err, UploadError::Changed { .. }), "{err}");
        assert_eq!(err.to_string(), "/tmp/x.log changed while it was uploaded; use the % prefix to allow that");
    }

    #[test]
    fn growth_during_the_upload_is_tolerated_with_percent() {
        let (out, len) = grow_during_read("%/tmp/*.log");
        match out.unwrap() {
            ReadOutcome::Read { bytes, changed, .. } => {
                assert!(changed);
                assert!(bytes >= len as u64);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_touch_alone_during_the_upload_is_a_change() {
        let t = tempfile::tempdir().unwrap();
        let f = planned(t.path(), "/tmp/*.log", b"same size");
        let out = read_for_upload(&f, |_| {
            let file = OpenOptions::new().write(true).open(&f.host_path).unwrap();
            file.set_modified(SystemTime::now() + Duration::from_secs(3600)).unwrap();
            Ok(())
        });
        assert!(matches!(out, Err(UploadError::Changed { .. })), "{out:?}");
    }

    #[test]
    fn a_change_between_plan_and_upload_is_a_change() {
        let t = tempfile::tempdir().unwrap();
        let f = planned(t.path(), "/tmp/*.log", b"short");
        fs::write(&f.host_path, b"longer now").unwrap();
        assert!(matches!(read_for_upload(&f, |_| Ok(())), Err(UploadError::Changed { .. })));
        let f = planned(t.path(), "%/tmp/*.log", b"short");
        fs::write(&f.host_path, b"longer now").unwrap();
        let out = read_for_upload(&f, |_| Ok(())).unwrap();
        assert!(matches!(out, ReadOutcome::Read { bytes: 10, changed: true, .. }), "{out:?}");
    }

    #[test]
    fn a_removed_file_is_skipped_with_percent_and_fails_without() {
        let t = tempfile::tempdir().unwrap();
        let f = planned(t.path(), "%/tmp/*.log", b"log");
        fs::remove_file(&f.host_path).unwrap();
        let mut called = false;
        let out = read_for_upload(&f, |_| {
            called = true;
            Ok(())
        })
        .unwrap();
        assert!(matches!(out, ReadOutcome::Skipped { .. }), "{out:?}");
        assert!(!called);

        let f = planned(t.path(), "/tmp/*.log", b"log");
        fs::remove_file(&f.host_path).unwrap();
        let err = read_for_upload(&f, |_| Ok(())).unwrap_err();
        assert!(matches!(err, UploadError::Vanished { .. }), "{err}");
        assert!(err.to_string().contains("/tmp/x.log") && err.to_string().contains("% prefix"));
    }

    #[test]
    fn removal_during_the_upload() {
        let t = tempfile::tempdir().unwrap();
        let f = planned(t.path(), "/tmp/*.log", b"log");
        let out = read_for_upload(&f, |_| fs::remove_file(&f.host_path));
        assert!(matches!(out, Err(UploadError::Vanished { .. })), "{out:?}");

        let f = planned(t.path(), "%/tmp/*.log", b"log");
        let out = read_for_upload(&f, |_| fs::remove_file(&f.host_path)).unwrap();
        assert!(matches!(out, ReadOutcome::Read { bytes: 3, changed: true, .. }), "{out:?}");
    }

    #[test]
    fn replacement_by_rename_during_the_upload_is_a_change() {
        let t = tempfile::tempdir().unwrap();
        let f = planned(t.path(), "/tmp/*.log", b"log");
        let other = t.path().join("tmp/other");
        let out = read_for_upload(&f, |_| {
            fs::write(&other, b"log")?;
            fs::rename(&other, &f.host_path)
        });
        assert!(matches!(out, Err(UploadError::Changed { .. })), "{out:?}");
    }

    #[test]
    fn a_sink_error_stops_the_upload() {
        let t = tempfile::tempdir().unwrap();
        let f = planned(t.path(), "%/tmp/*.log", b"log");
        let out = read_for_upload(&f, |_| Err(std::io::Error::other("connection lost")));
        let err = out.unwrap_err();
        assert!(matches!(err, UploadError::Sink { .. }));
        assert!(err.to_string().contains("connection lost"));
    }
}
