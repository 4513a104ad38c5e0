//! The verdicts of a whole check, printable for the person reading a failed run.

use std::fmt::{self, Display, Formatter};

use serde::{Deserialize, Serialize};

use super::{CheckConfig, Status, Verdict};
use crate::history::{rel, History, Op, OpLine};

/// How many violations of one invariant the printed report shows; the rest are counted.
const SHOWN_VIOLATIONS: usize = 10;

/// What [`crate::check::check_all`] found. Its `Display` prints each verdict with its counts, and each violation
/// with its excerpt, one operation per line, times in milliseconds from the start of the history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    /// The history's start, which times are printed relative to.
    pub origin: u64,
    /// The number of operations checked.
    pub ops: usize,
    /// When the cluster was taken to be healed.
    pub healed_at: u64,
    /// The faults the history recorded, for context.
    pub faults: Vec<Op>,
    /// One verdict per invariant, in [`crate::check::INVARIANTS`] order.
    pub verdicts: Vec<Verdict>,
}

impl Report {
    /// Gathers verdicts over `history` into a report.
    pub fn new(history: &History, config: &CheckConfig, verdicts: Vec<Verdict>) -> Self {
        Self {
            origin: history.origin(),
            ops: history.len(),
            healed_at: config.heal_time(history),
            faults: history.faults().cloned().collect(),
            verdicts,
        }
    }

    /// Whether every invariant held (nothing violated, nothing undecided).
    pub fn ok(&self) -> bool {
        self.verdicts.iter().all(|v| v.ok)
    }

    /// The names of the invariants violated.
    pub fn violated(&self) -> Vec<&str> {
        self.with_status(Status::Violated)
    }

    /// The names of the invariants not violated but not decided either.
    pub fn inconclusive(&self) -> Vec<&str> {
        self.with_status(Status::Inconclusive)
    }

    /// The verdict on one invariant.
    pub fn verdict(&self, name: &str) -> Option<&Verdict> {
        self.verdicts.iter().find(|v| v.name == name)
    }

    fn with_status(&self, status: Status) -> Vec<&str> {
        self.verdicts.iter().filter(|v| v.status() == status).map(|v| v.name.as_str()).collect()
    }
}

impl Display for Report {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "chaos check: {} invariants, {} held, {} violated, {} inconclusive ({} operations, {} faults, healed at {})",
            self.verdicts.len(),
            self.with_status(Status::Holds).len(),
            self.violated().len(),
            self.inconclusive().len(),
            self.ops,
            self.faults.len(),
            rel(self.healed_at, self.origin)
        )?;
        for v in &self.verdicts {
            let status = match v.status() {
                Status::Holds => "ok",
                Status::Violated => "VIOLATED",
                Status::Inconclusive => "INCONCLUSIVE",
            };
            writeln!(
                f,
                "{status:<12} {}: {} checked, {} violations, {} inconclusive",
                v.name,
                v.checked,
                v.violations.len(),
                v.inconclusive.len()
            )?;
            for (i, violation) in v.violations.iter().take(SHOWN_VIOLATIONS).enumerate() {
                writeln!(f, "  violation {}: {}", i + 1, violation.message)?;
                for op in &violation.excerpt {
                    writeln!(f, "    {}", OpLine { op, origin: self.origin })?;
                }
            }
            if v.violations.len() > SHOWN_VIOLATIONS {
                writeln!(f, "  … and {} more violations", v.violations.len() - SHOWN_VIOLATIONS)?;
            }
            for why in v.inconclusive.iter().take(SHOWN_VIOLATIONS) {
                writeln!(f, "  undecided: {why}")?;
            }
            if v.inconclusive.len() > SHOWN_VIOLATIONS {
                writeln!(f, "  … and {} more undecided", v.inconclusive.len() - SHOWN_VIOLATIONS)?;
            }
        }
        if !self.faults.is_empty() {
            writeln!(f, "faults:")?;
            for op in &self.faults {
                writeln!(f, "    {}", OpLine { op, origin: self.origin })?;
            }
        }
        Ok(())
    }
}
