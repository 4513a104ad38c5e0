//! Starting a whole node: storage, Raft, the HTTP API and the scheduler.

use std::net::SocketAddr;

use tokio::net::TcpListener;
use tokio::sync::oneshot;

use crate::config::NodeConfig;
use crate::node::Node;

/// A running node; dropping it does not stop it, [`Running::stop`] does.
pub struct Running {
    /// The node.
    pub node: Node,
    /// Where its HTTP API listens.
    pub http_addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Running {
    /// The base URL of the HTTP API.
    pub fn url(&self) -> String {
        format!("http://{}", self.http_addr)
    }

    /// Stops serving and shuts Raft down.
    pub async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        for t in &self.tasks {
            t.abort();
        }
        self.node.shutdown().await;
    }
}

/// Starts a node from its configuration.
pub async fn start(config: NodeConfig) -> anyhow::Result<Running> {
    let listener = TcpListener::bind(config.listen_http)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", config.listen_http))?;
    let http_addr = listener.local_addr()?;
    let url = config.public_url.clone().unwrap_or_else(|| format!("http://{http_addr}"));
    let node = Node::open(config, url).await?;
    let (tx, rx) = oneshot::channel::<()>();
    let routes = crate::http::routes(node.clone());
    let server = warp::serve(routes).incoming(listener).graceful(async {
        let _ = rx.await;
    });
    let http = tokio::spawn(server.run());
    let sched = tokio::spawn(crate::scheduler::run(node.clone()));
    let fatal = tokio::spawn(watch_fatal(node.clone()));
    let mut tasks = Vec::new();
    if let Some(ep) = node.peer() {
        tasks.push(tokio::spawn(crate::cluster::prevote::run(node.clone(), ep.clone())));
        tasks.push(tokio::spawn(crate::blobs::repair::run(node.clone())));
    }
    let beats = tokio::spawn(crate::cluster::heartbeat_push::run(node.clone(), node.peer().cloned()));
    tasks.extend([http, sched, fatal, beats]);
    tasks.push(tokio::spawn(crate::retention::run(node.clone())));
    tracing::info!(node = node.id(), %http_addr, "node serving");
    Ok(Running { node, http_addr, stop: Some(tx), tasks })
}

/// A storage or apply failure stops Raft; the node must not limp on
/// serving stale state, so the process exits with the cause.
async fn watch_fatal(node: Node) {
    let mut m = node.raft().metrics();
    loop {
        if let Err(e) = &m.borrow().running_state {
            tracing::error!(error = %e, "raft stopped on a fatal error; exiting");
            eprintln!("bm-node: fatal: raft stopped: {e}");
            std::process::exit(70);
        }
        if m.changed().await.is_err() {
            return;
        }
    }
}
