//! Sandbox tests. The privileged ones need host root (as in CI); run
//! unprivileged they check the degraded mode instead where it matters.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use bm_factory_local::sandbox::{Sandbox, SandboxSpec};

fn root() -> bool {
    // SAFETY: no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// A parent directory all sandbox uids can traverse.
fn parent() -> tempfile::TempDir {
    let t = tempfile::Builder::new().prefix("bm-sandbox-test").tempdir().unwrap();
    std::fs::set_permissions(t.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    t
}

/// A sandbox whose "agent" is `/usr/bin/id`, so that `pfexec` is a setuid
/// copy of `id`.
fn make(parent: &tempfile::TempDir, name: &str, host: &str) -> Sandbox {
    Sandbox::create(SandboxSpec {
        dir: parent.path().join(name),
        hostname: host.into(),
        agent_bin: PathBuf::from("/usr/bin/id"),
        init_bin: PathBuf::from(env!("CARGO_BIN_EXE_bm-sandbox-init")),
    })
    .unwrap()
}

async fn sh(sb: &Sandbox, script: &str) -> (i32, String, String) {
    let argv = vec!["/bin/sh".to_string(), "-c".to_string(), script.to_string()];
    let child = sb.spawn(&argv, &[("BM_TEST".into(), "yes".into())]).unwrap();
    let out = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output()).await.unwrap().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).trim().to_string(),
        String::from_utf8_lossy(&out.stderr).trim().to_string(),
    )
}

const AS_BUILD: &str = "setpriv --reuid=1000 --regid=1000 --clear-groups";

#[tokio::test]
async fn agent_is_ns_root_and_build_exists() {
    let p = parent();
    let sb = make(&p, "a", "bm-test-a");
    let (rc, out, err) = sh(&sb, "id -u; echo $BM_TEST; hostname").await;
    assert_eq!(rc, 0, "{err}");
    assert_eq!(out, "0\nyes\nbm-test-a", "{err}");
    if root() {
        assert!(!sb.unprivileged());
        assert_eq!(sb.build_ids(), Some((1000, 1000)));
        let (rc, out, err) = sh(&sb, &format!("{AS_BUILD} id -un; {AS_BUILD} id -u")).await;
        assert_eq!(rc, 0, "{err}");
        assert_eq!(out, "build\n1000");
    } else {
        assert!(sb.unprivileged());
        assert_eq!(sb.build_ids(), None);
    }
    sb.destroy().unwrap();
}

#[tokio::test]
async fn build_user_file_access() {
    if !root() {
        return;
    }
    let p = parent();
    let sb = make(&p, "b", "bm-test-b");
    let script = format!(
        r#"cd; echo $HOME
        {AS_BUILD} env HOME=/home/build sh -c 'echo hi > $HOME/f && cat $HOME/f'
        {AS_BUILD} touch /work/w && echo work-ok
        {AS_BUILD} touch /tmp/t && echo tmp-ok
        {AS_BUILD} touch /usr/x 2>/dev/null && echo usr-writable
        {AS_BUILD} touch /etc/x 2>/dev/null && echo etc-writable
        {AS_BUILD} touch /x 2>/dev/null && echo root-writable
        true"#
    );
    let (rc, out, err) = sh(&sb, &script).await;
    assert_eq!(rc, 0, "{err}");
    assert_eq!(out, "/root\nhi\nwork-ok\ntmp-ok", "{err}");
    // On the host, the build user's files belong to BASE+1000.
    let base = sb.host_base().unwrap();
    let m = std::fs::metadata(sb.dir().join("home/build/f")).unwrap();
    use std::os::unix::fs::MetadataExt;
    assert_eq!((m.uid(), m.gid()), (base + 1000, base + 1000));
    sb.destroy().unwrap();
}

