//! The sandbox's first program (`bm-sandbox-init`): builds the sandbox's
//! mount tree with system calls and `exec`s the agent.
//!
//! It used to be a `/bin/sh` script calling `mount(8)`, `mkdir(1)`,
//! `ln(1)` and friends: about 55 processes per sandbox, which were most
//! of the time a fresh worker took to start (see docs/benchmarks.md).
//! Here it is one process doing the same work.
//!
//! Two stages, chosen by the first argument:
//!
//! * `bm-sandbox-init --stage1 UNSHARE-ARGS…` (privileged mode only):
//!   runs as the sandbox's host uid in a fresh user namespace whose maps
//!   the factory writes from outside; it waits until its uid map is there
//!   (so it is ns root with full capabilities at its next `exec`), then
//!   `exec`s `unshare UNSHARE-ARGS…`, which end with this program's second
//!   stage.
//! * `bm-sandbox-init DIR HOSTNAME ARGV…`: runs as ns root and pid 1 of
//!   the sandbox's PID namespace, in its own mount namespace: mounts the
//!   tree under `DIR/root`, `pivot_root`s into it and `exec`s `ARGV`.
//!
//! Any failure prints `bm-sandbox: WHAT: ERROR` on stderr and exits 1.

use std::ffi::{CString, OsStr, OsString};
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::symlink;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// The name this program answers to (a hard link in each sandbox's folder).
pub const INIT_NAME: &str = "bm-sandbox-init";
/// First argument that selects the privileged first stage.
pub const STAGE1_FLAG: &str = "--stage1";

/// Host paths shown read-only inside (symlinks, as on a merged-`/usr`
/// system, are copied as symlinks).
const SYSTEM_DIRS: [&str; 7] = ["/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"];
/// Devices bound from the host's `/dev`.
const DEVICES: [&str; 6] = ["null", "zero", "full", "random", "urandom", "tty"];
/// Private writable places: (folder under `DIR`, where inside).
const WRITABLE: [(&str, &str); 4] =
    [("work", "/work"), ("home/build", "/home/build"), ("tmp", "/tmp"), ("input", "/input")];

/// Runs either stage from the full argv (`argv[0]` is this program).
pub fn main(argv: Vec<OsString>) -> ExitCode {
    let result = match argv.get(1) {
        Some(a) if a == STAGE1_FLAG => stage1(&argv),
        _ => stage2(&argv),
    };
    match result {
        Ok(never) => match never {},
        Err(e) => {
            eprintln!("bm-sandbox: {e}");
            ExitCode::from(1)
        }
    }
}

/// An error naming the step that failed.
fn step(what: impl std::fmt::Display, e: impl std::fmt::Display) -> io::Error {
    io::Error::other(format!("{what}: {e}"))
}

fn stage1(argv: &[OsString]) -> io::Result<std::convert::Infallible> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let map = fs::read_to_string("/proc/self/uid_map").map_err(|e| step("read /proc/self/uid_map", e))?;
        if !map.trim().is_empty() {
            break;
        }
        if Instant::now() > deadline {
            return Err(step("stage 1", "the factory did not write the uid map within 10 s"));
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    let e = std::process::Command::new("unshare").args(&argv[2..]).exec();
    Err(step("exec unshare", e))
}

