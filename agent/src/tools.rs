//! The job's toolbox, as one binary with several names: `pfexec`, `ptime`
//! and `banner` are the agent executable installed under those names in the
//! worker (the spec's cross-platform helpers). Dispatch is on `argv[0]`.

use std::ffi::OsString;
use std::process::Command;
use std::time::Instant;

/// Runs the tool named by `argv[0]`, if it is one; `None` means "be the agent".
pub fn dispatch(args: &[OsString]) -> Option<i32> {
    let name = args.first().map(std::path::Path::new)?.file_name()?.to_str()?.to_string();
    let rest: Vec<OsString> = args[1..].to_vec();
    match name.as_str() {
        "pfexec" => Some(crate::pfexec::main(&rest)),
        "ptime" => Some(ptime(&rest)),
        "banner" => Some(banner(&rest)),
        "bmat" => Some(crate::bmat::command::main(&rest)),
        _ => None,
    }
}

/// Times a command: `ptime [-m] COMMAND [ARG...]`, figures on stderr.
fn ptime(args: &[OsString]) -> i32 {
    let (detailed, args) = match args.first().and_then(|a| a.to_str()) {
        Some("-m") => (true, &args[1..]),
        _ => (false, args),
    };
    let Some((cmd, rest)) = args.split_first() else {
        eprintln!("usage: ptime [-m] COMMAND [ARG...]");
        return 2;
    };
    let start = Instant::now();
    let status = match Command::new(cmd).args(rest).status() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("ptime: cannot run {}: {e}", cmd.to_string_lossy());
            return 127;
        }
    };
    let real = start.elapsed().as_secs_f64();
    // SAFETY: getrusage fills the struct we own.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut ru) };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    eprintln!();
    eprintln!("real {real:>12.6}");
    eprintln!("user {:>12.6}", secs(ru.ru_utime));
    eprintln!("sys  {:>12.6}", secs(ru.ru_stime));
    if detailed {
        eprintln!("max rss (KiB) {:>8}", ru.ru_maxrss);
        eprintln!("minor faults  {:>8}", ru.ru_minflt);
        eprintln!("major faults  {:>8}", ru.ru_majflt);
        eprintln!("vol ctx sw    {:>8}", ru.ru_nvcsw);
        eprintln!("invol ctx sw  {:>8}", ru.ru_nivcsw);
    }
    status.code().unwrap_or(128)
}

/// Prints its arguments in large letters, a heading for job logs.
fn banner(args: &[OsString]) -> i32 {
    let text: Vec<String> = args.iter().map(|a| a.to_string_lossy().to_uppercase()).collect();
    for line in crate::font::render(&text.join(" ")) {
        println!("{}", line.trim_end());
    }
    0
}
