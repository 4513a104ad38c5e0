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
//!
//! Most of a busy log is not here at all: a large batch is stored as a log
//! chunk (see `chunks`) and its block only names it. Reading such a log
//! takes a [`LogView`] of the part wanted out of the state, then the
//! chunks it names.

use std::sync::Arc;

use bm_api::jobs::JobEvent;
use serde::{Deserialize, Serialize};

use super::command::Time;
use bm_api::eventlog::{EventLog, PackError};

/// Single events (control messages) share a block until it holds this many
/// bytes of text; then the next starts a new one.
const SMALL_BLOCK: u64 = 64 << 10;

/// A run of a job's events.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Block {
    /// Events held in the state (control messages, small batches).
    Inline(Arc<EventLog>),
    /// Events `from..to` of the log chunk with this sha256.
    Chunk {
        /// The chunk's sha256.
        sha: [u8; 32],
        /// Its first event here.
        from: u64,
        /// Past its last event here.
        to: u64,
    },
}

impl Block {
    fn len(&self) -> u64 {
        match self {
            Block::Inline(log) => log.len(),
            Block::Chunk { from, to, .. } => to.saturating_sub(*from),
        }
    }
}

/// A job's events in blocks; `seq` = position over all blocks.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JobLog {
    blocks: Vec<Block>,
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
        let blocks = Vec::<Block>::deserialize(d)?;
        let mut log = JobLog::default();
        for b in blocks {
            if let Block::Chunk { from, to, .. } = b {
                if from > to {
                    return Err(serde::de::Error::custom(format!("a log chunk's events run from {from} to {to}")));
                }
            }
            log.push_block(b);
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

    /// Appends `block` unless it is empty; says whether it did.
    fn push_block(&mut self, block: Block) -> bool {
        if block.len() == 0 {
            return false;
        }
        let end = self.len() + block.len();
        self.blocks.push(block);
        self.ends.push(end);
        true
    }

    fn start(&self, b: usize) -> u64 {
        if b == 0 {
            0
        } else {
            self.ends[b - 1]
        }
    }

    /// Appends one event with a proposer's time.
    pub fn push(&mut self, stream: &str, task: Option<u32>, time: Time, payload: &str) -> Result<(), PackError> {
        match self.blocks.last_mut() {
            Some(Block::Inline(last)) if last.text_len() < SMALL_BLOCK => {
                Arc::make_mut(last).push(stream, task, time, payload)?;
                *self.ends.last_mut().expect("a block has an end") += 1;
            }
            _ => {
                let mut block = EventLog::default();
                block.push(stream, task, time, payload)?;
                self.push_block(Block::Inline(Arc::new(block)));
            }
        }
        Ok(())
    }

    /// Appends events `from..to` of a batch: the whole batch is moved in
    /// as it is; part of one is copied.
    pub fn append_range(&mut self, batch: EventLog, from: u64, to: u64) {
        if from == 0 && to >= batch.len() {
            self.push_block(Block::Inline(Arc::new(batch)));
        } else {
            self.push_block(Block::Inline(Arc::new(batch.slice(from, to))));
        }
    }

    /// Appends events `from..to` of the log chunk `sha`; says whether the
    /// log now refers to the chunk (not when the range is empty).
    pub fn append_chunk(&mut self, sha: [u8; 32], from: u64, to: u64) -> bool {
        self.push_block(Block::Chunk { sha, from, to })
    }

    /// The blocks holding events `from..to` (clamped), to be read once the
    /// state is let go.
    pub fn view(&self, from: u64, to: u64) -> LogView {
        let to = to.min(self.len());
        let mut parts = Vec::new();
        // The first block ending after `from` holds it.
        let mut b = self.ends.partition_point(|&end| end <= from);
        while b < self.blocks.len() && self.start(b) < to {
            parts.push((self.start(b), self.blocks[b].clone()));
            b += 1;
        }
        LogView { from, to, parts }
    }

    /// The sha256 of every log chunk this log names.
    pub fn chunks(&self) -> impl Iterator<Item = &[u8; 32]> + '_ {
        self.blocks.iter().filter_map(|b| match b {
            Block::Chunk { sha, .. } => Some(sha),
            Block::Inline(_) => None,
        })
    }

    /// Every event, in order, of a log with no chunks (tests).
    #[cfg(test)]
    pub fn iter(&self) -> impl Iterator<Item = JobEvent> {
        self.page(0, self.len()).into_iter()
    }

    /// Events `from..to` of a log with no chunks (tests).
    #[cfg(test)]
    pub fn page(&self, from: u64, to: u64) -> Vec<JobEvent> {
        self.view(from, to).events(|_| None).expect("a log without chunks")
    }

    /// The last event of a log with no chunks (tests).
    #[cfg(test)]
    pub fn last(&self) -> Option<JobEvent> {
        self.len().checked_sub(1).and_then(|i| self.page(i, i + 1).pop())
    }

    /// Forgets every event (retention purge).
    pub fn clear(&mut self) {
        *self = JobLog::default();
    }
}

