//! Outputs are durable and exact: once an upload is acknowledged, every final read of that output returns its
//! sha256, on every node.

use std::collections::BTreeMap;

use super::facts::acked_at;
use super::{CheckConfig, Verdict, Violation};
use crate::history::{rel, History, Op, OpKind, Value};

/// The invariant's name in verdicts.
pub const NAME: &str = "outputs";

/// Checks every (job, path) that recorded an upload. Any read returning a sha256 nobody uploaded is a violation.
/// A final read (invoked after the heal and after the first acknowledged upload) must return the sha256 of an
/// upload, and final reads must agree across nodes (each node's last one is compared). No read may return an
/// upload overwritten before it began (acknowledged before another acknowledged upload began, which was
/// acknowledged before the read).
pub fn check(h: &History, cfg: &CheckConfig) -> Verdict {
    let heal = cfg.heal_time(h);
    let origin = h.origin();
    let mut uploads: BTreeMap<(&str, &str), Vec<&Op>> = BTreeMap::new();
    for op in h.ops.iter().filter(|o| o.may_have_happened()) {
        if let OpKind::UploadOutput { job, path, .. } = &op.kind {
            uploads.entry((job, path)).or_default().push(op);
        }
    }
    let mut violations = Vec::new();
    for (&(job, path), ups) in &uploads {
        let acked: Vec<&Op> = ups.iter().copied().filter(|o| o.ok().is_some()).collect();
        // An acknowledged upload is overwritten, for a read, by an acknowledged upload that began after it
        // completed and completed before the read began.
        let overwritten = |u: &Op, read: &Op| {
            u.ok().is_some()
                && u.complete.is_some_and(|c| acked.iter().any(|a| a.invoke > c && acked_at(a) < read.invoke))
        };
        let final_from = acked.iter().map(|o| acked_at(o)).min().map(|t| t.max(heal));
        let mut reads: Vec<(&Op, u64, Option<&str>)> = h
            .ops
            .iter()
            .filter_map(|op| match (&op.kind, op.ok()) {
                (OpKind::ReadOutput { job: j, path: p, node }, Some(Value::Output(sha))) if j == job && p == path => {
                    Some((op, *node, sha.as_deref()))
                }
                _ => None,
            })
            .collect();
        reads.sort_by_key(|(op, _, _)| (op.invoke, op.id));
        let mut bad: BTreeMap<u64, (Violation, usize)> = BTreeMap::new();
        let mut last_final: BTreeMap<u64, (&Op, Option<&str>)> = BTreeMap::new();
        for &(op, node, sha) in &reads {
            let is_final = final_from.is_some_and(|t| op.invoke >= t);
            if is_final {
                last_final.insert(node, (op, sha));
            }
            let what = match sha {
                Some(s) if !ups.iter().any(|u| sha_of(u) == s) => {
                    Some((format!("returned sha256 {s}, which was never uploaded"), ups.clone()))
                }
                Some(s) if ups.iter().all(|u| sha_of(u) != s || overwritten(u, op)) => {
                    Some((format!("returned sha256 {s} of an upload since overwritten"), acked.clone()))
                }
                None if is_final => Some(("has no such output".to_string(), acked.clone())),
                _ => None,
            };
            if let Some((what, involved)) = what {
                let when = if is_final { "final read" } else { "read" };
                bad.entry(node)
                    .or_insert_with(|| {
                        let msg = format!(
                            "output {path} of job {job}: node {node}, {when} at {}, {what}; acknowledged upload(s): {}",
                            rel(op.invoke, origin),
                            shas(&acked)
                        );
                        (Violation::new(msg, involved.into_iter().chain([op])), 0)
                    })
                    .1 += 1;
            }
        }
        violations.extend(super::verdict::first_per_node(bad));
        let mut finals = last_final.iter();
        if let Some((&first, &(first_op, first_sha))) = finals.next() {
            for (&node, &(op, sha)) in finals.filter(|(_, (_, sha))| *sha != first_sha) {
                violations.push(Violation::new(
                    format!(
                        "output {path} of job {job}: nodes {first} and {node} disagree: {} vs {}",
                        first_sha.unwrap_or("nothing"),
                        sha.unwrap_or("nothing")
                    ),
                    [first_op, op],
                ));
            }
        }
    }
    Verdict::new(NAME, uploads.len(), violations, vec![])
}

