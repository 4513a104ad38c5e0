//! The README's first-steps flow, end to end with real processes: `bm up`,
//! create a user, submit a job, `kill -9` the cluster, start it again, and
//! find everything that was acknowledged.

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

struct Up(Child);

impl Drop for Up {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn bm(home: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_bm"))
        .args(args)
        .env("BM_CONFIG", home.join("config.toml"))
        .env("XDG_DATA_HOME", home.join("data"))
        .env_remove("BM_PROFILE")
        .env_remove("BM_TOKEN")
        .env_remove("BM_URL")
        .output()
        .expect("run bm")
}

/// Starts `bm up` on a free port and waits until the profile answers.
fn up(home: &Path) -> Up {
    up_nodes(home, 1)
}

/// Starts `bm up --nodes N`.
fn up_nodes(home: &Path, nodes: usize) -> Up {
    let _ = std::fs::remove_file(home.join("config.toml"));
    let log_path = home.join(format!("up-{nodes}.log"));
    let log = std::fs::File::create(&log_path).expect("create the log of bm up");
    let child = Command::new(env!("CARGO_BIN_EXE_bm"))
        .args(["up", "--listen", "127.0.0.1:0", "--nodes", &nodes.to_string()])
        .env("BM_CONFIG", home.join("config.toml"))
        .env("XDG_DATA_HOME", home.join("data"))
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("spawn bm up");
    let up = Up(child);
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if bm(home, &["-p", "local", "check"]).status.success() {
            return up;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let log = std::fs::read_to_string(&log_path).unwrap_or_default();
    let last = bm(home, &["-p", "local", "check"]);
    panic!(
        "bm up did not come up within 60 s; `bm check` says: {}\nbm up's log:\n{log}",
        String::from_utf8_lossy(&last.stderr)
    );
}

fn stdout(o: &Output) -> String {
    assert!(o.status.success(), "bm failed: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

#[test]
fn bm_up_keeps_acknowledged_users_tokens_and_jobs_across_kill_9() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let mut cluster = up(h);

    let token = stdout(&bm(h, &["-p", "local", "user", "create", "carol"]));
    // Hold new work so the job stays queued through the restart.
    stdout(&bm(h, &["-p", "local", "admin", "control", "hold"]));
    let script = h.join("job.sh");
    std::fs::write(&script, "#!/bin/bash\necho hi\n").unwrap();
    let out = stdout(&bm(h, &["-p", "local", "job", "run", "--target", "default", script.to_str().unwrap()]));
    let job_id = out.lines().next().unwrap().to_string();
    let shown: serde_json::Value =
        serde_json::from_str(&stdout(&bm(h, &["-p", "local", "job", "show", &job_id, "--json"]))).unwrap();
    assert_eq!(shown["state"], "queued", "work is held: {shown}");
    // A keyed submit run again answers the job the first run made.
    let keyed = |h: &std::path::Path| {
        let args = ["-p", "local", "job", "run", "--target", "default", "--submit-key", "nightly-1"];
        let out = stdout(&bm(h, &[&args[..], &[script.to_str().unwrap()]].concat()));
        out.lines().next().unwrap().to_string()
    };
    let keyed_id = keyed(h);
    assert_eq!(keyed(h), keyed_id, "the same key made a second job");
    assert_ne!(keyed_id, job_id);

    // Pull the plug: SIGKILL, no shutdown path runs.
    cluster.0.kill().unwrap();
    cluster.0.wait().unwrap();
    drop(cluster);
    let _cluster = up(h);

    let list: serde_json::Value =
        serde_json::from_str(&stdout(&bm(h, &["-p", "local", "job", "list", "--json"]))).unwrap();
    assert!(list.as_array().unwrap().iter().any(|j| j["id"] == job_id.as_str()), "job lost: {list}");
    assert_eq!(list.as_array().unwrap().len(), 2, "one job per submit, one per key: {list}");
    assert_eq!(keyed(h), keyed_id, "the key is kept across the restart");
    let users = stdout(&bm(h, &["-p", "local", "user", "ls"]));
    assert!(users.contains("carol"), "user lost: {users}");
    let who = stdout(&bm(h, &["-p", "local", "--token", &token, "info"]));
    assert!(who.contains("carol"), "carol's token no longer works: {who}");

    // Exit codes scripts rely on.
    assert_eq!(bm(h, &["-p", "local", "job", "show", "01NOSUCHJOB"]).status.code(), Some(4));
    assert_eq!(bm(h, &["-p", "local", "--token", "wrong", "info"]).status.code(), Some(5));
}

#[test]
fn job_run_wait_runs_a_job_on_the_local_factory_and_exits_with_its_status() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let _cluster = up(h);
    let ok = h.join("ok.sh");
    std::fs::write(&ok, "echo \"hello as $(id -un) on $(hostname)\"\n").unwrap();
    let o = bm(h, &["-p", "local", "job", "run", "--target", "default", "--wait", ok.to_str().unwrap()]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{out}\n{}", String::from_utf8_lossy(&o.stderr));
    assert!(out.contains("hello as build on bm-"), "{out}");
    let bad = h.join("bad.sh");
    std::fs::write(&bad, "exit 3\n").unwrap();
    let o = bm(h, &["-p", "local", "job", "run", "--target", "default", "--wait", bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "a failed job exits 1");
}

#[test]
fn bm_up_nodes_3_runs_a_three_node_cluster_with_the_local_factory() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let mut cluster = up_nodes(h, 3);
    let status: serde_json::Value =
        serde_json::from_str(&stdout(&bm(h, &["-p", "local", "cluster", "status", "--json"]))).unwrap();
    let members = status["members"].as_array().unwrap();
    assert_eq!(members.len(), 3, "{status}");
    assert!(members.iter().all(|m| m["voter"] == true && m["health"] == "ok"), "{status}");
    let ok = h.join("ok.sh");
    std::fs::write(&ok, "echo replicated\n").unwrap();
    let o = bm(h, &["-p", "local", "job", "run", "--target", "default", "--wait", ok.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("replicated"));
    // Its files are kept: a second start is the same cluster.
    cluster.0.kill().unwrap();
    cluster.0.wait().unwrap();
    drop(cluster);
    let _cluster = up_nodes(h, 3);
    let list: serde_json::Value =
        serde_json::from_str(&stdout(&bm(h, &["-p", "local", "job", "list", "--json"]))).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
}
