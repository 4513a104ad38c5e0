//! The local factory's provisioning loop: lease worker requests for its
//! targets, make a fresh sandbox for each with the agent inside, report the
//! instance, and destroy the sandbox when the cluster marks the worker for
//! destruction. Orphans (sandboxes or workers left by an earlier run) are
//! reaped on start and on every pass.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use bm_api::factories::LeaseRequest;
use bm_api::workers::WorkerState;
use bm_api::Client;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::watch;

use crate::sandbox::{Sandbox, SandboxSpec};

/// How the factory is set up.
#[derive(Clone, Debug)]
pub struct LocalFactoryConfig {
    /// Node URLs (for the factory API and for agents).
    pub urls: Vec<String>,
    /// The factory's bearer token.
    pub token: String,
    /// Targets it makes workers for.
    pub targets: Vec<String>,
    /// Where sandboxes live; held (locked) by this factory for its life,
    /// and emptied on start of whatever a crashed factory left in it.
    pub dir: PathBuf,
    /// The `bm-agent` binary to put in each sandbox.
    pub agent_bin: PathBuf,
    /// Most sandboxes at once.
    pub max_workers: usize,
}

struct Live {
    sandbox: Sandbox,
    agent: tokio::process::Child,
}

/// Runs the factory until `stop` turns true.
pub async fn run(cfg: LocalFactoryConfig, mut stop: watch::Receiver<bool>) -> anyhow::Result<()> {
    let client = Client::new(cfg.urls.clone(), Some(cfg.token.clone()));
    let _held = crate::orphans::claim(&cfg.dir)?;
    let mut live: BTreeMap<String, Live> = BTreeMap::new();
    let mut next_sweep = tokio::time::Instant::now();
    loop {
        if tokio::time::Instant::now() >= next_sweep {
            sweep_abandoned(&cfg.dir).await;
            next_sweep += SWEEP_EVERY;
        }
        if let Err(e) = pass(&cfg, &client, &mut live).await {
            tracing::warn!(error = %e, "local factory pass failed; retrying");
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(100)) => {}
            _ = stop.changed() => {}
        }
        if *stop.borrow() {
            for (_, l) in std::mem::take(&mut live) {
                let _ = l.sandbox.destroy();
            }
            let _ = std::fs::remove_dir_all(&cfg.dir);
            return Ok(());
        }
    }
}

/// How long a pass waits for a worker request (seconds); also how long a
/// worker the cluster gave up on may wait for its sandbox to be destroyed.
const LEASE_WAIT: u64 = 1;

/// How often the folders of dead factories next to ours are looked for.
const SWEEP_EVERY: Duration = Duration::from_secs(30);

/// Kills and removes what factories that died left next to `dir` (their
/// default folders), so a crash leaks nothing for long.
async fn sweep_abandoned(dir: &std::path::Path) {
    let Some(parent) = dir.parent().map(|p| p.to_path_buf()) else { return };
    let dir = dir.to_path_buf();
    let prefix = crate::orphans::DEFAULT_DIR_PREFIX;
    let reaped = tokio::task::spawn_blocking(move || crate::orphans::reap_abandoned(&parent, prefix, &dir)).await;
    if let Ok(n @ 1..) = reaped {
        tracing::warn!(folders = n, "reaped sandboxes of local factories that died");
    }
}

async fn pass(cfg: &LocalFactoryConfig, client: &Client, live: &mut BTreeMap<String, Live>) -> anyhow::Result<()> {
    // Reap: destroy what the cluster no longer wants, and forget workers
    // whose sandbox is gone (an earlier run's).
    let workers = client.factory_workers().await?;
    for w in &workers {
        let mine = live.contains_key(&w.id);
        let done = w.state == WorkerState::Destroying && !w.hold;
        if done || !mine {
            if let Some(l) = live.remove(&w.id) {
                let id = w.id.clone();
                tokio::task::spawn_blocking(move || l.sandbox.destroy()).await??;
                tracing::info!(worker = %id, "sandbox destroyed");
            }
            if done || matches!(w.state, WorkerState::Bootstrapping | WorkerState::Ready | WorkerState::Assigned) {
                client.factory_destroyed(&w.id).await?;
            }
        }
    }
    // Agents that exited on their own: their sandbox waits for the cluster's word.
    for l in live.values_mut() {
        let _ = l.agent.try_wait();
    }
    // Lease while under the cap.
    // The first lease of a pass waits a little for work to come, so a new
    // request is heard of at once rather than at the next pass.
    let mut wait = LEASE_WAIT;
    while live.len() < cfg.max_workers {
        let req = LeaseRequest { targets: cfg.targets.clone(), capacity: Some(cfg.max_workers as u32) };
        let Some(lease) = client.factory_lease_wait(&req, std::mem::take(&mut wait)).await? else { break };
        let dir = cfg.dir.join(&lease.worker);
        let spec = SandboxSpec {
            dir: dir.clone(),
            hostname: format!("bm-{}", lease.worker.to_lowercase().chars().rev().take(8).collect::<String>()),
            agent_bin: cfg.agent_bin.clone(),
        };
        let sandbox = tokio::task::spawn_blocking(move || Sandbox::create(spec)).await??;
        // QUIC to the nearest node when the cluster has QUIC endpoints, else HTTP.
        let mut env = vec![("BM_BOOTSTRAP_TOKEN".to_string(), lease.bootstrap_token.clone())];
        let mut argv = vec!["/usr/local/bin/bm-agent".to_string()];
        match &lease.agent_link {
            Some(link) if !link.addrs.is_empty() => {
                argv.extend(["--quic".to_string(), link.addrs.join(",")]);
                env.push(("BM_AGENT_CA_PEM".to_string(), link.ca_pem.clone()));
            }
            _ => argv.extend(["--url".to_string(), cfg.urls.join(",")]),
        }
        if let Some((uid, gid)) = sandbox.build_ids() {
            argv.push("--run-as".into());
            argv.push(format!("{uid}:{gid}"));
        }
        let mut agent = sandbox.spawn(&argv, &env)?;
        forward_logs(&lease.worker, &mut agent);
        client.factory_instance(&lease.worker, &dir.display().to_string()).await?;
        tracing::info!(worker = %lease.worker, target = %lease.target, "sandbox created");
        live.insert(lease.worker, Live { sandbox, agent });
    }
    Ok(())
}

/// Copies the agent's own diagnostics into this process's log.
fn forward_logs(worker: &str, child: &mut tokio::process::Child) {
    for (stream, name) in [(child.stderr.take().map(box_read), "stderr"), (child.stdout.take().map(box_read), "stdout")]
    {
        let Some(s) = stream else { continue };
        let worker = worker.to_string();
        tokio::spawn(async move {
            let mut lines = BufReader::new(s).lines();
            while let Ok(Some(l)) = lines.next_line().await {
                tracing::debug!(%worker, stream = name, "agent: {l}");
            }
        });
    }
}

fn box_read<R: tokio::io::AsyncRead + Unpin + Send + 'static>(r: R) -> Box<dyn tokio::io::AsyncRead + Unpin + Send> {
    Box::new(r)
}
