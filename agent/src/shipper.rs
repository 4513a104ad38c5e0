//! Ships events to the cluster in order, in batches: lines are queued as
//! the job writes them and sent every few hundred milliseconds, or sooner
//! when many are waiting, so a chatty job costs few requests and a quiet one
//! still shows up live.

use std::time::Duration;

use bm_api::agent::{AgentEvent, EventsUpload};
use bm_api::agent_link::AgentClient as Client;
use bm_api::ErrorCode;
use tokio::sync::mpsc;

/// Largest batch sent at once.
const BATCH: usize = 500;
/// Longest a line waits before it is sent.
const LINGER: Duration = Duration::from_millis(200);

/// Why shipping stopped.
#[derive(Debug, thiserror::Error)]
pub enum ShipError {
    /// The cluster refused the events: the assignment is over (cancelled or stale).
    #[error("the cluster no longer accepts events for this job: {0}")]
    Fenced(String),
}

/// Sends everything from `rx` until it closes; returns early when the
/// cluster says the assignment is no longer current.
pub async fn ship(
    client: Client,
    job: String,
    epoch: u64,
    mut rx: mpsc::Receiver<AgentEvent>,
) -> Result<(), ShipError> {
    let mut batch = Vec::new();
    let mut sent = 0u64;
    loop {
        let open = match tokio::time::timeout(LINGER, rx.recv_many(&mut batch, BATCH)).await {
            Ok(0) => false,
            Ok(_) => true,
            Err(_) => true,
        };
        if !batch.is_empty() {
            let upload = EventsUpload { epoch, first: Some(sent), events: std::mem::take(&mut batch) };
            send(&client, &job, &upload).await?;
            sent += upload.events.len() as u64;
        }
        if !open {
            return Ok(());
        }
    }
}

async fn send(client: &Client, job: &str, upload: &EventsUpload) -> Result<(), ShipError> {
    let mut delay = Duration::from_millis(100);
    loop {
        match client.agent_events(job, upload).await {
            Ok(()) => return Ok(()),
            Err(e) if matches!(e.code(), Some(ErrorCode::StaleEpoch | ErrorCode::Conflict | ErrorCode::NotFound)) => {
                return Err(ShipError::Fenced(e.to_string()))
            }
            Err(e) => {
                // The cluster is unreachable: keep the lines and retry; they
                // are sent in order once it answers again.
                tracing::warn!(error = %e, "cannot send events; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        }
    }
}
