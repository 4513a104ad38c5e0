//! The whole checker over one history: a clean run passes, and each injected violation is named in the report,
//! alone or all together, with its excerpt printed.

use std::time::Duration;

use bm_chaos::check::{check_all, CheckConfig, Report, Status, INVARIANTS};
use bm_chaos::history::{History, JobView, LogEntry, OpKind, Outcome, Value};

/// Milliseconds to the history's nanoseconds, counted from an arbitrary wall-clock start.
fn ms(t: u64) -> u64 {
    1_700_000_000_000_000_000 + t * 1_000_000
}

/// Builds a history with times in milliseconds.
struct Run {
    h: History,
}

impl Run {
    fn op(&mut self, kind: OpKind, t0: u64, t1: u64, v: Value) {
        self.h.push(7, kind, ms(t0), Some(ms(t1)), Outcome::Ok(v));
    }
    fn submit(&mut self, job: &str) {
        self.op(OpKind::SubmitJob { name: job.into() }, 0, 10, Value::Job(job.into()));
    }
    fn read(&mut self, job: &str, t: u64, state: &str, worker: &str) {
        let view = Value::View(Some(JobView::new(state, 1, Some(worker))));
        self.op(OpKind::ReadJob { job: job.into(), node: Some(1) }, t, t + 5, view);
    }
    fn ran(&mut self, job: &str, worker: &str, start: u64, end: u64) {
        let kind = OpKind::JobRanOn { job: job.into(), worker: worker.into(), start: ms(start), end: Some(ms(end)) };
        self.op(kind, end, end, Value::Done);
    }
    fn fact(&mut self, kind: OpKind, t: u64) {
        self.op(kind, t, t, Value::Done);
    }
}

/// A run with a fault from 100 to 200 ms and seven jobs (K fails: its worker was lost); `inject` names the
/// invariants to break.
fn history(inject: &[&str]) -> History {
    let bad = |name: &str| inject.contains(&name);
    let mut r = Run { h: History::new() };
    let jobs = ["L", "R", "G", "O", "S", "T", "K"];
    for job in jobs {
        r.submit(job);
    }
    let kind = OpKind::Fault { kind: "partition [1] [2 3]".into(), start: ms(100), end: Some(ms(200)) };
    r.op(kind, 100, 200, Value::Done);
    for job in jobs {
        let worker = if job == "K" { "w9" } else { "w1" };
        r.ran(job, worker, 20, 80);
        r.read(job, 150, "running", worker);
        if job == "S" && bad("linearizable_job_state") {
            r.read(job, 240, "running", worker);
            r.read(job, 260, "queued", worker); // stale
        }
        if !(job == "T" && bad("terminal_after_heal")) {
            r.read(job, 250, if job == "K" { "failed" } else { "completed" }, worker);
        }
    }
    if bad("single_runner") {
        r.ran("R", "w2", 50, 90);
    }
    r.fact(OpKind::WorkerDestroyed { worker: "w1".into() }, 300);
    r.fact(OpKind::WorkerDestroyed { worker: "w2".into() }, 300);
    if !bad("workers_destroyed") {
        r.fact(OpKind::WorkerDestroyed { worker: "w9".into() }, 300);
    }
    // The final listing, after the heal.
    let listed = jobs.iter().filter(|&&j| !(j == "L" && bad("lost_jobs"))).map(|j| j.to_string()).collect();
    r.op(OpKind::ListJobs { node: Some(2) }, 400, 410, Value::Jobs(listed));
    // Job G's log: three chunks, read back from two nodes once it ended.
    for seq in 0..3 {
        let kind = OpKind::AppendLog { job: "G".into(), stream: "stdout".into(), seq, bytes_hash: format!("h{seq}") };
        r.fact(kind, 30 + seq);
    }
    let full: Vec<LogEntry> = (0..3).map(|s| LogEntry::new("stdout", s, &format!("h{s}"))).collect();
    r.op(OpKind::ReadLog { job: "G".into(), node: 1 }, 400, 410, Value::Log(full.clone()));
    let node2 = if bad("logs") { vec![full[0].clone(), full[2].clone()] } else { full };
    r.op(OpKind::ReadLog { job: "G".into(), node: 2 }, 400, 410, Value::Log(node2));
    // Job O's output.
    let kind = OpKind::UploadOutput { job: "O".into(), path: "out/bin".into(), sha256: "aaaa".into() };
    r.op(kind, 40, 60, Value::Done);
    for node in 1..=3 {
        let sha = if node == 3 && bad("outputs") { "bbbb" } else { "aaaa" };
        let kind = OpKind::ReadOutput { job: "O".into(), path: "out/bin".into(), node };
        r.op(kind, 400, 410, Value::Output(Some(sha.into())));
    }
    // How the jobs ended, as the cluster records it: K failed, its agent killed, and says why.
    for job in ["L", "R", "G", "O", "S", "T"] {
        r.fact(OpKind::JobEnded { job: job.into(), state: "completed".into(), cause: None }, 250);
    }
    if !bad("jobs_complete") {
        r.fact(OpKind::AgentKilled { job: "K".into(), worker: "w9".into() }, 50);
    }
    let cause = if bad("failures_have_causes") { None } else { Some("the worker's agent stopped calling in".into()) };
    r.fact(OpKind::JobEnded { job: "K".into(), state: "failed".into(), cause }, 250);
    // Job T polled long after the heal.
    let t_state = if bad("terminal_after_heal") { "running" } else { "completed" };
    r.read("T", 2_000, t_state, "w1");
    r.h
}

