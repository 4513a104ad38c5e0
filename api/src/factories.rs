//! Factories: programs that create and destroy workers for targets.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A registered factory.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Factory {
    /// Unique id (ULID).
    pub id: String,
    /// Unique name.
    pub name: String,
    /// A disabled factory leases no new work.
    pub enabled: bool,
    /// When it was registered.
    pub created: DateTime<Utc>,
}

/// Request to register a factory.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FactoryCreate {
    /// Unique name.
    pub name: String,
}

/// A registered factory and its bearer token, shown this once.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FactoryCreated {
    /// The factory.
    pub factory: Factory,
    /// Bearer token for the factory API.
    pub token: String,
}

/// A factory asks for a worker request it can fulfil.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LeaseRequest {
    /// Targets this factory can make workers for.
    pub targets: Vec<String>,
    /// How many of its workers exist now; the node counts them too.
    #[serde(default)]
    pub capacity: Option<u32>,
}

/// A worker the factory must now create.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct WorkerLease {
    /// The worker's id.
    pub worker: String,
    /// The target it is for.
    pub target: String,
    /// Single-use token the agent exchanges for its worker credential.
    pub bootstrap_token: String,
    /// Where the agent reaches the cluster over QUIC; none when the
    /// cluster has no QUIC endpoint (the agent then uses the HTTP API).
    #[serde(default)]
    pub agent_link: Option<AgentLinkInfo>,
}

/// How an agent reaches the cluster over QUIC, handed to it by its factory.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentLinkInfo {
    /// Every member's QUIC address ("host:port"); the agent uses the nearest.
    pub addrs: Vec<String>,
    /// The cluster CA certificate (PEM) the agent verifies nodes against.
    pub ca_pem: String,
}

/// The factory reports the instance it made for a worker.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InstanceReport {
    /// Provider-specific instance id (sandbox id, EC2 instance id, lab host).
    pub instance_id: String,
}
