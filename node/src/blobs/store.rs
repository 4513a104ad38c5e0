//! One node's content-addressed blob store on local disk.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::direct;
use super::running::RunningHashes;

/// Blobs on local disk under `DATA/blobs/AB/ABCDEF…`.
#[derive(Clone, Debug)]
pub struct Blobs {
    dir: PathBuf,
    running: Arc<RunningHashes>,
}

impl Blobs {
    /// A store rooted at `dir`.
    pub fn new(dir: PathBuf) -> Self {
        Self { dir, running: Default::default() }
    }

    fn path(&self, sha: &str) -> std::io::Result<PathBuf> {
        if sha.len() != 64 || !sha.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()) {
            return Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("not a sha256: {sha:?}")));
        }
        Ok(self.dir.join(&sha[..2]).join(sha))
    }

    /// Whether the blob is here.
    pub async fn has(&self, sha: &str) -> bool {
        match self.path(sha) {
            Ok(p) => tokio::fs::try_exists(p).await.unwrap_or(false),
            Err(_) => false,
        }
    }

    /// Whether the blob is here, checked on the calling thread (one
    /// `stat`, for a loop that counts many).
    pub fn has_now(&self, sha: &str) -> bool {
        self.path(sha).is_ok_and(|p| p.exists())
    }

    /// Reads `len` bytes at `offset` (fewer at the end).
    pub async fn read_range(&self, sha: &str, offset: u64, len: usize) -> std::io::Result<Vec<u8>> {
        use tokio::io::{AsyncReadExt, AsyncSeekExt};
        let mut f = tokio::fs::File::open(self.path(sha)?).await?;
        f.seek(std::io::SeekFrom::Start(offset)).await?;
        let mut buf = Vec::with_capacity(len);
        f.take(len as u64).read_to_end(&mut buf).await?;
        Ok(buf)
    }

    /// Writes one piece of a blob (from an upload, or arriving from a
    /// peer) into a staging file named by `upload`. The last piece carries
    /// the blob's sha256: the whole file is then fsynced, checked against
    /// it when `verify` (bytes from elsewhere; the node that hashed an
    /// upload as it arrived need not read it back), moved into place, and
    /// the move synced.
    ///
    /// A whole piece goes straight to the disk (see [`direct::write_piece`]);
    /// any other starts its writeback at once (see [`direct::start_writeback`]). Either
    /// way the disk works while later pieces are still on the wire, and the
    /// final fsync waits for the last piece alone rather than the whole
    /// file. All of it runs as one blocking step: one thread hand-off per
    /// piece.
    pub async fn put_piece(
        &self,
        upload: &str,
        offset: u64,
        bytes: bytes::Bytes,
        sha: Option<&str>,
        verify: bool,
    ) -> std::io::Result<()> {
        if !upload.bytes().all(|b| b.is_ascii_alphanumeric()) || upload.is_empty() || upload.len() > 64 {
            return Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, "bad upload id"));
        }
        let path = sha.map(|s| self.path(s)).transpose()?;
        let (store, sha) = (self.dir.clone(), sha.map(str::to_string));
        let tmp = self.dir.join(".incoming").join(upload);
        let (running, upload) = (self.running.clone(), upload.to_string());
        tokio::task::spawn_blocking(move || {
            let verify = verify.then_some((&*running, upload.as_str()));
            put_piece_blocking(&store, &tmp, offset, &bytes, path.zip(sha), verify)
        })
        .await
        .map_err(std::io::Error::other)?
    }

    /// Removes staging files older than `age` (uploads that never finished).
    pub async fn sweep_staging(&self, age: std::time::Duration) {
        self.running.forget_idle(age);
        let Ok(mut rd) = tokio::fs::read_dir(self.dir.join(".incoming")).await else { return };
        while let Ok(Some(e)) = rd.next_entry().await {
            let old = e.metadata().await.ok().and_then(|m| m.modified().ok()).and_then(|t| t.elapsed().ok());
            if old.is_some_and(|o| o > age) {
                let _ = tokio::fs::remove_file(e.path()).await;
            }
        }
    }

    /// Deletes blobs not in `keep` and older than `grace`; returns how many.
    pub async fn collect_garbage(
        &self,
        keep: &std::collections::BTreeSet<String>,
        grace: std::time::Duration,
    ) -> usize {
        let mut removed = 0;
        let Ok(mut top) = tokio::fs::read_dir(&self.dir).await else { return 0 };
        while let Ok(Some(d)) = top.next_entry().await {
            let name = d.file_name().to_string_lossy().to_string();
            if name.len() != 2 || !d.path().is_dir() {
                continue;
            }
            let Ok(mut inner) = tokio::fs::read_dir(d.path()).await else { continue };
            while let Ok(Some(f)) = inner.next_entry().await {
                let sha = f.file_name().to_string_lossy().to_string();
                if sha.len() != 64 || keep.contains(&sha) {
                    continue;
                }
                let age = f.metadata().await.ok().and_then(|m| m.modified().ok()).and_then(|t| t.elapsed().ok());
                if age.is_some_and(|a| a >= grace) && tokio::fs::remove_file(f.path()).await.is_ok() {
                    removed += 1;
                }
            }
        }
        removed
    }

    /// Reads a whole blob.
    pub async fn read(&self, sha: &str) -> std::io::Result<bytes::Bytes> {
        Ok(tokio::fs::read(self.path(sha)?).await?.into())
    }
}

