//! What every bm factory shares: the provisioning loop ([`run`]) and the
//! [`Provider`] trait a kind of machine (a sandbox on this host, an EC2
//! instance, a lab machine booted over IPMI) implements. The loop speaks to
//! the cluster; a provider only makes and unmakes machines, so a new kind
//! of worker needs no new cluster logic, and the rules that keep workers
//! from leaking (reap what the cluster retired, forget what is not ours,
//! destroy everything at stop, sweep orphans) are written once.

pub mod config;
pub mod launch;
pub mod provider;
pub mod run;

pub use config::LoopConfig;
pub use launch::AgentLaunch;
pub use provider::Provider;
pub use run::run;
