//! Logs are exact: every node serves each job's log as the job wrote it, without gaps, duplicates or
//! reordering, and the nodes agree.

use std::collections::{BTreeMap, BTreeSet};

use super::facts::ended_at;
use super::{CheckConfig, Verdict, Violation};
use crate::history::{rel, History, LogEntry, Op, OpKind, Value};

/// The invariant's name in verdicts.
pub const NAME: &str = "logs";

/// What a job wrote to one stream, in sequence order: (seq, hash, the `AppendLog` record).
type Written<'a> = Vec<(u64, &'a str, &'a Op)>;

/// Checks every job that recorded its `AppendLog`s. A log read before any read showed the job ended must be a
/// prefix of what it wrote (per stream); one read after must hold everything surely written. An append whose
/// outcome is unknown (a job cut short, say by the loss of its agent, may or may not have written the rest of its
/// lines) may be missing from the end of a finished log, never from its middle, so a cut-short job's log must
/// still be a gap-free, duplicate-free, in-order prefix. The last full read of each node must agree with the other
/// nodes'. Each node's first bad read is reported, with the first differing position.
pub fn check(h: &History, _cfg: &CheckConfig) -> Verdict {
    let origin = h.origin();
    let mut written: BTreeMap<&str, BTreeMap<&str, Written<'_>>> = BTreeMap::new();
    for op in h.ops.iter().filter(|o| o.may_have_happened()) {
        if let OpKind::AppendLog { job, stream, seq, bytes_hash } = &op.kind {
            written.entry(job).or_default().entry(stream).or_default().push((*seq, bytes_hash, op));
        }
    }
    for streams in written.values_mut() {
        for w in streams.values_mut() {
            w.sort_by_key(|&(seq, _, op)| (seq, op.invoke, op.id));
        }
    }
    let ended = ended_at(h);
    let mut violations = Vec::new();
    for (&job, streams) in &written {
        let mut reads: Vec<(&Op, u64, &[LogEntry])> = h
            .ops
            .iter()
            .filter_map(|op| match (&op.kind, op.ok()) {
                (OpKind::ReadLog { job: j, node }, Some(Value::Log(entries))) if j == job => {
                    Some((op, *node, entries.as_slice()))
                }
                _ => None,
            })
            .collect();
        reads.sort_by_key(|(op, _, _)| (op.invoke, op.id));
        let mut bad: BTreeMap<u64, (Violation, usize)> = BTreeMap::new();
        let mut full_reads: BTreeMap<u64, (&Op, &[LogEntry])> = BTreeMap::new();
        for &(op, node, entries) in &reads {
            let full = ended.get(job).is_some_and(|&e| e <= op.invoke);
            if full {
                full_reads.insert(node, (op, entries));
            }
            if let Some((what, involved)) = compare(streams, entries, full) {
                let kind = if full { "after the job ended" } else { "while it ran" };
                bad.entry(node)
                    .or_insert_with(|| {
                        let msg = format!(
                            "job {job}: log read from node {node} at {} ({kind}): {what}",
                            rel(op.invoke, origin)
                        );
                        (Violation::new(msg, involved.into_iter().chain([op])), 0)
                    })
                    .1 += 1;
            }
        }
        violations.extend(super::verdict::first_per_node(bad));
        violations.extend(disagreements(job, &full_reads));
    }
    Verdict::new(NAME, written.len(), violations, vec![])
}

/// Compares one read with what was written, stream by stream; `full` asks for everything surely written rather
/// than a prefix.
/// Returns what is wrong at the first differing position and the `AppendLog` records involved.
fn compare<'a>(streams: &BTreeMap<&str, Written<'a>>, got: &[LogEntry], full: bool) -> Option<(String, Vec<&'a Op>)> {
    let names: BTreeSet<&str> = streams.keys().copied().chain(got.iter().map(|e| e.stream.as_str())).collect();
    let none = Vec::new();
    for stream in names {
        let want = streams.get(stream).unwrap_or(&none);
        let have: Vec<(u64, &str)> =
            got.iter().filter(|e| e.stream == stream).map(|e| (e.seq, e.bytes_hash.as_str())).collect();
        let same = want.iter().zip(&have).take_while(|((ws, wh, _), (hs, hh))| ws == hs && wh == hh).count();
        let by_seq = |seq: u64| want.iter().find(|w| w.0 == seq).map(|w| w.2);
        let found = match (want.get(same), have.get(same)) {
            (Some(&(ws, wh, wop)), Some(&(hs, hh))) => {
                Some(differ(stream, same, (ws, wh), (hs, hh), &have, wop, by_seq(hs)))
            }
            (None, Some(&(hs, _))) => Some(match by_seq(hs) {
                Some(op) => {
                    (format!("{stream} position {same}: #{hs} again after the whole log (duplicate)"), vec![op])
                }
                None => (format!("{stream} position {same}: #{hs} was never written"), vec![]),
            }),
            (Some(&(ws, _, wop)), None) if full && want[same..].iter().any(|w| w.2.ok().is_some()) => Some((
                format!(
                    "{stream} ends after {same} entries: #{ws} and {} more were written (missing tail)",
                    want.len() - same - 1
                ),
                vec![wop],
            )),
            _ => None,
        };
        if found.is_some() {
            return found;
        }
    }
    None
}

