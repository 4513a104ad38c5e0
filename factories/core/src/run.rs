//! The provisioning loop: lease worker requests for the factory's targets,
//! have the provider make a machine for each with the agent inside, report
//! the instance, and destroy it when the cluster retires its worker.
//! Orphans are swept on start and every [`Provider::reap_every`]; at stop
//! every instance is destroyed.

use std::collections::BTreeMap;
use std::time::Duration;

use bm_api::factories::LeaseRequest;
use bm_api::workers::WorkerState;
use bm_api::Client;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::config::LoopConfig;
use crate::launch::AgentLaunch;
use crate::provider::Provider;

/// How long a pass waits for a worker request (seconds): long enough that a
/// new request is heard of at once (the node answers the long-poll the
/// moment one is made) rather than at the next pass; short enough that a
/// worker the cluster gave up on waits little for its machine to go.
pub const LEASE_WAIT: u64 = 1;

/// The pause after a pass that did not wait in a lease long-poll (one that
/// failed, or found the factory at its cap), which bounds how often the
/// factory asks the cluster for its workers then. A pass that waited goes
/// straight on: pausing there would make a request that arrives during
/// the pause wait for it (up to 100 ms on every fresh worker).
pub const PASS_PAUSE: Duration = Duration::from_millis(100);

/// Runs the factory until `stop` turns true, then destroys every instance
/// it holds and shuts the provider down. A pass that fails (a node away, a
/// create that failed) is logged and tried again; only `stop` ends it.
pub async fn run<P: Provider>(cfg: LoopConfig, provider: P, mut stop: watch::Receiver<bool>) -> anyhow::Result<()> {
    let client = Client::new(cfg.urls.clone(), Some(cfg.token.clone()));
    let mut live: BTreeMap<String, P::Instance> = BTreeMap::new();
    let mut next_sweep = Instant::now();
    loop {
        if Instant::now() >= next_sweep {
            sweep(&provider, &live).await;
            next_sweep += provider.reap_every();
        }
        let waited = match pass(&cfg, &client, &provider, &mut live).await {
            Ok(waited) => waited,
            Err(e) => {
                tracing::warn!(error = %e, "factory pass failed; retrying");
                false
            }
        };
        let pause = if waited { Duration::ZERO } else { PASS_PAUSE };
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            changed = stop.changed() => {
                // Nobody can stop us any more: keep the pace instead of spinning.
                if changed.is_err() {
                    tokio::time::sleep(PASS_PAUSE).await;
                }
            }
        }
        if *stop.borrow() {
            for (worker, instance) in std::mem::take(&mut live) {
                if let Err(e) = provider.destroy(instance).await {
                    tracing::warn!(%worker, error = %e, "cannot destroy an instance at stop");
                }
            }
            provider.shutdown().await;
            return Ok(());
        }
    }
}

/// Has the provider reap what the loop does not hold, logging the outcome.
async fn sweep<P: Provider>(provider: &P, live: &BTreeMap<String, P::Instance>) {
    let held: Vec<String> = live.values().map(|i| provider.instance_id(i)).collect();
    match provider.reap_orphans(&held).await {
        Ok(0) => {}
        Ok(n) => tracing::warn!(orphans = n, "reaped orphaned instances"),
        Err(e) => tracing::warn!(error = %e, "orphan sweep failed; trying again later"),
    }
}

/// One round: reap, tend, then lease and create up to the cap. Answers
/// whether it waited in a lease long-poll (so the next round may follow at
/// once).
async fn pass<P: Provider>(
    cfg: &LoopConfig,
    client: &Client,
    provider: &P,
    live: &mut BTreeMap<String, P::Instance>,
) -> anyhow::Result<bool> {
    // Reap: destroy what the cluster no longer wants, and report destroyed
    // the workers with no instance here (an earlier run's).
    for w in client.factory_workers().await? {
        let done = w.state == WorkerState::Destroying && !w.hold;
        if !done && live.contains_key(&w.id) {
            continue;
        }
        if let Some(instance) = live.remove(&w.id) {
            let id = provider.instance_id(&instance);
            provider.destroy(instance).await?;
            tracing::info!(worker = %w.id, instance = %id, "instance destroyed");
        }
        if done || matches!(w.state, WorkerState::Bootstrapping | WorkerState::Ready | WorkerState::Assigned) {
            client.factory_destroyed(&w.id).await?;
        }
    }
    for instance in live.values_mut() {
        provider.poll(instance);
    }
    // Lease while under the cap; only the first lease of a pass waits.
    let mut wait = LEASE_WAIT;
    let waited = live.len() < cfg.max_workers;
    while live.len() < cfg.max_workers {
        let req = LeaseRequest { targets: cfg.targets.clone(), capacity: Some(cfg.max_workers as u32) };
        let Some(lease) = client.factory_lease_wait(&req, std::mem::take(&mut wait)).await? else { break };
        let launch = AgentLaunch::for_lease(&lease, &cfg.urls);
        let instance = provider.create(&lease, &launch).await?;
        let id = provider.instance_id(&instance);
        if let Err(e) = client.factory_instance(&lease.worker, &id).await {
            // Only instances the cluster knows of are kept; the worker is
            // reported destroyed by the next pass.
            if let Err(d) = provider.destroy(instance).await {
                tracing::warn!(worker = %lease.worker, instance = %id, error = %d, "cannot destroy an unreported instance");
            }
            return Err(e.into());
        }
        tracing::info!(worker = %lease.worker, target = %lease.target, instance = %id, "instance created");
        live.insert(lease.worker, instance);
    }
    Ok(waited)
}
