//! Ties a spawned task's life to a value.

use std::future::Future;

use tokio::task::JoinHandle;

/// Aborts its task when dropped, so that a relay's helpers (upstream readers, the delay queue) and the relays
/// themselves never outlive whoever owns them.
pub(crate) struct TaskGuard(JoinHandle<()>);

impl TaskGuard {
    /// Spawns `task` on the current runtime, guarded.
    pub(crate) fn spawn<F: Future<Output = ()> + Send + 'static>(task: F) -> Self {
        Self(tokio::spawn(task))
    }
}

impl Drop for TaskGuard {
    fn drop(&mut self) {
        self.0.abort();
    }
}
