//! Cluster-wide control switches.

use bm_api::client::Control;
use serde::{Deserialize, Serialize};

use super::{Outcome, Reply, State};

/// The switches operators flip.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ControlRecord {
    /// No new assignments or worker requests while set.
    pub hold: bool,
}

impl State {
    pub(super) fn set_hold(&mut self, hold: bool) -> Outcome {
        self.control.hold = hold;
        Ok(Reply::Control(Control { hold }))
    }
}
