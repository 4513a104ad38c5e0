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

    /// Stores bytes (fsynced) and returns their sha256.
    pub async fn write(&self, bytes: &[u8]) -> std::io::Result<String> {
        let sha = hex::encode(Sha256::digest(bytes));
        let path = self.path(&sha)?;
        if tokio::fs::try_exists(&path).await? {
            return Ok(sha);
        }
        let dir = path.parent().expect("blob paths have a parent").to_path_buf();
        tokio::fs::create_dir_all(&dir).await?;
        let tmp = dir.join(format!(".{sha}.{}", ulid::Ulid::new()));
        let data = bytes.to_vec();
        let (tmp2, path2) = (tmp.clone(), path.clone());
        tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            use std::io::Write;
            let mut f = std::fs::File::create(&tmp2)?;
            f.write_all(&data)?;
            f.sync_all()?;
            std::fs::rename(&tmp2, &path2)
        })
        .await
        .map_err(std::io::Error::other)??;
        Ok(sha)
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

    /// Writes one piece of a blob arriving from a peer into a staging
    /// file named by `upload`; the last piece checks the whole file's
    /// sha256 and, when it matches, moves it into place.
    pub async fn put_piece(
        &self,
        sha: &str,
        upload: &str,
        offset: u64,
        bytes: &[u8],
        last: bool,
    ) -> std::io::Result<()> {
        use tokio::io::{AsyncSeekExt, AsyncWriteExt};
        let path = self.path(sha)?;
        if !upload.bytes().all(|b| b.is_ascii_alphanumeric()) || upload.is_empty() || upload.len() > 64 {
            return Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, "bad upload id"));
        }
        if tokio::fs::try_exists(&path).await? {
            return Ok(());
        }
        let staging = self.dir.join(".incoming");
        tokio::fs::create_dir_all(&staging).await?;
        let tmp = staging.join(format!("{sha}.{upload}"));
        let mut f = tokio::fs::OpenOptions::new().create(true).write(true).truncate(false).open(&tmp).await?;
        f.seek(std::io::SeekFrom::Start(offset)).await?;
        f.write_all(bytes).await?;
        if !last {
            return Ok(());
        }
        f.sync_all().await?;
        drop(f);
        let tmp2 = tmp.clone();
        let got = tokio::task::spawn_blocking(move || -> std::io::Result<String> {
            let mut h = Sha256::new();
            let mut f = std::fs::File::open(&tmp2)?;
            std::io::copy(&mut f, &mut h)?;
            Ok(hex::encode(h.finalize()))
        })
        .await
        .map_err(std::io::Error::other)??;
        if got != sha {
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("blob pieces add up to sha256 {got}, not {sha}"),
            ));
        }
        let dir = path.parent().expect("blob paths have a parent");
        tokio::fs::create_dir_all(dir).await?;
        tokio::fs::rename(&tmp, &path).await
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
