//! bm's job lifecycle as a sequential model: how far a job has got can only grow, and an end is final.

use super::model::Model;
use crate::history::{JobView, Value};

/// A job's phase in lifecycle order. A job starts `Waiting` (for its dependencies) or `Queued`, moves on through
/// `Assigned` and `Running`, and ends `Completed`, `Failed` or `Cancelled`, skipping any of the middle phases.
/// `Absent` is before the job was submitted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum JobPhase {
    /// Not submitted (yet).
    Absent,
    /// Waiting for the jobs it depends on.
    Waiting,
    /// Waiting for a worker.
    Queued,
    /// Given to a worker that has not started it.
    Assigned,
    /// Running.
    Running,
    /// Ended well.
    Completed,
    /// Ended otherwise.
    Failed,
    /// Cancelled before it ended.
    Cancelled,
}

impl JobPhase {
    /// The phase bm names `state` in JSON; `None` for a name it does not use.
    pub fn parse(state: &str) -> Option<Self> {
        Some(match state {
            "waiting" => JobPhase::Waiting,
            "queued" => JobPhase::Queued,
            "assigned" => JobPhase::Assigned,
            "running" => JobPhase::Running,
            "completed" => JobPhase::Completed,
            "failed" => JobPhase::Failed,
            "cancelled" => JobPhase::Cancelled,
            _ => return None,
        })
    }

    /// Whether the job will never change again.
    pub fn is_terminal(self) -> bool {
        matches!(self, JobPhase::Completed | JobPhase::Failed | JobPhase::Cancelled)
    }

    /// Position in the lifecycle; the three ends share the last one.
    fn rank(self) -> u8 {
        match self {
            JobPhase::Absent => 0,
            JobPhase::Waiting => 1,
            JobPhase::Queued => 2,
            JobPhase::Assigned => 3,
            JobPhase::Running => 4,
            JobPhase::Completed | JobPhase::Failed | JobPhase::Cancelled => 5,
        }
    }
}

/// What the operations linearized so far prove about a job. The server moves jobs on by itself (assigning,
/// starting, finishing them) without the history seeing it, so this is a lower bound: a later read may show any
/// phase at or past it, except that an end is exact and final.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct JobKnowledge {
    /// The latest phase proven.
    pub phase: JobPhase,
    /// The latest assignment epoch seen.
    pub epoch: u64,
    /// The worker seen for that epoch, if any.
    pub worker: Option<String>,
}

/// What a job operation asks for; outputs are the history's [`Value`]s.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobInput {
    /// `SubmitJob`, acknowledged with this job's id: the job comes into being.
    Submit,
    /// `ReadJob`: returns `Value::View`.
    Read,
    /// `CancelJob`: bm acknowledges it only for a job not yet ended, which it ends `Cancelled`; it rejects the
    /// others (a rejected cancel is a failed operation and never reaches the model).
    Cancel,
}

/// The sequential specification of one bm job's state, for [`crate::check::lin::check`]: submits create it,
/// reads may only see it move forward, ends are absorbing, an acknowledged cancel ends it `Cancelled`, and within
/// one assignment epoch the worker does not change.
#[derive(Clone, Copy, Debug, Default)]
pub struct JobStateModel;

impl Model for JobStateModel {
    type State = JobKnowledge;
    type Input = JobInput;
    type Output = Value;

    fn init(&self) -> JobKnowledge {
        JobKnowledge { phase: JobPhase::Absent, epoch: 0, worker: None }
    }

    fn step(&self, state: &JobKnowledge, input: &JobInput, output: Option<&Value>) -> Option<JobKnowledge> {
        match input {
            JobInput::Submit => (state.phase == JobPhase::Absent).then_some(JobKnowledge {
                phase: JobPhase::Waiting,
                epoch: 0,
                worker: None,
            }),
            JobInput::Read => match output {
                None => Some(state.clone()),
                Some(Value::View(view)) => observe(state, view.as_ref()),
                Some(_) => None,
            },
            JobInput::Cancel => {
                let live = state.phase != JobPhase::Absent && !state.phase.is_terminal();
                match output {
                    // It may have been rejected, which changes nothing.
                    None if !live => Some(state.clone()),
                    _ if !live => None,
                    Some(Value::View(Some(view))) => observe(state, Some(view)),
                    Some(Value::View(None)) => None,
                    _ => Some(JobKnowledge { phase: JobPhase::Cancelled, ..state.clone() }),
                }
            }
        }
    }
}

