//! The application's side of the replicated state machine.

/// A malformed command or snapshot: the node must stop, never skip it.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct MachineError(pub String);

/// A deterministic state machine over opaque commands.
///
/// `apply` must be a pure function of (state, command): no clock, no
/// randomness, no I/O. Whatever it needs (ids, times) is carried in the
/// command by the proposer. Rejecting a command (a duplicate name, a stale
/// epoch) is a normal *response*, encoded in the returned bytes; an `Err` means
/// the bytes could not be understood at all and is fatal.
///
/// `clone` should be cheap (share what is large, copy on write): a
/// snapshot clones the state while holding the state's lock and encodes the
/// clone after letting go of it, so applying goes on meanwhile.
pub trait Machine: Default + Clone + Send + Sync + 'static {
    /// Applies one committed command at log `index` and returns the encoded response.
    fn apply(&mut self, index: u64, command: &[u8]) -> Result<Vec<u8>, MachineError>;
    /// Encodes the whole state for a snapshot.
    fn snapshot(&self) -> Result<Vec<u8>, MachineError>;
    /// Rebuilds a state from a snapshot made by [`Machine::snapshot`].
    fn restore(bytes: &[u8]) -> Result<Self, MachineError>;
}
