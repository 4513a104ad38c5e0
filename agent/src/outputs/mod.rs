//! Output collection: after the job program exits, the agent applies the
//! job's `output_rules` to the worker's file system, reads each chosen file
//! for upload while checking it holds still, and places a dependency's
//! outputs under `/input/NAME` in the jobs that depend on it.
//!
//! - [`glob`]: the `/`-anchored patterns and their exact meaning.
//! - [`rules`]: a job's rules together (`!` wins, order never matters, `=`
//!   must be satisfied by an uploaded file).
//! - [`collect`]: the walk that turns rules into a [`Plan`].
//! - [`upload`]: reading one planned file a piece at a time, with its
//!   digest and the checks that it held still.
//! - [`stream`]: that read as an upload stream that ends cleanly only if
//!   the checks pass.
//! - [`inputs`]: safe destinations for a dependency's outputs.

pub mod collect;
pub mod glob;
pub mod inputs;
pub mod rules;
pub mod stream;
pub mod upload;

pub use collect::{plan, plan_with, CollectError, CollectOptions, Plan, PlannedFile};
pub use glob::{Glob, GlobError};
pub use inputs::{create_input_file, input_destination, input_destinations, InputPathError};
pub use rules::{BadRule, MustMatchFailure, RuleSet, Wanted};
pub use upload::{read_for_upload, FileReader, Opened, ReadOutcome, UploadError};
