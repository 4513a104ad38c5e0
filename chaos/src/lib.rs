//! Fault injection for bm's cluster tests without root or network
//! namespaces. Every endpoint gets a UDP relay that stands in for its real
//! address; the relays forward datagrams like a NAT and apply the faults in
//! force on the [`Net`] (cut links, partitions, isolation, random drops,
//! duplicates and delays). See `README.md` for how a harness wires it up.

pub mod check;
pub mod history;
pub mod run;

mod cuts;
mod delay;
mod guard;
mod link;
mod names;
mod net;
mod quality;
mod relay;
mod shared;
mod stats;
mod upstream;

pub use net::Net;
pub use quality::Quality;
pub use stats::Stats;

/// Identifies an endpoint of the simulated network (a node or an agent), e.g. 1, 2, 3 for nodes, 100+ for agents.
pub type Endpoint = u64;
