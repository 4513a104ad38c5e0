//! Cutting a non-linearizable history down to the operations that matter, so a report shows a handful of lines
//! instead of a whole key's history.

use super::model::{LinOp, Model};
use super::wgl::{check, LinLimits, Linearizability};

/// Cuts a non-linearizable history down to a few operations that show the violation, trying at most
/// `max_checks` candidate histories, and returns them (in the original order, unchanged).
///
/// Operations are not simply deleted, which could keep or drop one for the wrong reason (drop the submit a read
/// depends on, and the read is wrong in a new way). First operations are *relaxed* (made free to take effect
/// within their interval or not at all, with any output; see [`LinOp::relaxed`]) and stay relaxed if the history
/// is still not linearizable: in chunks, latest first, halving the chunks down to single operations. The
/// operations that could not be relaxed are the core of the violation; relaxing only widens the histories that
/// fit, so one pass per chunk size suffices. Then, of the relaxed operations, only those needed to explain the
/// core are kept: an operation stays if without it some core operation would be wrong on its own (a read of a
/// value only a dropped write wrote). A history that is linearizable to begin with is returned unchanged.
pub fn shrink<M: Model>(
    model: &M,
    ops: Vec<LinOp<M::Input, M::Output>>,
    limits: &LinLimits,
    max_checks: usize,
) -> Vec<LinOp<M::Input, M::Output>> {
    if check(model, &ops, limits) != Linearizability::NotLinearizable {
        return ops;
    }
    let mut budget = max_checks;
    let mut work = ops.clone();
    let mut relaxed = vec![false; ops.len()];
    let all: Vec<usize> = (0..ops.len()).collect();
    in_chunks(&all, &mut budget, 1, |chunk| {
        for &i in chunk {
            work[i] = ops[i].clone().relaxed();
        }
        let still = check(model, &work, limits) == Linearizability::NotLinearizable;
        for &i in chunk {
            if still {
                relaxed[i] = true;
            } else {
                work[i] = ops[i].clone();
            }
        }
        still
    });
    let core: Vec<usize> = (0..ops.len()).filter(|&i| !relaxed[i]).collect();
    // Of the relaxed operations (in `work`, relaxed), keep those some core operation needs: drop a chunk if, without
    // it, relaxing any one core operation still makes the history linearizable.
    let mut kept = relaxed.clone();
    let loose: Vec<usize> = (0..ops.len()).filter(|&i| relaxed[i]).collect();
    in_chunks(&loose, &mut budget, core.len(), |chunk| {
        chunk.iter().for_each(|&j| kept[j] = false);
        let rest: Vec<usize> = (0..ops.len()).filter(|&k| kept[k] || !relaxed[k]).collect();
        let explained = core.iter().all(|&c| {
            let candidate: Vec<_> =
                rest.iter().map(|&k| if k == c { work[k].clone().relaxed() } else { work[k].clone() }).collect();
            check(model, &candidate, limits) == Linearizability::Linearizable
        });
        if !explained {
            chunk.iter().for_each(|&j| kept[j] = true);
        }
        explained
    });
    ops.into_iter().enumerate().filter(|&(i, _)| !relaxed[i] || kept[i]).map(|(_, op)| op).collect()
}

/// Offers `items` to `try_chunk` in chunks, latest first, halving the chunks down to single items; items of a
/// chunk it accepts (returns true for) are not offered again. A violation usually involves a few operations,
/// which this finds in far fewer tries than one item at a time. Each try costs `cost` from `budget`; tries stop
/// when the budget would run out.
fn in_chunks(items: &[usize], budget: &mut usize, cost: usize, mut try_chunk: impl FnMut(&[usize]) -> bool) {
    let mut taken = vec![false; items.len()];
    let mut size = (items.len().next_power_of_two() / 2).max(1);
    loop {
        for start in (0..items.len()).step_by(size).rev() {
            let chunk: Vec<usize> = (start..(start + size).min(items.len())).filter(|&i| !taken[i]).collect();
            if chunk.is_empty() {
                continue;
            }
            if *budget < cost.max(1) {
                return;
            }
            *budget -= cost.max(1);
            let members: Vec<usize> = chunk.iter().map(|&i| items[i]).collect();
            if try_chunk(&members) {
                chunk.iter().for_each(|&i| taken[i] = true);
            }
        }
        if size == 1 {
            return;
        }
        size /= 2;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::lin::register::history::{r, w, Op};
    use crate::check::lin::{RegisterInput as In, RegisterModel};

    fn ids(ops: &[Op]) -> Vec<u64> {
        ops.iter().map(|o| o.id).collect()
    }

    #[test]
    fn a_stale_read_shrinks_to_the_writes_around_it_and_itself() {
        let model = RegisterModel { init: 0 };
        let ops = vec![
            r(0, 0, 5, 0),
            w(1, 10, 20, 1),
            r(2, 25, 30, 1),
            w(3, 40, 50, 2),
            r(4, 55, 60, 2),
            r(5, 70, 80, 1),
            r(6, 90, 95, 2),
        ];
        assert_eq!(check(&model, &ops, &LinLimits::default()), Linearizability::NotLinearizable);
        let small = shrink(&model, ops, &LinLimits::default(), 100);
        // The writes of 1 then 2, and a read of 1 after them (possibly with the read of 2 that saw the second).
        let got = ids(&small);
        assert!(got == vec![1, 3, 5] || got == vec![1, 3, 4, 5], "{got:?}");
        assert_eq!(check(&model, &small, &LinLimits::default()), Linearizability::NotLinearizable);
    }

    #[test]
    fn the_effort_is_bounded() {
        let model = RegisterModel { init: 0 };
        let ops = vec![r(0, 0, 5, 0), w(1, 10, 20, 1), w(2, 30, 40, 2), r(3, 50, 60, 1)];
        assert_eq!(shrink(&model, ops.clone(), &LinLimits::default(), 0), ops);
        assert_eq!(ids(&shrink(&model, ops.clone(), &LinLimits::default(), 1)), vec![0, 1, 2, 3]);
        assert_eq!(ids(&shrink(&model, ops, &LinLimits::default(), 100)), vec![1, 2, 3]);
    }

    #[test]
    fn operations_that_explain_the_core_are_kept() {
        let model = RegisterModel { init: 0 };
        // Reading 1 and then the initial 0 is the violation; the unknown write of 1 explains the first read.
        let ops = vec![LinOp::unknown(0, 0, In::Write(1)), r(1, 10, 20, 1), r(2, 30, 40, 0)];
        assert_eq!(ids(&shrink(&model, ops, &LinLimits::default(), 100)), vec![0, 1, 2]);
        // An acknowledged write that a later read missed is the violation; the rest is beside the point.
        let ops = vec![LinOp::unknown(0, 0, In::Write(1)), r(1, 10, 20, 1), w(2, 30, 40, 2), r(3, 50, 60, 0)];
        assert_eq!(ids(&shrink(&model, ops, &LinLimits::default(), 100)), vec![2, 3]);
    }

    #[test]
    fn a_linearizable_history_is_left_alone() {
        let model = RegisterModel { init: 0 };
        let ops = vec![w(0, 0, 10, 1), r(1, 20, 30, 1)];
        assert_eq!(shrink(&model, ops.clone(), &LinLimits::default(), 100), ops);
    }
}
