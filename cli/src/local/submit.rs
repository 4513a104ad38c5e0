//! Turning parsed job files into submitted jobs.

use std::collections::BTreeMap;

use bm_api::jobs::{DependSubmit, Job, JobSubmit, TaskSpec};
use bm_api::Client;
use bm_github::{JobFile, RustToolchain};

use super::source::Source;

/// The tags the agent reads (see `bm_agent::env::tags`).
mod tags {
    pub const REPOSITORY: &str = "github.repository";
    pub const SHA: &str = "github.sha";
    pub const BRANCH: &str = "github.branch";
    pub const CLONE_URL: &str = "clone.url";
    pub const SKIP_CLONE: &str = "clone.skip";
}

/// Where a job file's target runs here: mapped by `--target-map`, else as
/// named when this cluster has it, else on the local sandbox (with a warning).
fn target_for(job: &JobFile, map: &BTreeMap<String, String>, local: &[&str]) -> String {
    let wanted = job.target.clone().unwrap_or_else(|| "default".to_string());
    if let Some(t) = map.get(&wanted) {
        return t.clone();
    }
    if local.contains(&wanted.as_str()) {
        return wanted;
    }
    eprintln!("bm: job {:?}: target {wanted:?} runs on the local sandbox (\"default\") here", job.name);
    "default".to_string()
}

/// A task that makes the requested Rust toolchain the default, or fails
/// the job with a clear reason when rustup is not there.
fn toolchain_task(t: &RustToolchain) -> TaskSpec {
    let channel = match t {
        RustToolchain::Channel(c) => format!("'{}'", c.replace('\'', "")),
        RustToolchain::FromRepository => {
            "\"$(sed -n 's/^[[:space:]]*channel[[:space:]]*=[[:space:]]*\"\\(.*\\)\".*/\\1/p' rust-toolchain.toml)\""
                .into()
        }
    };
    let script = format!(
        "set -o errexit\nchannel={channel}\nif [ -z \"$channel\" ]; then echo 'rust_toolchain: no channel found' >&2; exit 1; fi\n\
         if ! command -v rustup >/dev/null; then\n  echo \"rust_toolchain = $channel was requested, but rustup is not available in this target\" >&2\n  exit 1\nfi\n\
         rustup toolchain install \"$channel\" --profile minimal\nrustup default \"$channel\"\n"
    );
    TaskSpec { name: "rust-toolchain".into(), script, env: BTreeMap::new(), env_clear: false, workdir: None }
}

/// Submits `jobs` (in dependency order) and returns them as submitted.
pub async fn submit_all(
    client: &Client,
    jobs: &[&JobFile],
    src: &Source,
    map: &BTreeMap<String, String>,
    local: &[&str],
) -> anyhow::Result<Vec<Job>> {
    let mut ids: BTreeMap<String, String> = BTreeMap::new();
    let mut out = Vec::new();
    for jf in jobs {
        let mut tags = BTreeMap::from([
            (tags::REPOSITORY.to_string(), src.repository.clone()),
            (tags::SHA.to_string(), src.sha.clone()),
            (tags::CLONE_URL.to_string(), src.url.clone()),
        ]);
        if let Some(b) = &src.branch {
            tags.insert(tags::BRANCH.into(), b.clone());
        }
        if jf.skip_clone {
            tags.insert(tags::SKIP_CLONE.into(), "true".into());
        }
        let mut tasks = Vec::new();
        if let Some(t) = &jf.rust_toolchain {
            tasks.push(toolchain_task(t));
        }
        tasks.push(TaskSpec {
            name: jf.name.clone(),
            script: jf.script.clone(),
            env: BTreeMap::new(),
            env_clear: false,
            workdir: None,
        });
        let depends = jf
            .dependencies
            .iter()
            .map(|(name, d)| {
                let prior = ids.get(&d.job).cloned().unwrap_or_default();
                (
                    name.clone(),
                    DependSubmit { prior_job: prior, copy_outputs: true, on_failed: false, on_completed: true },
                )
            })
            .collect();
        let submit = JobSubmit {
            name: jf.name.clone(),
            target: target_for(jf, map, local),
            tasks,
            output_rules: jf.output_rules.clone(),
            inputs: vec![],
            tags,
            depends,
            store: BTreeMap::new(),
            timeout_secs: None,
            publish: jf
                .publish
                .iter()
                .map(|p| bm_api::jobs::PublishSpec {
                    from_output: p.from_output.clone(),
                    series: p.series.clone(),
                    name: p.name.clone(),
                })
                .collect(),
            retry_on_worker_loss: 0,
            submit_key: None,
        };
        let job = client.job_submit(&submit).await?;
        ids.insert(jf.name.clone(), job.id.clone());
        out.push(job);
    }
    Ok(out)
}
