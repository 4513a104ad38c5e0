//! A job's events, packed.
//!
//! Log lines are most of what goes through Raft. Kept as one struct per
//! line (`stream`, `task`, `time`, `payload`), every line was decoded,
//! allocated and its time parsed from text again at each hop: the agent
//! link, the proposer, and the apply on every node. Packed, a batch is
//! three blocks whatever its length: the names of its streams, one
//! fixed-size record per event, and the text of every payload end to end.
//! Encoding and decoding a batch is then a few copies, and a job's whole
//! log in the state is the same three blocks grown by appending. Events
//! are turned back into [`JobEvent`]s only when someone reads them.

use std::borrow::Borrow;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::agent::AgentEvent;
use crate::jobs::JobEvent;

/// A point in time, as events carry it.
pub type Time = DateTime<Utc>;

/// Bytes of one record: stream (u16), has-task flag (u8), task (u32),
/// time in nanoseconds since 1970 (i64), end of the payload in the text
/// (u64), all little-endian.
const RECORD: usize = 2 + 1 + 4 + 8 + 8;

/// Why a batch of events cannot be packed (the agent sent something that
/// does not fit; nothing is stored).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PackError {
    /// A time outside what nanoseconds since 1970 in 64 bits can hold
    /// (about 1677 to 2262).
    #[error("event {index}: time {time} is out of range")]
    TimeOutOfRange {
        /// Position of the event in its batch.
        index: usize,
        /// The time it carried.
        time: Time,
    },
    /// More distinct stream names in one log than a record can name.
    #[error("more than {} distinct streams", u16::MAX)]
    TooManyStreams,
}

/// Events in order, packed (see the module documentation). Used both for
/// a batch in a [`super::Command::JobEvents`] and for a job's whole log.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(try_from = "Raw")]
pub struct EventLog {
    streams: Vec<String>,
    records: Vec<u8>,
    text: String,
}

/// The wire and snapshot form, checked before it becomes an [`EventLog`].
#[derive(Serialize, Deserialize)]
struct Raw {
    streams: Vec<String>,
    #[serde(with = "crate::byte_block")]
    records: Vec<u8>,
    text: String,
}

/// [`Raw`] borrowed, so that writing a log (a snapshot holds every job's)
/// copies nothing first.
#[derive(Serialize)]
struct RawRef<'a> {
    streams: &'a [String],
    #[serde(with = "crate::byte_block")]
    records: &'a [u8],
    text: &'a str,
}

impl Serialize for EventLog {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        RawRef { streams: &self.streams, records: &self.records, text: &self.text }.serialize(s)
    }
}

#[cfg(test)]
impl From<EventLog> for Raw {
    fn from(l: EventLog) -> Self {
        Raw { streams: l.streams, records: l.records, text: l.text }
    }
}

impl TryFrom<Raw> for EventLog {
    type Error = String;

    /// A malformed log is refused here, so that every accessor below can
    /// index without checking (and a corrupt Raft entry or snapshot stops
    /// the node instead of being half read).
    fn try_from(r: Raw) -> Result<Self, String> {
        if !r.records.len().is_multiple_of(RECORD) {
            return Err(format!("event records of {} bytes are not whole {RECORD}-byte records", r.records.len()));
        }
        let log = EventLog { streams: r.streams, records: r.records, text: r.text };
        let mut start = 0usize;
        for i in 0..log.records.len() / RECORD {
            let rec = log.record(i);
            if usize::from(rec.stream) >= log.streams.len() {
                return Err(format!("event {i} names stream {} of {}", rec.stream, log.streams.len()));
            }
            let end = usize::try_from(rec.end).map_err(|_| format!("event {i}: end {} out of range", rec.end))?;
            if end < start || end > log.text.len() || !log.text.is_char_boundary(end) {
                return Err(format!("event {i}: payload end {end} is not after {start} within the text"));
            }
            start = end;
        }
        if start != log.text.len() {
            return Err(format!("the text has {} bytes after the last event", log.text.len() - start));
        }
        Ok(log)
    }
}

/// One record, decoded.
struct Record {
    stream: u16,
    task: Option<u32>,
    nanos: i64,
    end: u64,
}

