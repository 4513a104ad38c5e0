//! Placing the outputs of the jobs this one depends on under
//! `/input/DEPNAME/…`, with their full original path below it.
//!
//! Each file is written as its bytes arrive and hashed on the way, so an
//! input of any size costs the agent a buffer, not the file; a download
//! cut short (a node lost) starts over into the emptied file.

use std::io::SeekFrom;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use bm_api::agent::Assignment;
use bm_api::agent_link::AgentClient as Client;
use bm_api::jobs::JobOutput;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncSeekExt as _, AsyncWrite, BufWriter};

use crate::outputs::create_input_file;
use crate::run::Layout;

/// How much of an input is gathered before a write to its file.
const WRITE_BUFFER: usize = 1 << 20;

/// Downloads every input; returns how many files were placed.
pub async fn fetch(client: &Client, a: &Assignment, layout: &Layout) -> anyhow::Result<usize> {
    let root = layout.path("/input");
    let mut n = 0;
    for set in &a.inputs {
        for o in &set.outputs {
            let (_, f) = create_input_file(&root, &set.name, &o.path)?;
            let mut file = tokio::fs::File::from_std(f);
            let sha = download(client, &a.job.id, a.epoch, o, &mut file).await?;
            if sha != o.sha256 {
                anyhow::bail!(
                    "input {} of dependency {:?} arrived damaged (sha256 {sha}, want {})",
                    o.path,
                    set.name,
                    o.sha256
                );
            }
            n += 1;
        }
    }
    Ok(n)
}

/// Writes output `o` (an input of `job` under `epoch`) into `file` and
/// returns the sha256 of what was written, starting over while the
/// cluster is unreachable or busy. Public for the data-plane bench.
pub async fn download(
    client: &Client,
    job: &str,
    epoch: u64,
    o: &JobOutput,
    file: &mut tokio::fs::File,
) -> anyhow::Result<String> {
    let mut delay = Duration::from_millis(100);
    loop {
        file.seek(SeekFrom::Start(0)).await?;
        file.set_len(0).await?;
        let mut sink = Hashing { inner: BufWriter::with_capacity(WRITE_BUFFER, &mut *file), hasher: Sha256::new() };
        match client.agent_input_into(job, epoch, &o.id, o.size, &mut sink).await {
            Ok(_) => return Ok(hex::encode(sink.hasher.finalize())),
            Err(e) if crate::run::transient(&e) => {
                tracing::warn!(error = %e, path = %o.path, "cannot download an input; starting it over");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
            Err(e) => return Err(anyhow::anyhow!(e).context(format!("input {}", o.path))),
        }
    }
}

/// A writer that hashes what it passes on.
struct Hashing<W> {
    inner: W,
    hasher: Sha256,
}

impl<W: AsyncWrite + Unpin> AsyncWrite for Hashing<W> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        let n = ready!(Pin::new(&mut self.inner).poll_write(cx, buf))?;
        self.hasher.update(&buf[..n]);
        Poll::Ready(Ok(n))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
