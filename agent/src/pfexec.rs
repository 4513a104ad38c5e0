//! `pfexec COMMAND [ARG...]`: runs a command as the worker's root.
//!
//! It is also built as the small `bm-pfexec` executable: the local factory
//! installs a fresh setuid copy of it in every sandbox (owned by that
//! sandbox's root), and copying a small file instead of the whole agent is
//! most of what makes a sandbox quick to create.

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::process::Command;

/// Runs a command as root. Installed setuid-root (root of the worker, not
/// of the host), it makes its real ids root too and executes the command.
pub fn main(args: &[OsString]) -> i32 {
    let Some((cmd, rest)) = args.split_first() else {
        eprintln!("usage: pfexec COMMAND [ARG...]");
        return 2;
    };
    // SAFETY: plain system calls on integers; no memory is shared.
    let already_root = unsafe { libc::getuid() == 0 && libc::geteuid() == 0 };
    // Dropping supplementary groups is refused in a user namespace without a
    // group map of its own; it is not what makes us root, so it may fail.
    // SAFETY: as above.
    let ok = already_root
        || unsafe {
            libc::setgroups(0, std::ptr::null());
            libc::setgid(0) == 0 && libc::setuid(0) == 0
        };
    if !ok {
        eprintln!("pfexec: cannot become root: {}", std::io::Error::last_os_error());
        return 1;
    }
    let err = Command::new(cmd).args(rest).exec();
    eprintln!("pfexec: cannot run {}: {err}", cmd.to_string_lossy());
    127
}