impl EventLog {
    /// Packs events as an agent sent them (owned or borrowed).
    pub fn from_events<E: Borrow<AgentEvent>>(events: impl IntoIterator<Item = E>) -> Result<Self, PackError> {
        let mut log = EventLog::default();
        for (index, e) in events.into_iter().enumerate() {
            let e = e.borrow();
            let nanos = e.time.timestamp_nanos_opt().ok_or(PackError::TimeOutOfRange { index, time: e.time })?;
            log.push_nanos(&e.stream, e.task, nanos, &e.payload)?;
        }
        Ok(log)
    }

    /// How many events.
    pub fn len(&self) -> u64 {
        (self.records.len() / RECORD) as u64
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Bytes packed: the records and the text (what decides whether a batch
    /// goes through Raft inline or as a log chunk).
    pub fn packed_len(&self) -> u64 {
        (self.records.len() + self.text.len()) as u64
    }

    /// Bytes of payload text, all events together.
    pub fn text_len(&self) -> u64 {
        self.text.len() as u64
    }

    /// Appends one event with a proposer's time (a time out of range, which
    /// no clock before 2262 gives, is kept as the nearest one in range).
    pub fn push(&mut self, stream: &str, task: Option<u32>, time: Time, payload: &str) -> Result<(), PackError> {
        let nanos = time.timestamp_nanos_opt().unwrap_or(if time.timestamp() < 0 { i64::MIN } else { i64::MAX });
        self.push_nanos(stream, task, nanos, payload)
    }

    fn push_nanos(&mut self, stream: &str, task: Option<u32>, nanos: i64, payload: &str) -> Result<(), PackError> {
        let stream = self.stream_index(stream)?;
        self.text.push_str(payload);
        self.push_record(stream, task, nanos);
        Ok(())
    }

    fn push_record(&mut self, stream: u16, task: Option<u32>, nanos: i64) {
        self.records.extend_from_slice(&stream.to_le_bytes());
        self.records.push(u8::from(task.is_some()));
        self.records.extend_from_slice(&task.unwrap_or(0).to_le_bytes());
        self.records.extend_from_slice(&nanos.to_le_bytes());
        self.records.extend_from_slice(&(self.text.len() as u64).to_le_bytes());
    }

    fn stream_index(&mut self, stream: &str) -> Result<u16, PackError> {
        if let Some(i) = self.streams.iter().position(|s| s == stream) {
            return Ok(i as u16);
        }
        let i = u16::try_from(self.streams.len()).map_err(|_| PackError::TooManyStreams)?;
        self.streams.push(stream.to_string());
        Ok(i)
    }

    /// Events `from..to` (clamped) as a log of their own.
    pub fn slice(&self, from: u64, to: u64) -> EventLog {
        let to = to.min(self.len()) as usize;
        let from = (from as usize).min(to);
        let skip = self.start(from);
        let mut records = Vec::with_capacity((to - from) * RECORD);
        for i in from..to {
            let r = &self.records[i * RECORD..(i + 1) * RECORD];
            records.extend_from_slice(&r[..15]);
            records.extend_from_slice(&(self.record(i).end - skip as u64).to_le_bytes());
        }
        EventLog { streams: self.streams.clone(), records, text: self.text[skip..self.start(to)].to_string() }
    }

    /// Bytes of payload of event `i`.
    pub fn payload_len(&self, i: u64) -> u64 {
        let i = i as usize;
        (self.start(i + 1) - self.start(i)) as u64
    }

    /// Event `i`, numbered `seq` = `i`.
    pub fn get(&self, i: u64) -> Option<JobEvent> {
        (i < self.len()).then(|| self.event(i as usize))
    }

    /// Events `from..to` (clamped to the log).
    pub fn page(&self, from: u64, to: u64) -> Vec<JobEvent> {
        let to = to.min(self.len());
        (from.min(to)..to).map(|i| self.event(i as usize)).collect()
    }

    /// Every event, in order.
    pub fn iter(&self) -> impl Iterator<Item = JobEvent> + '_ {
        (0..self.len() as usize).map(|i| self.event(i))
    }

    fn record(&self, i: usize) -> Record {
        let r = &self.records[i * RECORD..(i + 1) * RECORD];
        let le2 = |b: &[u8]| u16::from_le_bytes([b[0], b[1]]);
        let le4 = |b: &[u8]| u32::from_le_bytes(b.try_into().expect("4 bytes"));
        let le8 = |b: &[u8]| u64::from_le_bytes(b.try_into().expect("8 bytes"));
        Record {
            stream: le2(&r[0..2]),
            task: (r[2] != 0).then(|| le4(&r[3..7])),
            nanos: le8(&r[7..15]) as i64,
            end: le8(&r[15..23]),
        }
    }

    /// Where the payload of event `i` starts (`i` = len: the end of the text).
    fn start(&self, i: usize) -> usize {
        if i == 0 {
            0
        } else {
            self.record(i - 1).end as usize
        }
    }

    fn event(&self, i: usize) -> JobEvent {
        let r = self.record(i);
        JobEvent {
            seq: i as u64,
            stream: self.streams[usize::from(r.stream)].clone(),
            task: r.task,
            time: DateTime::<Utc>::from_timestamp_nanos(r.nanos),
            payload: self.text[self.start(i)..r.end as usize].to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec;

    fn t(ms: i64) -> Time {
        DateTime::from_timestamp_millis(1_700_000_000_000 + ms).expect("in range")
    }

    fn ev(stream: &str, task: Option<u32>, ms: i64, payload: &str) -> AgentEvent {
        AgentEvent { stream: stream.into(), task, time: t(ms), payload: payload.into() }
    }

    fn sample() -> EventLog {
        EventLog::from_events(vec![
            ev("stdout", Some(0), 1, "héllo"),
            ev("stderr", None, 2, ""),
            ev("stdout", Some(7), 3, "world"),
        ])
        .unwrap()
    }

    #[test]
    fn events_read_back_as_they_went_in_numbered_by_position() {
        let log = sample();
        assert_eq!((log.len(), log.text_len()), (3, "héllo".len() as u64 + 5));
        let got = log.iter().collect::<Vec<_>>();
        let want = [("stdout", Some(0), 1, "héllo"), ("stderr", None, 2, ""), ("stdout", Some(7), 3, "world")];
        for (i, (e, (stream, task, ms, payload))) in got.iter().zip(want).enumerate() {
            assert_eq!(
                (e.seq, e.stream.as_str(), e.task, e.time, e.payload.as_str()),
                (i as u64, stream, task, t(ms), payload)
            );
        }
        assert_eq!(log.get(2).unwrap().payload, "world");
        assert_eq!(log.page(1, 99).len(), 2);
        assert!(log.page(5, 9).is_empty());
        assert_eq!(log.payload_len(0), "héllo".len() as u64);
    }

    #[test]
    fn a_slice_keeps_its_events_renumbered_from_zero() {
        let mut log = sample().slice(1, 3);
        log.push("control", None, t(0), "job ended").unwrap();
        let got: Vec<(u64, String, String)> = log.iter().map(|e| (e.seq, e.stream, e.payload)).collect();
        assert_eq!(
            got,
            [(0, "stderr", ""), (1, "stdout", "world"), (2, "control", "job ended")].map(|(i, a, b)| (
                i,
                a.into(),
                b.into()
            ))
        );
        assert_eq!(sample().slice(2, 2).len(), 0);
        let round: EventLog = codec::decode("log", &codec::encode("log", &log).unwrap()).unwrap();
        assert_eq!(round, log);
    }

    #[test]
    fn a_time_that_does_not_fit_is_refused_with_its_position() {
        let far = DateTime::from_timestamp(300 * 365 * 86_400, 0).unwrap();
        let bad =
            EventLog::from_events(vec![ev("stdout", None, 0, "a"), AgentEvent { time: far, ..ev("x", None, 0, "") }]);
        assert_eq!(bad, Err(PackError::TimeOutOfRange { index: 1, time: far }));
    }

    #[test]
    fn malformed_bytes_are_refused_not_half_read() {
        let good = sample();
        let mut bad = Raw::from(good.clone());
        bad.records.pop();
        assert!(EventLog::try_from(bad).unwrap_err().contains("whole"));
        let mut bad = Raw::from(good.clone());
        bad.streams.pop();
        assert!(EventLog::try_from(bad).unwrap_err().contains("names stream"));
        let mut bad = Raw::from(good.clone());
        bad.text.push('x');
        assert!(EventLog::try_from(bad).unwrap_err().contains("after the last"));
        let mut bad = Raw::from(good);
        bad.records[15] = 2; // the first payload would end inside "é"
        assert!(EventLog::try_from(bad).unwrap_err().contains("payload end"));
    }
}
