//! The search: Wing & Gong's algorithm with Lowe's just-in-time linearization and a cache of
//! (linearized set, state) pairs already explored, as Porcupine implements it.

use std::collections::{BTreeMap, HashMap};

use super::model::{LinOp, Model};

/// Bounds on the search, so one pathological key cannot stall a check: past them the answer is inconclusive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinLimits {
    /// Most operations of one key the checker will search (the search is exponential in concurrency).
    pub max_ops: usize,
    /// Most search steps for one key (each step considers one event).
    pub max_steps: u64,
}

impl Default for LinLimits {
    fn default() -> Self {
        Self { max_ops: 2_000, max_steps: 5_000_000 }
    }
}

/// The checker's answer for one history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Linearizability {
    /// Some sequential order respecting real time explains every output.
    Linearizable,
    /// No order does: the history is a violation.
    NotLinearizable,
    /// The search hit a bound before deciding; the reason says which.
    Inconclusive(String),
}

/// An operation on `M`.
type ModelOp<M> = LinOp<<M as Model>::Input, <M as Model>::Output>;

/// Marks the end of the event list.
const NIL: usize = usize::MAX;
/// The list's head sentinel.
const HEAD: usize = 0;

/// One event (a call or a return) in the doubly linked list the search lifts operations out of.
#[derive(Clone, Copy, Debug)]
struct Event {
    /// Index of the operation.
    op: usize,
    /// A call (invocation) rather than a return.
    call: bool,
    /// The operation's other event.
    partner: usize,
    prev: usize,
    next: usize,
}

/// Decides whether `ops` is linearizable with respect to `model`, within `limits`.
pub fn check<M: Model>(model: &M, ops: &[LinOp<M::Input, M::Output>], limits: &LinLimits) -> Linearizability {
    if ops.len() > limits.max_ops {
        return Linearizability::Inconclusive(format!(
            "{} operations, more than the limit of {}",
            ops.len(),
            limits.max_ops
        ));
    }
    Search::new(model, ops).run(limits.max_steps)
}

/// Checks each key's operations on its own (linearizability is local) and answers per key.
pub fn check_keyed<K: Ord, M: Model>(
    model: &M,
    ops: impl IntoIterator<Item = (K, LinOp<M::Input, M::Output>)>,
    limits: &LinLimits,
) -> BTreeMap<K, Linearizability> {
    let mut keyed: BTreeMap<K, Vec<ModelOp<M>>> = BTreeMap::new();
    for (k, op) in ops {
        keyed.entry(k).or_default().push(op);
    }
    keyed.into_iter().map(|(k, ops)| (k, check(model, &ops, limits))).collect()
}

/// The state of one search.
struct Search<'a, M: Model> {
    model: &'a M,
    ops: &'a [LinOp<M::Input, M::Output>],
    /// `events[0]` is the head sentinel; the others are the calls and returns in time order.
    events: Vec<Event>,
}

impl<'a, M: Model> Search<'a, M> {
    /// Lays the events out in time order. At equal times calls come before returns, so operations that touch
    /// count as concurrent (the lenient reading, which never reports a false violation). Unknown completions go
    /// last, at +∞.
    fn new(model: &'a M, ops: &'a [LinOp<M::Input, M::Output>]) -> Self {
        let mut order: Vec<(u64, bool, usize)> = Vec::with_capacity(ops.len() * 2);
        for (i, op) in ops.iter().enumerate() {
            order.push((op.invoke, false, i));
            order.push((op.complete.map_or(u64::MAX, |c| c.max(op.invoke)), true, i));
        }
        order.sort_unstable();
        let mut events = vec![Event { op: NIL, call: false, partner: NIL, prev: NIL, next: NIL }; order.len() + 1];
        let mut call_at = vec![NIL; ops.len()];
        for (k, &(_, is_return, op)) in order.iter().enumerate() {
            let at = k + 1;
            let next = if at == order.len() { NIL } else { at + 1 };
            events[at] = Event { op, call: !is_return, partner: NIL, prev: at - 1, next };
            if is_return {
                events[at].partner = call_at[op];
                events[call_at[op]].partner = at;
            } else {
                call_at[op] = at;
            }
        }
        events[HEAD].next = if order.is_empty() { NIL } else { 1 };
        Self { model, ops, events }
    }

    /// Takes event `i` out of the list.
    fn unlink(&mut self, i: usize) {
        let Event { prev, next, .. } = self.events[i];
        self.events[prev].next = next;
        if next != NIL {
            self.events[next].prev = prev;
        }
    }

    /// Puts event `i` back where it was (undoing the latest unlink still in force).
    fn relink(&mut self, i: usize) {
        let Event { prev, next, .. } = self.events[i];
        self.events[prev].next = i;
        if next != NIL {
            self.events[next].prev = i;
        }
    }

    /// Removes a linearized operation's call and return.
    fn lift(&mut self, call: usize) {
        self.unlink(call);
        self.unlink(self.events[call].partner);
    }

