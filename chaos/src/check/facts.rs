//! Questions several checkers ask of a history: which jobs were acknowledged, what reads of a job showed.

use std::collections::BTreeMap;

use crate::history::{History, JobView, Op, OpKind, Value};

/// Every job whose submission was acknowledged, by id, with its (first) acknowledged submit.
pub(crate) fn acked_submits(h: &History) -> BTreeMap<&str, &Op> {
    let mut acked: BTreeMap<&str, &Op> = BTreeMap::new();
    for op in &h.ops {
        if let (OpKind::SubmitJob { .. }, Some(Value::Job(id))) = (&op.kind, op.ok()) {
            let first = acked.entry(id.as_str()).or_insert(op);
            if op.invoke < first.invoke {
                *first = op;
            }
        }
    }
    acked
}

/// When an operation's acknowledgement was known: its completion, or its invocation if none was recorded.
pub(crate) fn acked_at(op: &Op) -> u64 {
    op.complete.unwrap_or(op.invoke).max(op.invoke)
}

/// What a successful `ReadJob` showed: the job id and its view (`None`: no such job).
pub(crate) fn job_read(op: &Op) -> Option<(&str, Option<&JobView>)> {
    match (&op.kind, op.ok()) {
        (OpKind::ReadJob { job, .. }, Some(Value::View(view))) => Some((job.as_str(), view.as_ref())),
        _ => None,
    }
}

/// Whether a job state name is one of bm's ends.
pub(crate) fn is_terminal(state: &str) -> bool {
    matches!(state, "completed" | "failed" | "cancelled")
}

/// For each job, when a read first showed it ended (the read's completion): from then on its log and outputs
/// are final.
pub(crate) fn ended_at(h: &History) -> BTreeMap<&str, u64> {
    let mut ended: BTreeMap<&str, u64> = BTreeMap::new();
    for op in &h.ops {
        if let Some((job, Some(view))) = job_read(op) {
            if is_terminal(&view.state) {
                let t = acked_at(op);
                let e = ended.entry(job).or_insert(t);
                *e = (*e).min(t);
            }
        }
    }
    ended
}

/// A node's name in messages: its number, or "any node" when the workload did not pick one.
pub(crate) fn node_name(node: Option<u64>) -> String {
    node.map_or_else(|| "any node".into(), |n| format!("node {n}"))
}
