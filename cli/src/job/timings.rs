//! `bm job timings`: where a job's time went (waiting for dependencies,
//! queued for a worker, running), from the times the server recorded.

use std::collections::BTreeMap;

use anyhow::Result;
use bm_api::jobs::Job;
use bm_api::Client;
use chrono::{DateTime, SecondsFormat, Utc};
use clap::Args;
use serde::Serialize;

use crate::outln;
use crate::output::{duration, print_json, Table};

/// Arguments of `bm job timings`.
#[derive(Debug, Args)]
pub struct TimingsArgs {
    /// Job id
    pub id: String,
    /// Print JSON
    #[arg(long)]
    pub json: bool,
}

/// One stretch of a job's life, between two recorded times.
struct Phase {
    /// Its name in the table and (with `_secs`) in JSON.
    name: &'static str,
    /// What the job was doing.
    what: &'static str,
    /// Start: the first of these times that is recorded.
    from: &'static [&'static str],
    /// End: the first of these that is recorded, else the job's end, else now.
    to: &'static [&'static str],
}

/// Times that mark a job's end, whichever way it ended.
const END: &[&str] = &["complete", "completed", "failed", "cancelled", "cancel"];

/// The phases shown, in the order a job goes through them.
const PHASES: &[Phase] = &[
    Phase { name: "waited", what: "waiting for the jobs it depends on", from: &["waiting"], to: &["ready"] },
    Phase { name: "queued for", what: "waiting for a worker", from: &["ready", "submit"], to: &["assigned"] },
    Phase { name: "started after", what: "the worker preparing to run it", from: &["assigned"], to: &["start"] },
    Phase { name: "ran for", what: "running", from: &["start"], to: END },
    Phase { name: "total", what: "from submission to the end", from: &["submit"], to: END },
];

/// One measured phase.
#[derive(Debug, PartialEq, Serialize)]
struct Measured {
    name: &'static str,
    what: &'static str,
    secs: f64,
    /// The phase has not ended yet; measured up to now.
    so_far: bool,
}

/// What `--json` prints.
#[derive(Serialize)]
struct Timings<'a> {
    id: &'a str,
    state: &'a str,
    times: &'a BTreeMap<String, DateTime<Utc>>,
    phases: Vec<Measured>,
}

/// Shows the recorded times and the phases between them.
pub async fn timings(client: &Client, args: &TimingsArgs) -> Result<()> {
    let job = client.job(&args.id).await?;
    let phases = measure(&job, Utc::now());
    if args.json {
        return print_json(&Timings { id: &job.id, state: job.state.as_str(), times: &job.times, phases });
    }
    let mut t = Table::new(&["EVENT", "TIME"]);
    for (k, v) in super::times_in_order(&job) {
        t.row(vec![k.to_string(), v.to_rfc3339_opts(SecondsFormat::Millis, true)]);
    }
    t.print()?;
    outln!();
    let mut t = Table::new(&["PHASE", "DURATION", "WHAT"]);
    for m in &phases {
        let so_far = if m.so_far { " (so far)" } else { "" };
        let d = chrono::TimeDelta::milliseconds((m.secs * 1000.0) as i64);
        t.row(vec![m.name.into(), duration(d), format!("{}{so_far}", m.what)]);
    }
    t.print()
}

/// The phases that apply to `job`, measured at `now`.
fn measure(job: &Job, now: DateTime<Utc>) -> Vec<Measured> {
    let first = |keys: &[&str]| keys.iter().find_map(|k| job.times.get(*k)).copied();
    let end = first(END).filter(|_| job.state.is_terminal());
    PHASES
        .iter()
        .filter_map(|p| {
            let from = first(p.from)?;
            let (to, so_far) = match first(p.to).or(end) {
                Some(t) => (t, false),
                None if job.state.is_terminal() => return None,
                None => (now, true),
            };
            let secs = (to - from).num_milliseconds().max(0) as f64 / 1000.0;
            Some(Measured { name: p.name, what: p.what, secs, so_far })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use bm_api::jobs::JobState;
    use chrono::TimeDelta;

    fn job(state: JobState, times: &[(&str, i64)]) -> (Job, DateTime<Utc>) {
        let t0 = Utc::now();
        let job = Job {
            id: "01J".into(),
            owner: "u".into(),
            name: "n".into(),
            target: "default".into(),
            target_real: "default".into(),
            state,
            failure: None,
            tasks: Vec::new(),
            output_rules: Vec::new(),
            inputs: Vec::new(),
            tags: BTreeMap::new(),
            depends: Vec::new(),
            worker: None,
            epoch: 0,
            timeout_secs: None,
            times: times.iter().map(|(k, s)| (k.to_string(), t0 + TimeDelta::seconds(*s))).collect(),
            publish: Vec::new(),
            retry_on_worker_loss: 0,
        };
        (job, t0)
    }

    fn secs(m: &[Measured]) -> Vec<(&str, f64, bool)> {
        m.iter().map(|m| (m.name, m.secs, m.so_far)).collect()
    }

    #[test]
    fn completed_job() {
        let (j, t0) =
            job(JobState::Completed, &[("submit", 0), ("ready", 0), ("assigned", 5), ("start", 7), ("complete", 67)]);
        assert_eq!(
            secs(&measure(&j, t0 + TimeDelta::seconds(100))),
            [
                ("queued for", 5.0, false),
                ("started after", 2.0, false),
                ("ran for", 60.0, false),
                ("total", 67.0, false)
            ]
        );
    }

    #[test]
    fn running_job_counts_to_now() {
        let (j, t0) =
            job(JobState::Running, &[("submit", 0), ("waiting", 0), ("ready", 3), ("assigned", 4), ("start", 4)]);
        let m = measure(&j, t0 + TimeDelta::seconds(10));
        assert_eq!(secs(&m)[0], ("waited", 3.0, false));
        assert_eq!(secs(&m)[3], ("ran for", 6.0, true));
        assert_eq!(secs(&m)[4], ("total", 10.0, true));
    }

    #[test]
    fn cancelled_while_queued() {
        let (j, t0) = job(JobState::Cancelled, &[("submit", 0), ("cancelled", 9)]);
        assert_eq!(
            secs(&measure(&j, t0 + TimeDelta::seconds(100))),
            [("queued for", 9.0, false), ("total", 9.0, false)]
        );
    }
}