/// The knowledge after a read returned `view` (`None`: no such job), or `None` if the read contradicts it.
fn observe(state: &JobKnowledge, view: Option<&JobView>) -> Option<JobKnowledge> {
    let Some(view) = view else {
        return (state.phase == JobPhase::Absent).then(|| state.clone());
    };
    let phase = JobPhase::parse(&view.state)?;
    if state.phase == JobPhase::Absent || phase.rank() < state.phase.rank() || view.epoch < state.epoch {
        return None;
    }
    if state.phase.is_terminal() && (phase != state.phase || view.epoch != state.epoch) {
        return None;
    }
    let same_epoch = view.epoch == state.epoch;
    if same_epoch && matches!((&view.worker, &state.worker), (Some(a), Some(b)) if a != b) {
        return None;
    }
    let worker = if same_epoch { view.worker.clone().or_else(|| state.worker.clone()) } else { view.worker.clone() };
    Some(JobKnowledge { phase, epoch: view.epoch, worker })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::lin::{check, LinLimits, LinOp, Linearizability};

    type Op = LinOp<JobInput, Value>;

    fn submit(id: u64, invoke: u64, complete: u64) -> Op {
        LinOp::done(id, invoke, complete, JobInput::Submit, Value::Job("J".into()))
    }
    fn read(id: u64, invoke: u64, complete: u64, state: &str, epoch: u64, worker: Option<&str>) -> Op {
        LinOp::done(id, invoke, complete, JobInput::Read, Value::View(Some(JobView::new(state, epoch, worker))))
    }
    fn missing(id: u64, invoke: u64, complete: u64) -> Op {
        LinOp::done(id, invoke, complete, JobInput::Read, Value::View(None))
    }
    fn cancel(id: u64, invoke: u64, complete: u64) -> Op {
        LinOp::done(id, invoke, complete, JobInput::Cancel, Value::Done)
    }
    fn lin(ops: &[Op]) -> Linearizability {
        check(&JobStateModel, ops, &LinLimits::default())
    }
    use Linearizability::{Linearizable as Yes, NotLinearizable as No};

    #[test]
    fn a_job_moving_forward_is_fine() {
        let ops = [
            submit(0, 0, 10),
            read(1, 20, 30, "queued", 0, None),
            read(2, 40, 50, "running", 1, Some("w1")),
            read(3, 60, 70, "completed", 1, None),
            read(4, 80, 90, "completed", 1, Some("w1")),
        ];
        assert_eq!(lin(&ops), Yes);
    }

    #[test]
    fn a_state_going_back_is_not() {
        let ops = [submit(0, 0, 10), read(1, 20, 30, "running", 1, Some("w1")), read(2, 40, 50, "queued", 0, None)];
        assert_eq!(lin(&ops), No);
        let ops = [submit(0, 0, 10), read(1, 20, 30, "queued", 0, None), read(2, 40, 50, "waiting", 0, None)];
        assert_eq!(lin(&ops), No);
    }

    #[test]
    fn overlapping_reads_may_come_in_either_order() {
        let ops = [submit(0, 0, 10), read(1, 20, 50, "running", 1, Some("w1")), read(2, 30, 60, "queued", 0, None)];
        assert_eq!(lin(&ops), Yes);
    }

    #[test]
    fn an_end_is_final() {
        let ops = [submit(0, 0, 10), read(1, 20, 30, "completed", 1, None), read(2, 40, 50, "failed", 1, None)];
        assert_eq!(lin(&ops), No);
        let ops = [submit(0, 0, 10), read(1, 20, 30, "failed", 1, None), read(2, 40, 50, "failed", 2, None)];
        assert_eq!(lin(&ops), No);
    }

    #[test]
    fn a_job_cannot_vanish_after_its_submit_was_acknowledged() {
        assert_eq!(lin(&[submit(0, 0, 10), missing(1, 20, 30)]), No);
        assert_eq!(lin(&[submit(0, 0, 10), missing(1, 5, 30)]), Yes);
        assert_eq!(lin(&[read(0, 0, 5, "queued", 0, None), submit(1, 10, 20)]), No);
    }

    #[test]
    fn an_acknowledged_cancel_ends_the_job_cancelled() {
        let ops = [submit(0, 0, 10), cancel(1, 20, 30), read(2, 40, 50, "running", 1, Some("w1"))];
        assert_eq!(lin(&ops), No);
        let ops = [submit(0, 0, 10), cancel(1, 20, 30), read(2, 40, 50, "cancelled", 0, None)];
        assert_eq!(lin(&ops), Yes);
        // bm rejects cancelling an ended job, so an acknowledged cancel after a completed read is wrong …
        let ops = [submit(0, 0, 10), read(1, 20, 30, "completed", 1, None), cancel(2, 40, 50)];
        assert_eq!(lin(&ops), No);
        // … but one whose outcome is unknown may have been rejected.
        let ops = [submit(0, 0, 10), read(1, 20, 30, "completed", 1, None), LinOp::unknown(2, 40, JobInput::Cancel)];
        assert_eq!(lin(&ops), Yes);
    }

    #[test]
    fn an_unknown_cancel_may_explain_a_later_cancelled_read() {
        let ops = [submit(0, 0, 10), LinOp::unknown(1, 20, JobInput::Cancel), read(2, 100, 110, "cancelled", 0, None)];
        assert_eq!(lin(&ops), Yes);
    }

    #[test]
    fn the_worker_of_one_epoch_does_not_change() {
        let ops =
            [submit(0, 0, 10), read(1, 20, 30, "assigned", 1, Some("w1")), read(2, 40, 50, "running", 1, Some("w2"))];
        assert_eq!(lin(&ops), No);
    }

    #[test]
    fn an_unknown_state_name_is_a_violation() {
        assert_eq!(lin(&[submit(0, 0, 10), read(1, 20, 30, "exploded", 0, None)]), No);
    }
}
