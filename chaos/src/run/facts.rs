//! The facts the checker needs that no client call returns directly, derived after the run from what the jobs
//! are known to do (their script) and from the cluster's own records: what each job wrote and uploaded, how it
//! ended and why, which workers ran it and when, and which workers were destroyed.

use std::collections::BTreeMap;

use bm_api::jobs::{Job, JobEvent, JobState};
use bm_api::workers::{Worker, WorkerState};
use chrono::{DateTime, Utc};

use super::final_reads::events;
use super::script;
use crate::history::{OpKind, Outcome, Recorder, Value};

/// The history process the derived facts are recorded under.
const FACT_PROCESS: u64 = 2000;

/// What deriving the facts found, for the summary.
#[derive(Clone, Debug, Default)]
pub struct FactCounts {
    /// Jobs that completed, whose whole log and output are therefore known.
    pub completed: usize,
    /// Jobs that ended otherwise: they may have written any prefix of their lines (their appends and upload are
    /// recorded with unknown outcomes), so their logs are checked as prefixes.
    pub not_completed: usize,
    /// Job runs recorded (one per assignment).
    pub runs: usize,
    /// Workers recorded as destroyed.
    pub destroyed: usize,
}

/// A server time on the history's scale.
fn nanos(t: &DateTime<Utc>) -> u64 {
    t.timestamp_nanos_opt().map_or(0, |n| u64::try_from(n).unwrap_or(0))
}

/// Records the facts about `jobs` (as an admin read shows them; `names` maps ids to submitted names) and
/// `workers`. Events come from one node through the admin client.
pub async fn record(
    rec: &Recorder,
    client: &bm_api::Client,
    jobs: &[Job],
    names: &BTreeMap<String, String>,
    workers: &[Worker],
) -> FactCounts {
    let mut counts = FactCounts::default();
    for job in jobs {
        let start = job.times.get("start").map(nanos);
        let end = job.times.get("complete").map(nanos);
        let name = names.get(&job.id).cloned().unwrap_or_else(|| job.name.clone());
        // A completed job wrote every line and uploaded its output. One that ended otherwise (its agent lost, say)
        // stopped somewhere: each line and the upload may or may not have happened.
        let outcome = if job.state == JobState::Completed {
            counts.completed += 1;
            Outcome::Ok(Value::Done)
        } else {
            counts.not_completed += 1;
            Outcome::Unknown(format!("the job ended {}", job.state.as_str()))
        };
        let (s, e) = (start.unwrap_or(0), end.unwrap_or(0));
        for entry in script::written() {
            let kind = OpKind::AppendLog {
                job: job.id.clone(),
                stream: entry.stream,
                seq: entry.seq,
                bytes_hash: entry.bytes_hash,
            };
            rec.record_at(FACT_PROCESS, kind, s, Some(e.max(s)), outcome.clone());
        }
        let kind = OpKind::UploadOutput {
            job: job.id.clone(),
            path: script::OUTPUT_PATH.into(),
            sha256: script::output_sha256(&name),
        };
        rec.record_at(FACT_PROCESS, kind, s, Some(e.max(s)), outcome);
        if job.state.is_terminal() {
            let kind =
                OpKind::JobEnded { job: job.id.clone(), state: job.state.as_str().into(), cause: job.failure.clone() };
            let at = end.unwrap_or_else(|| rec.now());
            rec.record_at(FACT_PROCESS, kind, at, Some(at), Outcome::Ok(Value::Done));
        }
        match events(client, &job.id).await {
            Ok(evs) => {
                for (worker, from, to) in runs(&evs, end) {
                    let kind = OpKind::JobRanOn { job: job.id.clone(), worker, start: from, end: to };
                    rec.record_at(FACT_PROCESS, kind, from, to, Outcome::Ok(Value::Done));
                    counts.runs += 1;
                }
            }
            Err(o) => tracing::warn!("cannot read the events of job {}: {o:?}", job.id),
        }
    }
    for w in workers.iter().filter(|w| w.state == WorkerState::Destroyed) {
        let at = w.times.get("destroyed").map(nanos).unwrap_or_else(|| rec.now());
        rec.record_at(
            FACT_PROCESS,
            OpKind::WorkerDestroyed { worker: w.id.clone() },
            at,
            Some(at),
            Outcome::Ok(Value::Done),
        );
        counts.destroyed += 1;
    }
    counts
}

/// The job's assignments, from its control events (`assigned to worker W (epoch E)`): each runs from its
/// assignment to the next one, or to the job's end.
fn runs(events: &[JobEvent], end: Option<u64>) -> Vec<(String, u64, Option<u64>)> {
    let starts: Vec<(String, u64)> = events
        .iter()
        .filter(|e| e.stream == "control")
        .filter_map(|e| {
            let rest = e.payload.strip_prefix("assigned to worker ")?;
            let worker = rest.split_whitespace().next()?;
            Some((worker.to_string(), nanos(&e.time)))
        })
        .collect();
    starts.iter().enumerate().map(|(i, (w, t))| (w.clone(), *t, starts.get(i + 1).map(|n| n.1).or(end))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(seq: u64, stream: &str, secs: i64, payload: &str) -> JobEvent {
        JobEvent {
            seq,
            stream: stream.into(),
            task: None,
            time: DateTime::from_timestamp(secs, 0).unwrap(),
            payload: payload.into(),
        }
    }

    #[test]
    fn each_assignment_is_a_run_until_the_next_or_the_end() {
        let evs = vec![
            ev(0, "control", 1, "job submitted; queued for a worker"),
            ev(1, "control", 2, "assigned to worker W1 (epoch 1)"),
            ev(2, "stdout", 3, "assigned to worker X (epoch 9)"),
            ev(3, "control", 4, "assigned to worker W2 (epoch 2)"),
        ];
        let r = runs(&evs, Some(9_000_000_000));
        assert_eq!(
            r,
            vec![("W1".into(), 2_000_000_000, Some(4_000_000_000)), ("W2".into(), 4_000_000_000, Some(9_000_000_000))]
        );
    }
}
