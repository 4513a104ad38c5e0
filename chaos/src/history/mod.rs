//! What a chaos run did, as seen by its clients and agents: a list of operations with the times they were invoked
//! and completed and what came of them. Workloads record it through a [`Recorder`]; the checker
//! ([`crate::check`]) reads it back to decide whether bm kept its promises. Times are nanoseconds since the UNIX
//! epoch (see [`clock`]), so records made by other processes line up with the workloads' own.

pub mod clock;
mod display;
mod jsonl;
mod kind;
mod op;
mod ops;
mod recorder;
mod value;

pub(crate) use display::rel;
pub use display::OpLine;
pub use jsonl::HistoryError;
pub use kind::OpKind;
pub use op::{Op, Outcome};
pub use ops::History;
pub use recorder::{Pending, Recorder};
pub use value::{JobView, LogEntry, Value};
