//! Running one assignment: tasks as the build user with their output
//! captured line by line, cancellation obeyed, outputs collected, the end
//! reported under the assignment's epoch.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use bm_api::agent::{AgentEvent, Assignment, Finish, Instruction};
use bm_api::agent_link::AgentClient as Client;
use bm_api::output_rule::OutputRule;
use bm_api::ErrorCode;
use chrono::Utc;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::Command;
use tokio::sync::mpsc;

use crate::env;
use crate::shipper;

/// Who the job's processes run as (inside the worker).
#[derive(Clone, Copy, Debug)]
pub struct RunAs {
    /// User id.
    pub uid: u32,
    /// Group id.
    pub gid: u32,
}

/// How a job ended, from the agent's point of view.
#[derive(Debug, PartialEq, Eq)]
pub enum Ending {
    /// Finished and reported (success or failure).
    Reported,
    /// The cluster told us to stop (cancel or destroy); processes killed.
    Stopped(String),
    /// The cluster refused our reports: another assignment is current.
    Fenced(String),
}

/// Where the worker's directories are; `/` in a real worker.
#[derive(Clone, Debug)]
pub struct Layout {
    /// Prefix under which `/work`, `/input`, `/home/build` live.
    pub root: PathBuf,
}

impl Layout {
    /// The host path of a worker path.
    pub fn path(&self, inside: &str) -> PathBuf {
        self.root.join(inside.trim_start_matches('/'))
    }
}

/// Runs the assignment to its end.
pub async fn run(client: &Client, a: Assignment, run_as: Option<RunAs>, layout: &Layout) -> anyhow::Result<Ending> {
    let job = a.job.id.clone();
    let epoch = a.epoch;
    if let Err(e) = retry_transient("start", || client.agent_start(&job, epoch)).await {
        return Ok(Ending::Fenced(e.to_string()));
    }
    let (tx, rx) = mpsc::channel::<AgentEvent>(10_000);
    let shipper = tokio::spawn(shipper::ship(client.clone(), job.clone(), epoch, rx));
    let control = |tx: &mpsc::Sender<AgentEvent>, msg: String| {
        let tx = tx.clone();
        async move {
            let _ = tx.send(AgentEvent { stream: "control".into(), task: None, time: Utc::now(), payload: msg }).await;
        }
    };

    let bmat = crate::bmat::server::Bmat::start(client, &a, run_as, tx.clone())?;
    let workdir = env::workdir(&a.job);
    let home = layout.path(env::BUILD_HOME);
    std::fs::create_dir_all(&home)?;
    let mut failure = None;
    // An empty, build-owned working directory: git clones into it.
    std::fs::create_dir_all(layout.path(&workdir))?;
    if let Some(r) = run_as {
        chown(&layout.path(&workdir), r);
        chown(&home, r);
    }
    if !a.inputs.is_empty() {
        match crate::inputs::fetch(client, &a, layout).await {
            Ok(n) => control(&tx, format!("placed {n} input files under /input")).await,
            Err(e) => {
                let e = format!("cannot place inputs: {e:#}");
                control(&tx, e.clone()).await;
                failure = Some(e);
            }
        }
    }
    if failure.is_none() {
        match crate::clone::clone(&a.job, &layout.path(&workdir), &home, run_as).await {
            Ok(Some(msg)) => control(&tx, msg).await,
            Ok(None) => {}
            Err(e) => {
                control(&tx, e.clone()).await;
                failure = Some(e);
            }
        }
    }
    let locale = crate::locale::stand_in(layout);
    for (i, task) in a.job.tasks.iter().enumerate().filter(|_| failure.is_none()) {
        control(&tx, format!("task {i} {:?} starting", task.name)).await;
        let mut vars = if task.env_clear { BTreeMap::new() } else { env::base_env(&a.job) };
        if !task.env_clear {
            vars.extend(locale.clone());
            vars.insert(crate::bmat::SOCKET_ENV.into(), bmat.socket().display().to_string());
        }
        vars.extend(task.env.clone());
        let cwd = layout.path(&task.workdir.clone().unwrap_or_else(|| workdir.clone()));
        let outcome = tokio::select! {
            r = run_task(&task.script, &vars, &cwd, run_as, i as u32, &tx) => match r {
                Ok(outcome) => outcome,
                Err(e) => {
                    bmat.stop().await;
                    return Err(e);
                }
            },
            reason = wait_for_stop(client) => {
                control(&tx, format!("stopping: {reason}")).await;
                bmat.stop().await;
                drop(tx);
                let _ = shipper.await;
                return Ok(Ending::Stopped(reason));
            }
        };
        control(&tx, format!("task {i} exited: {outcome}")).await;
        if outcome != "status 0" {
            failure = Some(format!("task {i} {:?} failed ({outcome})", task.name));
            break;
        }
    }

    // Background processes end with the tasks; outputs are then uploaded
    // whether the tasks succeeded or failed.
    bmat.stop().await;
    let rules: Vec<OutputRule> = a.job.output_rules.iter().filter_map(|r| OutputRule::parse(r).ok()).collect();
    match crate::collect::upload_outputs(client, &job, epoch, &rules, layout, &tx).await {
        Ok(None) => {}
        Ok(Some(f)) => failure = failure.or(Some(f)),
        Err(e) => failure = failure.or(Some(format!("output upload failed: {e:#}"))),
    }

    drop(tx);
    match shipper.await? {
        Ok(()) => {}
        Err(e) => return Ok(Ending::Fenced(e.to_string())),
    }
    let finish = Finish { epoch, failure };
    match retry_transient("finish", || client.agent_finish(&job, &finish)).await {
        Ok(()) => Ok(Ending::Reported),
        Err(e) if matches!(e.code(), Some(ErrorCode::StaleEpoch | ErrorCode::Conflict)) => {
            Ok(Ending::Fenced(e.to_string()))
        }
        Err(e) => Err(e.into()),
    }
}

