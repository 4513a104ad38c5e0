//! A local factory killed with SIGKILL cannot destroy its sandboxes: their
//! agents and jobs run on. The next factory on the same folder kills them
//! at start, and the cluster ends their jobs with a clear cause.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bm_api::factories::FactoryCreate;
use bm_api::jobs::{JobState, JobSubmit};
use bm_node::config::RaftTuning;
use common::{default_target, job_end, Cluster, Proc};

/// Starts `bm local factory` on `dir` with `token`, logging to `log`.
fn factory(c: &Cluster, token: &str, dir: &Path, log: &str) -> Proc {
    let urls: Vec<String> = c.procs.keys().map(|id| c.url(*id)).collect();
    let log = std::fs::File::create(c.path().join(log)).unwrap();
    Proc(
        Command::new(env!("CARGO_BIN_EXE_bm"))
            .args(["local", "factory", "--url", &urls.join(","), "--token", token])
            .arg("--dir")
            .arg(dir)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap(),
    )
}

/// Live (not zombie) processes running `sleep MARK`.
fn sleepers(mark: &str) -> Vec<u32> {
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else { continue };
        let Ok(cmd) = std::fs::read(format!("/proc/{pid}/cmdline")) else { continue };
        let live = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|s| s.rsplit_once(')').map(|(_, r)| !r.trim_start().starts_with(['Z', 'X'])))
            .unwrap_or(false);
        if live && cmd == format!("sleep\0{mark}\0").as_bytes() {
            found.push(pid);
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_factory_killed_with_sigkill_leaves_nothing_running_once_restarted() {
    let c = Cluster::start(1, RaftTuning::frequent_snapshots()).await;
    let admin = c.client();
    default_target(&admin).await;
    let f = admin.factory_create(&FactoryCreate { name: "crashy".into() }).await.unwrap();
    // Sandboxes run as unprivileged uids: every folder above must be searchable.
    let dir = std::env::temp_dir().join(format!("bm-test-factory-crash-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let mark = format!("{}", 4000 + std::process::id() % 1000);
    let mut first = factory(&c, &f.token, &dir, "factory-1.log");
    let job = admin
        .job_submit(&JobSubmit::script("long", "default", &format!("echo started\nsleep {mark}\n")))
        .await
        .unwrap()
        .id;
    let deadline = Instant::now() + Duration::from_secs(60);
    while sleepers(&mark).is_empty() {
        assert!(Instant::now() < deadline, "the job's sleep never started");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // SIGKILL: nothing destroys the sandbox, and its job goes on.
    first.0.kill().unwrap();
    first.0.wait().unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let orphans = sleepers(&mark);
    assert!(!orphans.is_empty(), "the sandbox died with its factory; nothing to reap");

    // The next factory on the same folder kills it at start.
    let _second = factory(&c, &f.token, &dir, "factory-2.log");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !sleepers(&mark).is_empty() {
        assert!(Instant::now() < deadline, "orphaned sandbox processes still run: {:?}", sleepers(&mark));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let log = std::fs::read_to_string(c.path().join("factory-2.log")).unwrap();
    assert!(log.contains("killed sandboxes an earlier factory left running"), "{log}");

    // And the cluster ends the job, saying why.
    let j = job_end(&admin, &job, Duration::from_secs(60), "the orphan's job").await;
    assert_eq!(j.state, JobState::Failed, "{j:?}");
    let _ = std::fs::remove_dir_all(&dir);
}
