//! Property tests of the linearizability checker against the register model: histories made from a real
//! sequential execution must pass, and the same histories with one read corrupted must not.

use bm_chaos::check::lin::{
    check, shrink, LinLimits, LinOp, Linearizability, RegisterInput, RegisterModel, RegisterOutput,
};
use proptest::prelude::*;

type Op = LinOp<RegisterInput<u64>, RegisterOutput<u64>>;

/// A value no operation ever writes.
const NEVER_WRITTEN: u64 = 99;

/// One step of a generated execution: what it does, how long before and after its linearization point its
/// interval reaches, and whether its outcome was lost.
#[derive(Clone, Debug)]
struct Step {
    input: RegisterInput<u64>,
    before: u64,
    after: u64,
    unknown: bool,
}

fn step() -> impl Strategy<Value = Step> {
    let input = prop_oneof![
        Just(RegisterInput::Read),
        (0..4u64).prop_map(RegisterInput::Write),
        (0..4u64, 0..4u64).prop_map(|(expect, new)| RegisterInput::Cas { expect, new }),
    ];
    (input, 0..45u64, 0..45u64, prop::bool::weighted(0.15)).prop_map(|(input, before, after, unknown)| Step {
        input,
        before,
        after,
        unknown,
    })
}

/// Runs the steps sequentially on a register starting at 0, operation `i` taking effect at time `10 i + 50`,
/// and gives each an interval around that point: a history linearizable by construction, with lots of overlap.
fn execute(steps: &[Step]) -> Vec<Op> {
    let mut value = 0;
    let mut ops = Vec::new();
    for (i, s) in steps.iter().enumerate() {
        let point = 10 * i as u64 + 50;
        let output = match &s.input {
            RegisterInput::Read => RegisterOutput::Read(value),
            RegisterInput::Write(v) => {
                value = *v;
                RegisterOutput::Written
            }
            RegisterInput::Cas { expect, new } => {
                let hit = *expect == value;
                if hit {
                    value = *new;
                }
                RegisterOutput::Cas(hit)
            }
        };
        let (id, invoke) = (i as u64, point - s.before);
        ops.push(if s.unknown {
            LinOp::unknown(id, invoke, s.input.clone())
        } else {
            LinOp::done(id, invoke, point + s.after, s.input.clone(), output)
        });
    }
    ops
}

fn limits() -> LinLimits {
    LinLimits { max_ops: 1_000, max_steps: 20_000_000 }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn a_real_execution_is_linearizable(steps in prop::collection::vec(step(), 0..40)) {
        let ops = execute(&steps);
        prop_assert_eq!(check(&RegisterModel { init: 0 }, &ops, &limits()), Linearizability::Linearizable);
    }

    #[test]
    fn a_read_of_a_value_never_written_is_not(
        steps in prop::collection::vec(step(), 1..40),
        pick in any::<prop::sample::Index>(),
    ) {
        let mut ops = execute(&steps);
        let reads: Vec<usize> = (0..ops.len())
            .filter(|&i| matches!(ops[i].output, Some(RegisterOutput::Read(_))))
            .collect();
        prop_assume!(!reads.is_empty());
        let bad = reads[pick.index(reads.len())];
        ops[bad].output = Some(RegisterOutput::Read(NEVER_WRITTEN));
        let model = RegisterModel { init: 0 };
        prop_assert_eq!(check(&model, &ops, &limits()), Linearizability::NotLinearizable);
        // Its shrunk excerpt still fails, and keeps the corrupted read.
        let small = shrink(&model, ops.clone(), &limits(), 80);
        prop_assert!(small.iter().any(|o| o.id == bad as u64), "{:?}", small);
        prop_assert_eq!(check(&model, &small, &limits()), Linearizability::NotLinearizable);
    }
}