#[tokio::test]
async fn pfexec_is_setuid_root() {
    let p = parent();
    let sb = make(&p, "c", "bm-test-c");
    let (rc, out, err) = sh(
        &sb,
        "stat -c '%a %u %g' /usr/local/bin/pfexec; stat -c '%a %u' /usr/local/bin/bm-agent; \
         ls /usr/local/bin | tr '\\n' ' '",
    )
    .await;
    assert_eq!(rc, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    if root() {
        assert_eq!(lines[0], "4755 0 0");
    } else {
        assert_eq!(lines[0], "755 0 0");
    }
    if root() {
        // A hard link to the host's binary, whose owner is not mapped here.
        assert_eq!(lines[1], "755 65534");
    } else {
        assert_eq!(lines[1], "755 0");
    }
    assert_eq!(lines[2].trim(), "banner bm-agent bmat pfexec ptime");
    if root() {
        // Even the sandbox's root cannot change the host's agent binary.
        let (rc, _, err) = sh(&sb, "echo x >> /usr/local/bin/bm-agent").await;
        assert_ne!(rc, 0, "the sandbox wrote to the agent binary");
        assert!(err.contains("ermission denied") || err.contains("ead-only"), "{err}");
    }
    if root() {
        // pfexec here is a setuid copy of id(1): the mechanism works.
        let (rc, out, err) =
            sh(&sb, &format!("{AS_BUILD} /usr/local/bin/pfexec -u; {AS_BUILD} /usr/local/bin/pfexec -ru")).await;
        assert_eq!(rc, 0, "{err}");
        assert_eq!(out, "0\n1000");
        // The other names are not setuid.
        let (_, out, _) = sh(&sb, &format!("{AS_BUILD} /usr/local/bin/ptime -u")).await;
        assert_eq!(out, "1000");
    }
    sb.destroy().unwrap();
}

#[tokio::test]
async fn sandboxes_are_isolated() {
    let p = parent();
    let a = make(&p, "d1", "bm-test-d1");
    let b = make(&p, "d2", "bm-test-d2");
    let argv = |s: &str| vec!["/bin/sh".to_string(), "-c".to_string(), s.to_string()];
    // Both at once: a keeps running while b looks.
    let mut ca = a.spawn(&argv("echo secret > /tmp/a-file; sleep 30"), &[]).unwrap();
    let t = Instant::now();
    while !a.dir().join("tmp/a-file").exists() && t.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    if !a.dir().join("tmp/a-file").exists() {
        let _ = ca.start_kill();
        let out = ca.wait_with_output().await.unwrap();
        panic!("sandbox a did not start: {}", String::from_utf8_lossy(&out.stderr));
    }
    let (rc, out, err) = sh(&b, "ls -A /tmp; echo --; ls /proc | grep -E '^[0-9]+$' | tr '\\n' ' '").await;
    assert_eq!(rc, 0, "{err}");
    let (tmp, pids) = out.split_once("--").unwrap();
    assert_eq!(tmp.trim(), "");
    // pid 1 (sh), ls, grep, tr: a handful (pids above 1 were used by setup).
    let pids: Vec<u32> = pids.split_whitespace().map(|p| p.parse().unwrap()).collect();
    assert!(pids.contains(&1) && pids.len() <= 6, "{pids:?}");
    assert!(!b.dir().join("tmp/a-file").exists());
    let _ = ca.start_kill();
    let _ = ca.wait().await;
    a.destroy().unwrap();
    b.destroy().unwrap();
}

fn marker_procs(marker: &str) -> Vec<u32> {
    let mut v = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else { continue };
        if let Ok(c) = std::fs::read(format!("/proc/{pid}/cmdline")) {
            if c.split(|b| *b == 0).any(|a| a == marker.as_bytes()) {
                v.push(pid);
            }
        }
    }
    v
}

