//! The node's content-addressed blob store: output files, named by sha256.
//! (Replication of blobs to a quorum is the data-plane issue's work; here a
//! node keeps what it was given.)

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

    /// Reads a whole blob.
    pub async fn read(&self, sha: &str) -> std::io::Result<bytes::Bytes> {
        Ok(tokio::fs::read(self.path(sha)?).await?.into())
    }
}