/// Part of a job's log taken out of the state: inline events, and the
/// names of the chunks holding the rest.
#[derive(Clone, Debug)]
pub struct LogView {
    from: u64,
    to: u64,
    /// Each block with the sequence number of its first event.
    parts: Vec<(u64, Block)>,
}

impl LogView {
    /// The chunks to load before [`LogView::events`].
    pub fn chunks(&self) -> Vec<[u8; 32]> {
        let mut out: Vec<[u8; 32]> = self
            .parts
            .iter()
            .filter_map(|(_, b)| match b {
                Block::Chunk { sha, .. } => Some(*sha),
                Block::Inline(_) => None,
            })
            .collect();
        out.dedup();
        out
    }

    /// The events, numbered by their place in the job's log, with each
    /// chunk from `chunk`; a chunk it does not give (or one shorter than
    /// its reference) is the error.
    pub fn events(&self, chunk: impl Fn(&[u8; 32]) -> Option<Arc<EventLog>>) -> Result<Vec<JobEvent>, [u8; 32]> {
        let mut out = Vec::with_capacity(self.to.saturating_sub(self.from) as usize);
        for (start, block) in &self.parts {
            let lo = self.from.max(*start) - start;
            let hi = self.to.min(start + block.len()) - start;
            let (log, base) = match block {
                Block::Inline(log) => (log.clone(), 0),
                Block::Chunk { sha, from, to } => match chunk(sha) {
                    Some(log) if log.len() >= *to => (log, *from),
                    _ => return Err(*sha),
                },
            };
            out.extend(log.page(base + lo, base + hi).into_iter().map(|mut e| {
                e.seq = e.seq - base + start;
                e
            }));
        }
        Ok(out)
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
        let inline = |l: &JobLog, i: usize| match &l.blocks[i] {
            Block::Inline(b) => b.clone(),
            Block::Chunk { .. } => panic!("block {i} is a chunk"),
        };
        assert!(Arc::ptr_eq(&inline(&log, 0), &inline(&before, 0)), "an untouched block is shared, not copied");
        assert!(!Arc::ptr_eq(&inline(&log, 1), &inline(&before, 1)), "the written block was copied");
        let payloads = |l: &JobLog| l.iter().map(|e| e.payload).collect::<Vec<_>>();
        assert_eq!(payloads(&before), ["a", "b", "c"]);
        assert_eq!(payloads(&log), ["a", "b", "c", "more", "d"]);
    }

    #[test]
    fn chunk_blocks_are_read_through_the_chunks_they_name() {
        let (c1, c2) = ([1u8; 32], [2u8; 32]);
        let chunk1 = Arc::new(batch(&["x", "a", "b", "c"]));
        let chunk2 = Arc::new(batch(&["d", "e"]));
        let mut log = JobLog::default();
        log.push("control", None, t(0), "start").unwrap();
        log.append_chunk(c1, 1, 4);
        log.append_chunk(c2, 0, 0);
        log.append_chunk(c2, 0, 2);
        log.push("control", None, t(2), "end").unwrap();
        assert_eq!(log.len(), 7);
        assert_eq!(log.chunks().collect::<Vec<_>>(), [&c1, &c2], "an empty reference is not kept");
        let both = |sha: &[u8; 32]| match *sha {
            s if s == c1 => Some(chunk1.clone()),
            s if s == c2 => Some(chunk2.clone()),
            _ => None,
        };
        let want = ["start", "a", "b", "c", "d", "e", "end"];
        for from in 0..8 {
            for to in from..9 {
                let view = log.view(from, to);
                let got: Vec<(u64, String)> =
                    view.events(both).unwrap().into_iter().map(|e| (e.seq, e.payload)).collect();
                let expect: Vec<(u64, String)> = (from..to.min(7)).map(|i| (i, want[i as usize].to_string())).collect();
                assert_eq!(got, expect, "view {from}..{to}");
            }
        }
        assert_eq!(log.view(2, 3).chunks(), [c1]);
        assert_eq!(log.view(0, 7).events(|s| (*s == c1).then(|| chunk1.clone())).unwrap_err(), c2);
        // A chunk shorter than its reference is as good as missing.
        assert_eq!(log.view(0, 7).events(|_| Some(chunk2.clone())).unwrap_err(), c1);
        let round: JobLog = codec::decode("log", &codec::encode("log", &log).unwrap()).unwrap();
        assert_eq!(round, log);
        // A reference running backwards is refused on decoding.
        let bad = vec![Block::Chunk { sha: c1, from: 3, to: 1 }];
        let e = codec::decode::<JobLog>("log", &codec::encode("log", &bad).unwrap()).unwrap_err();
        assert!(e.to_string().contains("from 3 to 1"), "{e}");
    }
}
