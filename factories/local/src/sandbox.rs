//! A sandbox on this host for one worker: its own user, mount, PID, IPC and
//! UTS namespaces (the network namespace is shared, so the agent reaches the
//! node on 127.0.0.1), a read-only view of the host's `/usr` and `/etc`, and
//! writable `/work`, `/home/build`, `/tmp` and `/input` that live under the
//! sandbox's host directory.
//!
//! It is made with util-linux's `unshare(1)` and `setpriv(1)` (both in the
//! Essential package `util-linux` on Debian) and [`crate::init`]
//! (`bm-sandbox-init`, linked as `DIR/bm-sandbox-init`), which runs as the
//! namespace's root, builds the mount tree under `DIR/root` with system
//! calls, `pivot_root`s into it and `exec`s the agent.
//!
//! Two modes:
//!
//! * **As host root** (the privileged mode): the sandbox gets its own range of
//!   65536 host uids and gids (`BASE = 200000 + 65536 * slot`); ns uid 0 is
//!   host `BASE`, ns uid 1000 (`build`) is host `BASE + 1000`. The agent runs
//!   as ns root, can drop to `build` for the job, and `/usr/local/bin/pfexec`
//!   is setuid ns-root. Ns root has no power over host files (they belong to
//!   unmapped uids, and the host tree is mounted read-only).
//!   `unshare --map-users` would need `newuidmap` (package `uidmap`, not
//!   installed by default), so this process writes the maps itself: the first
//!   stage runs as host `BASE` (`setpriv`), unshares only the user namespace
//!   and waits until its `uid_map` is filled, then `exec`s the second
//!   `unshare` — which, being ns uid 0 at exec, has full capabilities in the
//!   namespace.
//! * **Unprivileged** (anyone else): only the invoking user is mapped, to ns
//!   root (`unshare --map-root-user`). There is no `build` user
//!   ([`Sandbox::build_ids`] is `None`), jobs run as ns root, and `pfexec` is
//!   not setuid (it cannot be: there is nobody else to be).

use std::collections::{BTreeSet, HashSet};
use std::ffi::OsString;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

/// Uid/gid of the `build` user inside a privileged sandbox.
pub const BUILD_ID: u32 = 1000;
/// How many uids (and gids) each privileged sandbox maps.
pub const RANGE: u32 = 65536;
/// Host uid of the first sandbox range.
pub const FIRST_BASE: u32 = 200_000;
/// How many distinct ranges there are (the last ends below 2^31).
const SLOTS: u32 = 16_000;
/// The small `pfexec` executable, looked for next to the agent binary.
pub const PFEXEC_BIN: &str = "bm-pfexec";
/// Where the agent lives inside the sandbox (on `PATH`).
pub const AGENT_PATH: &str = "/usr/local/bin/bm-agent";
/// Names under which the multi-call agent is also installed in
/// `/usr/local/bin`; `pfexec` is a separate, setuid-root copy.
pub const TOOL_LINKS: &[&str] = &["ptime", "banner", "bmat"];
/// `PATH` inside the sandbox.
const PATH: &str = "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin";

/// What to make.
#[derive(Clone, Debug)]
pub struct SandboxSpec {
    /// A fresh host directory for this sandbox (created if missing, must be
    /// empty); everything writable lives under it. When running as root every
    /// ancestor must be searchable by others (mode `o+x`), because the
    /// sandbox's processes run as unprivileged host uids.
    pub dir: PathBuf,
    /// The hostname inside (letters, digits, `-` and `.`; at most 64).
    pub hostname: String,
    /// The `bm-agent` binary, installed inside as `/usr/local/bin/bm-agent`
    /// (and as `pfexec`, `ptime`, `banner`, `bmat`).
    pub agent_bin: PathBuf,
    /// A program that is [`crate::init`] when called `bm-sandbox-init`:
    /// the `bm` binary (which is also the agent), or the crate's own small
    /// `bm-sandbox-init`.
    pub init_bin: PathBuf,
}

/// One sandbox. Dropping it kills its processes but leaves its directory;
/// [`Sandbox::destroy`] removes both.
#[derive(Debug)]
pub struct Sandbox {
    dir: PathBuf,
    hostname: String,
    /// `Some((slot, base))` in the privileged mode.
    range: Option<(u32, u32)>,
    /// The user namespaces (as `/proc/PID/ns/user` link text) of every
    /// process tree started by [`Sandbox::spawn`], with an open handle on
    /// each: holding it keeps the namespace, so its inode number (the link
    /// text) cannot be reused by another sandbox's namespace meanwhile.
    spawned: Mutex<Vec<(String, fs::File)>>,
}

