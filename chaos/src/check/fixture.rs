//! Hand-made histories for the checkers' unit tests; times are in milliseconds.

use crate::history::{History, JobView, LogEntry, OpKind, Outcome, Value};

/// Milliseconds to the history's nanoseconds.
pub(crate) fn ms(t: u64) -> u64 {
    t * 1_000_000
}

/// Builds a history one operation at a time; every method returns the new operation's id.
#[derive(Default)]
pub(crate) struct Hb {
    pub(crate) h: History,
}

impl Hb {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    fn op(&mut self, kind: OpKind, t0: u64, t1: Option<u64>, outcome: Outcome) -> u64 {
        self.h.push(1, kind, ms(t0), t1.map(ms), outcome)
    }

    fn fact(&mut self, kind: OpKind, t: u64) -> u64 {
        self.op(kind, t, Some(t), Outcome::Ok(Value::Done))
    }

    pub(crate) fn submit(&mut self, job: &str, t0: u64, t1: u64) -> u64 {
        self.op(OpKind::SubmitJob { name: job.into() }, t0, Some(t1), Outcome::Ok(Value::Job(job.into())))
    }

    pub(crate) fn read(&mut self, job: &str, t0: u64, t1: u64, state: &str, epoch: u64, worker: Option<&str>) -> u64 {
        let view = Value::View(Some(JobView::new(state, epoch, worker)));
        self.op(OpKind::ReadJob { job: job.into(), node: Some(1) }, t0, Some(t1), Outcome::Ok(view))
    }

    pub(crate) fn missing(&mut self, job: &str, node: u64, t0: u64, t1: u64) -> u64 {
        self.op(OpKind::ReadJob { job: job.into(), node: Some(node) }, t0, Some(t1), Outcome::Ok(Value::View(None)))
    }

    pub(crate) fn list(&mut self, node: u64, t0: u64, t1: u64, ids: &[&str]) -> u64 {
        let ids = ids.iter().map(|s| s.to_string()).collect();
        self.op(OpKind::ListJobs { node: Some(node) }, t0, Some(t1), Outcome::Ok(Value::Jobs(ids)))
    }

    pub(crate) fn cancel(&mut self, job: &str, t0: u64, t1: Option<u64>, outcome: Outcome) -> u64 {
        self.op(OpKind::CancelJob { job: job.into() }, t0, t1, outcome)
    }

    pub(crate) fn append(&mut self, job: &str, stream: &str, seq: u64, hash: &str, t: u64) -> u64 {
        self.fact(OpKind::AppendLog { job: job.into(), stream: stream.into(), seq, bytes_hash: hash.into() }, t)
    }

    pub(crate) fn read_log(&mut self, job: &str, node: u64, t0: u64, t1: u64, entries: &[(&str, u64, &str)]) -> u64 {
        let entries = entries.iter().map(|&(s, q, h)| LogEntry::new(s, q, h)).collect();
        self.op(OpKind::ReadLog { job: job.into(), node }, t0, Some(t1), Outcome::Ok(Value::Log(entries)))
    }

    pub(crate) fn upload(&mut self, job: &str, path: &str, sha: &str, t0: u64, t1: Option<u64>, ok: bool) -> u64 {
        let outcome = if ok { Outcome::Ok(Value::Done) } else { Outcome::Unknown("timeout".into()) };
        self.op(OpKind::UploadOutput { job: job.into(), path: path.into(), sha256: sha.into() }, t0, t1, outcome)
    }

    pub(crate) fn read_output(&mut self, job: &str, path: &str, node: u64, t0: u64, t1: u64, sha: Option<&str>) -> u64 {
        let kind = OpKind::ReadOutput { job: job.into(), path: path.into(), node };
        self.op(kind, t0, Some(t1), Outcome::Ok(Value::Output(sha.map(Into::into))))
    }

    pub(crate) fn ran(&mut self, job: &str, worker: &str, start: u64, end: Option<u64>) -> u64 {
        let kind = OpKind::JobRanOn { job: job.into(), worker: worker.into(), start: ms(start), end: end.map(ms) };
        self.fact(kind, end.unwrap_or(start))
    }

    pub(crate) fn ended(&mut self, job: &str, state: &str, cause: Option<&str>, t: u64) -> u64 {
        self.fact(OpKind::JobEnded { job: job.into(), state: state.into(), cause: cause.map(Into::into) }, t)
    }

    pub(crate) fn destroyed(&mut self, worker: &str, t: u64) -> u64 {
        self.fact(OpKind::WorkerDestroyed { worker: worker.into() }, t)
    }

    pub(crate) fn fault(&mut self, start: u64, end: u64) -> u64 {
        let kind = OpKind::Fault { kind: "partition [1] [2 3]".into(), start: ms(start), end: Some(ms(end)) };
        self.op(kind, start, Some(end), Outcome::Ok(Value::Done))
    }
}

/// The ids of a violation's excerpt.
pub(crate) fn excerpt_ids(v: &crate::check::Violation) -> Vec<u64> {
    v.excerpt.iter().map(|o| o.id).collect()
}
