//! Following submitted jobs: live logs prefixed by job name, then their
//! outputs copied out.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use bm_api::jobs::Job;
use bm_api::Client;
use futures::StreamExt;

/// Prints every job's events as they come, until all jobs have ended;
/// returns the jobs in their final state.
pub async fn follow_all(client: &Client, jobs: &[Job]) -> anyhow::Result<Vec<Job>> {
    let width = jobs.iter().map(|j| j.name.len()).max().unwrap_or(0);
    let mut tasks = Vec::new();
    for j in jobs {
        let (client, id, name) = (client.clone(), j.id.clone(), j.name.clone());
        tasks.push(tokio::spawn(async move {
            let mut next = 0;
            loop {
                let page = match client.job_events(&id, next, Some(30)).await {
                    Ok(p) => p,
                    Err(e) => {
                        eprintln!("bm: cannot read events of {name}: {e}");
                        tokio::time::sleep(Duration::from_millis(500)).await;
                        continue;
                    }
                };
                for e in &page.events {
                    let mark = match e.stream.as_str() {
                        "stdout" => " ",
                        "stderr" => "!",
                        _ => "|",
                    };
                    println!("{name:>width$} {mark} {}", e.payload);
                    next = e.seq + 1;
                }
                if page.job_state.is_terminal() && page.events.is_empty() {
                    return client.job(&id).await;
                }
            }
        }));
    }
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await??);
    }
    Ok(out)
}

/// Copies each job's outputs to `dir/JOB/PATH`; returns how many per job id.
pub async fn copy_outputs(client: &Client, jobs: &[Job], dir: &Path) -> anyhow::Result<BTreeMap<String, usize>> {
    let mut counts = BTreeMap::new();
    for j in jobs {
        let outputs = client.job_outputs(&j.id).await?;
        for o in &outputs {
            let rel = o.path.trim_start_matches('/');
            if rel.split('/').any(|c| c == ".." || c.is_empty()) {
                anyhow::bail!("job {} output {:?} has an unsafe path", j.name, o.path);
            }
            let dest = dir.join(&j.name).join(rel);
            std::fs::create_dir_all(dest.parent().expect("joined paths have a parent"))?;
            let resp = client.job_output_download(&j.id, &o.id).await?;
            let mut body = resp.bytes_stream();
            let mut f = tokio::fs::File::create(&dest).await?;
            while let Some(chunk) = body.next().await {
                tokio::io::AsyncWriteExt::write_all(&mut f, &chunk?).await?;
            }
        }
        counts.insert(j.id.clone(), outputs.len());
    }
    Ok(counts)
}
