//! How the provisioning loop is set up (the part every factory has; each
//! provider takes its own settings when it is made).

/// What the loop needs to speak for a factory. Kept apart from provider
/// settings so that every factory program fills it in the same way.
#[derive(Clone, Debug)]
pub struct LoopConfig {
    /// Node URLs: the loop's factory API calls fail over among them, and
    /// agents of a cluster without a QUIC endpoint are told to use them.
    pub urls: Vec<String>,
    /// The factory's bearer token (from `bm admin factory create`); it
    /// identifies whose workers the loop leases, reports and reaps.
    pub token: String,
    /// Targets it makes workers for: the cluster hands it only requests for
    /// these.
    pub targets: Vec<String>,
    /// Most instances alive at once: the loop leases no more while it holds
    /// this many, so a burst of jobs queues instead of overloading the
    /// provider (a host's cores, an account's EC2 quota, a lab's machines).
    pub max_workers: usize,
}