fn slots() -> &'static Mutex<HashSet<u32>> {
    static SLOTS_IN_USE: OnceLock<Mutex<HashSet<u32>>> = OnceLock::new();
    SLOTS_IN_USE.get_or_init(Default::default)
}

/// Picks a free uid range for `dir`: starts from a hash of the path (so two
/// factories on one host rarely collide) and skips ranges this process uses.
fn claim_slot(dir: &Path) -> u32 {
    let mut h: u32 = 2_166_136_261;
    for b in dir.as_os_str().as_encoded_bytes() {
        h = (h ^ u32::from(*b)).wrapping_mul(16_777_619);
    }
    h ^= std::process::id().wrapping_mul(2_654_435_761);
    let mut used = slots().lock().unwrap_or_else(|e| e.into_inner());
    let mut slot = h % SLOTS;
    while used.contains(&slot) {
        slot = (slot + 1) % SLOTS;
    }
    used.insert(slot);
    slot
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

fn chown(p: &Path, id: u32) -> anyhow::Result<()> {
    std::os::unix::fs::lchown(p, Some(id), Some(id)).with_context(|| format!("chown {}", p.display()))
}

fn chmod(p: &Path, mode: u32) -> anyhow::Result<()> {
    fs::set_permissions(p, fs::Permissions::from_mode(mode)).with_context(|| format!("chmod {}", p.display()))
}

fn valid_hostname(h: &str) -> bool {
    !h.is_empty()
        && h.len() <= 64
        && !h.starts_with(['-', '.'])
        && h.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
}

impl Sandbox {
    /// Makes the sandbox's directory tree (nothing runs yet).
    pub fn create(spec: SandboxSpec) -> anyhow::Result<Sandbox> {
        if !valid_hostname(&spec.hostname) {
            bail!("invalid sandbox hostname {:?}", spec.hostname);
        }
        let dir = std::path::absolute(&spec.dir).with_context(|| format!("sandbox dir {}", spec.dir.display()))?;
        let dir_str = dir.to_str().context("sandbox dir is not UTF-8")?;
        // The dir goes into an overlayfs option string and a shell script's
        // arguments: keep it plain.
        if dir_str.contains([',', ':', '\n', '\\']) {
            bail!("sandbox dir {dir_str:?} must not contain ',', ':', '\\\\' or a newline");
        }
        fs::create_dir_all(&dir).with_context(|| format!("mkdir {}", dir.display()))?;
        if fs::read_dir(&dir)?.next().is_some() {
            bail!("sandbox dir {} is not empty", dir.display());
        }
        let range = if is_root() {
            for a in dir.ancestors().skip(1) {
                let m = fs::metadata(a).with_context(|| format!("stat {}", a.display()))?;
                if m.mode() & 0o001 == 0 {
                    bail!(
                        "{} is not searchable by others (mode {:o}); a sandbox's processes run as unprivileged \
                         host uids and must reach {}",
                        a.display(),
                        m.mode() & 0o7777,
                        dir.display()
                    );
                }
            }
            let slot = claim_slot(&dir);
            Some((slot, FIRST_BASE + RANGE * slot))
        } else {
            None
        };
        let sb = Sandbox { dir, hostname: spec.hostname, range, spawned: Mutex::new(Vec::new()) };
        if let Err(e) = sb.populate(&spec.agent_bin, &spec.init_bin) {
            let _ = fs::remove_dir_all(&sb.dir);
            return Err(e);
        }
        Ok(sb)
    }

    fn populate(&self, agent_bin: &Path, init_bin: &Path) -> anyhow::Result<()> {
        let d = &self.dir;
        let root_id = self.range.map(|(_, b)| b);
        let build_id = self.range.map(|(_, b)| b + BUILD_ID);
        let mkdir = |rel: &str, owner: Option<u32>, mode: u32| -> anyhow::Result<()> {
            let p = d.join(rel);
            fs::create_dir_all(&p).with_context(|| format!("mkdir {}", p.display()))?;
            if let Some(o) = owner {
                chown(&p, o)?;
            }
            chmod(&p, mode)
        };
        mkdir("", root_id, 0o755)?;
        mkdir("root", root_id, 0o755)?;
        mkdir("etc", root_id, 0o755)?;
        mkdir("bin", root_id, 0o755)?;
        mkdir("home", root_id, 0o755)?;
        mkdir("tmp", root_id, 0o1777)?;
        for rel in ["home/build", "work", "input"] {
            mkdir(rel, build_id.or(root_id), 0o755)?;
        }

        // /etc: these shadow the host's (which is visible read-only).
        let (passwd, group) = if self.range.is_some() {
            (
                "root:x:0:0:root:/root:/bin/sh\n\
                 build:x:1000:1000:build:/home/build:/bin/bash\n\
                 nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
                "root:x:0:\nbuild:x:1000:\nnogroup:x:65534:\n",
            )
        } else {
            (
                "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
                "root:x:0:\nnogroup:x:65534:\n",
            )
        };
        let h = &self.hostname;
        let hosts = format!("127.0.0.1\tlocalhost\n127.0.1.1\t{h}\n::1\tlocalhost ip6-localhost ip6-loopback\n");
        let resolv = fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
        for (name, body) in [
            ("passwd", passwd.to_string()),
            ("group", group.to_string()),
            ("hosts", hosts),
            ("resolv.conf", resolv),
            ("hostname", format!("{h}\n")),
        ] {
            let p = d.join("etc").join(name);
            fs::write(&p, body).with_context(|| format!("write {}", p.display()))?;
            if let Some(o) = root_id {
                chown(&p, o)?;
            }
            chmod(&p, 0o644)?;
        }

        // The agent and its other names. With a uid range, the agent is a
        // hard link to the host's binary: nothing in the sandbox can write
        // to it (its owner is not mapped there), and linking costs nothing
        // where copying 100 MB would dominate the sandbox's creation.
        // Without one, the sandbox's root is the binary's owner, so it gets
        // a copy. pfexec is always a copy of its own, setuid to the
        // sandbox's root: the small `bm-pfexec` when it sits next to the
        // agent, else the agent itself.
        let agent = d.join("bin/bm-agent");
        let copy = |from: &Path, to: &Path| {
            fs::copy(from, to).with_context(|| format!("copy {} to {}", from.display(), to.display()))
        };
        if root_id.is_none() || fs::hard_link(agent_bin, &agent).is_err() {
            copy(agent_bin, &agent)?;
            if let Some(o) = root_id {
                chown(&agent, o)?;
            }
            chmod(&agent, 0o755)?;
        }
        let pfexec = d.join("bin/pfexec");
        let small = agent_bin.with_file_name(PFEXEC_BIN);
        copy(if small.is_file() { &small } else { agent_bin }, &pfexec)?;
        if let Some(o) = root_id {
            chown(&pfexec, o)?;
            chmod(&pfexec, 0o4755)?; // after chown, which clears set-id bits
        } else {
            chmod(&pfexec, 0o755)?;
        }
        for t in TOOL_LINKS {
            fs::hard_link(&agent, d.join("bin").join(t)).with_context(|| format!("link {t}"))?;
        }

        // The init program, outside the tree the sandbox sees; linked (or
        // copied) under the name it answers to.
        let init = d.join(crate::init::INIT_NAME);
        if fs::hard_link(init_bin, &init).is_err() {
            copy(init_bin, &init)?;
            chmod(&init, 0o755)?;
        }
        Ok(())
    }

    /// The sandbox's host directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The hostname inside.
    pub fn hostname(&self) -> &str {
        &self.hostname
    }

    /// True when the sandbox was made without host root: only the invoking
    /// user exists inside (as ns root), there is no `build` user, jobs run as
    /// ns root and `pfexec` is not setuid.
    pub fn unprivileged(&self) -> bool {
        self.range.is_none()
    }

    /// The host uid (= gid) that ns root maps to, in the privileged mode.
    pub fn host_base(&self) -> Option<u32> {
        self.range.map(|(_, b)| b)
    }

    /// Uid and gid of the unprivileged `build` user inside, if there is one
    /// (`(1000, 1000)` as root, `None` unprivileged).
    pub fn build_ids(&self) -> Option<(u32, u32)> {
        self.range.map(|_| (BUILD_ID, BUILD_ID))
    }

    /// Starts `argv` (resolved inside the sandbox) as ns root, pid 1 of a
    /// fresh PID namespace, with only `PATH`, `HOME`, `LANG` and `env` in its
    /// environment, stdin from `/dev/null` and stdout/stderr piped. The
    /// returned child is the host-side `unshare` process: it exits with the
    /// sandboxed program's status, and killing it (SIGKILL) kills every
    /// process of the sandbox (`--kill-child`; pid 1 taking the namespace
    /// down with it). Failures of the sandbox's setup show on stderr
    /// (`bm-sandbox: …`) with exit status 1.
    pub fn spawn(&self, argv: &[String], env: &[(String, String)]) -> anyhow::Result<tokio::process::Child> {
        if argv.is_empty() {
            bail!("empty argv");
        }
        let init = self.dir.join(crate::init::INIT_NAME);
        let mut args: Vec<OsString> = Vec::new();
        let program = match self.range {
            Some((_, base)) => {
                for a in [
                    format!("--reuid={base}"),
                    format!("--regid={base}"),
                    "--clear-groups".into(),
                    "--".into(),
                    "unshare".into(),
                    "--user".into(),
                    "--".into(),
                ] {
                    args.push(a.into());
                }
                // The first stage waits for the maps this process writes,
                // then runs `unshare UNSHARE_FLAGS -- init DIR …` as ns root.
                args.push(init.clone().into());
                args.push(crate::init::STAGE1_FLAG.into());
                args.extend(UNSHARE_FLAGS.iter().map(OsString::from));
                args.push("--".into());
                "setpriv"
            }
            None => {
                args.extend(UNSHARE_FLAGS.iter().copied().chain(["--map-root-user", "--"]).map(OsString::from));
                "unshare"
            }
        };
        args.push(init.into());
        args.push(self.dir.clone().into());
        args.push(self.hostname.clone().into());
        args.extend(argv.iter().map(OsString::from));

        let mut cmd = tokio::process::Command::new(program);
        cmd.args(&args)
            .env_clear()
            .env("PATH", PATH)
            .env("HOME", "/root")
            .env("LANG", "C.UTF-8")
            // Marks the sandbox's first process (which becomes its pid 1)
            // so that a factory restarted after a crash finds what this one
            // left running (see `orphans`).
            .env(crate::orphans::SANDBOX_ENV, &self.dir)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .current_dir("/")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().with_context(|| format!("spawn {program}"))?;
        match self.attach(&child) {
            Ok(()) => Ok(child),
            Err(e) => {
                let _ = child.start_kill();
                Err(e)
            }
        }
    }

    /// Waits until the new child is in its own user namespace, records it,
    /// and (privileged) writes its uid and gid maps, which lets it go on.
    fn attach(&self, child: &tokio::process::Child) -> anyhow::Result<()> {
        let pid = child.id().context("child already gone")?;
        let ours = fs::read_link("/proc/self/ns/user").context("readlink /proc/self/ns/user")?;
        let link = format!("/proc/{pid}/ns/user");
        let deadline = Instant::now() + Duration::from_secs(10);
        let (ns, handle) = loop {
            match fs::read_link(&link) {
                Ok(l) if l != ours => {
                    let f = fs::File::open(&link).with_context(|| format!("open {link}"))?;
                    // The process may have gone on to another namespace (or
                    // its pid been reused) between the two calls: check.
                    if fs::read_link(&link).ok().as_ref() != Some(&l) {
                        bail!("sandbox process {pid} changed during setup");
                    }
                    break (l, f);
                }
                Ok(_) => {}
                Err(e) => bail!("sandbox process {pid} died during setup: {e}"),
            }
            if Instant::now() > deadline {
                bail!("sandbox process {pid} did not make its user namespace");
            }
            std::thread::sleep(Duration::from_micros(200));
        };
        self.spawned.lock().unwrap_or_else(|e| e.into_inner()).push((ns.to_string_lossy().into_owned(), handle));
        if let Some((_, base)) = self.range {
            let map = format!("0 {base} {RANGE}\n");
            // gid first: the child waits for the uid map.
            fs::write(format!("/proc/{pid}/gid_map"), &map).context("write gid_map")?;
            fs::write(format!("/proc/{pid}/uid_map"), &map).context("write uid_map")?;
        }
        Ok(())
    }

    /// SIGKILLs every process of the sandbox (everything in the user and PID
    /// namespaces of whatever [`Sandbox::spawn`] started) and waits until
    /// none is left. The host-side children may remain as zombies until
    /// their `Child` is waited for or dropped.
    pub fn kill_all(&self) {
        let users: HashSet<String> =
            self.spawned.lock().unwrap_or_else(|e| e.into_inner()).iter().map(|(ns, _)| ns.clone()).collect();
        kill_namespaces(&users, &self.dir);
    }

    /// Kills everything in the sandbox and removes its directory (its mounts
    /// lived in its own mount namespace and are gone with its processes).
    pub fn destroy(self) -> anyhow::Result<()> {
        self.kill_all();
        remove_tree(&self.dir)
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        self.kill_all();
        if let Some((slot, _)) = self.range {
            slots().lock().unwrap_or_else(|e| e.into_inner()).remove(&slot);
        }
    }
}

/// SIGKILLs every process in the user namespaces `users` (given as their
/// `/proc/PID/ns/user` links) and in the PID namespaces they own, and waits
/// until none is left; `what` names the sandbox in warnings.
pub fn kill_namespaces(users: &HashSet<String>, what: &Path) {
    if users.is_empty() {
        return;
    }

    let host_pidns = fs::read_link("/proc/self/ns/pid").map(|l| l.to_string_lossy().into_owned()).ok();
    let mut pidns: BTreeSet<String> = BTreeSet::new();
    // Handles on the pid namespaces found, for the same reason as above.
    let mut held: Vec<fs::File> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut found = 0;
        // Repeat so that pid namespaces learned late are covered too.
        for _ in 0..2 {
            found = 0;
            let Ok(rd) = fs::read_dir("/proc") else { return };
            for e in rd.flatten() {
                let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else { continue };
                let user = fs::read_link(format!("/proc/{pid}/ns/user"));
                let pns = fs::read_link(format!("/proc/{pid}/ns/pid"));
                let (Ok(user), Ok(pns)) = (user, pns) else { continue }; // gone
                if is_zombie(pid) {
                    continue; // dead already; its parent reaps it
                }
                let user = user.to_string_lossy().into_owned();
                let pns = pns.to_string_lossy().into_owned();
                let ours = users.contains(&user);
                if ours && Some(&pns) != host_pidns.as_ref() && !pidns.contains(&pns) {
                    let path = format!("/proc/{pid}/ns/pid");
                    if let Ok(f) = fs::File::open(&path) {
                        if fs::read_link(&path).ok().map(|l| l.to_string_lossy().into_owned()) == Some(pns.clone()) {
                            held.push(f);
                            pidns.insert(pns.clone());
                        }
                    }
                }
                if ours || pidns.contains(&pns) {
                    // SAFETY: plain syscall.
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                    found += 1;
                }
            }
        }
        if found == 0 || Instant::now() > deadline {
            if found != 0 {
                tracing::warn!(dir = %what.display(), found, "sandbox processes survive SIGKILL");
            }
            return;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Whether `pid` has exited but is not reaped yet (or is gone).
fn is_zombie(pid: i32) -> bool {
    let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else { return true };
    // "PID (COMM) STATE ...": COMM may contain anything, so look after the last ')'.
    let state = stat.rsplit_once(')').map(|(_, rest)| rest.trim_start().chars().next());
    matches!(state, Some(Some('Z' | 'X')) | None)
}

/// `rm -rf`, making directories writable first if that is what stops it
/// (unprivileged: a job may leave read-only directories).
pub(crate) fn remove_tree(dir: &Path) -> anyhow::Result<()> {
    match fs::remove_dir_all(dir) {
        Ok(()) => return Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(_) => {}
    }
    fn open_up(p: &Path) {
        if let Ok(m) = fs::symlink_metadata(p) {
            if m.is_dir() {
                let _ = fs::set_permissions(p, fs::Permissions::from_mode(0o700));
                if let Ok(rd) = fs::read_dir(p) {
                    for e in rd.flatten() {
                        open_up(&e.path());
                    }
                }
            }
        }
    }
    open_up(dir);
    fs::remove_dir_all(dir).with_context(|| format!("remove {}", dir.display()))
}

/// Namespaces of the second stage (and the unprivileged single stage). The
/// network namespace is shared on purpose.
const UNSHARE_FLAGS: &[&str] = &["--mount", "--uts", "--ipc", "--pid", "--fork", "--kill-child"];