/// The sha256 an upload uploaded.
fn sha_of(op: &Op) -> &str {
    match &op.kind {
        OpKind::UploadOutput { sha256, .. } => sha256,
        _ => "",
    }
}

/// The sha256s of some uploads, for messages.
fn shas(ops: &[&Op]) -> String {
    if ops.is_empty() {
        return "none".into();
    }
    ops.iter().map(|o| sha_of(o)).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::fixture::{excerpt_ids, Hb};
    use crate::check::Status;

    fn verdict(b: &Hb) -> Verdict {
        check(&b.h, &CheckConfig::default())
    }

    #[test]
    fn the_acknowledged_sha_everywhere_holds() {
        let mut b = Hb::new();
        b.read_output("A", "out/x", 1, 0, 5, None);
        b.upload("A", "out/x", "aaa", 10, Some(20), true);
        b.fault(30, 100);
        b.read_output("A", "out/x", 2, 40, 45, None); // during the fault: not final
        b.read_output("A", "out/x", 1, 110, 115, Some("aaa"));
        b.read_output("A", "out/x", 2, 110, 115, Some("aaa"));
        let v = verdict(&b);
        assert_eq!((v.status(), v.checked), (Status::Holds, 1));
    }

    #[test]
    fn a_wrong_sha_is_a_violation() {
        let mut b = Hb::new();
        let up = b.upload("A", "out/x", "aaa", 10, Some(20), true);
        b.read_output("A", "out/x", 1, 110, 115, Some("aaa"));
        let read = b.read_output("A", "out/x", 2, 110, 115, Some("bbb"));
        let v = verdict(&b);
        assert_eq!(v.status(), Status::Violated);
        let wrong = &v.violations[0];
        assert!(wrong
            .message
            .contains("node 2, final read at +100.000ms, returned sha256 bbb, which was never uploaded"));
        assert_eq!(excerpt_ids(wrong), vec![up, read]);
        assert!(v.violations.iter().any(|v| v.message.contains("nodes 1 and 2 disagree: aaa vs bbb")));
    }

    #[test]
    fn a_missing_acknowledged_output_is_a_violation() {
        let mut b = Hb::new();
        b.upload("A", "out/x", "aaa", 10, Some(20), true);
        b.read_output("A", "out/x", 3, 30, 35, None);
        let v = verdict(&b);
        assert!(v.violations[0].message.contains("has no such output"), "{:?}", v.violations);
    }

    #[test]
    fn an_unknown_upload_may_or_may_not_be_there() {
        let mut b = Hb::new();
        b.upload("A", "out/x", "aaa", 10, None, false);
        b.read_output("A", "out/x", 1, 30, 35, None);
        b.read_output("A", "out/x", 2, 30, 35, Some("aaa"));
        assert_eq!(verdict(&b).status(), Status::Holds);
    }

    #[test]
    fn an_overwritten_sha_is_stale_in_a_final_read() {
        let mut b = Hb::new();
        b.upload("A", "out/x", "aaa", 10, Some(20), true);
        b.read_output("A", "out/x", 1, 21, 22, Some("aaa"));
        b.upload("A", "out/x", "bbb", 30, Some(40), true);
        b.read_output("A", "out/x", 1, 50, 55, Some("aaa"));
        let v = verdict(&b);
        assert_eq!(v.violations.len(), 1, "{:?}", v.violations);
        assert!(v.violations[0].message.contains("returned sha256 aaa of an upload since overwritten"));
    }
}
