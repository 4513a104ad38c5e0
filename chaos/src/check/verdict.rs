//! What a checker says about one invariant.

use serde::{Deserialize, Serialize};

use crate::history::Op;

/// One invariant's result over a history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    /// The invariant (one of [`crate::check::INVARIANTS`]).
    pub name: String,
    /// Whether it held: no violation and nothing left undecided.
    pub ok: bool,
    /// How many things (jobs, workers, outputs, …) were checked, so a vacuous pass shows as such.
    pub checked: usize,
    /// The violations found.
    pub violations: Vec<Violation>,
    /// What could not be decided and why (a search bound hit, a job never read after the heal, …).
    pub inconclusive: Vec<String>,
}

/// One way the history broke an invariant, with the operations that show it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Violation {
    /// What went wrong, for people.
    pub message: String,
    /// The operations involved and only those, sorted by invocation time.
    pub excerpt: Vec<Op>,
}

/// The three answers a verdict can give, for callers that branch on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// The invariant held.
    Holds,
    /// It was broken (whatever else was undecided).
    Violated,
    /// Nothing was broken, but not everything could be decided.
    Inconclusive,
}

impl Verdict {
    /// A verdict; `ok` follows from the violations and undecided items.
    pub fn new(name: &str, checked: usize, violations: Vec<Violation>, inconclusive: Vec<String>) -> Self {
        let ok = violations.is_empty() && inconclusive.is_empty();
        Self { name: name.into(), ok, checked, violations, inconclusive }
    }

    /// Whether it held, was violated or is undecided.
    pub fn status(&self) -> Status {
        if !self.violations.is_empty() {
            Status::Violated
        } else if !self.inconclusive.is_empty() {
            Status::Inconclusive
        } else {
            Status::Holds
        }
    }
}

impl Violation {
    /// A violation showing `ops` (copied, each once, sorted by invocation time).
    pub fn new<'a>(message: impl Into<String>, ops: impl IntoIterator<Item = &'a Op>) -> Self {
        let mut excerpt: Vec<Op> = ops.into_iter().cloned().collect();
        excerpt.sort_by_key(|o| (o.invoke, o.id));
        excerpt.dedup_by_key(|o| o.id);
        Self { message: message.into(), excerpt }
    }
}

/// Each node's first bad read, noting how many more bad reads that node
/// gave (the checkers keep one violation per node, not one per read).
pub fn first_per_node<K>(bad: std::collections::BTreeMap<K, (Violation, usize)>) -> impl Iterator<Item = Violation> {
    bad.into_values().map(|(mut v, n)| {
        if n > 1 {
            v.message.push_str(&format!(" (and {} more bad reads from that node)", n - 1));
        }
        v
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{OpKind, Outcome, Value};

    #[test]
    fn an_excerpt_is_sorted_and_without_repeats() {
        let op = |id, invoke| Op {
            id,
            process: 0,
            kind: OpKind::WorkerDestroyed { worker: "w".into() },
            invoke,
            complete: Some(invoke),
            outcome: Outcome::Ok(Value::Done),
        };
        let (a, b) = (op(1, 20), op(2, 10));
        let v = Violation::new("x", [&a, &b, &a]);
        assert_eq!(v.excerpt.iter().map(|o| o.id).collect::<Vec<_>>(), vec![2, 1]);
    }

    #[test]
    fn the_status_prefers_violations() {
        let v = Violation { message: "x".into(), excerpt: vec![] };
        assert_eq!(Verdict::new("n", 1, vec![], vec![]).status(), Status::Holds);
        assert_eq!(Verdict::new("n", 1, vec![], vec!["?".into()]).status(), Status::Inconclusive);
        let both = Verdict::new("n", 1, vec![v], vec!["?".into()]);
        assert_eq!((both.status(), both.ok), (Status::Violated, false));
    }
}
