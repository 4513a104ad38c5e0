//! Collecting a finished job's outputs by its rules and uploading them.
//!
//! Every file is streamed: read a piece at a time while it is sent, its
//! length announced first (see [`crate::outputs::stream`]), and the upload
//! abandoned if a file without `%` turns out to have changed (the node
//! then stores nothing). A `%` file that got shorter than it was when
//! opened cannot be sent at the length announced; it alone is read whole
//! and sent as what was read. A lost node or leader change is ridden out
//! by sending the file again (a retry reads it again); the node stores an
//! output once per path and epoch.

use std::time::Duration;

use bm_api::agent::AgentEvent;
use bm_api::agent_link::AgentClient as Client;
use bm_api::output_rule::OutputRule;
use bm_api::ClientError;
use chrono::Utc;
use futures::StreamExt as _;
use tokio::sync::mpsc;

use crate::outputs::rules::RuleSet;
use crate::outputs::stream::stream;
use crate::outputs::upload::{read_for_upload, FileReader, Opened, ReadOutcome, UploadError};
use crate::outputs::{plan_with, CollectOptions, PlannedFile};
use crate::run::Layout;

/// Output files sent at once. Each holds a few pieces of memory at most
/// (see [`crate::outputs::stream`]); the node counts those under way
/// against the job's output limit.
pub const UPLOADS_AT_ONCE: usize = 4;

/// Uploads every file the rules select; returns a failure reason when a
/// file failed its checks or a must-match rule matched nothing.
pub async fn upload_outputs(
    client: &Client,
    job: &str,
    epoch: u64,
    rules: &[OutputRule],
    layout: &Layout,
    log: &mpsc::Sender<AgentEvent>,
) -> anyhow::Result<Option<String>> {
    if rules.is_empty() {
        return Ok(None);
    }
    let say = |msg: String| {
        let log = log.clone();
        async move {
            let _ = log.send(AgentEvent { stream: "control".into(), task: None, time: Utc::now(), payload: msg }).await;
        }
    };
    let set = RuleSet::new(rules)?;
    let (root, set2) = (layout.root.clone(), set.clone());
    let plan = tokio::task::spawn_blocking(move || plan_with(&set2, &root, &CollectOptions::default())).await??;
    for w in &plan.warnings {
        say(format!("outputs: {w}")).await;
    }
    let mut uploaded = Vec::new();
    // A few files at once: a small file's upload is mostly waiting (two
    // nodes' fsyncs, a Raft commit), so one at a time leaves the link idle.
    // Results come back in plan order; an error stops the rest.
    let mut results = futures::stream::iter(&plan.files)
        .map(|f| async move { (f, upload_file(client, job, epoch, f).await) })
        .buffered(UPLOADS_AT_ONCE);
    while let Some((f, result)) = results.next().await {
        match result? {
            Ok(ReadOutcome::Read { bytes, changed, .. }) => {
                let note = if changed { " (it changed during the upload; allowed by %)" } else { "" };
                say(format!("uploaded {} ({bytes} bytes){note}", f.path)).await;
                uploaded.push(f.path.clone());
            }
            Ok(ReadOutcome::Skipped { reason }) => say(format!("skipped {}: {reason}", f.path)).await,
            Err(e) => return Ok(Some(e.to_string())),
        }
    }
    let unmet = set.unmet_must_match(uploaded.iter().map(String::as_str));
    Ok(unmet.first().map(|u| u.to_string()))
}

/// How one attempt at a file ended.
enum Attempt {
    /// Stored (or, for `%`, skipped).
    Done(ReadOutcome),
    /// The file failed its checks: the job fails with this.
    Bad(UploadError),
    /// The call failed.
    Call(ClientError),
}

/// Uploads one planned file the way the collector does (streamed), trying
/// again while the cluster is unreachable or busy. `Ok(Err)` is a file
/// that failed its checks; `Err` is a refusal (a limit, a stale epoch) or
/// a local failure. Public for the data-plane bench.
pub async fn upload_file(
    client: &Client,
    job: &str,
    epoch: u64,
    f: &PlannedFile,
) -> anyhow::Result<Result<ReadOutcome, UploadError>> {
    let mut delay = Duration::from_millis(100);
    loop {
        let attempt = match streamed(client, job, epoch, f).await? {
            Attempt::Bad(UploadError::Shrank { .. }) => buffered(client, job, epoch, f).await?,
            other => other,
        };
        match attempt {
            Attempt::Done(o) => return Ok(Ok(o)),
            Attempt::Bad(e) => return Ok(Err(e)),
            Attempt::Call(e) if crate::run::transient(&e) => {
                tracing::warn!(error = %e, path = %f.path, "cannot upload an output; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
            Attempt::Call(e) => return Err(e.into()),
        }
    }
}

/// Sends the file as it is read.
async fn streamed(client: &Client, job: &str, epoch: u64, f: &PlannedFile) -> anyhow::Result<Attempt> {
    let file = f.clone();
    let reader = match tokio::task::spawn_blocking(move || FileReader::open(&file)).await? {
        Ok(Opened::Reader(r)) => r,
        Ok(Opened::Skipped(reason)) => return Ok(Attempt::Done(ReadOutcome::Skipped { reason })),
        Err(e) => return Ok(Attempt::Bad(e)),
    };
    let s = stream(reader);
    let sent = client.agent_output_stream(job, epoch, &f.path, s.size, s.body).await;
    let read = s.outcome.lock().expect("not poisoned").take();
    Ok(match (read, sent) {
        // The read's verdict comes first: a change abandons the upload,
        // and the call's error then only says so.
        (Some(Err(e)), _) => Attempt::Bad(e),
        (Some(Ok(o)), Ok(_)) => Attempt::Done(o),
        (_, Err(e)) => Attempt::Call(e),
        (None, Ok(_)) => anyhow::bail!("the upload of {} was acknowledged before the file was read whole", f.path),
    })
}

/// Reads the file whole, then sends what was read (a `%` file that shrank
/// while it was streamed).
async fn buffered(client: &Client, job: &str, epoch: u64, f: &PlannedFile) -> anyhow::Result<Attempt> {
    let file = f.clone();
    let read = tokio::task::spawn_blocking(move || {
        let mut buf = Vec::new();
        read_for_upload(&file, |chunk| {
            buf.extend_from_slice(chunk);
            Ok(())
        })
        .map(|o| (o, buf))
    })
    .await?;
    Ok(match read {
        Ok((o @ ReadOutcome::Read { .. }, buf)) => match client.agent_output(job, epoch, &f.path, buf.into()).await {
            Ok(_) => Attempt::Done(o),
            Err(e) => Attempt::Call(e),
        },
        Ok((skipped, _)) => Attempt::Done(skipped),
        Err(e) => Attempt::Bad(e),
    })
}