    /// Undoes [`Search::lift`].
    fn unlift(&mut self, call: usize) {
        self.relink(self.events[call].partner);
        self.relink(call);
    }

    /// Runs the search for at most `max_steps` steps.
    fn run(mut self, max_steps: u64) -> Linearizability {
        let mut resolved = Bits::new(self.ops.len());
        // Operations that completed with a known output must all be linearized; the others may be left out.
        let mut required = self.ops.iter().filter(|o| o.is_required()).count();
        let mut state = self.model.init();
        let mut memo: Memo<M::State> = Memo::default();
        // The choices made: the call event of an operation linearized (or dropped), and the state before it.
        let mut stack: Vec<(usize, M::State)> = Vec::new();
        let mut entry = self.events[HEAD].next;
        let mut steps = 0u64;
        loop {
            if required == 0 {
                return Linearizability::Linearizable;
            }
            steps += 1;
            if steps > max_steps {
                return Linearizability::Inconclusive(format!("search budget of {max_steps} steps exhausted"));
            }
            let event = if entry == NIL { None } else { Some(self.events[entry]) };
            // What the event lets the search do: linearize an operation now (its call), or drop an optional
            // operation whose interval ends here without it having taken effect (its return).
            let choice = match event {
                Some(ev) if ev.call => {
                    let op = &self.ops[ev.op];
                    Some((entry, self.model.step(&state, &op.input, op.output.as_ref())))
                }
                Some(ev) if !self.ops[ev.op].is_required() => Some((ev.partner, Some(state.clone()))),
                _ => None,
            };
            match choice {
                Some((call, Some(next))) => {
                    let op = self.events[call].op;
                    resolved.set(op, true);
                    if memo.fresh(resolved.words(), &next) {
                        stack.push((call, std::mem::replace(&mut state, next)));
                        self.lift(call);
                        if self.ops[op].is_required() {
                            required -= 1;
                        }
                        entry = self.events[HEAD].next;
                        continue;
                    }
                    resolved.set(op, false);
                    if self.events[entry].call {
                        entry = self.events[entry].next;
                        continue;
                    }
                }
                Some((_, None)) => {
                    entry = self.events[entry].next;
                    continue;
                }
                None => {}
            }
            // The return of a required operation not yet linearized, a dead end, or the end: undo the latest
            // choice and try the next event after it.
            let Some((call, prev)) = stack.pop() else { return Linearizability::NotLinearizable };
            state = prev;
            let op = self.events[call].op;
            resolved.set(op, false);
            self.unlift(call);
            if self.ops[op].is_required() {
                required += 1;
            }
            entry = self.events[call].next;
        }
    }
}

/// A set of operation indices.
struct Bits(Vec<u64>);

impl Bits {
    fn new(n: usize) -> Self {
        Self(vec![0; n.div_ceil(64)])
    }

    fn set(&mut self, i: usize, on: bool) {
        let bit = 1u64 << (i % 64);
        if on {
            self.0[i / 64] |= bit;
        } else {
            self.0[i / 64] &= !bit;
        }
    }

    fn words(&self) -> &[u64] {
        &self.0
    }
}

/// The (resolved set, state) pairs already explored: reaching one again cannot lead anywhere new.
struct Memo<S> {
    /// States reached per set; looked up by slice, so a set is copied only the first time it is seen.
    seen: HashMap<Vec<u64>, Vec<S>>,
}

impl<S> Default for Memo<S> {
    fn default() -> Self {
        Self { seen: HashMap::new() }
    }
}

