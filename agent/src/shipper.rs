//! Ships events to the cluster in order, in batches: lines are queued as
//! the job writes them and sent every few hundred milliseconds, or sooner
//! when many are waiting, so a chatty job costs few requests and a quiet one
//! still shows up live.

use std::time::Duration;

use bm_api::agent::{AgentEvent, EventsUpload, MAX_BATCH_BYTES, MAX_BATCH_EVENTS, MAX_EVENT_BYTES};
use bm_api::agent_link::AgentClient as Client;
use bm_api::ErrorCode;
use tokio::sync::mpsc;

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
    let mut queued = Vec::new();
    let mut sent = 0u64;
    let mut open = true;
    loop {
        // Lines left over from a batch that reached its byte limit go at
        // once; otherwise wait for at least one.
        if queued.is_empty() && open {
            open = !matches!(tokio::time::timeout(LINGER, rx.recv_many(&mut queued, MAX_BATCH_EVENTS)).await, Ok(0));
        }
        if !queued.is_empty() {
            let upload = EventsUpload { epoch, first: Some(sent), events: take_batch(&mut queued) };
            send(&client, &job, &upload).await?;
            sent += upload.events.len() as u64;
        }
        if !open && queued.is_empty() {
            return Ok(());
        }
    }
}

/// The first events of `queued` that fit in one batch (at least one):
/// at most [`MAX_BATCH_EVENTS`], and no more once [`MAX_BATCH_BYTES`] of
/// payload are in.
fn take_batch(queued: &mut Vec<AgentEvent>) -> Vec<AgentEvent> {
    let mut bytes = 0;
    let mut n = 0;
    for e in queued.iter().take(MAX_BATCH_EVENTS) {
        if n > 0 && bytes + e.payload.len() > MAX_BATCH_BYTES {
            break;
        }
        bytes += e.payload.len();
        n += 1;
    }
    if n == queued.len() {
        std::mem::take(queued)
    } else {
        queued.drain(..n).collect()
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

/// `line` as event payloads of at most [`MAX_EVENT_BYTES`] each, cut at
/// character boundaries (one payload, the line itself, when it is short).
pub fn cut_line(line: String) -> Vec<String> {
    if line.len() <= MAX_EVENT_BYTES {
        return vec![line];
    }
    let mut pieces = Vec::new();
    let mut rest = line.as_str();
    while !rest.is_empty() {
        let mut end = rest.len().min(MAX_EVENT_BYTES);
        while !rest.is_char_boundary(end) {
            end -= 1;
        }
        pieces.push(rest[..end].to_string());
        rest = &rest[end..];
    }
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(len: usize) -> AgentEvent {
        AgentEvent { stream: "stdout".into(), task: Some(0), time: chrono::Utc::now(), payload: "x".repeat(len) }
    }

    #[test]
    fn a_batch_stops_at_its_event_count_or_its_bytes_and_keeps_the_rest_in_order() {
        let mut queued: Vec<AgentEvent> = (0..MAX_BATCH_EVENTS + 5).map(|i| ev(2000 + i)).collect();
        let first = take_batch(&mut queued);
        let bytes: usize = first.iter().map(|e| e.payload.len()).sum();
        assert!(bytes <= MAX_BATCH_BYTES, "{bytes}");
        assert!(first.len() < MAX_BATCH_EVENTS, "the byte limit comes first here: {}", first.len());
        assert_eq!(queued[0].payload.len(), 2000 + first.len(), "the rest starts where the batch ended");
        assert_eq!(first.len() + queued.len(), MAX_BATCH_EVENTS + 5);

        let mut small: Vec<AgentEvent> = (0..MAX_BATCH_EVENTS + 5).map(|_| ev(10)).collect();
        assert_eq!(take_batch(&mut small).len(), MAX_BATCH_EVENTS);
        assert_eq!(small.len(), 5);
        assert_eq!(take_batch(&mut small).len(), 5);
        assert!(small.is_empty());

        // One event over the byte limit still goes, alone.
        let mut big = vec![ev(MAX_BATCH_BYTES + 1), ev(1)];
        assert_eq!(take_batch(&mut big).len(), 1);
        assert_eq!(big.len(), 1);
    }

    #[test]
    fn long_lines_are_cut_at_character_boundaries_and_nothing_is_lost() {
        assert_eq!(cut_line(String::new()), vec![String::new()]);
        assert_eq!(cut_line("short".into()), vec!["short".to_string()]);
        let line = "é".repeat(MAX_EVENT_BYTES); // two bytes each
        let pieces = cut_line(line.clone());
        assert_eq!(pieces.len(), 2);
        assert!(pieces.iter().all(|p| p.len() <= MAX_EVENT_BYTES));
        assert_eq!(pieces.concat(), line);
        let odd = format!("a{}", "é".repeat(MAX_EVENT_BYTES / 2));
        let pieces = cut_line(odd.clone());
        assert!(pieces.iter().all(|p| p.len() <= MAX_EVENT_BYTES));
        assert_eq!(pieces.concat(), odd);
    }
}
