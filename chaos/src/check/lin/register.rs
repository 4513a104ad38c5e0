//! The textbook read/write/compare-and-set register: the reference model the checker is tested against.

use std::fmt::Debug;
use std::hash::Hash;

use super::model::Model;

/// A register holding one value, starting at `init`.
#[derive(Clone, Debug)]
pub struct RegisterModel<V> {
    /// The value before any write.
    pub init: V,
}

/// A register operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RegisterInput<V> {
    /// Read the value.
    Read,
    /// Set the value.
    Write(V),
    /// Set the value to `new` if it is `expect`.
    Cas {
        /// The value required.
        expect: V,
        /// The value set.
        new: V,
    },
}

/// What a register operation returned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RegisterOutput<V> {
    /// A read's value.
    Read(V),
    /// A write's acknowledgement.
    Written,
    /// Whether a compare-and-set succeeded.
    Cas(bool),
}

impl<V: Clone + Eq + Hash + Debug> Model for RegisterModel<V> {
    type State = V;
    type Input = RegisterInput<V>;
    type Output = RegisterOutput<V>;

    fn init(&self) -> V {
        self.init.clone()
    }

    fn step(&self, state: &V, input: &RegisterInput<V>, output: Option<&RegisterOutput<V>>) -> Option<V> {
        match (input, output) {
            (RegisterInput::Read, None) => Some(state.clone()),
            (RegisterInput::Read, Some(RegisterOutput::Read(v))) => (v == state).then(|| state.clone()),
            (RegisterInput::Write(v), None | Some(RegisterOutput::Written)) => Some(v.clone()),
            (RegisterInput::Cas { expect, new }, out) => {
                let hit = expect == state;
                match out {
                    None => Some(if hit { new.clone() } else { state.clone() }),
                    Some(RegisterOutput::Cas(ok)) if *ok == hit => Some(if hit { new.clone() } else { state.clone() }),
                    Some(_) => None,
                }
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_follow_the_register_semantics() {
        let m = RegisterModel { init: 0 };
        let read = |v| Some(RegisterOutput::Read(v));
        assert_eq!(m.step(&0, &RegisterInput::Read, read(0).as_ref()), Some(0));
        assert_eq!(m.step(&0, &RegisterInput::Read, read(1).as_ref()), None);
        assert_eq!(m.step(&0, &RegisterInput::Write(3), Some(&RegisterOutput::Written)), Some(3));
        let cas = RegisterInput::Cas { expect: 0, new: 5 };
        assert_eq!(m.step(&0, &cas, Some(&RegisterOutput::Cas(true))), Some(5));
        assert_eq!(m.step(&1, &cas, Some(&RegisterOutput::Cas(true))), None);
        assert_eq!(m.step(&1, &cas, Some(&RegisterOutput::Cas(false))), Some(1));
        assert_eq!(m.step(&0, &cas, None), Some(5));
        assert_eq!(m.step(&0, &RegisterInput::Write(3), read(3).as_ref()), None);
    }
}

/// Register histories written tersely, for the checker's own tests.
#[cfg(test)]
pub(super) mod history {
    use super::{RegisterInput as In, RegisterOutput as Out};
    use crate::check::lin::LinOp;

    /// An operation on a register of numbers.
    pub type Op = LinOp<In<u64>, Out<u64>>;

    /// A write of `v`, invoked and completed at the given times.
    pub fn w(id: u64, invoke: u64, complete: u64, v: u64) -> Op {
        LinOp::done(id, invoke, complete, In::Write(v), Out::Written)
    }

    /// A read that returned `v`.
    pub fn r(id: u64, invoke: u64, complete: u64, v: u64) -> Op {
        LinOp::done(id, invoke, complete, In::Read, Out::Read(v))
    }
}
