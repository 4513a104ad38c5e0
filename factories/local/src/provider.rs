//! The local provider: each worker is a fresh sandbox on this host (see
//! [`crate::sandbox`]) with the agent as its first process. Orphans are
//! sandboxes of factories that died: those in our own folder are killed
//! when the provider takes the folder, those in the folders of dead
//! factories next to ours by every sweep (see [`crate::orphans`]).

use std::path::{Path, PathBuf};
use std::time::Duration;

use bm_api::factories::WorkerLease;
use bm_factory::{AgentLaunch, Provider};

use crate::orphans::{self, DirLock};
use crate::sandbox::{Sandbox, SandboxSpec, AGENT_PATH};

/// How often the folders of dead factories next to ours are looked for.
pub const SWEEP_EVERY: Duration = Duration::from_secs(30);

/// Makes sandboxes in one folder, which it holds (locked) for its life.
pub struct LocalProvider {
    dir: PathBuf,
    agent_bin: PathBuf,
    _held: DirLock,
}

/// A worker's sandbox and its agent process.
pub struct LocalInstance {
    /// What was reported to the cluster: the sandbox's folder as given.
    id: String,
    sandbox: Sandbox,
    agent: tokio::process::Child,
}

impl LocalProvider {
    /// Takes `dir` for this factory (refused when a live factory holds it;
    /// whatever a dead one left there is killed and removed) and puts
    /// `agent_bin` in every sandbox made there.
    pub fn start(dir: PathBuf, agent_bin: PathBuf) -> anyhow::Result<Self> {
        let held = orphans::claim(&dir)?;
        Ok(Self { dir, agent_bin, _held: held })
    }
}

/// A sandbox's hostname: short, and told apart by the worker id's end (a
/// ULID's first characters are its time, shared by workers made together).
fn hostname(worker: &str) -> String {
    format!("bm-{}", worker.to_lowercase().chars().rev().take(8).collect::<String>())
}

impl Provider for LocalProvider {
    type Instance = LocalInstance;

    async fn create(&self, lease: &WorkerLease, launch: &AgentLaunch) -> anyhow::Result<LocalInstance> {
        let dir = self.dir.join(&lease.worker);
        let id = dir.display().to_string();
        let spec = SandboxSpec {
            dir,
            hostname: hostname(&lease.worker),
            agent_bin: self.agent_bin.clone(),
            // The `bm` binary is the agent and, by that name, the init too.
            init_bin: self.agent_bin.clone(),
        };
        let sandbox = tokio::task::spawn_blocking(move || Sandbox::create(spec)).await??;
        let mut argv = launch.argv(AGENT_PATH);
        if let Some((uid, gid)) = sandbox.build_ids() {
            argv.push("--run-as".into());
            argv.push(format!("{uid}:{gid}"));
        }
        // On error the sandbox is dropped, which kills anything started in
        // it; its folder goes with the factory's.
        let mut agent = sandbox.spawn(&argv, &launch.env)?;
        crate::agent_logs::forward(&lease.worker, &mut agent);
        Ok(LocalInstance { id, sandbox, agent })
    }

    fn instance_id(&self, instance: &LocalInstance) -> String {
        instance.id.clone()
    }

    async fn destroy(&self, instance: LocalInstance) -> anyhow::Result<()> {
        let LocalInstance { sandbox, agent, .. } = instance;
        tokio::task::spawn_blocking(move || sandbox.destroy()).await??;
        drop(agent);
        Ok(())
    }

    fn poll(&self, instance: &mut LocalInstance) {
        // An agent that exited on its own is collected; its sandbox waits
        // for the cluster's word.
        let _ = instance.agent.try_wait();
    }

    async fn reap_orphans(&self, _live: &[String]) -> anyhow::Result<usize> {
        // Our own folder holds only live sandboxes (it was emptied when
        // taken); orphans are in the folders of factories that died.
        sweep_abandoned(&self.dir).await
    }

    fn reap_every(&self) -> Duration {
        SWEEP_EVERY
    }

    async fn shutdown(self) {
        let dir = self.dir.clone();
        let _ = tokio::task::spawn_blocking(move || std::fs::remove_dir_all(dir)).await;
        // The lock goes last, so no other factory takes the folder while it is emptied.
        drop(self);
    }
}

/// Kills and removes what factories that died left next to `dir` (their
/// default folders), so a crash leaks nothing for long; answers how many
/// folders were reaped.
async fn sweep_abandoned(dir: &Path) -> anyhow::Result<usize> {
    let Some(parent) = dir.parent().map(Path::to_path_buf) else { return Ok(0) };
    let dir = dir.to_path_buf();
    let prefix = orphans::DEFAULT_DIR_PREFIX;
    Ok(tokio::task::spawn_blocking(move || orphans::reap_abandoned(&parent, prefix, &dir)).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hostname_is_short_and_ends_with_the_worker_id_reversed() {
        assert_eq!(hostname("01HZZZABCDEFGH12345678"), "bm-87654321");
        assert_eq!(hostname("AB"), "bm-ba");
    }
}