fn stage2(argv: &[OsString]) -> io::Result<std::convert::Infallible> {
    let [_, dir, host, cmd @ ..] = argv else {
        return Err(step("arguments", "usage: bm-sandbox-init DIR HOSTNAME PROGRAM [ARG…]"));
    };
    if cmd.is_empty() {
        return Err(step("arguments", "no program to run"));
    }
    let d = PathBuf::from(dir);
    let r = d.join("root");
    sys::sethostname(host.as_bytes()).map_err(|e| step("set the hostname", e))?;
    sys::mount(Some("bm-root"), &r, Some("tmpfs"), 0, Some("mode=0755,size=16m"))
        .map_err(|e| step("mount the root tmpfs", e))?;
    let inside = |p: &str| r.join(p.trim_start_matches('/'));

    for p in SYSTEM_DIRS {
        let path = Path::new(p);
        match fs::symlink_metadata(path) {
            Ok(m) if m.file_type().is_symlink() => {
                let to = fs::read_link(path).map_err(|e| step(format!("readlink {p}"), e))?;
                symlink(&to, inside(p)).map_err(|e| step(format!("link {p}"), e))?;
            }
            Ok(m) if m.is_dir() => ro_bind(path, &inside(p))?,
            _ => {}
        }
    }

    // /etc: the host's, read-only, with the sandbox's own files on top.
    let etc = inside("/etc");
    mkdir_p(&etc)?;
    let lower = format!("lowerdir={}:/etc", d.join("etc").display());
    if sys::mount(Some("bm-etc"), &etc, Some("overlay"), 0, Some(&lower)).is_err() {
        ro_bind(Path::new("/etc"), &etc)?;
        for e in fs::read_dir(d.join("etc")).map_err(|e| step("list the sandbox's /etc", e))? {
            let e = e.map_err(|e| step("list the sandbox's /etc", e))?;
            let target = etc.join(e.file_name());
            match fs::symlink_metadata(&target) {
                Ok(m) if m.is_file() => ro_bind(&e.path(), &target)?,
                _ => eprintln!("bm-sandbox: cannot place /etc/{}", e.file_name().to_string_lossy()),
            }
        }
    }
    ro_bind(&d.join("bin"), &inside("/usr/local/bin"))?;
    for (from, to) in WRITABLE {
        let at = inside(to);
        mkdir_p(&at)?;
        sys::mount(Some(d.join(from)), &at, None, libc::MS_BIND, None).map_err(|e| step(format!("bind {to}"), e))?;
    }
    for p in ["/proc", "/dev", "/root", "/run", "/var"] {
        mkdir_p(&inside(p))?;
    }
    symlink("/tmp", inside("/var/tmp")).map_err(|e| step("link /var/tmp", e))?;
    let (nosuid, nodev, noexec) = (libc::MS_NOSUID, libc::MS_NODEV, libc::MS_NOEXEC);
    sys::mount(Some("proc"), &inside("/proc"), Some("proc"), nosuid | nodev | noexec, None)
        .map_err(|e| step("mount /proc", e))?;
    sys::mount(Some("bm-dev"), &inside("/dev"), Some("tmpfs"), nosuid, Some("mode=0755,size=64k"))
        .map_err(|e| step("mount /dev", e))?;
    for n in DEVICES {
        let at = inside(&format!("/dev/{n}"));
        fs::File::create(&at).map_err(|e| step(format!("create /dev/{n}"), e))?;
        sys::mount(Some(format!("/dev/{n}")), &at, None, libc::MS_BIND, None)
            .map_err(|e| step(format!("bind /dev/{n}"), e))?;
    }
    for p in ["/dev/shm", "/dev/pts"] {
        fs::create_dir(inside(p)).map_err(|e| step(format!("mkdir {p}"), e))?;
    }
    sys::mount(Some("bm-shm"), &inside("/dev/shm"), Some("tmpfs"), nosuid | nodev, Some("mode=1777"))
        .map_err(|e| step("mount /dev/shm", e))?;
    let pts_opts = "newinstance,ptmxmode=0666,mode=0620";
    if sys::mount(Some("bm-pts"), &inside("/dev/pts"), Some("devpts"), 0, Some(pts_opts)).is_ok() {
        symlink("pts/ptmx", inside("/dev/ptmx")).map_err(|e| step("link /dev/ptmx", e))?;
    }
    for (name, to) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        symlink(to, inside(&format!("/dev/{name}"))).map_err(|e| step(format!("link /dev/{name}"), e))?;
    }

    std::env::set_current_dir(&r).map_err(|e| step("enter the new root", e))?;
    fs::create_dir(".oldroot").map_err(|e| step("mkdir /.oldroot", e))?;
    sys::pivot_root(".", ".oldroot").map_err(|e| step("pivot_root", e))?;
    std::env::set_current_dir("/").map_err(|e| step("cd /", e))?;
    sys::umount_detach("/.oldroot").map_err(|e| step("unmount the host's root", e))?;
    fs::remove_dir("/.oldroot").map_err(|e| step("rmdir /.oldroot", e))?;
    remount_ro(Path::new("/")).map_err(|e| step("make / read-only", e))?;

    let e = std::process::Command::new(&cmd[0]).args(&cmd[1..]).exec();
    Err(step(format!("exec {}", cmd[0].to_string_lossy()), e))
}

