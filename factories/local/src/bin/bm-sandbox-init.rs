//! `bm-sandbox-init` on its own, for the crate's tests (which make
//! sandboxes without the `bm` binary, whose multi-call entry point is the
//! one the factory uses).

fn main() -> std::process::ExitCode {
    bm_factory_local::init::main(std::env::args_os().collect())
}