/// [`Blobs::put_piece`]'s work, on a blocking thread. `last` is the
/// blob's place and sha256 when this is its last piece; `verify` names the
/// running hashes and the upload when the blob must be checked.
fn put_piece_blocking(
    store: &Path,
    tmp: &Path,
    offset: u64,
    bytes: &bytes::Bytes,
    last: Option<(PathBuf, String)>,
    verify: Option<(&RunningHashes, &str)>,
) -> std::io::Result<()> {
    use std::os::unix::fs::FileExt;
    if let Some((path, _)) = &last {
        if path.try_exists()? {
            let _ = std::fs::remove_file(tmp);
            if let Some((running, upload)) = verify {
                running.forget(upload);
            }
            return Ok(());
        }
    }
    std::fs::create_dir_all(tmp.parent().expect("staging files have a folder"))?;
    let f = match direct::write_piece(tmp, offset, bytes)? {
        Some(f) => f,
        None => {
            let f = std::fs::OpenOptions::new().create(true).write(true).truncate(false).open(tmp)?;
            f.write_all_at(bytes, offset)?;
            if last.is_none() {
                direct::start_writeback(&f, offset, bytes.len() as u64);
            }
            f
        }
    };
    let Some((path, sha)) = last else {
        if let Some((running, upload)) = verify {
            running.feed(upload, offset, bytes);
        }
        return Ok(());
    };
    f.sync_all()?;
    // Bytes past this piece (a stale attempt) would be in the file but not
    // in any running hash.
    let ends_here = f.metadata()?.len() == offset + bytes.len() as u64;
    drop(f);
    if let Some((running, upload)) = verify {
        // The running hash vouches for the file only when it matches; any
        // doubt, and the file itself is read back and decides.
        let vouched = running.finish(upload, offset, bytes).map(hex::encode);
        if !ends_here || vouched.as_deref() != Some(sha.as_str()) {
            check(tmp, &sha)?;
        }
    }
    let dir = path.parent().expect("blob paths have a parent");
    let fresh = !dir.try_exists()?;
    std::fs::create_dir_all(dir)?;
    std::fs::rename(tmp, &path)?;
    // A name is durable only once its folder is synced (and a new
    // folder's own name, once the store's is): the upload is
    // acknowledged after this returns, and must survive a power loss.
    sync_dir(dir)?;
    if fresh {
        sync_dir(store)?;
    }
    Ok(())
}

/// Checks that the staged file `tmp` hashes to `sha`; removes it if not.
fn check(tmp: &Path, sha: &str) -> std::io::Result<()> {
    let got = hex::encode(direct::hash_file(tmp)?);
    if got != sha {
        let _ = std::fs::remove_file(tmp);
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("blob pieces add up to sha256 {got}, not {sha}"),
        ));
    }
    Ok(())
}

