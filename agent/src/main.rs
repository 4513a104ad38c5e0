//! `bm-agent`: started inside a worker by its factory.

fn main() -> std::process::ExitCode {
    bm_agent::program::main_with(std::env::args_os().collect())
}
