//! A planned file as an upload stream: read a piece at a time while the
//! upload sends, so an output of any size costs the agent a few pieces of
//! memory instead of the whole file.
//!
//! The upload announces its length first: the size the walk saw, or for a
//! `%` file (which may change) its size when opened, which is then sent
//! even if the file grows on. The stream ends cleanly only after the file
//! passed its end checks ([`FileReader::finish`]); otherwise its last item
//! is an error, which makes the upload abandon (the node then stores
//! nothing). What the read found is left in [`Streamed::outcome`] for the
//! caller, which tells a file that changed (fail the job) or a `%` file
//! that shrank (read it whole instead) from a connection lost (retry).

use std::io;
use std::sync::{Arc, Mutex};

use bm_api::agent_link::UploadStream;
use bytes::Bytes;
use futures::StreamExt as _;

use super::upload::{FileReader, ReadOutcome, UploadError};

/// What the read of a streamed file found; `None` while it is under way
/// or when the upload stopped before the end of the file.
pub type Outcome = Arc<Mutex<Option<Result<ReadOutcome, UploadError>>>>;

/// A file ready to upload.
pub struct Streamed {
    /// The length announced for the upload: the size the walk saw.
    pub size: u64,
    /// The bytes, read as they are pulled.
    pub body: UploadStream,
    /// Set when the stream ends (cleanly or not).
    pub outcome: Outcome,
}

/// Streams `reader`: [`FileReader::upload_size`] bytes, after which a file
/// without `%` must have held still. A `%` file is sent as it was when
/// opened (a log still growing is cut there); one that got shorter ends
/// the stream with [`UploadError::Shrank`].
pub fn stream(mut reader: Box<FileReader>) -> Streamed {
    let size = reader.upload_size();
    reader.limit_to(size);
    let outcome: Outcome = Arc::default();
    let start = Step { reader: Some(reader), sent: 0, size, outcome: outcome.clone() };
    let body = futures::stream::unfold(start, |mut step| async move {
        let reader = step.reader.take()?;
        match step.advance(reader).await {
            Ok(Some(piece)) => Some((Ok(piece), step)),
            Ok(None) => None,
            Err(e) => Some((Err(e), step)),
        }
    })
    .boxed();
    Streamed { size, body, outcome }
}

struct Step {
    /// `None` once the stream is over.
    reader: Option<Box<FileReader>>,
    sent: u64,
    size: u64,
    outcome: Outcome,
}

impl Step {
    /// The next piece; at the end, the checks. Puts the reader back only
    /// when there is more to read.
    async fn advance(&mut self, mut reader: Box<FileReader>) -> io::Result<Option<Bytes>> {
        let path = reader.path().to_string();
        let read = tokio::task::spawn_blocking(move || {
            let piece = reader.next_piece();
            (reader, piece)
        })
        .await;
        let (reader, piece) = match read {
            Ok(r) => r,
            Err(e) => return self.fail(UploadError::Io { path, source: io::Error::other(e) }),
        };
        match piece {
            Ok(Some(piece)) => {
                self.sent += piece.len() as u64;
                self.reader = Some(reader);
                Ok(Some(piece))
            }
            Ok(None) => {
                let (size, sent, percent) = (self.size, self.sent, reader.allows_change());
                let checked = match tokio::task::spawn_blocking(move || reader.finish()).await {
                    Ok(Ok(ReadOutcome::Read { .. })) if sent != size && percent => Err(UploadError::Shrank { path }),
                    Ok(Ok(ReadOutcome::Read { .. })) if sent != size => Err(UploadError::Changed { path }),
                    Ok(r) => r,
                    Err(e) => Err(UploadError::Io { path, source: io::Error::other(e) }),
                };
                match checked {
                    Ok(o) => {
                        *self.outcome.lock().expect("not poisoned") = Some(Ok(o));
                        Ok(None)
                    }
                    Err(e) => self.fail(e),
                }
            }
            Err(e) => self.fail(e),
        }
    }