/// Worth another try: the node was lost, or said it cannot serve now.
pub(crate) fn transient(e: &bm_api::ClientError) -> bool {
    matches!(e, bm_api::ClientError::Transport { .. } | bm_api::ClientError::Protocol { .. })
        || matches!(e.code(), Some(ErrorCode::Unavailable | ErrorCode::Internal))
}

/// Calls the cluster until it answers, riding out transport errors and
/// `unavailable` (a node down, an election): only a real answer ends it.
/// The calls it wraps are idempotent under their fencing epoch.
pub(crate) async fn retry_transient<T, F, Fut>(what: &str, call: F) -> Result<T, bm_api::ClientError>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<T, bm_api::ClientError>>,
{
    let mut delay = Duration::from_millis(100);
    loop {
        match call().await {
            Err(e) if transient(&e) => {
                tracing::warn!(error = %e, "cannot report {what} to the cluster; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
            other => return other,
        }
    }
}

/// Gives a directory to the build user (best effort: a worker set up
/// by its factory may already have done so).
fn chown(dir: &Path, r: RunAs) {
    let _ = std::os::unix::fs::chown(dir, Some(r.uid), Some(r.gid));
}

/// Resolves when the cluster says to stop.
async fn wait_for_stop(client: &Client) -> String {
    loop {
        match client.agent_instruction(20).await {
            Ok(Instruction::Stop { reason }) => return reason,
            // While the job runs the answer is `Run` at once: look again shortly.
            Ok(_) => tokio::time::sleep(Duration::from_millis(500)).await,
            Err(e) if e.code() == Some(ErrorCode::Unauthorized) => return format!("credential refused: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }
}

/// Runs one task's script with bash in its own process group; returns how it ended.
async fn run_task(
    script: &str,
    vars: &BTreeMap<String, String>,
    cwd: &Path,
    run_as: Option<RunAs>,
    task: u32,
    tx: &mpsc::Sender<AgentEvent>,
) -> anyhow::Result<String> {
    let mut cmd = Command::new("/bin/bash");
    cmd.arg("-c").arg(script).arg("bm-task");
    cmd.env_clear().envs(vars).current_dir(cwd);
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd.process_group(0).kill_on_drop(true);
    if let Some(r) = run_as {
        cmd.uid(r.uid).gid(r.gid);
    }
    let mut child = cmd.spawn().map_err(|e| anyhow::anyhow!("cannot start bash: {e}"))?;
    let pgid = child.id().map(|p| p as i32);
    let guard = KillGroup(pgid);
    let out = tokio::spawn(lines(child.stdout.take().expect("piped"), "stdout", task, tx.clone()));
    let err = tokio::spawn(lines(child.stderr.take().expect("piped"), "stderr", task, tx.clone()));
    let status = child.wait().await?;
    // Background processes left in the group must not outlive the task.
    drop(guard);
    let _ = out.await;
    let _ = err.await;
    Ok(match (status.code(), std::os::unix::process::ExitStatusExt::signal(&status)) {
        (Some(c), _) => format!("status {c}"),
        (None, Some(s)) => format!("signal {s}"),
        _ => "unknown".into(),
    })
}

/// Kills a whole process group when dropped (task end, cancel, panic).
struct KillGroup(Option<i32>);

impl Drop for KillGroup {
    fn drop(&mut self) {
        if let Some(pg) = self.0 {
            // SAFETY: kill(2) with a negative pid signals a process group; no memory is touched.
            unsafe {
                libc::kill(-pg, libc::SIGKILL);
            }
        }
    }
}

async fn lines(r: impl AsyncRead + Unpin, stream: &'static str, task: u32, tx: mpsc::Sender<AgentEvent>) {
    let mut r = BufReader::new(r);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match r.read_until(b'\n', &mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {
                let line = String::from_utf8_lossy(&buf).trim_end_matches(['\n', '\r']).to_string();
                let time = Utc::now();
                for payload in crate::shipper::cut_line(line) {
                    let ev = AgentEvent { stream: stream.into(), task: Some(task), time, payload };
                    if tx.send(ev).await.is_err() {
                        return;
                    }
                }
            }
        }
    }
}