/// fsyncs a folder, making the names in it durable.
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};

    fn sha(b: &[u8]) -> String {
        hex::encode(Sha256::digest(b))
    }

    #[tokio::test]
    async fn pieces_in_any_order_make_the_blob_once_the_last_names_its_sha() {
        let tmp = tempfile::tempdir().unwrap();
        let blobs = Blobs::new(tmp.path().to_path_buf());
        let data: Vec<u8> = (0..10_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let want = sha(&data);
        blobs.put_piece("up1", 4000, bytes::Bytes::copy_from_slice(&data[4000..8000]), None, true).await.unwrap();
        blobs.put_piece("up1", 0, bytes::Bytes::copy_from_slice(&data[..4000]), None, true).await.unwrap();
        assert!(!blobs.has(&want).await, "kept before its last piece");
        blobs.put_piece("up1", 8000, bytes::Bytes::copy_from_slice(&data[8000..]), Some(&want), true).await.unwrap();
        assert!(blobs.has(&want).await);
        assert_eq!(&blobs.read(&want).await.unwrap()[..], &data[..]);
        // Sent again (a retried upload): nothing changes, no staging left.
        blobs.put_piece("up2", 0, bytes::Bytes::copy_from_slice(&data), Some(&want), true).await.unwrap();
        assert_eq!(std::fs::read_dir(tmp.path().join(".incoming")).unwrap().count(), 0);
    }

    #[tokio::test]
    async fn lined_up_pieces_go_direct_and_the_blob_is_whole() {
        let tmp = tempfile::tempdir().unwrap();
        let blobs = Blobs::new(tmp.path().to_path_buf());
        let piece = 2 * direct::ALIGN;
        // Direct where the file system takes it (tmpfs does not: then the
        // same pieces go through the page cache, and must come out the same).
        let probe = tmp.path().join("probe");
        if direct::write_piece(&probe, 0, &vec![7u8; piece]).unwrap().is_some() {
            assert_eq!(std::fs::read(&probe).unwrap(), vec![7u8; piece]);
        }
        for total in [3 * piece + 100, 3 * piece] {
            let data: Vec<u8> = (0..total as u32).map(|i| (i * 13 % 251) as u8).collect();
            let want = sha(&data);
            // Out of order, as pieces in flight to a peer may land.
            for at in [piece, 0] {
                blobs
                    .put_piece("up", at as u64, bytes::Bytes::copy_from_slice(&data[at..at + piece]), None, true)
                    .await
                    .unwrap();
            }
            let at = 2 * piece;
            blobs
                .put_piece("up", at as u64, bytes::Bytes::copy_from_slice(&data[at..]), Some(&want), true)
                .await
                .unwrap();
            assert_eq!(&blobs.read(&want).await.unwrap()[..], &data[..], "{total} bytes");
        }
    }

    #[tokio::test]
    async fn a_last_piece_whose_sha_does_not_match_keeps_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let blobs = Blobs::new(tmp.path().to_path_buf());
        let lie = sha(b"something else");
        blobs.put_piece("up", 0, bytes::Bytes::copy_from_slice(b"hello "), None, true).await.unwrap();
        let e = blobs.put_piece("up", 6, bytes::Bytes::copy_from_slice(b"world"), Some(&lie), true).await.unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidData);
        assert!(e.to_string().contains(&sha(b"hello world")), "{e}");
        assert!(!blobs.has(&lie).await);
        assert_eq!(std::fs::read_dir(tmp.path().join(".incoming")).unwrap().count(), 0);
    }

    #[tokio::test]
    async fn bad_names_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let blobs = Blobs::new(tmp.path().to_path_buf());
        for upload in ["", "../x", "a/b", &"x".repeat(65)] {
            let e = blobs.put_piece(upload, 0, bytes::Bytes::copy_from_slice(b"x"), None, true).await.unwrap_err();
            assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput, "{upload:?}");
        }
        let e = blobs
            .put_piece("up", 0, bytes::Bytes::copy_from_slice(b"x"), Some("../../etc/passwd"), true)
            .await
            .unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
    }
}
