//! One node's content-addressed blob store on local disk.

use std::path::PathBuf;

use sha2::{Digest, Sha256};

/// Blobs on local disk under `DATA/blobs/AB/ABCDEF…`.
#[derive(Clone, Debug)]
pub struct Blobs {
    dir: PathBuf,
}

impl Blobs {
    /// A store rooted at `dir`.
    pub fn new(dir: PathBuf) -> Self {
        Self { dir }
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
    pub async fn put_piece(
        &self,
        upload: &str,
        offset: u64,
        bytes: &[u8],
        sha: Option<&str>,
        verify: bool,
    ) -> std::io::Result<()> {
        use tokio::io::{AsyncSeekExt, AsyncWriteExt};
        if !upload.bytes().all(|b| b.is_ascii_alphanumeric()) || upload.is_empty() || upload.len() > 64 {
            return Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, "bad upload id"));
        }
        let path = sha.map(|s| self.path(s)).transpose()?;
        let staging = self.dir.join(".incoming");
        let tmp = staging.join(upload);
        if let Some(path) = &path {
            if tokio::fs::try_exists(path).await? {
                let _ = tokio::fs::remove_file(&tmp).await;
                return Ok(());
            }
        }
        tokio::fs::create_dir_all(&staging).await?;
        let mut f = tokio::fs::OpenOptions::new().create(true).write(true).truncate(false).open(&tmp).await?;
        f.seek(std::io::SeekFrom::Start(offset)).await?;
        f.write_all(bytes).await?;
        let (Some(path), Some(sha)) = (path, sha) else { return Ok(()) };
        f.sync_all().await?;
        drop(f);
        if verify {
            self.check(&tmp, sha).await?;
        }
        let dir = path.parent().expect("blob paths have a parent");
        let fresh = !tokio::fs::try_exists(dir).await?;
        tokio::fs::create_dir_all(dir).await?;
        tokio::fs::rename(&tmp, &path).await?;
        // A name is durable only once its folder is synced (and a new
        // folder's own name, once the store's is): the upload is
        // acknowledged after this returns, and must survive a power loss.
        sync_dir(dir).await?;
        if fresh {
            sync_dir(&self.dir).await?;
        }
        Ok(())
    }

    /// Checks that the staged file `tmp` hashes to `sha`; removes it if not.
    async fn check(&self, tmp: &std::path::Path, sha: &str) -> std::io::Result<()> {
        let tmp2 = tmp.to_path_buf();
        let got = tokio::task::spawn_blocking(move || -> std::io::Result<String> {
            let mut h = Sha256::new();
            let mut f = std::fs::File::open(&tmp2)?;
            std::io::copy(&mut f, &mut h)?;
            Ok(hex::encode(h.finalize()))
        })
        .await
        .map_err(std::io::Error::other)??;
        if got != sha {
            let _ = tokio::fs::remove_file(tmp).await;
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("blob pieces add up to sha256 {got}, not {sha}"),
            ));
        }
        Ok(())
    }

    /// Removes staging files older than `age` (uploads that never finished).
    pub async fn sweep_staging(&self, age: std::time::Duration) {
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

/// fsyncs a folder, making the names in it durable.
async fn sync_dir(dir: &std::path::Path) -> std::io::Result<()> {
    tokio::fs::File::open(dir).await?.sync_all().await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sha(b: &[u8]) -> String {
        hex::encode(Sha256::digest(b))
    }

    #[tokio::test]
    async fn pieces_in_any_order_make_the_blob_once_the_last_names_its_sha() {
        let tmp = tempfile::tempdir().unwrap();
        let blobs = Blobs::new(tmp.path().to_path_buf());
        let data: Vec<u8> = (0..10_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let want = sha(&data);
        blobs.put_piece("up1", 4000, &data[4000..8000], None, true).await.unwrap();
        blobs.put_piece("up1", 0, &data[..4000], None, true).await.unwrap();
        assert!(!blobs.has(&want).await, "kept before its last piece");
        blobs.put_piece("up1", 8000, &data[8000..], Some(&want), true).await.unwrap();
        assert!(blobs.has(&want).await);
        assert_eq!(&blobs.read(&want).await.unwrap()[..], &data[..]);
        // Sent again (a retried upload): nothing changes, no staging left.
        blobs.put_piece("up2", 0, &data, Some(&want), true).await.unwrap();
        assert_eq!(std::fs::read_dir(tmp.path().join(".incoming")).unwrap().count(), 0);
    }

    #[tokio::test]
    async fn a_last_piece_whose_sha_does_not_match_keeps_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let blobs = Blobs::new(tmp.path().to_path_buf());
        let lie = sha(b"something else");
        blobs.put_piece("up", 0, b"hello ", None, true).await.unwrap();
        let e = blobs.put_piece("up", 6, b"world", Some(&lie), true).await.unwrap_err();
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
            let e = blobs.put_piece(upload, 0, b"x", None, true).await.unwrap_err();
            assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput, "{upload:?}");
        }
        let e = blobs.put_piece("up", 0, b"x", Some("../../etc/passwd"), true).await.unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
    }
}
