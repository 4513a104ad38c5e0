//! Finding and killing what a dead factory left behind.
//!
//! A sandbox lives as long as its first process (the agent, pid 1 of the
//! sandbox's PID namespace) does. A factory killed with SIGKILL cannot
//! destroy its sandboxes, so their agents and jobs run on. Each sandbox's
//! first process carries `BM_SANDBOX=DIR` in its environment; a factory
//! starting up kills every sandbox whose DIR lies in a folder no live
//! factory holds (each factory holds an exclusive `flock` on its folder's
//! `.lock` file for its whole life, which the kernel drops when it dies).

use std::collections::HashSet;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

/// Environment variable naming a sandbox's folder in its first process.
pub const SANDBOX_ENV: &str = "BM_SANDBOX";

/// How the default folders of local factories are named (then the pid),
/// in the system's temporary folder.
pub const DEFAULT_DIR_PREFIX: &str = "bm-sandboxes-";

/// The lock file in a factory's folder.
const LOCK_FILE: &str = ".lock";

/// A factory's hold on its folder; released when dropped (or when the process dies).
pub struct DirLock {
    _file: fs::File,
    dir: PathBuf,
}

impl DirLock {
    /// The folder held.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// Takes `dir` for this factory: refuses when a live factory holds it,
/// otherwise kills whatever a dead one left running there and empties it.
pub fn claim(dir: &Path) -> anyhow::Result<DirLock> {
    fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let Some(lock) = try_lock(dir)? else {
        bail!("{} is in use by another running local factory", dir.display());
    };
    let killed = kill_sandboxes_under(dir);
    if killed > 0 {
        tracing::warn!(dir = %dir.display(), killed, "killed sandboxes an earlier factory left running");
    }
    for e in fs::read_dir(dir)?.flatten() {
        if e.file_name() != LOCK_FILE {
            crate::sandbox::remove_tree(&e.path())?;
        }
    }
    Ok(lock)
}

/// Reaps the folders in `parent` whose names start with `prefix` and that
/// no live factory holds (the default folders of factories that died);
/// returns how many were removed.
pub fn reap_abandoned(parent: &Path, prefix: &str, keep: &Path) -> usize {
    let Ok(rd) = fs::read_dir(parent) else { return 0 };
    let mut reaped = 0;
    for e in rd.flatten() {
        let path = e.path();
        let named = e.file_name().to_str().is_some_and(|n| n.starts_with(prefix));
        if !named || path == keep || !path.is_dir() {
            continue;
        }
        // A folder without a lock file predates locking or is being made: leave it.
        if !path.join(LOCK_FILE).exists() {
            continue;
        }
        if let Ok(Some(lock)) = try_lock(&path) {
            let killed = kill_sandboxes_under(&path);
            tracing::warn!(dir = %path.display(), killed, "reaping the folder of a factory that died");
            drop(lock);
            if crate::sandbox::remove_tree(&path).is_ok() {
                reaped += 1;
            }
        }
    }
    reaped
}

/// Kills every live sandbox whose folder is under `dir`; returns how many.
pub fn kill_sandboxes_under(dir: &Path) -> usize {
    let mut users = HashSet::new();
    let Ok(rd) = fs::read_dir("/proc") else { return 0 };
    for e in rd.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else { continue };
        let Ok(environ) = fs::read(format!("/proc/{pid}/environ")) else { continue };
        let marked = environ
            .split(|b| *b == 0)
            .filter_map(|kv| kv.strip_prefix(SANDBOX_ENV.as_bytes()))
            .any(|v| v.strip_prefix(b"=").is_some_and(|p| Path::new(std::ffi::OsStr::from_bytes(p)).starts_with(dir)));
        if marked {
            if let Ok(ns) = fs::read_link(format!("/proc/{pid}/ns/user")) {
                users.insert(ns.to_string_lossy().into_owned());
            }
        }
    }
    let n = users.len();
    crate::sandbox::kill_namespaces(&users, dir);
    n
}

/// Takes the exclusive lock of `dir` without waiting; `None` when held.
fn try_lock(dir: &Path) -> anyhow::Result<Option<DirLock>> {
    let path = dir.join(LOCK_FILE);
    let file = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    // SAFETY: flock(2) on a descriptor we own; no memory is shared.
    let r = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if r != 0 {
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
            return Ok(None);
        }
        return Err(e).with_context(|| format!("cannot lock {}", path.display()));
    }
    Ok(Some(DirLock { _file: file, dir: dir.to_path_buf() }))
}
