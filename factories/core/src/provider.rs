//! The trait a kind of machine implements to become a factory.

use std::future::Future;
use std::time::Duration;

use bm_api::factories::WorkerLease;

use crate::launch::AgentLaunch;

/// Makes and unmakes the machines workers run on. The provisioning loop
/// ([`crate::run`]) decides when; a provider only knows how, for its kind
/// of machine: a sandbox on this host, an EC2 instance whose user-data
/// starts the agent, a lab machine powered on over IPMI that boots a
/// ramdisk with the agent.
///
/// The loop calls one method at a time and awaits it, so a provider needs
/// no locking against itself; methods take `&self` so that a provider with
/// state of its own (a lab's pool of free machines) keeps it behind its own
/// lock, and the loop may later overlap slow creates (an EC2 launch takes
/// tens of seconds) without a change to the trait. Futures must be `Send`
/// because factories run the loop on a tokio task.
///
/// Anything a provider must hold for its whole life (the local provider's
/// lock on its folder) it takes when it is made, before the loop starts.
pub trait Provider: Send + Sync {
    /// One live machine, as the provider needs it to destroy it later: a
    /// sandbox and its agent process, an EC2 instance id, a lab host name.
    type Instance: Send;

    /// Makes a machine for `lease` and starts the agent in it with
    /// `launch` (its arguments and environment, which carry the bootstrap
    /// token and where to reach the cluster). It returns once the machine
    /// exists and the agent is on its way; the agent's own check-in is what
    /// makes the worker ready, so there is nothing to wait for here. On
    /// error the provider leaves nothing behind that it would not reap.
    fn create(
        &self,
        lease: &WorkerLease,
        launch: &AgentLaunch,
    ) -> impl Future<Output = anyhow::Result<Self::Instance>> + Send;

    /// The id reported to the cluster for `instance` (a sandbox folder, an
    /// EC2 instance id, a lab host), shown to operators next to the worker
    /// so they can find the machine; it is also how [`Provider::reap_orphans`]
    /// is told which machines the loop still holds.
    fn instance_id(&self, instance: &Self::Instance) -> String;

    /// Tears `instance` down for good: the cluster retired its worker, or
    /// the factory is stopping. The loop reports the worker destroyed once
    /// this returns `Ok`; on error the instance is no longer the loop's, and
    /// the next orphan sweep must find it.
    fn destroy(&self, instance: Self::Instance) -> impl Future<Output = anyhow::Result<()>> + Send;

    /// Looks at a live instance once a pass, for providers that must tend
    /// to it (the local provider collects its agent process when it has
    /// exited, so no zombie is left). It decides nothing: only the cluster
    /// retires a worker, when its agent goes quiet.
    fn poll(&self, instance: &mut Self::Instance) {
        let _ = instance;
    }

    /// Finds and destroys machines of this factory that the loop does not
    /// hold: those left by an earlier run that crashed, or whose destroy
    /// failed. `live` lists the instance ids ([`Provider::instance_id`]) the
    /// loop holds; nothing is being created meanwhile. Called when the loop
    /// starts and every [`Provider::reap_every`]; answers how many it
    /// reaped, which the loop logs.
    fn reap_orphans(&self, live: &[String]) -> impl Future<Output = anyhow::Result<usize>> + Send;

    /// How often [`Provider::reap_orphans`] runs: a listing may cost money
    /// or rate limit (EC2) or be cheap (a folder), so the provider chooses.
    fn reap_every(&self) -> Duration;

    /// Releases what the provider holds, after the loop destroyed every
    /// instance at stop (the local provider removes its folder).
    fn shutdown(self) -> impl Future<Output = ()> + Send
    where
        Self: Sized,
    {
        async {}
    }
}
