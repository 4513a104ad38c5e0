//! Background processes a job starts with `bmat process start`: run as the
//! job's user in their own process group, their output logged line by line
//! under the stream `bg.NAME`, and killed (the whole group) when the job ends.

use std::collections::BTreeMap;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bm_api::agent::AgentEvent;
use chrono::Utc;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::run::RunAs;

/// How long the logging of a killed process may take to drain.
const DRAIN: Duration = Duration::from_secs(2);

/// The background processes of one job.
#[derive(Clone, Default)]
pub struct Procs(Arc<Mutex<Vec<Proc>>>);

struct Proc {
    pgid: i32,
    tasks: Vec<JoinHandle<()>>,
}

/// What a background process is started with.
pub struct Spec {
    /// Its name (letters, digits, `-`, `_`, `.`).
    pub name: String,
    /// Program and arguments.
    pub argv: Vec<String>,
    /// Working directory.
    pub cwd: String,
    /// Environment.
    pub env: BTreeMap<String, String>,
}

impl Procs {
    /// Starts a process; answers its pid, or why it could not start.
    pub fn start(&self, spec: Spec, run_as: Option<RunAs>, tx: &mpsc::Sender<AgentEvent>) -> Result<u32, String> {
        let ok_name = |c: char| c.is_ascii_alphanumeric() || "-_.".contains(c);
        if spec.name.is_empty() || spec.name.len() > 64 || !spec.name.chars().all(ok_name) {
            return Err(format!(
                "background process name {:?} must be 1 to 64 letters, digits, '-', '_' or '.'",
                spec.name
            ));
        }
        let Some((program, args)) = spec.argv.split_first() else { return Err("no command to start".into()) };
        let mut cmd = tokio::process::Command::new(program);
        cmd.args(args).env_clear().envs(&spec.env).current_dir(&spec.cwd);
        cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).process_group(0);
        if let Some(r) = run_as {
            cmd.uid(r.uid).gid(r.gid);
        }
        let mut child = cmd.spawn().map_err(|e| format!("cannot start {program}: {e}"))?;
        let pid = child.id().ok_or("the process ended at once")?;
        let stream = format!("bg.{}", spec.name);
        let mut tasks = vec![
            tokio::spawn(log_lines(child.stdout.take().expect("piped"), stream.clone(), tx.clone())),
            tokio::spawn(log_lines(child.stderr.take().expect("piped"), stream, tx.clone())),
        ];
        let (tx, name) = (tx.clone(), spec.name);
        tasks.push(tokio::spawn(async move {
            let how = match child.wait().await {
                Ok(s) => s.to_string(),
                Err(e) => format!("unknown ({e})"),
            };
            control(&tx, format!("background process {name} ended: {how}")).await;
        }));
        self.0.lock().expect("procs lock").push(Proc { pgid: pid as i32, tasks });
        Ok(pid)
    }

    /// Kills every background process (its whole group) and waits briefly
    /// for their last output to be logged.
    pub async fn stop_all(&self) {
        let procs = std::mem::take(&mut *self.0.lock().expect("procs lock"));
        for p in &procs {
            // SAFETY: kill(2) with a negative pid signals a process group; no memory is touched.
            unsafe {
                libc::kill(-p.pgid, libc::SIGKILL);
            }
        }
        for t in procs.into_iter().flat_map(|p| p.tasks) {
            let abort = t.abort_handle();
            if tokio::time::timeout(DRAIN, t).await.is_err() {
                abort.abort();
            }
        }
    }
}

/// Sends a control line to the job log.
pub async fn control(tx: &mpsc::Sender<AgentEvent>, msg: String) {
    let _ = tx.send(AgentEvent { stream: "control".into(), task: None, time: Utc::now(), payload: msg }).await;
}

async fn log_lines(r: impl AsyncRead + Unpin, stream: String, tx: mpsc::Sender<AgentEvent>) {
    let mut lines = BufReader::new(r).split(b'\n');
    while let Ok(Some(l)) = lines.next_segment().await {
        let payload = String::from_utf8_lossy(&l).trim_end_matches('\r').to_string();
        let ev = AgentEvent { stream: stream.clone(), task: None, time: Utc::now(), payload };
        if tx.send(ev).await.is_err() {
            return;
        }
    }
}
