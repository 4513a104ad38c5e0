//! The bm agent: runs inside a worker, connects out to the cluster with a
//! single-use bootstrap token, receives its job, runs it as user `build`,
//! ships its log live, uploads its outputs and reports the end, all under
//! the assignment's fencing epoch.

pub mod bmat;
pub mod clone;
pub mod collect;
pub mod env;
mod font;
pub mod inputs;
mod locale;
pub mod outputs;
pub mod pfexec;
pub mod program;
pub mod run;
pub mod shipper;
pub mod tools;