fn mkdir_p(p: &Path) -> io::Result<()> {
    fs::create_dir_all(p).map_err(|e| step(format!("mkdir {}", p.display()), e))
}

/// Shows `from` at `to` read-only (`to` made as a folder or an empty file
/// to match).
fn ro_bind(from: &Path, to: &Path) -> io::Result<()> {
    if from.is_dir() {
        mkdir_p(to)?;
    } else {
        if let Some(parent) = to.parent() {
            mkdir_p(parent)?;
        }
        fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(to)
            .map_err(|e| step(format!("create {}", to.display()), e))?;
    }
    sys::mount(Some(from), to, None, libc::MS_BIND, None)
        .map_err(|e| step(format!("bind {} to {}", from.display(), to.display()), e))?;
    remount_ro(to).map_err(|e| step(format!("make {} read-only", to.display()), e))
}

/// Remounts a bind mount read-only, keeping the flags it already has: in
/// a user namespace the kernel refuses to clear the flags the mount came
/// with (`nosuid`, `nodev`, `noexec`, atime flags), so they are repeated.
fn remount_ro(p: &Path) -> io::Result<()> {
    let have = sys::statvfs_flags(p)?;
    let keep = [
        (libc::ST_NOSUID, libc::MS_NOSUID),
        (libc::ST_NODEV, libc::MS_NODEV),
        (libc::ST_NOEXEC, libc::MS_NOEXEC),
        (libc::ST_NOATIME, libc::MS_NOATIME),
        (libc::ST_NODIRATIME, libc::MS_NODIRATIME),
        (libc::ST_RELATIME, libc::MS_RELATIME),
    ]
    .iter()
    .filter(|(st, _)| have & st != 0)
    .fold(0, |acc, (_, ms)| acc | ms);
    sys::mount(None::<&str>, p, None, libc::MS_REMOUNT | libc::MS_BIND | libc::MS_RDONLY | keep, None)
}

/// The system calls, each checked.
mod sys {
    use super::*;

    fn c(s: impl AsRef<OsStr>) -> io::Result<CString> {
        CString::new(s.as_ref().as_bytes()).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in a path"))
    }

    fn check(rc: libc::c_int) -> io::Result<()> {
        if rc == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }

    /// mount(2).
    pub fn mount(
        source: Option<impl AsRef<OsStr>>,
        target: &Path,
        fstype: Option<&str>,
        flags: libc::c_ulong,
        data: Option<&str>,
    ) -> io::Result<()> {
        let source = source.map(c).transpose()?;
        let target = c(target)?;
        let fstype = fstype.map(c).transpose()?;
        let data = data.map(c).transpose()?;
        let ptr = |o: &Option<CString>| o.as_ref().map_or(std::ptr::null(), |s| s.as_ptr());
        // SAFETY: every pointer is null or a NUL-terminated string that
        // outlives the call.
        check(unsafe { libc::mount(ptr(&source), target.as_ptr(), ptr(&fstype), flags, ptr(&data).cast()) })
    }

    /// umount2(2) with `MNT_DETACH`.
    pub fn umount_detach(target: &str) -> io::Result<()> {
        let t = c(target)?;
        // SAFETY: a NUL-terminated path.
        check(unsafe { libc::umount2(t.as_ptr(), libc::MNT_DETACH) })
    }

    /// pivot_root(2) (no libc wrapper).
    pub fn pivot_root(new: &str, old: &str) -> io::Result<()> {
        let (n, o) = (c(new)?, c(old)?);
        // SAFETY: two NUL-terminated paths.
        let rc = unsafe { libc::syscall(libc::SYS_pivot_root, n.as_ptr(), o.as_ptr()) };
        check(if rc == 0 { 0 } else { -1 })
    }

    /// sethostname(2).
    pub fn sethostname(name: &[u8]) -> io::Result<()> {
        // SAFETY: pointer and length of a live slice.
        check(unsafe { libc::sethostname(name.as_ptr().cast(), name.len()) })
    }

    /// The `ST_*` flags of the mount holding `p`.
    pub fn statvfs_flags(p: &Path) -> io::Result<libc::c_ulong> {
        let path = c(p)?;
        // SAFETY: statvfs fills the zeroed struct it is given.
        let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
        check(unsafe { libc::statvfs(path.as_ptr(), &mut s) })?;
        Ok(s.f_flag)
    }
}
