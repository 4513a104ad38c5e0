//! A generic linearizability checker in the manner of Knossos and Porcupine: Wing & Gong's search with Lowe's
//! just-in-time linearization and memoization of (linearized set, model state). A history is linearizable if its
//! operations can be put in one sequential order that respects real time (an operation that completed before
//! another was invoked comes first) and that a sequential [`Model`] accepts. Operations whose outcome is unknown
//! may take effect at any time after their invocation, or never, and their output is unconstrained.
//!
//! Linearizability is local, so histories over independent keys (jobs) are checked one key at a time
//! ([`check_keyed`]). The search is bounded ([`LinLimits`]); past the bound the answer is
//! [`Linearizability::Inconclusive`], never a guess.

mod job_model;
mod model;
mod register;
mod shrink;
mod wgl;

pub use job_model::{JobInput, JobKnowledge, JobPhase, JobStateModel};
pub use model::{LinOp, Model};
pub use register::{RegisterInput, RegisterModel, RegisterOutput};
pub use shrink::shrink;
pub use wgl::{check, check_keyed, LinLimits, Linearizability};
