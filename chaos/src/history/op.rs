//! One recorded operation and what came of it.

use serde::{Deserialize, Serialize};

use super::kind::OpKind;
use super::value::Value;

/// One operation of a history: who did what, when it was invoked and completed, and how it ended.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Op {
    /// Unique within the history; a [`crate::history::Recorder`] numbers operations from 0 in invocation order.
    pub id: u64,
    /// The client (workload thread, agent, harness) that did it; one process does one thing at a time.
    pub process: u64,
    /// What it was.
    pub kind: OpKind,
    /// When it was invoked, in nanoseconds since the UNIX epoch.
    pub invoke: u64,
    /// When its outcome was known; `None` if it never completed (the run ended first).
    pub complete: Option<u64>,
    /// How it ended.
    pub outcome: Outcome,
}

/// How an operation ended. The distinction between `Fail` and `Unknown` is what lets the checker stay sound: a
/// timed-out write may still take effect later, a rejected one never will.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// It happened, and returned this.
    Ok(Value),
    /// It definitely did not happen (the server rejected it); the reason is for people.
    Fail(String),
    /// It may or may not have happened, now or later (timeout, connection lost, never completed).
    Unknown(String),
}

impl Op {
    /// The value it returned, if it succeeded.
    pub fn ok(&self) -> Option<&Value> {
        match &self.outcome {
            Outcome::Ok(v) => Some(v),
            _ => None,
        }
    }

    /// Whether it may have taken effect (it did not definitely fail), which is what the agent-side facts and
    /// appends need to count.
    pub fn may_have_happened(&self) -> bool {
        !matches!(self.outcome, Outcome::Fail(_))
    }
}
