//! Decides whether a history ([`crate::history::History`]) breaks one of bm's promises, and when it does, picks
//! out the few operations that show it. One module per invariant, each with a `NAME` and a
//! `check(&History, &CheckConfig) -> Verdict`; [`check_all`] runs them all into a [`Report`] to print.
//!
//! Every checker is sound first: an operation whose outcome is unknown may or may not have happened, and a
//! checker that cannot decide says so (an inconclusive verdict) rather than passing or failing.

mod config;
mod facts;
pub mod failure_causes;
#[cfg(test)]
mod fixture;
pub mod job_state;
pub mod jobs_complete;
pub mod lin;
pub mod logs;
pub mod lost_jobs;
pub mod outputs;
mod report;
pub mod single_runner;
pub mod terminal_after_heal;
mod verdict;
pub mod workers_destroyed;

pub use config::CheckConfig;
pub use report::Report;
pub use verdict::{Status, Verdict, Violation};

use crate::history::History;

/// The invariants [`check_all`] checks, by the names verdicts carry, in report order.
pub const INVARIANTS: [&str; 9] = [
    lost_jobs::NAME,
    single_runner::NAME,
    logs::NAME,
    outputs::NAME,
    job_state::NAME,
    terminal_after_heal::NAME,
    workers_destroyed::NAME,
    jobs_complete::NAME,
    failure_causes::NAME,
];

/// Checks every invariant over `history`: what a chaos run calls once it has healed the cluster and made its
/// final reads.
pub fn check_all(history: &History, config: &CheckConfig) -> Report {
    let verdicts = vec![
        lost_jobs::check(history, config),
        single_runner::check(history, config),
        logs::check(history, config),
        outputs::check(history, config),
        job_state::check(history, config),
        terminal_after_heal::check(history, config),
        workers_destroyed::check(history, config),
        jobs_complete::check(history, config),
        failure_causes::check(history, config),
    ];
    Report::new(history, config, verdicts)
}
