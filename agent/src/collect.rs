//! Collecting a finished job's outputs by its rules and uploading them.

use bm_api::agent::AgentEvent;
use bm_api::agent_link::AgentClient as Client;
use bm_api::output_rule::OutputRule;
use chrono::Utc;
use tokio::sync::mpsc;

use crate::outputs::rules::RuleSet;
use crate::outputs::upload::{read_for_upload, ReadOutcome};
use crate::outputs::{plan_with, CollectOptions};
use crate::run::Layout;

/// Uploads every file the rules select; returns a failure reason when a
/// must-match rule matched nothing.
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
    for f in &plan.files {
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
        match read {
            Ok((ReadOutcome::Read { bytes, changed, .. }, buf)) => {
                // A node lost or a leader change mid-upload is ridden out:
                // the same file again under the same epoch is stored once.
                let data = bytes::Bytes::from(buf);
                crate::run::retry_transient("output upload", || client.agent_output(job, epoch, &f.path, data.clone()))
                    .await?;
                let note = if changed { " (it changed during the upload; allowed by %)" } else { "" };
                say(format!("uploaded {} ({bytes} bytes){note}", f.path)).await;
                uploaded.push(f.path.clone());
            }
            Ok((ReadOutcome::Skipped { reason }, _)) => say(format!("skipped {}: {reason}", f.path)).await,
            Err(e) => return Ok(Some(e.to_string())),
        }
    }
    let unmet = set.unmet_must_match(uploaded.iter().map(String::as_str));
    Ok(unmet.first().map(|u| u.to_string()))
}
