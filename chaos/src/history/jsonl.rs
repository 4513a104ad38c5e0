//! Saving and loading a history as JSON lines, one operation per line, so a failed run can be checked again.

use std::io::{self, BufRead, Write};

use thiserror::Error;

use super::op::Op;
use super::ops::History;

/// Why a history could not be saved or loaded; callers tell a bad file (with its line) from an I/O failure.
#[derive(Debug, Error)]
pub enum HistoryError {
    /// A line is not an operation.
    #[error("history line {line}: {source}")]
    Parse {
        /// The line number, from 1.
        line: usize,
        /// What was wrong with it.
        source: serde_json::Error,
    },
    /// Reading or writing failed.
    #[error("history I/O: {0}")]
    Io(#[from] io::Error),
}

impl History {
    /// The history as JSON lines: one operation per line, each line ending in `\n`.
    pub fn to_jsonl(&self) -> String {
        let mut out = Vec::new();
        self.write_jsonl(&mut out).expect("writing to a Vec cannot fail");
        String::from_utf8(out).expect("serde_json writes UTF-8")
    }

    /// Writes the history as JSON lines.
    pub fn write_jsonl(&self, mut w: impl Write) -> Result<(), HistoryError> {
        for op in &self.ops {
            serde_json::to_writer(&mut w, op).map_err(io::Error::from)?;
            w.write_all(b"\n")?;
        }
        Ok(())
    }

    /// Parses JSON lines written by [`History::to_jsonl`]; blank lines are skipped.
    pub fn from_jsonl(text: &str) -> Result<Self, HistoryError> {
        Self::read_jsonl(text.as_bytes())
    }

    /// Reads JSON lines written by [`History::write_jsonl`]; blank lines are skipped.
    pub fn read_jsonl(r: impl BufRead) -> Result<Self, HistoryError> {
        let mut ops = Vec::new();
        for (i, line) in r.lines().enumerate() {
            let line = line?;
            if line.trim().is_empty() {
                continue;
            }
            let op: Op = serde_json::from_str(&line).map_err(|source| HistoryError::Parse { line: i + 1, source })?;
            ops.push(op);
        }
        Ok(History { ops })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{JobView, LogEntry, OpKind, Outcome, Value};

    fn sample() -> History {
        let mut h = History::new();
        h.push(1, OpKind::SubmitJob { name: "a".into() }, 1, Some(2), Outcome::Ok(Value::Job("J".into())));
        h.push(
            1,
            OpKind::ReadJob { job: "J".into(), node: Some(2) },
            3,
            Some(4),
            Outcome::Ok(Value::View(Some(JobView::new("running", 1, Some("w"))))),
        );
        h.push(2, OpKind::ReadLog { job: "J".into(), node: 3 }, 5, None, Outcome::Unknown("timeout".into()));
        h.push(
            2,
            OpKind::ReadLog { job: "J".into(), node: 1 },
            5,
            Some(9),
            Outcome::Ok(Value::Log(vec![LogEntry::new("stdout", 0, "h0")])),
        );
        h.push(3, OpKind::CancelJob { job: "J".into() }, 6, Some(7), Outcome::Fail("conflict".into()));
        h.push(
            0,
            OpKind::JobRanOn { job: "J".into(), worker: "w".into(), start: 3, end: None },
            8,
            Some(8),
            Outcome::Ok(Value::Done),
        );
        h
    }

    #[test]
    fn a_history_survives_json_lines() {
        let h = sample();
        let text = h.to_jsonl();
        assert_eq!(text.lines().count(), h.len());
        assert_eq!(History::from_jsonl(&text).unwrap(), h);
    }

    #[test]
    fn a_bad_line_is_reported_with_its_number() {
        let mut text = sample().to_jsonl();
        text.push_str("\n{\"id\": 1}\n");
        match History::from_jsonl(&text) {
            Err(HistoryError::Parse { line, .. }) => assert_eq!(line, 8),
            other => panic!("expected a parse error, got {other:?}"),
        }
    }

    #[test]
    fn a_read_job_without_node_parses() {
        let line = r#"{"id":0,"process":1,"kind":{"op":"read_job","job":"J"},"invoke":1,"complete":2,"outcome":{"ok":{"view":null}}}"#;
        let h = History::from_jsonl(line).unwrap();
        assert_eq!(h.ops[0].kind, OpKind::ReadJob { job: "J".into(), node: None });
        assert_eq!(h.ops[0].outcome, Outcome::Ok(Value::View(None)));
    }
}
