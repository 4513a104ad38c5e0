//! `bm job copy`: downloads one output file, streaming it to disk with a
//! progress bar and checking its sha256 before it takes the final name.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use bm_api::jobs::JobOutput;
use bm_api::Client;
use clap::Args;
use futures::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncWrite, AsyncWriteExt};

/// Arguments of `bm job copy`.
#[derive(Debug, Args)]
pub struct CopyArgs {
    /// Job id
    pub id: String,
    /// The output, by its path in the worker or its id
    #[arg(value_name = "OUTPUT_PATH_OR_ID")]
    pub output: String,
    /// Where to write it: a file, a directory (keeps the output's file name), or `-` for standard output
    #[arg(value_name = "DEST")]
    pub dest: PathBuf,
}

/// Downloads the output. A file destination is written under a temporary
/// name and renamed only once complete and verified, so a failed download
/// never leaves a truncated file behind.
pub async fn copy(client: &Client, args: &CopyArgs) -> Result<()> {
    let outputs = client.job_outputs(&args.id).await?;
    let Some(output) = find(&outputs, &args.output) else {
        bail!("job {} has no output {:?} (`bm job outputs {}` lists them)", args.id, args.output, args.id);
    };

    if args.dest == Path::new("-") {
        let mut out = tokio::io::stdout();
        download(client, &args.id, output, &mut out, ProgressBar::hidden()).await?;
        return Ok(());
    }

    let dest = destination(&args.dest, &output.path)?;
    let tmp = partial_name(&dest);
    let bar = progress_bar(output.size);
    let result = async {
        let mut f = tokio::fs::File::create(&tmp).await.with_context(|| format!("creating {}", tmp.display()))?;
        download(client, &args.id, output, &mut f, bar).await?;
        f.sync_all().await?;
        tokio::fs::rename(&tmp, &dest).await.with_context(|| format!("renaming to {}", dest.display()))
    }
    .await;
    if result.is_err() {
        let _ = tokio::fs::remove_file(&tmp).await;
    }
    result
}

/// The output named by `wanted`, matched on id or path.
fn find<'a>(outputs: &'a [JobOutput], wanted: &str) -> Option<&'a JobOutput> {
    outputs.iter().find(|o| o.id == wanted).or_else(|| outputs.iter().find(|o| o.path == wanted))
}

/// The file to write: `dest` itself, or the output's file name inside it
/// when `dest` is a directory.
fn destination(dest: &Path, output_path: &str) -> Result<PathBuf> {
    if !dest.is_dir() {
        return Ok(dest.to_path_buf());
    }
    let name = Path::new(output_path)
        .file_name()
        .with_context(|| format!("output {output_path:?} has no file name; give a file as DEST"))?;
    Ok(dest.join(name))
}

/// A sibling of `dest` to download into.
fn partial_name(dest: &Path) -> PathBuf {
    let name = dest.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    dest.with_file_name(format!(".{name}.bm-partial"))
}

/// A byte progress bar on standard error, or a hidden one when standard
/// error is not a terminal (logs and CI should not fill with redraws).
fn progress_bar(size: u64) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(size);
    if let Ok(style) = ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}") {
        bar.set_style(style);
    }
    bar
}

/// Streams the output's bytes into `out`, then checks their length and
/// sha256 against what the server recorded.
async fn download<W: AsyncWrite + Unpin>(
    client: &Client,
    id: &str,
    output: &JobOutput,
    out: &mut W,
    bar: ProgressBar,
) -> Result<()> {
    let resp = client.job_output_download(id, &output.id).await?;
    let mut stream = resp.bytes_stream();
    let mut hasher = Sha256::new();
    let mut len: u64 = 0;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.with_context(|| format!("downloading {}", output.path))?;
        hasher.update(&chunk);
        out.write_all(&chunk).await?;
        len += chunk.len() as u64;
        bar.inc(chunk.len() as u64);
    }
    out.flush().await?;
    bar.finish_and_clear();
    if len != output.size {
        bail!("downloaded {len} bytes of {}, expected {}", output.path, output.size);
    }
    let got = hex::encode(hasher.finalize());
    if !got.eq_ignore_ascii_case(&output.sha256) {
        bail!("{} is corrupt: sha256 {got}, expected {}", output.path, output.sha256);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn out(id: &str, path: &str) -> JobOutput {
        JobOutput { id: id.into(), path: path.into(), size: 0, sha256: String::new() }
    }

    #[test]
    fn finds_by_id_or_path() {
        let outputs = [out("01A", "/work/a.txt"), out("01B", "/work/b.txt")];
        assert_eq!(find(&outputs, "01B").unwrap().path, "/work/b.txt");
        assert_eq!(find(&outputs, "/work/a.txt").unwrap().id, "01A");
        assert!(find(&outputs, "a.txt").is_none());
    }

    #[test]
    fn directory_destination_keeps_the_name() {
        let d = tempfile::tempdir().unwrap();
        assert_eq!(destination(d.path(), "/work/out/x.tar").unwrap(), d.path().join("x.tar"));
        let f = d.path().join("y");
        assert_eq!(destination(&f, "/work/out/x.tar").unwrap(), f);
        assert_eq!(partial_name(&f), d.path().join(".y.bm-partial"));
    }
}
