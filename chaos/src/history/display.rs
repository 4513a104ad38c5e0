//! One-line renderings of operations for reports, with times relative to the start of the run.

use std::fmt::{self, Display, Formatter};

use super::kind::OpKind;
use super::op::{Op, Outcome};
use super::value::Value;

/// How many items of a list (log entries, job ids) a line shows before eliding the rest.
const SHOWN: usize = 6;

/// An operation rendered on one line, its times in milliseconds from `origin` (usually the history's
/// [`crate::history::History::origin`]), as reports print excerpts.
pub struct OpLine<'a> {
    /// The operation.
    pub op: &'a Op,
    /// The time shown as +0.
    pub origin: u64,
}

/// `t` as signed milliseconds from `origin`, e.g. `+12.345ms`.
pub(crate) fn rel(t: u64, origin: u64) -> String {
    let ms = (t as f64 - origin as f64) / 1e6;
    format!("{ms:+.3}ms")
}

/// An optional end time: relative, or `…` when unknown.
fn rel_end(t: Option<u64>, origin: u64) -> String {
    t.map_or_else(|| "…".into(), |t| rel(t, origin))
}

impl Display for OpLine<'_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let op = self.op;
        write!(
            f,
            "{:>12} .. {:<12} p{} #{} ",
            rel(op.invoke, self.origin),
            rel_end(op.complete, self.origin),
            op.process,
            op.id
        )?;
        write_kind(f, &op.kind, self.origin)?;
        match &op.outcome {
            Outcome::Ok(v) => write!(f, " -> ok {}", ValueLine(v)),
            Outcome::Fail(why) => write!(f, " -> FAIL {why}"),
            Outcome::Unknown(why) => write!(f, " -> UNKNOWN {why}"),
        }
    }
}

/// Writes an operation kind, times relative to `origin`.
fn write_kind(f: &mut Formatter<'_>, kind: &OpKind, origin: u64) -> fmt::Result {
    let node = |n: &Option<u64>| n.map(|n| format!(" node {n}")).unwrap_or_default();
    match kind {
        OpKind::SubmitJob { name } => write!(f, "submit_job {name:?}"),
        OpKind::ReadJob { job, node: n } => write!(f, "read_job {job}{}", node(n)),
        OpKind::ListJobs { node: n } => write!(f, "list_jobs{}", node(n)),
        OpKind::CancelJob { job } => write!(f, "cancel_job {job}"),
        OpKind::AppendLog { job, stream, seq, bytes_hash } => write!(f, "append_log {job} {stream}#{seq}:{bytes_hash}"),
        OpKind::ReadLog { job, node } => write!(f, "read_log {job} node {node}"),
        OpKind::UploadOutput { job, path, sha256 } => write!(f, "upload_output {job} {path} sha256 {sha256}"),
        OpKind::ReadOutput { job, path, node } => write!(f, "read_output {job} {path} node {node}"),
        OpKind::JobRanOn { job, worker, start, end } => {
            write!(f, "job_ran_on {job} worker {worker} from {} to {}", rel(*start, origin), rel_end(*end, origin))
        }
        OpKind::JobEnded { job, state, cause } => match cause {
            Some(c) => write!(f, "job_ended {job} {state} ({c})"),
            None => write!(f, "job_ended {job} {state} (no cause given)"),
        },
        OpKind::AgentKilled { job, worker } => write!(f, "agent_killed {job} worker {worker}"),
        OpKind::WorkerDestroyed { worker } => write!(f, "worker_destroyed {worker}"),
        OpKind::Fault { kind, start, end } => {
            write!(f, "fault {kind:?} from {} to {}", rel(*start, origin), rel_end(*end, origin))
        }
    }
}

/// A returned value on one line, long lists elided.
struct ValueLine<'a>(&'a Value);

impl Display for ValueLine<'_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self.0 {
            Value::Done => write!(f, "done"),
            Value::Job(id) => write!(f, "job {id}"),
            Value::View(None) => write!(f, "no such job"),
            Value::View(Some(v)) => {
                write!(f, "{} epoch {}", v.state, v.epoch)?;
                match &v.worker {
                    Some(w) => write!(f, " worker {w}"),
                    None => Ok(()),
                }
            }
            Value::Jobs(ids) => write_list(f, "jobs", ids.iter().map(|s| s.to_string()), ids.len()),
            Value::Log(entries) => write_list(
                f,
                "log",
                entries.iter().map(|e| format!("{}#{}:{}", e.stream, e.seq, e.bytes_hash)),
                entries.len(),
            ),
            Value::Output(Some(sha)) => write!(f, "sha256 {sha}"),
            Value::Output(None) => write!(f, "no such output"),
        }
    }
}

/// Writes `name [a, b, …] (n)`, showing at most [`SHOWN`] items.
fn write_list(f: &mut Formatter<'_>, name: &str, items: impl Iterator<Item = String>, len: usize) -> fmt::Result {
    let shown: Vec<String> = items.take(SHOWN).collect();
    let more = if len > SHOWN { ", …" } else { "" };
    write!(f, "{name} [{}{more}] ({len})", shown.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{JobView, LogEntry};

    fn line(kind: OpKind, outcome: Outcome) -> String {
        let op = Op { id: 7, process: 3, kind, invoke: 1_000_000, complete: Some(3_500_000), outcome };
        OpLine { op: &op, origin: 0 }.to_string()
    }

    #[test]
    fn a_line_shows_times_process_kind_and_outcome() {
        let s = line(
            OpKind::ReadJob { job: "J".into(), node: Some(2) },
            Outcome::Ok(Value::View(Some(JobView::new("running", 1, Some("w1"))))),
        );
        assert!(s.contains("+1.000ms .. +3.500ms"), "{s}");
        assert!(s.contains("p3 #7 read_job J node 2 -> ok running epoch 1 worker w1"), "{s}");
    }

    #[test]
    fn long_logs_are_elided() {
        let entries = (0..20).map(|i| LogEntry::new("stdout", i, "h")).collect();
        let s = line(OpKind::ReadLog { job: "J".into(), node: 1 }, Outcome::Ok(Value::Log(entries)));
        assert!(s.contains("stdout#5:h, …] (20)"), "{s}");
        assert!(!s.contains("stdout#6"), "{s}");
    }
}
