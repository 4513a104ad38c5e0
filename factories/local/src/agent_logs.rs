//! The agent's own diagnostics (its stderr and stdout, not the job's log,
//! which goes to the cluster) copied into the factory's log, so an agent
//! that cannot reach the cluster can still be debugged.

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};

/// Copies each line the agent prints into this process's log at debug
/// level, tagged with its worker, until the agent closes its output.
pub fn forward(worker: &str, child: &mut tokio::process::Child) {
    for (stream, name) in [(child.stderr.take().map(boxed), "stderr"), (child.stdout.take().map(boxed), "stdout")] {
        let Some(s) = stream else { continue };
        let worker = worker.to_string();
        tokio::spawn(async move {
            let mut lines = BufReader::new(s).lines();
            while let Ok(Some(l)) = lines.next_line().await {
                tracing::debug!(%worker, stream = name, "agent: {l}");
            }
        });
    }
}

fn boxed<R: AsyncRead + Unpin + Send + 'static>(r: R) -> Box<dyn AsyncRead + Unpin + Send> {
    Box::new(r)
}