/// Describes the first position `i` where a stream read (`have`) differs from what was written: `want` is
/// written there, `got` was read.
fn differ<'a>(
    stream: &str,
    i: usize,
    want: (u64, &str),
    got: (u64, &str),
    have: &[(u64, &str)],
    want_op: &'a Op,
    got_op: Option<&'a Op>,
) -> (String, Vec<&'a Op>) {
    let ((ws, wh), (gs, gh)) = (want, got);
    let both = [Some(want_op), got_op].into_iter().flatten().collect();
    let at = format!("{stream} position {i}");
    if gs == ws {
        (format!("{at}: #{gs} reads as {gh} but the job wrote {wh} (wrong content)"), vec![want_op])
    } else if have[..i].iter().any(|h| h.0 == gs) {
        (format!("{at}: #{gs} again where #{ws} belongs (duplicate)"), both)
    } else if got_op.is_none() {
        (format!("{at}: #{gs} was never written (#{ws} belongs there)"), vec![want_op])
    } else if have[i + 1..].iter().any(|h| h.0 == ws) {
        (format!("{at}: #{gs} comes before #{ws} (reordered)"), both)
    } else {
        (format!("{at}: #{ws} is missing, #{gs} follows #{} (gap)", prev_seq(have, i)), both)
    }
}

/// The sequence number before position `i`, for messages.
fn prev_seq(have: &[(u64, &str)], i: usize) -> String {
    i.checked_sub(1).map_or_else(|| "the start".into(), |p| have[p].0.to_string())
}

