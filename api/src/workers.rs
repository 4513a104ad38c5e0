//! Workers: ephemeral machines that run one job each.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Where a worker is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum WorkerState {
    /// The scheduler wants one; no factory has taken it yet.
    Requested,
    /// A factory is creating it; its agent has not checked in.
    Bootstrapping,
    /// Its agent is connected and idle.
    Ready,
    /// Running a job.
    Assigned,
    /// Marked for destruction; its factory must tear it down.
    Destroying,
    /// Gone.
    Destroyed,
}

impl WorkerState {
    /// Whether the worker is gone for good.
    pub fn is_terminal(self) -> bool {
        self == WorkerState::Destroyed
    }
}

/// A worker as the API shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Worker {
    /// Unique id (ULID).
    pub id: String,
    /// Target it serves.
    pub target: String,
    /// The factory that leased it.
    pub factory: Option<String>,
    /// The factory's instance id.
    pub instance_id: Option<String>,
    /// Life-cycle state.
    pub state: WorkerState,
    /// The job it runs or ran.
    pub job: Option<String>,
    /// Fencing epoch of its current assignment.
    pub epoch: u64,
    /// Held workers are kept (not destroyed) for inspection.
    pub hold: bool,
    /// When it entered each state.
    pub times: BTreeMap<String, DateTime<Utc>>,
}
