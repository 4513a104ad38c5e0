//! What the linearizability checker needs from the caller: a sequential specification and the operations.

use std::fmt::Debug;
use std::hash::Hash;

/// A sequential specification: the states an object can be in and how each operation moves it. The checker
/// memoizes on states, so they must be cheap to clone and hash.
pub trait Model {
    /// The object's state.
    type State: Clone + Eq + Hash + Debug;
    /// What an operation asks for.
    type Input: Clone + Debug;
    /// What an operation returned.
    type Output: Clone + Debug;

    /// The state before any operation.
    fn init(&self) -> Self::State;

    /// The state after applying `input` to `state`, if that operation can return `output` there; `None` if it
    /// cannot (the history is wrong at this point). `output` is `None` when it is unknown, and then any output
    /// is allowed: the model applies the operation and returns the resulting state. Models are deterministic: a
    /// state and an input determine the output and the next state.
    fn step(&self, state: &Self::State, input: &Self::Input, output: Option<&Self::Output>) -> Option<Self::State>;
}

/// One operation as the checker sees it: an interval of real time, an input and maybe an output.
///
/// An operation with a completion time and an output happened between its invocation and completion and must be
/// linearized. The others are optional: one without a completion (a timed-out call, Porcupine's completion at
/// +∞) may take effect at any time after its invocation, or never; one with a completion but no output may take
/// effect within its interval, or not at all. An operation without an output may return anything.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinOp<I, O> {
    /// The id of the history operation it stands for (used to build excerpts).
    pub id: u64,
    /// When it was invoked.
    pub invoke: u64,
    /// When it completed; `None` when it is not known to have completed.
    pub complete: Option<u64>,
    /// What it asked for.
    pub input: I,
    /// What it returned; `None` when unknown (unconstrained).
    pub output: Option<O>,
}

impl<I, O> LinOp<I, O> {
    /// An operation that completed at `complete` returning `output`.
    pub fn done(id: u64, invoke: u64, complete: u64, input: I, output: O) -> Self {
        Self { id, invoke, complete: Some(complete), input, output: Some(output) }
    }

    /// An operation invoked at `invoke` whose outcome is unknown.
    pub fn unknown(id: u64, invoke: u64, input: I) -> Self {
        Self { id, invoke, complete: None, input, output: None }
    }

    /// The same operation made optional with its output forgotten: it may take effect within its interval, or
    /// not at all. Shrinking uses it to test whether an operation matters to a violation.
    pub fn relaxed(mut self) -> Self {
        self.output = None;
        self
    }

    /// Whether it must be linearized: it completed and its output is known.
    pub fn is_required(&self) -> bool {
        self.complete.is_some() && self.output.is_some()
    }
}