    fn fail(&mut self, e: UploadError) -> io::Result<Option<Bytes>> {
        let message = e.to_string();
        *self.outcome.lock().expect("not poisoned") = Some(Err(e));
        Err(io::Error::other(message))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outputs::collect::plan;
    use crate::outputs::upload::{Opened, READ_CHUNK};
    use bm_api::output_rule::OutputRule;
    use sha2::{Digest, Sha256};
    use std::fs::{self, OpenOptions};
    use std::io::Write;

    fn planned(root: &std::path::Path, contents: &[u8]) -> crate::outputs::PlannedFile {
        planned_with(root, "/tmp/*.bin", contents)
    }

    fn planned_with(root: &std::path::Path, rule: &str, contents: &[u8]) -> crate::outputs::PlannedFile {
        fs::create_dir_all(root.join("tmp")).unwrap();
        fs::write(root.join("tmp/x.bin"), contents).unwrap();
        plan(&[OutputRule::parse(rule).unwrap()], root).unwrap().files.remove(0)
    }

    fn open(f: &crate::outputs::PlannedFile) -> Streamed {
        match FileReader::open(f).unwrap() {
            Opened::Reader(r) => stream(r),
            Opened::Skipped(why) => panic!("{why}"),
        }
    }

    #[tokio::test]
    async fn a_still_file_streams_in_pieces_and_ends_cleanly() {
        let t = tempfile::tempdir().unwrap();
        let data: Vec<u8> = (0..READ_CHUNK * 3 + 5).map(|i| (i % 253) as u8).collect();
        let f = planned(t.path(), &data);
        let s = open(&f);
        assert_eq!(s.size, data.len() as u64);
        let pieces: Vec<Bytes> = s.body.map(Result::unwrap).collect().await;
        assert_eq!(pieces.len(), 4, "one piece per read, none held back");
        assert_eq!(pieces.concat(), data);
        let outcome = s.outcome.lock().unwrap().take().unwrap().unwrap();
        let sha256 = hex::encode(Sha256::digest(&data));
        assert_eq!(outcome, ReadOutcome::Read { sha256, bytes: data.len() as u64, changed: false });
    }

    #[tokio::test]
    async fn growth_during_the_upload_is_never_sent_and_ends_in_an_error() {
        let t = tempfile::tempdir().unwrap();
        let data = vec![1u8; READ_CHUNK * 4];
        let f = planned(t.path(), &data);
        let mut s = open(&f);
        // A background process appends while the upload runs.
        assert_eq!(s.body.next().await.unwrap().unwrap().len(), READ_CHUNK);
        OpenOptions::new().append(true).open(&f.host_path).unwrap().write_all(b"late").unwrap();
        let rest: Vec<io::Result<Bytes>> = s.body.collect().await;
        let last = rest.last().unwrap().as_ref().unwrap_err();
        assert!(last.to_string().contains("/tmp/x.bin changed while it was uploaded"), "{last}");
        let sent: usize = rest.iter().filter_map(|r| r.as_ref().ok()).map(Bytes::len).sum();
        assert!(sent <= READ_CHUNK * 3, "never more than announced: {sent}");
        assert!(matches!(s.outcome.lock().unwrap().take(), Some(Err(UploadError::Changed { .. }))));
    }

    #[tokio::test]
    async fn a_rewrite_of_the_same_size_ends_in_an_error_not_a_clean_end() {
        let t = tempfile::tempdir().unwrap();
        let f = planned(t.path(), b"0123456789");
        let mut s = open(&f);
        assert_eq!(&s.body.next().await.unwrap().unwrap()[..], b"0123456789");
        // Every byte went; a touch before the end checks still fails it.
        let file = OpenOptions::new().write(true).open(&f.host_path).unwrap();
        file.set_modified(std::time::SystemTime::now() + std::time::Duration::from_secs(60)).unwrap();
        let last = s.body.next().await.unwrap();
        assert!(last.is_err());
        assert!(s.body.next().await.is_none());
        assert!(matches!(s.outcome.lock().unwrap().take(), Some(Err(UploadError::Changed { .. }))));
    }

    #[tokio::test]
    async fn a_percent_file_still_growing_is_sent_as_it_was_when_opened() {
        let t = tempfile::tempdir().unwrap();
        let data = vec![3u8; READ_CHUNK + 10];
        let f = planned_with(t.path(), "%/tmp/*.bin", b"short at the walk");
        fs::write(&f.host_path, &data).unwrap();
        let mut s = open(&f);
        assert_eq!(s.size, data.len() as u64, "the size at open, not at the walk");
        let first = s.body.next().await.unwrap().unwrap();
        OpenOptions::new().append(true).open(&f.host_path).unwrap().write_all(b"more log").unwrap();
        let rest: Vec<Bytes> = s.body.map(Result::unwrap).collect().await;
        assert_eq!([vec![first], rest].concat().concat(), data, "cut where it was when opened");
        let out = s.outcome.lock().unwrap().take().unwrap().unwrap();
        assert!(matches!(out, ReadOutcome::Read { changed: true, .. }), "{out:?}");
    }

    #[tokio::test]
    async fn a_percent_file_that_shrinks_cannot_be_streamed() {
        let t = tempfile::tempdir().unwrap();
        let f = planned_with(t.path(), "%/tmp/*.bin", &vec![5u8; READ_CHUNK * 2]);
        let mut s = open(&f);
        s.body.next().await.unwrap().unwrap();
        OpenOptions::new().write(true).open(&f.host_path).unwrap().set_len(10).unwrap();
        assert!(s.body.next().await.unwrap().is_err());
        assert!(matches!(s.outcome.lock().unwrap().take(), Some(Err(UploadError::Shrank { .. }))));
    }
}
