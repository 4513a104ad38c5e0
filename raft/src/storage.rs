//! Opening a node's whole Raft storage from one data directory.

use std::path::Path;

use fjall::Database;

use crate::log_store::LogStore;
use crate::machine::Machine;
use crate::sm_store::SmStore;

/// The two halves of a node's Raft storage, sharing one fjall database.
pub struct Storage<M: Machine> {
    /// The Raft log.
    pub log: LogStore,
    /// The applied state and its snapshots.
    pub sm: SmStore<M>,
}

impl<M: Machine> Storage<M> {
    /// Opens the database in `dir` (created if missing). Only one process may
    /// hold a data directory at a time; fjall's lock makes a second one fail.
    pub fn open(dir: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let db = Database::builder(dir)
            .open()
            .map_err(|e| anyhow::anyhow!("cannot open the database in {}: {e}", dir.display()))?;
        let log = LogStore::open(&db)?;
        let sm =
            SmStore::open(&db).map_err(|e| anyhow::anyhow!("cannot restore the state in {}: {e}", dir.display()))?;
        Ok(Self { log, sm })
    }
}