/// The nodes whose last full read differs from the first node's, each with the first differing position.
fn disagreements(job: &str, full: &BTreeMap<u64, (&Op, &[LogEntry])>) -> Vec<Violation> {
    let mut it = full.iter();
    let Some((&first, &(first_op, first_log))) = it.next() else { return vec![] };
    it.filter(|(_, (_, log))| *log != first_log)
        .map(|(&node, &(op, log))| {
            let pos = first_log.iter().zip(log).take_while(|(a, b)| a == b).count();
            let show = |l: &[LogEntry]| {
                l.get(pos).map_or_else(|| "nothing".into(), |e| format!("{}#{}:{}", e.stream, e.seq, e.bytes_hash))
            };
            Violation::new(
                format!(
                    "job {job}: nodes {first} and {node} disagree on the finished log at position {pos}: {} vs {}",
                    show(first_log),
                    show(log)
                ),
                [first_op, op],
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::fixture::{excerpt_ids, ms, Hb};
    use crate::check::Status;
    use crate::history::Outcome;

    /// Job A writes stdout #0..#3 (hashes h0..h3) and stderr #0 (e0), then ends; returns the append ids.
    fn written() -> (Hb, Vec<u64>) {
        let mut b = Hb::new();
        b.submit("A", 0, 1);
        let ids = (0..4).map(|i| b.append("A", "stdout", i, &format!("h{i}"), 10 + i)).collect();
        b.append("A", "stderr", 0, "e0", 12);
        b.read("A", 50, 60, "completed", 1, None);
        (b, ids)
    }

    const GOOD: [(&str, u64, &str); 5] =
        [("stdout", 0, "h0"), ("stdout", 1, "h1"), ("stderr", 0, "e0"), ("stdout", 2, "h2"), ("stdout", 3, "h3")];

    fn verdict(b: &Hb) -> Verdict {
        check(&b.h, &CheckConfig::default())
    }

    fn one_violation(b: &Hb) -> Violation {
        let v = verdict(b);
        assert_eq!(v.status(), Status::Violated, "{v:?}");
        assert_eq!(v.violations.len(), 1, "{:?}", v.violations);
        v.violations[0].clone()
    }

    #[test]
    fn exact_logs_and_running_prefixes_hold() {
        let (mut b, _) = written();
        b.read_log("A", 1, 15, 16, &GOOD[..2]);
        b.read_log("A", 1, 70, 71, &GOOD);
        b.read_log("A", 2, 70, 71, &GOOD);
        let v = verdict(&b);
        assert_eq!((v.status(), v.checked), (Status::Holds, 1));
    }

    #[test]
    fn a_gap_is_reported_at_its_position() {
        let (mut b, ids) = written();
        let read = b.read_log("A", 1, 70, 71, &[GOOD[0], GOOD[2], GOOD[3], GOOD[4]]);
        let v = one_violation(&b);
        assert!(v.message.contains("stdout position 1: #1 is missing, #2 follows #0 (gap)"), "{}", v.message);
        assert_eq!(excerpt_ids(&v), vec![ids[1], ids[2], read]);
    }

    #[test]
    fn a_duplicate_is_reported() {
        let (mut b, _) = written();
        b.read_log("A", 1, 70, 71, &[GOOD[0], GOOD[1], GOOD[1], GOOD[2], GOOD[3], GOOD[4]]);
        let v = one_violation(&b);
        assert!(v.message.contains("stdout position 2: #1 again where #2 belongs (duplicate)"), "{}", v.message);
    }

    #[test]
    fn a_swapped_pair_is_reported_even_while_running() {
        let (mut b, ids) = written();
        let read = b.read_log("A", 1, 20, 21, &[GOOD[0], GOOD[3], GOOD[1]]);
        let v = one_violation(&b);
        assert!(v.message.contains("while it ran"), "{}", v.message);
        assert!(v.message.contains("stdout position 1: #2 comes before #1 (reordered)"), "{}", v.message);
        assert_eq!(excerpt_ids(&v), vec![ids[1], ids[2], read]);
    }

    #[test]
    fn a_missing_tail_after_the_end_is_reported() {
        let (mut b, _) = written();
        b.read_log("A", 1, 70, 71, &GOOD[..4]);
        let v = one_violation(&b);
        assert!(v.message.contains("stdout ends after 3 entries: #3 and 0 more"), "{}", v.message);
    }

    #[test]
    fn wrong_content_and_unwritten_entries_are_reported() {
        let (mut b, _) = written();
        b.read_log("A", 1, 70, 71, &[GOOD[0], ("stdout", 1, "zz"), GOOD[2], GOOD[3], GOOD[4]]);
        assert!(one_violation(&b).message.contains("#1 reads as zz but the job wrote h1"));
        let (mut b, _) = written();
        b.read_log("A", 1, 70, 71, &[GOOD[0], GOOD[1], GOOD[2], GOOD[3], GOOD[4], ("stdout", 9, "h9")]);
        assert!(one_violation(&b).message.contains("#9 was never written"));
    }

    /// Job K was cut short: it may have written stdout #0..#3 (hashes h0..h3), then it ended.
    fn cut_short() -> Hb {
        let mut b = Hb::new();
        b.submit("K", 0, 1);
        for i in 0..4 {
            let kind =
                OpKind::AppendLog { job: "K".into(), stream: "stdout".into(), seq: i, bytes_hash: format!("h{i}") };
            b.h.push(1, kind, ms(10), Some(ms(40)), Outcome::Unknown("the agent was killed".into()));
        }
        b.read("K", 50, 60, "failed", 1, None);
        b
    }

    #[test]
    fn a_cut_short_log_may_end_anywhere_but_stays_a_prefix() {
        for len in [0, 2, 4] {
            let mut b = cut_short();
            let prefix: Vec<_> = [GOOD[0], GOOD[1], GOOD[3], GOOD[4]][..len].to_vec();
            b.read_log("K", 1, 20, 21, &prefix[..len / 2]);
            for node in 1..=3 {
                b.read_log("K", node, 70, 71, &prefix);
            }
            assert_eq!(verdict(&b).status(), Status::Holds, "{len}: {:?}", verdict(&b));
        }
        let mut b = cut_short();
        b.read_log("K", 1, 70, 71, &[GOOD[0], GOOD[3]]);
        assert!(one_violation(&b).message.contains("#1 is missing, #2 follows #0 (gap)"));
        let mut b = cut_short();
        b.read_log("K", 1, 70, 71, &[GOOD[0], GOOD[0]]);
        assert!(one_violation(&b).message.contains("(duplicate)"));
        let mut b = cut_short();
        b.read_log("K", 1, 70, 71, &[GOOD[0], ("stdout", 9, "h9")]);
        assert!(one_violation(&b).message.contains("#9 was never written"));
    }

    #[test]
    fn nodes_must_agree_on_a_cut_short_log() {
        let mut b = cut_short();
        b.read_log("K", 1, 70, 71, &GOOD[..2]);
        b.read_log("K", 2, 70, 71, &[GOOD[0]]);
        let v = one_violation(&b);
        assert!(v.message.contains("nodes 1 and 2 disagree on the finished log at position 1"), "{}", v.message);
    }

    #[test]
    fn nodes_that_disagree_are_reported() {
        let (mut b, _) = written();
        let one = b.read_log("A", 1, 70, 71, &GOOD);
        let two = b.read_log("A", 2, 70, 71, &GOOD[..4]);
        let v = verdict(&b);
        assert_eq!(v.violations.len(), 2, "{:?}", v.violations);
        let disagree = v.violations.iter().find(|v| v.message.contains("disagree")).expect("a disagreement");
        assert!(disagree.message.contains("nodes 1 and 2 disagree on the finished log at position 4"));
        assert!(disagree.message.contains("stdout#3:h3 vs nothing"), "{}", disagree.message);
        assert_eq!(excerpt_ids(disagree), vec![one, two]);
    }

    #[test]
    fn one_violation_per_node_however_many_bad_reads() {
        let (mut b, _) = written();
        b.read_log("A", 1, 70, 71, &GOOD[1..]);
        b.read_log("A", 1, 80, 81, &GOOD[1..]);
        let v = one_violation(&b);
        assert!(v.message.contains("(and 1 more bad reads from that node)"), "{}", v.message);
    }
}