impl<S: Clone + Eq + std::hash::Hash> Memo<S> {
    /// Records the pair; whether it is new.
    fn fresh(&mut self, set: &[u64], state: &S) -> bool {
        match self.seen.get_mut(set) {
            Some(states) if states.contains(state) => false,
            Some(states) => {
                states.push(state.clone());
                true
            }
            None => {
                self.seen.insert(set.to_vec(), vec![state.clone()]);
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::lin::register::history::{r, w, Op};
    use crate::check::lin::{RegisterInput as In, RegisterModel, RegisterOutput as Out};

    fn cas(id: u64, invoke: u64, complete: u64, expect: u64, new: u64, ok: bool) -> Op {
        LinOp::done(id, invoke, complete, In::Cas { expect, new }, Out::Cas(ok))
    }
    fn lin(ops: &[Op]) -> Linearizability {
        check(&RegisterModel { init: 0 }, ops, &LinLimits::default())
    }

    #[test]
    fn an_empty_or_sequential_history_is_linearizable() {
        assert_eq!(lin(&[]), Linearizability::Linearizable);
        let ops = [w(0, 0, 10, 1), r(1, 20, 30, 1), cas(2, 40, 50, 1, 2, true), r(3, 60, 70, 2)];
        assert_eq!(lin(&ops), Linearizability::Linearizable);
    }

    #[test]
    fn a_stale_read_after_a_newer_acknowledged_write_is_not() {
        let ops = [w(0, 0, 10, 1), w(1, 20, 30, 2), r(2, 40, 50, 1)];
        assert_eq!(lin(&ops), Linearizability::NotLinearizable);
    }

    #[test]
    fn a_read_of_a_value_never_written_is_not() {
        assert_eq!(lin(&[w(0, 0, 10, 1), r(1, 5, 20, 7)]), Linearizability::NotLinearizable);
    }

    #[test]
    fn concurrent_ops_linearizable_in_one_order_only() {
        // w1 and w2 overlap; the read of 2 inside both forces w2 first, the later read of 1 forces w1 after it.
        let ops = [w(0, 0, 50, 1), w(1, 10, 60, 2), r(2, 20, 30, 2), r(3, 70, 80, 1)];
        assert_eq!(lin(&ops), Linearizability::Linearizable);
        // With w1 finished before w2 begins that order is impossible.
        let ops = [w(0, 0, 5, 1), w(1, 10, 60, 2), r(2, 20, 30, 2), r(3, 70, 80, 1)];
        assert_eq!(lin(&ops), Linearizability::NotLinearizable);
    }

    #[test]
    fn operations_that_touch_count_as_concurrent() {
        assert_eq!(lin(&[w(0, 0, 10, 1), r(1, 10, 20, 0)]), Linearizability::Linearizable);
        assert_eq!(lin(&[w(0, 0, 10, 1), r(1, 11, 20, 0)]), Linearizability::NotLinearizable);
    }

    #[test]
    fn an_unknown_write_may_explain_a_later_read() {
        let ops = [w(0, 0, 10, 1), LinOp::unknown(1, 20, In::Write(2)), r(2, 100, 110, 2)];
        assert_eq!(lin(&ops), Linearizability::Linearizable);
        // Without it the read is unexplained.
        assert_eq!(lin(&[ops[0].clone(), ops[2].clone()]), Linearizability::NotLinearizable);
    }

    #[test]
    fn an_unknown_write_may_never_happen() {
        let ops = [w(0, 0, 10, 1), LinOp::unknown(1, 20, In::Write(2)), r(2, 100, 110, 1), r(3, 120, 130, 1)];
        assert_eq!(lin(&ops), Linearizability::Linearizable);
    }

    #[test]
    fn an_unknown_write_cannot_take_effect_before_its_invocation() {
        let ops = [w(0, 0, 10, 1), r(1, 20, 30, 2), LinOp::unknown(2, 40, In::Write(2))];
        assert_eq!(lin(&ops), Linearizability::NotLinearizable);
    }

    #[test]
    fn a_relaxed_write_may_take_effect_within_its_interval_or_not_at_all() {
        let relaxed = w(1, 20, 30, 2).relaxed();
        assert_eq!(lin(&[w(0, 0, 10, 1), relaxed.clone(), r(2, 40, 50, 2)]), Linearizability::Linearizable);
        assert_eq!(lin(&[w(0, 0, 10, 1), relaxed.clone(), r(2, 40, 50, 1)]), Linearizability::Linearizable);
        // Not after its interval ended …
        let ops = [w(0, 0, 10, 1), relaxed.clone(), w(2, 40, 50, 3), r(3, 60, 70, 2)];
        assert_eq!(lin(&ops), Linearizability::NotLinearizable);
        // … nor before it began.
        assert_eq!(lin(&[w(0, 0, 10, 1), r(2, 12, 15, 2), relaxed]), Linearizability::NotLinearizable);
    }

    #[test]
    fn a_failed_cas_must_see_another_value() {
        let ops = [w(0, 0, 10, 1), cas(1, 20, 30, 1, 2, false)];
        assert_eq!(lin(&ops), Linearizability::NotLinearizable);
        let ops = [w(0, 0, 10, 1), cas(1, 20, 30, 1, 2, false), w(2, 15, 40, 3)];
        assert_eq!(lin(&ops), Linearizability::Linearizable);
    }

    #[test]
    fn an_exhausted_budget_is_inconclusive() {
        // Many concurrent writes and reads of distinct values: a big search space, a budget of 5 steps.
        let mut ops: Vec<Op> = (0..10).map(|i| w(i, 0, 100, i + 1)).collect();
        ops.extend((0..10).map(|i| r(10 + i, 0, 100, 10 - i)));
        let limits = LinLimits { max_ops: 100, max_steps: 5 };
        assert!(matches!(check(&RegisterModel { init: 0 }, &ops, &limits), Linearizability::Inconclusive(_)));
        let limits = LinLimits { max_ops: 3, max_steps: 1_000 };
        let got = check(&RegisterModel { init: 0 }, &ops, &limits);
        assert!(matches!(&got, Linearizability::Inconclusive(why) if why.contains("limit of 3")), "{got:?}");
    }

    #[test]
    fn keys_are_checked_apart() {
        let ops = vec![("a", w(0, 0, 10, 1)), ("b", r(1, 20, 30, 1)), ("a", r(2, 20, 30, 1))];
        let got = check_keyed(&RegisterModel { init: 0 }, ops, &LinLimits::default());
        assert_eq!(got["a"], Linearizability::Linearizable);
        assert_eq!(got["b"], Linearizability::NotLinearizable);
    }
}
