//! A real `bm-agent` process against a real node: bootstrap, run a job,
//! stream its log, upload outputs, report the end; cancel kills it.
//! (No sandbox here: the agent runs with `--root` on a temporary directory;
//! the local factory's tests cover isolation.)

mod common;

use std::time::{Duration, Instant};

use bm_api::jobs::JobState;
use common::{after, fixture, fixture_with, fixture_with_lease, job, start_agent, wait_terminal, Agent};

/// Waits until the job's shell wrote its pid to `pidfile`, then kills the
/// agent with SIGKILL (leaving the shell); answers the shell's pid (its
/// process group).
async fn kill_agent_once_running(mut agent: Agent, pidfile: &std::path::Path) -> i32 {
    let deadline = Instant::now() + Duration::from_secs(30);
    let shell = loop {
        // The file may exist before the shell has written its pid into it.
        if let Some(pid) = std::fs::read_to_string(pidfile).ok().and_then(|s| s.trim().parse().ok()) {
            break pid;
        }
        assert!(Instant::now() < deadline, "job never started");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    agent.0.kill().unwrap();
    agent.0.wait().unwrap();
    shell
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_runs_a_job_streams_its_log_and_uploads_its_outputs() {
    let fx = fixture().await;
    let script = "echo \"$GREETING from $GITHUB_REPOSITORY in $PWD as job $BUILDOMAT_JOB_ID\"; echo oops >&2; \
                  mkdir -p \"$PWD/../../../tmp\"; echo data > \"$PWD/../../../tmp/a.txt\"";
    let j = fx.admin.job_submit(&job(script, &["=/tmp/*.txt"])).await.unwrap();
    let _agent = start_agent(&fx).await;
    let done = wait_terminal(&fx.admin, &j.id).await;
    assert_eq!(done.state, JobState::Completed, "failure: {:?}", done.failure);
    let ev = fx.admin.job_events(&j.id, 0, None).await.unwrap().events;
    let out: Vec<_> = ev.iter().filter(|e| e.stream == "stdout").map(|e| e.payload.as_str()).collect();
    let root = fx.root.to_str().unwrap();
    assert_eq!(out, vec![format!("hello from oxide/hello in {root}/work/oxide/hello as job {}", j.id)]);
    assert!(ev.iter().any(|e| e.stream == "stderr" && e.payload == "oops"));
    assert!(ev.iter().any(|e| e.stream == "control" && e.payload.contains("exited: status 0")));
    let outs = fx.admin.job_outputs(&j.id).await.unwrap();
    assert_eq!(outs.len(), 1);
    assert_eq!(outs[0].path, "/tmp/a.txt");
    let body = fx.admin.job_output_download(&j.id, &outs[0].id).await.unwrap().bytes().await.unwrap();
    assert_eq!(&body[..], b"data\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_task_or_an_unmatched_must_match_rule_fails_the_job() {
    let fx = fixture().await;
    let j = fx.admin.job_submit(&job("exit 3", &[])).await.unwrap();
    let _agent = start_agent(&fx).await;
    let done = wait_terminal(&fx.admin, &j.id).await;
    assert_eq!(done.state, JobState::Failed);
    assert!(done.failure.as_deref().unwrap().contains("status 3"), "{:?}", done.failure);

    let j = fx.admin.job_submit(&job("true", &["=/tmp/never-*.zip"])).await.unwrap();
    let _agent2 = start_agent(&fx).await;
    let done = wait_terminal(&fx.admin, &j.id).await;
    assert_eq!(done.state, JobState::Failed);
    assert!(done.failure.as_deref().unwrap().contains("/tmp/never-*.zip"), "{:?}", done.failure);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_kills_the_whole_process_group() {
    let fx = fixture().await;
    let marker = fx.root.join("alive");
    let script =
        format!("(while true; do date > {m}; sleep 0.1; done) & echo started; sleep 1000", m = marker.display());
    let j = fx.admin.job_submit(&job(&script, &[])).await.unwrap();
    let _agent = start_agent(&fx).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while !marker.exists() {
        assert!(Instant::now() < deadline, "job never started");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    fx.admin.job_cancel(&j.id).await.unwrap();
    // Within a few seconds the background loop must be dead: the file stops changing.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let before = std::fs::metadata(&marker).unwrap().modified().unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = std::fs::metadata(&marker).unwrap().modified().unwrap();
    assert_eq!(before, after, "a process of the cancelled job is still running");
    assert_eq!(fx.admin.job(&j.id).await.unwrap().state, JobState::Cancelled);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_repository_is_cloned_at_the_commit_under_test() {
    let fx = fixture().await;
    let repo = fx.root.parent().unwrap().join("origin");
    std::fs::create_dir_all(&repo).unwrap();
    let git = |args: &[&str]| {
        let o = std::process::Command::new("git").arg("-C").arg(&repo).args(args).output().unwrap();
        assert!(o.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    };
    git(&["init", "-q"]);
    std::fs::write(repo.join("file.txt"), "first\n").unwrap();
    git(&["add", "."]);
    git(&["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "one"]);
    let first = git(&["rev-parse", "HEAD"]);
    std::fs::write(repo.join("file.txt"), "second\n").unwrap();
    git(&["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qam", "two"]);
    let mut j = job("cat file.txt; echo \"sha=$GITHUB_SHA\"", &[]);
    j.tags.insert("clone.url".into(), format!("file://{}", repo.display()));
    j.tags.insert("github.sha".into(), first.clone());
    let j = fx.admin.job_submit(&j).await.unwrap();
    let _agent = start_agent(&fx).await;
    let done = wait_terminal(&fx.admin, &j.id).await;
    assert_eq!(done.state, JobState::Completed, "{:?}", done.failure);
    let ev = fx.admin.job_events(&j.id, 0, None).await.unwrap().events;
    let out: Vec<_> = ev.iter().filter(|e| e.stream == "stdout").map(|e| e.payload.clone()).collect();
    assert_eq!(out, vec!["first".to_string(), format!("sha={first}")]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_past_its_timeout_fails_and_its_processes_are_killed() {
    let fx = fixture().await;
    let marker = fx.root.join("tick");
    let mut j = job(&format!("while true; do date > {}; sleep 0.1; done", marker.display()), &[]);
    j.timeout_secs = Some(1);
    let j = fx.admin.job_submit(&j).await.unwrap();
    let _agent = start_agent(&fx).await;
    let done = wait_terminal(&fx.admin, &j.id).await;
    assert_eq!(done.state, JobState::Failed);
    assert!(done.failure.as_deref().unwrap().contains("timeout of 1 s"), "{:?}", done.failure);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = std::fs::metadata(&marker).unwrap().modified().unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(before, std::fs::metadata(&marker).unwrap().modified().unwrap(), "the job's loop still runs");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_whose_agent_goes_silent_fails_with_that_cause() {
    let fx = fixture_with_lease(2).await;
    let pidfile = fx.root.join("pid");
    let j = fx.admin.job_submit(&job(&format!("echo $$ > {}; sleep 30", pidfile.display()), &[])).await.unwrap();
    let agent = start_agent(&fx).await;
    // The agent dies without a word (its job's shell lives on, as on a lost machine).
    let shell = kill_agent_once_running(agent, &pidfile).await;
    let done = wait_terminal(&fx.admin, &j.id).await;
    unsafe { libc::kill(-shell, libc::SIGKILL) };
    assert_eq!(done.state, JobState::Failed);
    assert!(done.failure.as_deref().unwrap().contains("stopped calling in"), "{:?}", done.failure);
    let workers = fx.admin.workers(true).await.unwrap();
    let w = workers.iter().find(|w| Some(&w.id) == done.worker.as_ref()).unwrap();
    assert_eq!(w.state, bm_api::workers::WorkerState::Destroying, "the factory must tear it down");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_that_asks_runs_again_on_a_new_worker_when_its_agent_goes_silent() {
    let fx = fixture_with_lease(2).await;
    let (pidfile, mark) = (fx.root.join("pid"), fx.root.join("tried"));
    let script = format!(
        "if [ -e {m} ]; then echo second attempt; else touch {m}; echo $$ > {p}; sleep 30; fi",
        m = mark.display(),
        p = pidfile.display()
    );
    let mut submit = job(&script, &[]);
    submit.retry_on_worker_loss = 1;
    let j = fx.admin.job_submit(&submit).await.unwrap();
    let agent = start_agent(&fx).await;
    let shell = kill_agent_once_running(agent, &pidfile).await;
    unsafe { libc::kill(-shell, libc::SIGKILL) };
    // The lease runs out, the job is queued again, and a new worker runs it.
    let _second = start_agent(&fx).await;
    let done = wait_terminal(&fx.admin, &j.id).await;
    assert_eq!(done.state, JobState::Completed, "{:?}", done.failure);
    assert_eq!(done.epoch, 2, "two assignments");
    let ev = fx.admin.job_events(&j.id, 0, None).await.unwrap().events;
    assert!(ev.iter().any(|e| e.payload.contains("queued again (0 retries left)")), "{ev:?}");
    assert!(ev.iter().any(|e| e.stream == "stdout" && e.payload == "second attempt"), "{ev:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spare_worker_is_made_ahead_of_demand_and_takes_the_next_job() {
    use bm_api::workers::WorkerState;
    let fx = fixture_with(|cfg| {
        cfg.spare_workers.insert("default".into(), 1);
    })
    .await;
    // No job yet, and yet a worker is requested; its agent comes up and waits.
    let _agent = start_agent(&fx).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    let spare = loop {
        let ws = fx.admin.workers(false).await.unwrap();
        if let Some(w) = ws.iter().find(|w| w.state == WorkerState::Ready && w.job.is_none()) {
            break w.id.clone();
        }
        assert!(Instant::now() < deadline, "no spare worker became ready: {ws:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    // A job goes straight to it, and a new spare is asked for.
    let j = fx.admin.job_submit(&job("echo warm", &[])).await.unwrap();
    let done = wait_terminal(&fx.admin, &j.id).await;
    assert_eq!(done.state, JobState::Completed, "{:?}", done.failure);
    assert_eq!(done.worker.as_deref(), Some(spare.as_str()));
    let spares = || async {
        let ws = fx.admin.workers(false).await.unwrap();
        ws.iter().filter(|w| w.job.is_none() && w.state == WorkerState::Requested).count()
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while spares().await == 0 {
        assert!(Instant::now() < deadline, "no new spare was requested");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(spares().await, 1, "exactly one new spare");
}

/// The worker's /tmp (these agents run without a sandbox, under a root folder).
const TMP: &str = "T=\"$PWD/../../../tmp\"; mkdir -p \"$T\"";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_cut_a_long_log_and_refuse_a_big_or_extra_output_with_a_clear_cause() {
    let fx = fixture_with(|cfg| {
        cfg.limits.max_log_bytes = 1000;
        cfg.limits.max_output_bytes = 100;
        cfg.limits.max_outputs = 1;
    })
    .await;
    // A long log is cut with a note; the job itself still runs to its end.
    let j = fx.admin.job_submit(&job("for i in $(seq 1 500); do echo line-$i; done", &[])).await.unwrap();
    let _agent = start_agent(&fx).await;
    let done = wait_terminal(&fx.admin, &j.id).await;
    assert_eq!(done.state, JobState::Completed, "{:?}", done.failure);
    let ev = fx.admin.job_events(&j.id, 0, None).await.unwrap().events;
    let kept: usize = ev.iter().filter(|e| e.stream == "stdout").map(|e| e.payload.len()).sum();
    // Control lines (task start) count too, so a little under the limit is stdout.
    assert!((800..=1000).contains(&kept), "kept {kept} bytes");
    assert!(ev.iter().any(|e| e.payload.contains("reached its limit of 1000 bytes")), "{ev:?}");
    // An output over the size limit fails the job, naming the file and the limit.
    let big = fx
        .admin
        .job_submit(&job(&format!("{TMP}; head -c 500 /dev/zero > $T/big.bin"), &["/tmp/big.bin"]))
        .await
        .unwrap();
    let _agent2 = start_agent(&fx).await;
    let done = wait_terminal(&fx.admin, &big.id).await;
    assert_eq!(done.state, JobState::Failed);
    let why = done.failure.unwrap();
    assert!(why.contains("/tmp/big.bin") && why.contains("limit of 100 bytes"), "{why}");
    // More files than a job may keep, sent several at once: the node
    // counts those on the way, so no more than the limit is stored.
    let many = fx
        .admin
        .job_submit(&job(&format!("{TMP}; for f in a b c d e f; do echo $f > $T/$f.txt; done"), &["/tmp/*.txt"]))
        .await
        .unwrap();
    let _agent3 = start_agent(&fx).await;
    let done = wait_terminal(&fx.admin, &many.id).await;
    assert_eq!(done.state, JobState::Failed);
    let why = done.failure.unwrap();
    assert!(why.contains("the most a job may keep"), "{why}");
    // Which file gets the one place is a race (the first refusal stops
    // the rest), but never more than one is kept.
    let kept = fx.admin.job_outputs(&many.id).await.unwrap().len();
    assert!(kept <= 1, "{kept} outputs kept, the limit is 1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_purges_old_logs_and_outputs_and_collects_their_blobs_and_chunks() {
    let fx = fixture_with(|cfg| {
        cfg.retention.purge_after_secs = Some(1);
        cfg.retention.check_every_secs = 1;
        cfg.retention.gc_grace_secs = 0;
    })
    .await;
    let blobs = fx.node.node.config().data_dir.join("blobs");
    let chunks = fx.node.node.chunks().store.clone();
    // Thousands of lines at once: the agent ships them in batches too large
    // to go through Raft inline, so the log is stored as log chunks.
    let j =
        fx.admin.job_submit(&job(&format!("{TMP}; echo kept > $T/k.txt; seq 1 5000"), &["/tmp/k.txt"])).await.unwrap();
    let _agent = start_agent(&fx).await;
    let done = wait_terminal(&fx.admin, &j.id).await;
    assert_eq!(done.state, JobState::Completed, "{:?}", done.failure);
    assert_eq!(walk_files(&blobs), 1, "the output's blob is stored in {}", blobs.display());
    assert!(chunks.count() > 0, "the log went through Raft inline");
    let mut lines = Vec::new();
    loop {
        let page = fx.admin.job_events(&j.id, lines.len() as u64, None).await.unwrap().events;
        if page.is_empty() {
            break;
        }
        lines.extend(page);
    }
    let stdout: Vec<String> = lines.iter().filter(|e| e.stream == "stdout").map(|e| e.payload.clone()).collect();
    assert_eq!(stdout, (1..=5000).map(|i| i.to_string()).collect::<Vec<_>>(), "the log read back through its chunks");
    assert!(lines.iter().enumerate().all(|(i, e)| e.seq == i as u64), "numbered without gaps");
    assert_eq!(fx.admin.job_outputs(&j.id).await.unwrap().len(), 1);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let job = fx.admin.job(&j.id).await.unwrap();
        if job.times.contains_key("purged") {
            break;
        }
        assert!(Instant::now() < deadline, "never purged: {job:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(fx.admin.job_outputs(&j.id).await.unwrap().is_empty());
    let ev = fx.admin.job_events(&j.id, 0, None).await.unwrap().events;
    assert!(ev.iter().all(|e| e.stream == "control") && ev.iter().any(|e| e.payload.contains("purged")), "{ev:?}");
    // The output's file and the log's chunks go too.
    let count = || (walk_files(&blobs), chunks.count());
    let deadline = Instant::now() + Duration::from_secs(30);
    while count() != (0, 0) {
        assert!(Instant::now() < deadline, "blob files and log chunks left: {:?}", count());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn walk_files(dir: &std::path::Path) -> usize {
    let Ok(rd) = std::fs::read_dir(dir) else { return 0 };
    rd.flatten()
        .map(|e| if e.path().is_dir() { walk_files(&e.path()) } else { usize::from(e.file_name().len() == 64) })
        .sum()
}

/// A shell line that starts a process repeating `action` (on the worker's
/// `/tmp` as `$1`) without pause, outside the task's process group (so it
/// outlives the task and is still at it while outputs are uploaded), until
/// `$1/stop` appears.
fn keeps_changing(action: &str) -> String {
    format!(
        "{TMP}; setsid timeout 60 sh -c 'while [ ! -e \"$1/stop\" ] && {action}; do :; done' \
         sh \"$T\" </dev/null >/dev/null 2>&1 & sleep 0.3"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_output_that_changes_while_it_is_uploaded_fails_the_job_unless_percent_allows_it() {
    let fx = fixture().await;
    let blobs = fx.node.node.config().data_dir.join("blobs");
    // Without `%`, a file that grows, or that only has its time changed
    // (found once every byte is sent): the upload is abandoned, the job
    // fails naming the file, and nothing of it is stored. Both start at 32
    // MiB, so their uploads last long enough for the writer to get a turn.
    let start = |name: &str| format!("{TMP}; head -c 33554432 /dev/zero > $T/{name}");
    let grows = format!("{}; {}", start("a.log"), keeps_changing("echo growing >> \"$1/a.log\""));
    let touched = format!("{}; {}", start("c.bin"), keeps_changing("touch \"$1/c.bin\""));
    for (script, path) in [(grows, "/tmp/a.log"), (touched, "/tmp/c.bin")] {
        let j = fx.admin.job_submit(&job(&script, &[path])).await.unwrap();
        let _agent = start_agent(&fx).await;
        let done = wait_terminal(&fx.admin, &j.id).await;
        assert_eq!(done.state, JobState::Failed);
        let why = done.failure.unwrap();
        assert!(why.contains(&format!("{path} changed while it was uploaded; use the % prefix")), "{why}");
        assert!(fx.admin.job_outputs(&j.id).await.unwrap().is_empty());
        assert_eq!(walk_files(&blobs), 0, "a blob was stored for the abandoned upload of {path}");
    }
    // With `%` the file is kept as it was read.
    let j =
        fx.admin.job_submit(&job(&keeps_changing("echo growing >> \"$1/b.log\""), &["=%/tmp/b.log"])).await.unwrap();
    let _agent = start_agent(&fx).await;
    let done = wait_terminal(&fx.admin, &j.id).await;
    std::fs::write(fx.root.join("tmp/stop"), b"").unwrap();
    assert_eq!(done.state, JobState::Completed, "{:?}", done.failure);
    let outs = fx.admin.job_outputs(&j.id).await.unwrap();
    assert_eq!(outs.len(), 1, "{outs:?}");
    let body = fx.admin.job_output_download(&j.id, &outs[0].id).await.unwrap().bytes().await.unwrap();
    assert!(!body.is_empty() && body.len() as u64 == outs[0].size);
    assert!(body.split(|b| *b == b'\n').filter(|l| !l.is_empty()).all(|l| l == b"growing"), "torn lines");
}

/// Outputs and inputs are streamed (never whole in the agent's memory):
/// a 48 MiB output arrives whole under `/input` in the dependant job.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dependant_receives_its_dependencys_outputs_under_input() {
    let fx = fixture().await;
    // 48 MiB: twelve of the node's 4 MiB pieces, 48 of the agent's reads.
    let a = fx
        .admin
        .job_submit(&job(
            &format!("{TMP}; head -c 50331648 /dev/urandom > $T/big.bin; sha256sum $T/big.bin | cut -d' ' -f1"),
            &["=/tmp/big.bin"],
        ))
        .await
        .unwrap();
    let b = after(job("sha256sum \"$PWD/../../../input/first/tmp/big.bin\" | cut -d' ' -f1", &[]), "first", &a.id);
    let b = fx.admin.job_submit(&b).await.unwrap();
    let _a1 = start_agent(&fx).await;
    assert_eq!(wait_terminal(&fx.admin, &a.id).await.state, JobState::Completed);
    let stdout = |ev: Vec<bm_api::jobs::JobEvent>| -> Vec<String> {
        ev.into_iter().filter(|e| e.stream == "stdout").map(|e| e.payload).collect()
    };
    let written = stdout(fx.admin.job_events(&a.id, 0, None).await.unwrap().events);
    let outs = fx.admin.job_outputs(&a.id).await.unwrap();
    assert_eq!((outs.len(), outs[0].size), (1, 50_331_648));
    assert_eq!(written, vec![outs[0].sha256.clone()], "the node's sha256 is the file's");
    // The first worker's sandbox root is shared in this test; clear what a
    // real worker would not have.
    let _ = std::fs::remove_dir_all(fx.root.join("tmp"));
    let _a2 = start_agent(&fx).await;
    let done = wait_terminal(&fx.admin, &b.id).await;
    assert_eq!(done.state, JobState::Completed, "{:?}", done.failure);
    assert_eq!(stdout(fx.admin.job_events(&b.id, 0, None).await.unwrap().events), written, "the input arrived whole");
}
