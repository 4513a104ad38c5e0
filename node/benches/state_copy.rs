//! What a snapshot's copy of the state costs as jobs pile up.
//!
//! A snapshot copies the state under its lock (applying stops meanwhile)
//! and encodes the copy outside it. This prints, at each job count, how
//! long that copy takes, what the first command applied while the copy
//! is alive costs (it unshares what it touches), how fast submits apply
//! at all, and what encoding the copy costs (the snapshot's bytes; the
//! node does this on a blocking thread, off the async workers) and how
//! large it is.
//!
//! `cargo bench -p bm-node --bench state_copy` (`BM_BENCH_JOBS=100000,450000`
//! for other job counts).

use std::time::{Duration, Instant};

use bm_api::jobs::JobSubmit;
use bm_node::sm::{Command, State};

fn main() {
    let counts: Vec<usize> = std::env::var("BM_BENCH_JOBS")
        .unwrap_or_else(|_| "50000,200000,450000".into())
        .split(',')
        .map(|n| n.trim().parse().expect("BM_BENCH_JOBS: job counts, comma-separated"))
        .collect();
    let time = chrono::Utc::now();
    let mut s = State::default();
    let user = Command::CreateUser {
        id: "U1".into(),
        name: "alice".into(),
        privileges: Vec::new(),
        token_hash: "h".into(),
        time,
    };
    let target: bm_api::targets::TargetCreate =
        serde_json::from_value(serde_json::json!({ "name": "default" })).expect("a target");
    for cmd in [user, Command::CreateTarget { id: "T1".into(), spec: target }] {
        let _ = s.apply(cmd);
    }
    let submit: JobSubmit = serde_json::from_value(serde_json::json!({
        "name": "build",
        "target": "default",
        "tasks": [{ "name": "build", "script": "make" }],
    }))
    .expect("a job");
    let mut n = 0u64;
    let mut next = |s: &mut State| {
        n += 1;
        let mut submit = submit.clone();
        submit.submit_key = Some(format!("key-{n}"));
        let _ = s.apply(Command::SubmitJob { id: format!("{n:026}"), owner: "U1".into(), submit, time });
    };
    println!("state copy for a snapshot, {} cores", std::thread::available_parallelism().map_or(0, |n| n.get()));
    println!(
        "{:>9} {:>14} {:>16} {:>22} {:>12} {:>10} {:>9}",
        "jobs", "submits/s", "copy p50 / max", "first apply, copy alive", "copy dropped", "encode", "MB"
    );
    for want in counts {
        let started = Instant::now();
        let before = s.jobs.len();
        while s.jobs.len() < want {
            next(&mut s);
        }
        let rate = (s.jobs.len() - before) as f64 / started.elapsed().as_secs_f64();
        let (mut copies, mut firsts, mut drops) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..5 {
            let t = Instant::now();
            let copy = s.clone();
            copies.push(t.elapsed());
            let t = Instant::now();
            next(&mut s);
            firsts.push(t.elapsed());
            let t = Instant::now();
            drop(copy);
            drops.push(t.elapsed());
        }
        let med = |v: &mut Vec<Duration>| {
            v.sort();
            v[v.len() / 2]
        };
        let max = *copies.iter().max().expect("five copies");
        let t = Instant::now();
        let bytes = bm_raft::codec::encode("state snapshot", &s).expect("the state encodes");
        let encode = t.elapsed();
        println!(
            "{:>9} {:>14.0} {:>16} {:>22} {:>12} {:>10} {:>9.1}",
            s.jobs.len(),
            rate,
            format!("{:.3} / {:.3} ms", ms(med(&mut copies)), ms(max)),
            format!("{:.3} ms", ms(med(&mut firsts))),
            format!("{:.3} ms", ms(med(&mut drops))),
            format!("{:.0} ms", ms(encode)),
            bytes.len() as f64 / 1e6,
        );
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
