//! A job's whole event stream: the batches it was sent in, kept as they came.
//!
//! One [`EventLog`] grown by appending would copy a busy job's log again at
//! every doubling, and make the kernel zero the fresh pages each time (a
//! profile of 16 agents logging showed a third of the leader's CPU there).
//! A batch that arrives from Raft is instead moved in as a block of its
//! own; a lookup by sequence number is a binary search over the blocks.
//! Blocks are shared (`Arc`): the state is copied on write while a snapshot
//! holds it, and a running job's record is copied then with its whole log.
//! Sharing makes that copy one pointer per block; only a small block still
//! taking single events is copied when next written.

use std::sync::Arc;

use bm_api::jobs::JobEvent;
use serde::{Deserialize, Serialize};

use super::command::Time;
use super::eventlog::{EventLog, PackError};

/// Single events (control messages) share a block until it holds this many
/// bytes of text; then the next starts a new one.
const SMALL_BLOCK: u64 = 64 << 10;

/// A job's events in blocks; `seq` = position over all blocks.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JobLog {
    blocks: Vec<Arc<EventLog>>,
    /// Events up to and including each block (so `ends.last()` = len).
    ends: Vec<u64>,
}

impl Serialize for JobLog {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.blocks.serialize(s)
    }
}

impl<'de> Deserialize<'de> for JobLog {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let blocks = Vec::<EventLog>::deserialize(d)?;
        let mut log = JobLog::default();
        for b in blocks {
            log.push_block(Arc::new(b));
        }
        Ok(log)
    }
}

impl JobLog {
    /// How many events.
    pub fn len(&self) -> u64 {
        self.ends.last().copied().unwrap_or(0)
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn push_block(&mut self, block: Arc<EventLog>) {
        if block.is_empty() {
            return;
        }
        let end = self.len() + block.len();
        self.blocks.push(block);
        self.ends.push(end);
    }

    /// Appends one event with a proposer's time.
    pub fn push(&mut self, stream: &str, task: Option<u32>, time: Time, payload: &str) -> Result<(), PackError> {
        match self.blocks.last_mut() {
            Some(last) if last.text_len() < SMALL_BLOCK => {
                Arc::make_mut(last).push(stream, task, time, payload)?;
                *self.ends.last_mut().expect("a block has an end") += 1;
            }
            _ => {
                let mut block = EventLog::default();
                block.push(stream, task, time, payload)?;
                self.push_block(Arc::new(block));
            }
        }
        Ok(())
    }

    /// Appends events `from..to` of a batch: the whole batch is moved in
    /// as it is; part of one is copied.
    pub fn append_range(&mut self, batch: EventLog, from: u64, to: u64) {
        if from == 0 && to >= batch.len() {
            self.push_block(Arc::new(batch));
        } else {
            self.push_block(Arc::new(batch.slice(from, to)));
        }
    }

    /// Event `seq`.
    pub fn get(&self, seq: u64) -> Option<JobEvent> {
        self.page(seq, seq.saturating_add(1)).pop()
    }

    /// The last event.
    pub fn last(&self) -> Option<JobEvent> {
        self.len().checked_sub(1).and_then(|i| self.get(i))
    }

    /// Events `from..to` (clamped), numbered by their place in the job's log.
    pub fn page(&self, from: u64, to: u64) -> Vec<JobEvent> {
        let to = to.min(self.len());
        let mut out = Vec::with_capacity(to.saturating_sub(from) as usize);
        let mut seq = from;
        // The first block ending after `seq` holds it.
        let mut b = self.ends.partition_point(|&end| end <= seq);
        while seq < to {
            let start = if b == 0 { 0 } else { self.ends[b - 1] };
            let upto = self.ends[b].min(to);
            out.extend(self.blocks[b].page(seq - start, upto - start).into_iter().map(|mut e| {
                e.seq += start;
                e
            }));
            seq = upto;
            b += 1;
        }
        out
    }

    /// Every event, in order.
    pub fn iter(&self) -> impl Iterator<Item = JobEvent> + '_ {
        self.blocks.iter().zip(std::iter::once(0).chain(self.ends.iter().copied())).flat_map(|(b, start)| {
            b.iter().map(move |mut e| {
                e.seq += start;
                e
            })
        })
    }

    /// Forgets every event (retention purge).
    pub fn clear(&mut self) {
        *self = JobLog::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sm::EventIn;
    use bm_raft::codec;
    use chrono::DateTime;

    fn t(s: i64) -> Time {
        DateTime::from_timestamp(1_700_000_000 + s, 0).expect("in range")
    }

    fn batch(lines: &[&str]) -> EventLog {
        EventLog::from_events(lines.iter().map(|l| EventIn {
            stream: "stdout".into(),
            task: None,
            time: t(1),
            payload: l.to_string(),
        }))
        .unwrap()
    }

    #[test]
    fn events_across_blocks_are_numbered_and_paged_as_one_stream() {
        let mut log = JobLog::default();
        log.push("control", None, t(0), "start").unwrap();
        log.append_range(batch(&["a", "b", "c"]), 0, 3);
        log.append_range(batch(&["x", "d", "e"]), 1, 3);
        log.append_range(batch(&[]), 0, 0);
        log.push("control", None, t(2), "end").unwrap();
        let all: Vec<(u64, String)> = log.iter().map(|e| (e.seq, e.payload)).collect();
        let want = ["start", "a", "b", "c", "d", "e", "end"];
        assert_eq!(all, want.iter().enumerate().map(|(i, p)| (i as u64, p.to_string())).collect::<Vec<_>>());
        for from in 0..9 {
            for to in from..9 {
                let page: Vec<(u64, String)> = log.page(from, to).into_iter().map(|e| (e.seq, e.payload)).collect();
                let expect: Vec<(u64, String)> = all.iter().filter(|(s, _)| *s >= from && *s < to).cloned().collect();
                assert_eq!(page, expect, "page {from}..{to}");
            }
        }
        assert_eq!((log.len(), log.last().unwrap().payload.as_str()), (7, "end"));
        let round: JobLog = codec::decode("log", &codec::encode("log", &log).unwrap()).unwrap();
        assert_eq!(round, log);
    }

    #[test]
    fn a_copy_shares_the_blocks_and_a_write_to_it_leaves_the_original_alone() {
        let mut log = JobLog::default();
        log.append_range(batch(&["a", "b"]), 0, 2);
        log.append_range(batch(&["c"]), 0, 1);
        let before = log.clone();
        // A single event goes into the last block while it is small: that
        // block is copied, the earlier one stays shared.
        log.push("control", None, t(3), "more").unwrap();
        log.append_range(batch(&["d"]), 0, 1);
        assert!(Arc::ptr_eq(&log.blocks[0], &before.blocks[0]), "an untouched block is shared, not copied");
        assert!(!Arc::ptr_eq(&log.blocks[1], &before.blocks[1]), "the written block was copied");
        let payloads = |l: &JobLog| l.iter().map(|e| e.payload).collect::<Vec<_>>();
        assert_eq!(payloads(&before), ["a", "b", "c"]);
        assert_eq!(payloads(&log), ["a", "b", "c", "more", "d"]);
    }
}
