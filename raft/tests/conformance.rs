//! openraft's own storage conformance suite, run against the fjall storage.

use bm_raft::{LogStore, Machine, MachineError, SmStore, Storage, TypeConfig};
use openraft::testing::{StoreBuilder, Suite};
use openraft::StorageError;

/// The suite never applies normal entries, so an empty machine will do.
#[derive(Clone, Default)]
struct Nothing;

impl Machine for Nothing {
    fn apply(&mut self, _index: u64, _command: &[u8]) -> Result<Vec<u8>, MachineError> {
        Ok(Vec::new())
    }
    fn snapshot(&self) -> Result<Vec<u8>, MachineError> {
        Ok(Vec::new())
    }
    fn restore(_bytes: &[u8]) -> Result<Self, MachineError> {
        Ok(Nothing)
    }
}

struct FjallBuilder;

impl StoreBuilder<TypeConfig, LogStore, SmStore<Nothing>, tempfile::TempDir> for FjallBuilder {
    async fn build(&self) -> Result<(tempfile::TempDir, LogStore, SmStore<Nothing>), StorageError<u64>> {
        let dir = tempfile::tempdir().expect("temp dir");
        // As node 7: the suite's entries and votes are node 0's, so this
        // store syncs every append before reporting it, as a follower does.
        let s = Storage::<Nothing>::open(dir.path(), Some(7)).expect("open storage");
        Ok((dir, s.log, s.sm))
    }
}

#[test]
fn openraft_storage_suite() {
    if let Err(e) = Suite::test_all(FjallBuilder) {
        panic!("openraft's storage suite failed on the fjall storage: {e}");
    }
}
