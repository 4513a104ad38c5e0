//! Turning storage failures into openraft's error type.

use openraft::{ErrorSubject, ErrorVerb, StorageError, StorageIOError};

use crate::types::NodeId;

/// Helpers to wrap any error as an openraft [`StorageError`], naming what
/// was being read or written. openraft treats these as fatal: the node stops
/// rather than carry on with storage it cannot trust.
pub trait FatalStorage<T> {
    /// Wraps the error as a failure of `verb` on `subject`.
    fn fatal(self, subject: ErrorSubject<NodeId>, verb: ErrorVerb) -> Result<T, StorageError<NodeId>>;
}

impl<T, E: std::error::Error + 'static> FatalStorage<T> for Result<T, E> {
    fn fatal(self, subject: ErrorSubject<NodeId>, verb: ErrorVerb) -> Result<T, StorageError<NodeId>> {
        self.map_err(|e| StorageIOError::new(subject, verb, openraft::AnyError::new(&e)).into())
    }
}
