//! Published files: when a job succeeds, each of its `publish` entries
//! names one of its outputs, which becomes public at
//! `/public/file/OWNER/REPO/SERIES/VERSION/NAME` (OWNER/REPO and VERSION
//! from the job's `github.repository` and `github.sha` tags). A name once
//! taken for a commit keeps its first file.

use bm_api::jobs::PublishedFile;

use super::{State, Time};

/// The key of a published file: `OWNER/REPO/SERIES/VERSION/NAME`.
pub fn key(repo: &str, series: &str, version: &str, name: &str) -> String {
    format!("{repo}/{series}/{version}/{name}")
}

impl State {
    /// Publishes what job `job` asked to, noting each outcome in its log.
    pub(super) fn publish_outputs(&mut self, job: &str, time: Time) {
        let Some(rec) = self.jobs.get(job) else { return };
        let (Some(repo), Some(version)) = (rec.job.tags.get("github.repository"), rec.job.tags.get("github.sha"))
        else {
            if !rec.job.publish.is_empty() {
                let msg = "publish: skipped; the job has no github.repository and github.sha tags";
                self.job_mut(job).expect("present").push_event("control", time, msg);
            }
            return;
        };
        let mut notes = Vec::new();
        for p in &rec.job.publish {
            let k = key(repo, &p.series, version, &p.name);
            let Some(out) = rec.outputs.iter().find(|o| o.path == p.from_output) else {
                notes.push(format!("publish: no output {} to publish as {k}", p.from_output));
                continue;
            };
            match self.published.get(&k) {
                Some(f) if f.sha256 != out.sha256 => {
                    notes.push(format!("publish: {k} already holds another file (from job {}); kept", f.job))
                }
                Some(_) => {}
                None => {
                    let f = PublishedFile { job: job.to_string(), sha256: out.sha256.clone(), size: out.size };
                    self.published.insert(k.clone(), f);
                    notes.push(format!("published {} at /public/file/{k}", p.from_output));
                }
            }
        }
        let rec = self.job_mut(job).expect("present");
        for n in notes {
            rec.push_event("control", time, n);
        }
    }
}
