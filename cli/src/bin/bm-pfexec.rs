//! `bm-pfexec`: the job tool `pfexec` as a small executable of its own.
//!
//! The local factory puts a setuid copy of it in every sandbox; `bm`
//! itself can be `pfexec` too (called by that name), but copying all of it
//! into every sandbox costs far more than copying this. The source is the
//! agent's own `pfexec` module, included rather than linked so that this
//! executable holds nothing else.

#[path = "../../../agent/src/pfexec.rs"]
mod pfexec;

fn main() -> std::process::ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    std::process::ExitCode::from(pfexec::main(&args).clamp(0, 255) as u8)
}
