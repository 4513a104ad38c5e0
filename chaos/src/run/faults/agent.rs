//! Agent loss: `SIGKILL` the agent of a running job, as a worker machine dying would. Nothing is undone; the
//! cluster must notice the silence (the worker lease), fail the job with that cause and destroy the worker.
//!
//! The local factory runs each agent in a sandbox folder named after its worker (`SANDBOXES/WORKER/`): a host-side
//! `unshare … /bin/sh SANDBOXES/WORKER/setup.sh …` whose child (pid 1 of the sandbox's PID namespace) `exec`s the
//! agent. Killing that child takes every process of the sandbox with it.

use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context};
use bm_api::jobs::{JobListQuery, JobState};
use tokio::time::Instant;

use super::super::cluster::ProcCluster;
use super::super::outcome::timed;

/// How long to look for a running job with a live agent before the fault is skipped.
const LOOK_FOR: Duration = Duration::from_secs(5);

/// A job whose agent a fault killed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgentHit {
    /// The job that was running.
    pub job: String,
    /// Its worker, whose agent was killed.
    pub worker: String,
    /// The agent's host process id.
    pub pid: u32,
}

/// Kills the agent of one running job: number `pick` (modulo how many) of the running jobs ordered by id.
pub async fn kill(cluster: &ProcCluster, pick: u32) -> anyhow::Result<AgentHit> {
    let deadline = Instant::now() + LOOK_FOR;
    let q = JobListQuery { state: Some(JobState::Running), limit: Some(10_000), ..Default::default() };
    loop {
        let listed = timed(LOOK_FOR, cluster.admin().jobs(&q)).await.map_err(anyhow::Error::msg);
        let mut running: Vec<(String, String)> = match listed {
            Ok(Ok(jobs)) => jobs
                .into_iter()
                .filter(|j| j.state == JobState::Running)
                .filter_map(|j| Some((j.id, j.worker?)))
                .collect(),
            Ok(Err(e)) => {
                tracing::debug!("listing running jobs: {e}");
                Vec::new()
            }
            Err(e) => {
                tracing::debug!("listing running jobs: {e:#}");
                Vec::new()
            }
        };
        running.sort();
        // Start at the picked job; a job whose agent is already gone is passed over.
        let n = running.len();
        for i in 0..n {
            let (job, worker) = &running[(pick as usize + i) % n];
            if let Some(pid) = agent_pid(&cluster.sandboxes().join(worker)) {
                signal_kill(pid)?;
                return Ok(AgentHit { job: job.clone(), worker: worker.clone(), pid });
            }
        }
        if Instant::now() > deadline {
            bail!("no running job with a live agent ({n} running)");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn signal_kill(pid: u32) -> anyhow::Result<()> {
    let ok = std::process::Command::new("kill").arg("-KILL").arg(pid.to_string()).status()?.success();
    if !ok {
        bail!("kill -KILL {pid} failed");
    }
    Ok(())
}

/// The host pid of the agent running in the sandbox folder `sandbox`, if one runs.
fn agent_pid(sandbox: &Path) -> Option<u32> {
    let setup = format!("{}/setup.sh", sandbox.display());
    let procs = processes().ok()?;
    let launchers: Vec<u32> = procs.iter().filter(|p| p.cmdline.contains(&setup)).map(|p| p.pid).collect();
    // The launcher's child once it has `exec`ed the agent (before that it still runs setup.sh).
    procs.iter().find(|p| launchers.contains(&p.ppid) && !p.cmdline.contains(&setup)).map(|p| p.pid)
}

/// A process as `/proc` shows it.
struct Proc {
    pid: u32,
    ppid: u32,
    cmdline: Vec<String>,
}

/// Every process this host shows (those that vanish while being read are left out).
fn processes() -> anyhow::Result<Vec<Proc>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").context("cannot list /proc")? {
        let Ok(entry) = entry else { continue };
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
        let (Ok(stat), Ok(cmdline)) =
            (std::fs::read_to_string(entry.path().join("stat")), std::fs::read(entry.path().join("cmdline")))
        else {
            continue;
        };
        let Some(ppid) = parent_of(&stat) else { continue };
        let cmdline =
            cmdline.split(|b| *b == 0).filter(|a| !a.is_empty()).map(|a| String::from_utf8_lossy(a).into()).collect();
        out.push(Proc { pid, ppid, cmdline });
    }
    Ok(out)
}

/// The parent pid in a `/proc/PID/stat` line: `PID (COMM) STATE PPID …`, where COMM may hold spaces and
/// parentheses, so the fields are counted from the last `)`.
fn parent_of(stat: &str) -> Option<u32> {
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_parent_is_read_past_an_awkward_command_name() {
        assert_eq!(parent_of("42 (a) b (c)) S 7 42 42 0 -1"), Some(7));
        assert_eq!(parent_of("1 (init) S 0 1 1"), Some(0));
        assert_eq!(parent_of("garbage"), None);
    }

    #[test]
    fn this_process_is_found_with_its_parent() {
        let me = std::process::id();
        let procs = processes().unwrap();
        let p = procs.iter().find(|p| p.pid == me).expect("this process is listed");
        assert!(p.ppid > 0 && !p.cmdline.is_empty());
    }

    #[test]
    fn no_agent_in_a_folder_nobody_uses() {
        assert_eq!(agent_pid(Path::new("/nonexistent/sandbox")), None);
    }

    #[test]
    fn the_agent_is_the_child_of_the_launcher_naming_the_sandbox() {
        // A stand-in launcher: a shell naming SANDBOX/setup.sh among its arguments, whose child is the "agent".
        let dir = tempfile::tempdir().unwrap();
        let setup = dir.path().join("setup.sh");
        let mut launcher =
            std::process::Command::new("/bin/sh").args(["-c", "sleep 30; :"]).arg(&setup).spawn().unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        let found = loop {
            if let Some(pid) = agent_pid(dir.path()) {
                break Some(pid);
            }
            if std::time::Instant::now() > deadline {
                break None;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let stat = found.map(|pid| std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default());
        let _ = launcher.kill();
        let _ = launcher.wait();
        let pid = found.expect("the launcher's child was found");
        let _ = std::process::Command::new("kill").arg(pid.to_string()).status();
        assert_ne!(pid, launcher.id());
        let stat = stat.unwrap_or_default();
        assert_eq!(parent_of(&stat), Some(launcher.id()), "{stat}");
    }
}
