//! The kinds of fault, as the command line names them (`--faults partition,kill,pause`, or `all`).

use std::str::FromStr;

/// The kinds of fault a run may inject, so that a run can be limited to the faults under study.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FaultKind {
    /// Cut the network between groups of nodes.
    Partition,
    /// `SIGKILL` a node and restart it later on the same disk.
    Kill,
    /// `SIGSTOP` a node and `SIGCONT` it later.
    Pause,
    /// Remove a voter from the cluster through the cluster API, then add it back (learner, then voter).
    Membership,
    /// `SIGKILL` the agent of a running job: the cluster must fail the job and destroy its worker.
    Agent,
    /// Drop, delay, duplicate and reorder datagrams on some links between the nodes.
    Quality,
}

impl FaultKind {
    /// Every kind, in the order `all` lists them.
    pub const ALL: [FaultKind; 6] = [
        FaultKind::Partition,
        FaultKind::Kill,
        FaultKind::Pause,
        FaultKind::Membership,
        FaultKind::Agent,
        FaultKind::Quality,
    ];

    /// The name used on the command line and in summaries.
    pub fn name(self) -> &'static str {
        match self {
            FaultKind::Partition => "partition",
            FaultKind::Kill => "kill",
            FaultKind::Pause => "pause",
            FaultKind::Membership => "membership",
            FaultKind::Agent => "agent",
            FaultKind::Quality => "quality",
        }
    }

    /// Whether the fault takes no node away from the cluster (it degrades links or kills an agent), so that on a
    /// cluster large enough it may overlap a fault that does.
    pub fn keeps_every_node(self) -> bool {
        matches!(self, FaultKind::Agent | FaultKind::Quality)
    }
}

impl FromStr for FaultKind {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> anyhow::Result<Self> {
        let s = s.trim();
        FaultKind::ALL.into_iter().find(|k| k.name() == s).ok_or_else(|| {
            let names: Vec<&str> = FaultKind::ALL.iter().map(|k| k.name()).collect();
            anyhow::anyhow!("unknown fault kind {s:?} (expected {} or all)", names.join(", "))
        })
    }
}

/// A list of fault kinds as given on the command line: names separated by commas, `all` for every kind. Each kind
/// is listed once, in [`FaultKind::ALL`] order, so that the schedule does not depend on how the list was written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FaultKinds(pub Vec<FaultKind>);

impl FromStr for FaultKinds {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> anyhow::Result<Self> {
        let mut kinds = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            if part == "all" {
                kinds.extend(FaultKind::ALL);
            } else {
                kinds.push(part.parse()?);
            }
        }
        kinds.sort_unstable();
        kinds.dedup();
        Ok(FaultKinds(kinds))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_back() {
        for k in FaultKind::ALL {
            assert_eq!(k.name().parse::<FaultKind>().unwrap(), k);
        }
        assert!("flood".parse::<FaultKind>().unwrap_err().to_string().contains("membership, agent, quality or all"));
    }

    #[test]
    fn lists_are_deduplicated_in_a_fixed_order_and_all_means_every_kind() {
        let k: FaultKinds = "quality, kill,kill,partition".parse().unwrap();
        assert_eq!(k.0, vec![FaultKind::Partition, FaultKind::Kill, FaultKind::Quality]);
        assert_eq!("all".parse::<FaultKinds>().unwrap().0, FaultKind::ALL.to_vec());
        assert_eq!("pause,all".parse::<FaultKinds>().unwrap().0, FaultKind::ALL.to_vec());
        assert!("kill,nope".parse::<FaultKinds>().is_err());
    }
}
