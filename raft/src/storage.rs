//! Opening a node's whole Raft storage from one data directory.

use std::path::Path;

use fjall::Database;

use crate::log_store::LogStore;
use crate::machine::Machine;
use crate::sm_store::SmStore;
use crate::types::NodeId;

/// The two halves of a node's Raft storage, sharing one fjall database.
pub struct Storage<M: Machine> {
    /// The Raft log.
    pub log: LogStore,
    /// The applied state and its snapshots.
    pub sm: SmStore<M>,
}

impl<M: Machine> Storage<M> {
    /// Opens the database in `dir` (created if missing) for node `me`. Only
    /// one process may hold a data directory at a time; fjall's lock makes a
    /// second one fail.
    ///
    /// With `me`, the node writes its own log as leader in parallel with
    /// replicating it (see [`crate::Durable`]; give the same mark to the
    /// peer network with [`Storage::durable`]). Without, every append is
    /// synced before openraft hears of it.
    pub fn open(dir: &Path, me: Option<NodeId>) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let db = Database::builder(dir)
            .open()
            .map_err(|e| anyhow::anyhow!("cannot open the database in {}: {e}", dir.display()))?;
        let log = LogStore::open(&db, me)?;
        let mut sm =
            SmStore::open(&db).map_err(|e| anyhow::anyhow!("cannot restore the state in {}: {e}", dir.display()))?;
        if let Some(me) = me {
            sm = sm.wait_for_own_entries(me, log.durable());
        }
        Ok(Self { log, sm })
    }

    /// How far the log is on disk: what the peer network clamps the commit
    /// index it sends to.
    pub fn durable(&self) -> crate::Durable {
        self.log.durable()
    }
}