fn report(inject: &[&str]) -> Report {
    let config = CheckConfig { terminal_within: Duration::from_secs(1), ..CheckConfig::default() };
    check_all(&history(inject), &config)
}

#[test]
fn a_clean_history_holds_everywhere() {
    let report = report(&[]);
    assert!(report.ok(), "{report}");
    for name in INVARIANTS {
        let verdict = report.verdict(name).expect("every invariant has a verdict");
        assert!(verdict.checked > 0, "{name} checked nothing:\n{report}");
    }
    assert!(report.to_string().starts_with("chaos check: 9 invariants, 9 held, 0 violated"), "{report}");
}

#[test]
fn each_injected_violation_is_named_alone() {
    for name in INVARIANTS {
        let report = report(&[name]);
        assert_eq!(report.violated(), vec![name], "{report}");
        assert!(report.inconclusive().is_empty(), "{report}");
    }
}

#[test]
fn all_injected_violations_are_named_and_shown() {
    let report = report(&INVARIANTS);
    assert_eq!(report.violated(), INVARIANTS.to_vec(), "{report}");
    let text = report.to_string();
    for name in INVARIANTS {
        assert!(text.contains(&format!("VIOLATED     {name}: ")), "{name} not flagged in:\n{text}");
        assert_eq!(report.verdict(name).unwrap().status(), Status::Violated);
    }
    // Excerpt lines, times relative to the first operation (the submits at +0).
    for line in [
        "+400.000ms .. +410.000ms   p7 #",
        "list_jobs node 2 -> ok jobs [R, G, O, S, T, K] (6)",
        "job_ran_on R worker w2 from +50.000ms to +90.000ms -> ok done",
        "read_log G node 2 -> ok log [stdout#0:h0, stdout#2:h2] (2)",
        "read_output O out/bin node 3 -> ok sha256 bbbb",
        "read_job S node 1 -> ok queued epoch 1 worker w1",
        "read_job T node 1 -> ok running epoch 1 worker w1",
        "job_ran_on K worker w9 from +20.000ms to +80.000ms -> ok done",
        "fault \"partition [1] [2 3]\" from +100.000ms to +200.000ms",
        "job_ended K failed (no cause given) -> ok done",
    ] {
        assert!(text.contains(line), "missing {line:?} in:\n{text}");
    }
    // The linearizability excerpt is the contradictory reads and what they need, not the job's whole history.
    let lin = &report.verdict("linearizable_job_state").unwrap().violations[0];
    assert!(lin.excerpt.len() <= 3, "{lin:?}");
    assert!(lin.excerpt.windows(2).all(|w| w[0].invoke <= w[1].invoke));
}

#[test]
fn a_saved_history_checks_the_same() {
    let h = history(&INVARIANTS);
    let again = History::from_jsonl(&h.to_jsonl()).unwrap();
    let config = CheckConfig::default();
    assert_eq!(check_all(&again, &config), check_all(&h, &config));
}
