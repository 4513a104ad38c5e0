//! One in-process node and real `bm-agent` processes (`--root` on a
//! temporary directory, the HTTP agent API): shared by the agent's tests
//! and its memory bench.
#![allow(dead_code)] // Each user takes what it needs.

use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use bm_api::factories::{FactoryCreate, LeaseRequest};
use bm_api::jobs::{DependSubmit, JobSubmit};
use bm_api::targets::TargetCreate;
use bm_api::Client;

/// A running agent process, killed when dropped.
pub struct Agent(pub Child);

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A node with a `default` target and a factory, and the worker root the
/// agents run on.
pub struct Fixture {
    _tmp: tempfile::TempDir,
    /// The agents' `--root`.
    pub root: std::path::PathBuf,
    /// The node.
    pub node: bm_node::Running,
    /// Its admin.
    pub admin: Client,
    /// The factory, which leases the workers the agents stand for.
    pub factory: Client,
}

/// A fixture with a long worker lease.
pub async fn fixture() -> Fixture {
    fixture_with_lease(120).await
}

/// A fixture whose workers lose their lease after `lease_secs` of silence.
pub async fn fixture_with_lease(lease_secs: u64) -> Fixture {
    fixture_with(|cfg| cfg.worker_lease_secs = lease_secs).await
}

/// A fixture whose node config `adjust` changes first.
pub async fn fixture_with(adjust: impl FnOnce(&mut bm_node::NodeConfig)) -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = bm_node::NodeConfig::in_dir(&tmp.path().join("node"), "127.0.0.1:0".parse().unwrap());
    adjust(&mut cfg);
    let node = bm_node::start(cfg).await.unwrap();
    let token = std::fs::read_to_string(tmp.path().join("node/admin-token")).unwrap().trim().to_string();
    let admin = Client::new(vec![node.url()], Some(token));
    admin.target_create(&TargetCreate::named("default")).await.unwrap();
    let f = admin.factory_create(&FactoryCreate { name: "test".into() }).await.unwrap();
    let factory = Client::new(vec![node.url()], Some(f.token));
    let root = tmp.path().join("worker");
    std::fs::create_dir_all(&root).unwrap();
    Fixture { _tmp: tmp, root, node, admin, factory }
}

/// A job on `default` running `script` with output rules `rules`.
pub fn job(script: &str, rules: &[&str]) -> JobSubmit {
    let mut j = JobSubmit::script("t", "default", script);
    j.tasks[0].env.insert("GREETING".into(), "hello".into());
    j.output_rules = rules.iter().map(|r| r.to_string()).collect();
    j.tags.insert("github.repository".into(), "oxide/hello".into());
    j
}

/// `j`, made to run after job `prior` (as dependency `name`) and receive
/// its outputs under `/input/NAME`.
pub fn after(mut j: JobSubmit, name: &str, prior: &str) -> JobSubmit {
    let d = DependSubmit { prior_job: prior.to_string(), copy_outputs: true, on_failed: false, on_completed: true };
    j.depends.insert(name.into(), d);
    j
}

/// Leases the worker the scheduler requested and starts an agent for it.
pub async fn start_agent(fx: &Fixture) -> Agent {
    start_agent_from(fx, Path::new(env!("CARGO_BIN_EXE_bm-agent"))).await
}

/// [`start_agent`] with the agent binary at `bin`.
pub async fn start_agent_from(fx: &Fixture, bin: &Path) -> Agent {
    let deadline = Instant::now() + Duration::from_secs(20);
    let lease = loop {
        let l =
            fx.factory.factory_lease(&LeaseRequest { targets: vec!["default".into()], capacity: None }).await.unwrap();
        if let Some(l) = l {
            break l;
        }
        assert!(Instant::now() < deadline, "no worker was requested");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let child = Command::new(bin)
        .args(["--url", &fx.node.url(), "--root", fx.root.to_str().unwrap()])
        .env("BM_BOOTSTRAP_TOKEN", &lease.bootstrap_token)
        .env("RUST_LOG", "warn")
        .spawn()
        .unwrap();
    Agent(child)
}

/// Waits up to a minute for job `id` to end.
pub async fn wait_terminal(c: &Client, id: &str) -> bm_api::jobs::Job {
    wait_terminal_within(c, id, Duration::from_secs(60)).await
}

/// Waits up to `within` for job `id` to end.
pub async fn wait_terminal_within(c: &Client, id: &str, within: Duration) -> bm_api::jobs::Job {
    let deadline = Instant::now() + within;
    loop {
        let j = c.job(id).await.unwrap();
        if j.state.is_terminal() {
            return j;
        }
        assert!(Instant::now() < deadline, "job stuck in {:?}", j.state);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
