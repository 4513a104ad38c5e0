//! `bmat`, the in-job control program, and the agent's side of it.
//!
//! A job talks to its agent through a Unix socket whose path is in
//! `$BMAT_SOCKET`: `bmat store get|put [-s]` reads and sets the job store,
//! `bmat process start NAME CMD…` starts a background process whose output
//! goes to the job log (stream `bg.NAME`) and which is stopped when the
//! job ends, `bmat factory name|id` names the factory behind the worker.
//! One request and one answer per connection, each a JSON line.

pub mod command;
pub mod process;
pub mod proto;
pub mod server;

/// The environment variable that tells `bmat` where the agent listens.
pub const SOCKET_ENV: &str = "BMAT_SOCKET";