#[tokio::test]
async fn kill_all_and_destroy_leave_nothing() {
    let p = parent();
    let sb = make(&p, "e", "bm-test-e");
    let marker = format!("bm-marker-{}", std::process::id());
    // Two trees: one with the marker as sh's $0, one where a nested sh (in
    // the same sandbox) carries it.
    let argv =
        vec!["/bin/sh".to_string(), "-c".to_string(), "sleep 1000 & sleep 1000; : $0".to_string(), marker.clone()];
    let argv2 = vec![
        "/bin/sh".to_string(),
        "-c".to_string(),
        "sh -c 'sleep 1000 & sleep 1000' \"$0\"".to_string(),
        marker.clone(),
    ];
    let mut c1 = sb.spawn(&argv, &[]).unwrap();
    let mut c2 = sb.spawn(&argv2, &[]).unwrap();
    let t = Instant::now();
    while marker_procs(&marker).len() < 2 && t.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(marker_procs(&marker).len() >= 2, "sandboxed processes did not start");
    sb.kill_all();
    assert_eq!(marker_procs(&marker), Vec::<u32>::new());
    let s1 = tokio::time::timeout(Duration::from_secs(5), c1.wait()).await.unwrap().unwrap();
    let _ = tokio::time::timeout(Duration::from_secs(5), c2.wait()).await.unwrap().unwrap();
    assert!(!s1.success());
    let dir = sb.dir().to_path_buf();
    assert!(dir.join("root").is_dir());
    sb.destroy().unwrap();
    assert!(!dir.exists());
}

#[tokio::test]
async fn no_sleep_survives_kill_all() {
    let p = parent();
    let sb = make(&p, "f", "bm-test-f");
    // The marker is an argument of every process: sleep accepts several
    // durations and sums them.
    let marker = format!("{}.{}", 999, std::process::id());
    let script = format!("sleep 1000 {marker} & sleep 1000 {marker}");
    let argv = vec!["/bin/sh".to_string(), "-c".to_string(), script];
    let mut c = sb.spawn(&argv, &[]).unwrap();
    let t = Instant::now();
    while marker_procs(&marker).len() < 2 && t.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(marker_procs(&marker).len(), 2);
    sb.kill_all();
    assert_eq!(marker_procs(&marker), Vec::<u32>::new());
    let _ = c.wait().await;
    sb.destroy().unwrap();
}

#[tokio::test]
async fn ns_root_cannot_write_host_etc() {
    let p = parent();
    let sb = make(&p, "g", "bm-test-g");
    let name = format!("bm-sandbox-test-{}", std::process::id());
    let (_, out, _) = sh(
        &sb,
        &format!(
            "touch /etc/{name} 2>/dev/null && echo wrote-etc; \
             mount -o remount,rw /etc 2>/dev/null; touch /etc/{name} 2>/dev/null && echo wrote-etc2; \
             touch /usr/{name} 2>/dev/null && echo wrote-usr; \
             mount -o remount,bind,rw /usr 2>/dev/null; touch /usr/{name} 2>/dev/null && echo wrote-usr2; \
             echo x >> /etc/passwd 2>/dev/null && echo wrote-passwd; true"
        ),
    )
    .await;
    assert!(!std::path::Path::new(&format!("/etc/{name}")).exists());
    assert!(!std::path::Path::new(&format!("/usr/{name}")).exists());
    if root() {
        assert_eq!(out, "");
    }
    sb.destroy().unwrap();
}

#[tokio::test]
async fn setup_failure_is_reported() {
    let p = parent();
    let sb = make(&p, "h", "bm-test-h");
    let (rc, _, _) = sh(&sb, "exit 7").await;
    assert_eq!(rc, 7);
    let child = sb.spawn(&["/nonexistent".to_string()], &[]).unwrap();
    let out = child.wait_with_output().await.unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bm-sandbox: exec /nonexistent: No such file or directory"), "{err}");
    sb.destroy().unwrap();
    let bad = Sandbox::create(SandboxSpec {
        dir: p.path().join("i"),
        hostname: "bad host".into(),
        agent_bin: "/usr/bin/id".into(),
        init_bin: env!("CARGO_BIN_EXE_bm-sandbox-init").into(),
    });
    assert!(bad.is_err());
}

/// p50 of create + spawn(`true`) + wait + destroy.
#[tokio::test]
#[ignore]
async fn timing_create_spawn_destroy() {
    let p = parent();
    let mut times = Vec::new();
    for i in 0..20 {
        let t = Instant::now();
        let sb = make(&p, &format!("t{i}"), "bm-time");
        let c = sb.spawn(&["true".to_string()], &[]).unwrap();
        let out = c.wait_with_output().await.unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        sb.destroy().unwrap();
        times.push(t.elapsed());
    }
    times.sort();
    println!("create+spawn(true)+destroy: p50 {:?}, min {:?}, max {:?}", times[10], times[0], times[19]);
}
