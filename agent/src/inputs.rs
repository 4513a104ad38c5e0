//! Placing the outputs of the jobs this one depends on under
//! `/input/DEPNAME/…`, with their full original path below it.

use std::io::Write;

use bm_api::agent::Assignment;
use bm_api::agent_link::AgentClient as Client;
use sha2::{Digest, Sha256};

use crate::outputs::create_input_file;
use crate::run::Layout;

/// Downloads every input; returns how many files were placed.
pub async fn fetch(client: &Client, a: &Assignment, layout: &Layout) -> anyhow::Result<usize> {
    let root = layout.path("/input");
    let mut n = 0;
    for set in &a.inputs {
        for o in &set.outputs {
            let bytes = client.agent_input(&a.job.id, a.epoch, &o.id).await?;
            let sha = hex::encode(Sha256::digest(&bytes));
            if sha != o.sha256 {
                anyhow::bail!(
                    "input {} of dependency {:?} arrived damaged (sha256 {sha}, want {})",
                    o.path,
                    set.name,
                    o.sha256
                );
            }
            let (_, mut f) = create_input_file(&root, &set.name, &o.path)?;
            f.write_all(&bytes)?;
            n += 1;
        }
    }
    Ok(n)
}
