//! Tests of the replicated state machine.
//!
//! Three layers, each named after the claim it proves:
//!
//! 1. one unit test per rule of [`State::apply`], every refusal checked with
//!    [`assert_refused`] so that "a refused command changes nothing" is
//!    proven everywhere, not only where someone remembered;
//! 2. a proptest that drives random interleavings from several proposers
//!    (scheduler, factories, agents, users, operators, some of them stale)
//!    against a small model of jobs and workers, checking invariants after
//!    every command;
//! 3. replay and snapshot determinism through [`Replicated`], the
//!    [`Machine`] that Raft drives, and the fatality of malformed bytes.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use bm_api::jobs::{DependSubmit, JobOutput, JobState, JobSubmit, StorePut, TaskSpec};
use bm_api::targets::TargetCreate;
use bm_api::workers::WorkerState;
use bm_api::{ErrorCode, ADMIN};
use bm_raft::{codec, Machine};
use proptest::prelude::*;
use proptest::sample::Index;

use super::command::ChunkRef;
use super::refs::Refs;
use super::{Command, EventIn, EventLog, Fence, Outcome, Principal, Rejection, Replicated, Reply, State, Time};

// ---------------------------------------------------------------------------
// Helpers: a fixed world, command builders, and the two ways to apply.
// ---------------------------------------------------------------------------

/// Alice: an ordinary user without privileges.
const ALICE: &str = "U-alice";
/// Bob: holds [`HW`], so he may use the `lab` target.
const BOB: &str = "U-bob";
/// The privilege the `lab` target requires.
const HW: &str = "hw";
/// The factory every unit test leases through.
const FACTORY: &str = "F0";

/// Proposer time `i` seconds after a fixed instant. Tests never read the
/// clock, exactly as `apply` never does, so every run is the same run.
fn t(i: i64) -> Time {
    chrono::DateTime::from_timestamp(1_700_000_000 + i, 0).expect("a time in range")
}

/// The commands that build the world both the unit tests and the proptest
/// start from: alice, bob (with `hw`), targets `linux`, `lab` (needs `hw`)
/// and `old-linux` (redirects to `linux`), and `factories` factories
/// `F0`, `F1`, … Being commands, they go through replay like the rest.
fn setup(factories: usize) -> Vec<Command> {
    let mut v = vec![
        user_cmd(ALICE, "alice", &[]),
        user_cmd(BOB, "bob", &[HW]),
        target_cmd("linux", None, None),
        target_cmd("lab", None, Some(HW)),
        target_cmd("old-linux", Some("linux"), None),
    ];
    v.extend((0..factories).map(|f| factory_cmd(&format!("F{f}"), &format!("factory{f}"))));
    v
}

/// The unit tests' starting state: [`setup`] with one factory.
fn world() -> State {
    let mut s = State::default();
    for cmd in setup(1) {
        ok(&mut s, cmd);
    }
    s
}

/// Applies a command that must be accepted and returns its reply; a refusal
/// fails the test with the command and the reason.
#[track_caller]
fn ok(s: &mut State, cmd: Command) -> Reply {
    let shown = format!("{cmd:?}");
    match s.apply(cmd) {
        Ok(r) => r,
        Err(e) => panic!("{shown} was refused: {e:?}"),
    }
}

/// Applies a command that must be refused with `code` and checks that the
/// refusal left the state exactly as it was: a refused command is committed
/// to the log like any other, so if it changed anything, replicas that
/// disagree about *why* it failed could drift apart.
#[track_caller]
fn assert_refused(s: &mut State, cmd: Command, code: ErrorCode) -> Rejection {
    let before = s.clone();
    let shown = format!("{cmd:?}");
    let rejection = match s.apply(cmd) {
        Ok(r) => panic!("{shown} was accepted ({r:?}), expected {code:?}"),
        Err(r) => r,
    };
    assert_eq!(rejection.code, code, "{shown}: {}", rejection.message);
    assert!(*s == before, "{shown} was refused ({}) but changed the state", rejection.message);
    rejection
}

fn user_cmd(id: &str, name: &str, privileges: &[&str]) -> Command {
    Command::CreateUser {
        id: id.into(),
        name: name.into(),
        privileges: privileges.iter().map(|p| p.to_string()).collect(),
        token_hash: format!("user-token-{id}"),
        time: t(0),
    }
}

fn target_cmd(name: &str, redirect: Option<&str>, privilege: Option<&str>) -> Command {
    Command::CreateTarget {
        id: format!("T-{name}"),
        spec: TargetCreate {
            name: name.into(),
            description: String::new(),
            redirect: redirect.map(Into::into),
            privilege: privilege.map(Into::into),
        },
    }
}

fn redirect_cmd(target: &str, redirect: Option<&str>) -> Command {
    Command::SetRedirect { target: target.into(), redirect: redirect.map(Into::into) }
}

fn factory_cmd(id: &str, name: &str) -> Command {
    Command::CreateFactory { id: id.into(), name: name.into(), token_hash: format!("factory-token-{id}"), time: t(0) }
}

/// A minimal valid job for `target`: one task, nothing else.
fn job(target: &str) -> JobSubmit {
    JobSubmit {
        name: "build".into(),
        target: target.into(),
        tasks: vec![TaskSpec {
            name: "build".into(),
            script: "make".into(),
            env: BTreeMap::new(),
            env_clear: false,
            workdir: None,
        }],
        output_rules: Vec::new(),
        inputs: Vec::new(),
        tags: BTreeMap::new(),
        depends: BTreeMap::new(),
        store: BTreeMap::new(),
        timeout_secs: Some(3600),
        publish: Vec::new(),
        retry_on_worker_loss: 0,
        submit_key: None,
    }
}

/// `submit` with one more dependency, named `name`, on `prior`.
fn after(mut submit: JobSubmit, name: &str, prior: &str, on_failed: bool, on_completed: bool) -> JobSubmit {
    submit
        .depends
        .insert(name.into(), DependSubmit { prior_job: prior.into(), copy_outputs: true, on_failed, on_completed });
    submit
}

fn submit_cmd(id: &str, owner: &str, submit: JobSubmit) -> Command {
    Command::SubmitJob { id: id.into(), owner: owner.into(), submit, time: t(1) }
}

fn fence(worker: &str, epoch: u64) -> Fence {
    Fence { worker: worker.into(), epoch }
}

fn request_cmd(worker: &str, target: &str) -> Command {
    Command::RequestWorker { id: worker.into(), target: target.into(), time: t(2) }
}

fn lease_cmd(factory: &str, targets: &[&str], bootstrap_hash: &str) -> Command {
    Command::LeaseWorker {
        factory: factory.into(),
        targets: targets.iter().map(|t| t.to_string()).collect(),
        bootstrap_hash: bootstrap_hash.into(),
        time: t(3),
    }
}

fn bootstrap_cmd(bootstrap_hash: &str, token_hash: &str) -> Command {
    Command::BootstrapWorker { bootstrap_hash: bootstrap_hash.into(), token_hash: token_hash.into(), time: t(4) }
}

fn assign_cmd(job: &str, worker: &str) -> Command {
    Command::AssignJob { job: job.into(), worker: worker.into(), time: t(5) }
}

fn start_cmd(job: &str, fence: Fence) -> Command {
    Command::JobStart { job: job.into(), fence, time: t(6) }
}

fn events_of(lines: &[&str]) -> EventLog {
    EventLog::from_events(lines.iter().map(|l| EventIn {
        stream: "stdout".into(),
        task: Some(0),
        time: t(7),
        payload: l.to_string(),
    }))
    .expect("times in range")
}

fn events_cmd(job: &str, fence: Fence, lines: &[&str]) -> Command {
    Command::JobEvents { job: job.into(), fence, first: None, events: events_of(lines), max_log_bytes: None }
}

fn output_cmd(job: &str, fence: Fence, path: &str) -> Command {
    let output = JobOutput { id: format!("O{path}"), path: path.into(), size: 1, sha256: "00".repeat(32) };
    Command::JobOutput { job: job.into(), fence, output }
}

fn finish_cmd(job: &str, fence: Fence, failure: Option<&str>) -> Command {
    Command::JobFinish { job: job.into(), fence, failure: failure.map(Into::into), time: t(8) }
}

fn cancel_cmd(job: &str, by: &str) -> Command {
    Command::CancelJob { job: job.into(), by: by.into(), time: t(9) }
}

fn store_cmd(job: &str, name: &str, value: &str, secret: bool, fence: Option<Fence>) -> Command {
    Command::StorePut {
        job: job.into(),
        name: name.into(),
        put: StorePut { value: value.into(), secret },
        fence,
        time: t(10),
    }
}

fn job_state(s: &State, job: &str) -> JobState {
    s.jobs[job].job.state
}

fn worker_state(s: &State, worker: &str) -> WorkerState {
    s.workers[worker].worker.state
}

/// Takes worker `id` of `target` from requested to ready the way the real
/// parties do: the scheduler requests it, [`FACTORY`] leases it with the
/// bootstrap hash `bh-ID`, and its agent exchanges that for `wt-ID`.
#[track_caller]
fn ready_worker(s: &mut State, id: &str, target: &str) {
    ok(s, request_cmd(id, target));
    let bh = format!("bh-{id}");
    match ok(s, lease_cmd(FACTORY, &[target], &bh)) {
        Reply::Lease(Some(l)) => assert_eq!(l.worker, id, "the lease went to another requested worker"),
        other => panic!("lease of {id} returned {other:?}"),
    }
    ok(s, bootstrap_cmd(&bh, &format!("wt-{id}")));
    assert_eq!(worker_state(s, id), WorkerState::Ready);
}

/// Makes a ready worker `worker` for queued `job` and assigns the job to it;
/// returns the fence its agent must act under.
#[track_caller]
fn assigned(s: &mut State, job: &str, worker: &str) -> Fence {
    let target = s.jobs[job].job.target_real.clone();
    ready_worker(s, worker, &target);
    ok(s, assign_cmd(job, worker));
    fence(worker, s.jobs[job].job.epoch)
}

/// As [`assigned`], and the agent has started the job.
#[track_caller]
fn running(s: &mut State, job: &str, worker: &str) -> Fence {
    let f = assigned(s, job, worker);
    ok(s, start_cmd(job, f.clone()));
    f
}

/// Runs queued `job` to its end on a fresh worker `W-JOB`: completed when
/// `failure` is none, failed with it otherwise.
#[track_caller]
fn run_to_end(s: &mut State, job: &str, failure: Option<&str>) {
    let f = running(s, job, &format!("W-{job}"));
    ok(s, finish_cmd(job, f, failure));
}

// ---------------------------------------------------------------------------
// Users
// ---------------------------------------------------------------------------

#[test]
fn a_duplicate_user_name_or_id_is_a_conflict() {
    let mut s = world();
    assert_refused(&mut s, user_cmd("U-other", "alice", &[]), ErrorCode::Conflict);
    assert_refused(&mut s, user_cmd(ALICE, "alice2", &[]), ErrorCode::Conflict);
}

#[test]
fn an_invalid_user_name_is_a_bad_request() {
    let mut s = world();
    let long = "x".repeat(65);
    for name in ["", "a b", "-rf", "../etc", "al/ice", long.as_str()] {
        assert_refused(&mut s, user_cmd("U-new", name, &[]), ErrorCode::BadRequest);
    }
    assert_refused(&mut s, user_cmd("U-new", "carol", &["bad priv"]), ErrorCode::BadRequest);
}

#[test]
fn no_user_may_be_named_admin() {
    let mut s = world();
    assert_refused(&mut s, user_cmd("U-admin", ADMIN, &[]), ErrorCode::BadRequest);
}

#[test]
fn a_token_hash_in_use_cannot_be_given_to_a_new_user() {
    let mut s = world();
    let cmd = Command::CreateUser {
        id: "U-carol".into(),
        name: "carol".into(),
        privileges: vec![],
        token_hash: format!("factory-token-{FACTORY}"),
        time: t(0),
    };
    assert_refused(&mut s, cmd, ErrorCode::Conflict);
}

#[test]
fn a_new_users_token_names_the_user() {
    let mut s = world();
    let Reply::User(u) = ok(&mut s, user_cmd("U-carol", "carol", &["b", "a", "b"])) else { panic!("not a user") };
    assert_eq!(u.privileges, vec!["a", "b"], "privileges are sorted and deduplicated");
    assert_eq!(s.principal("user-token-U-carol"), Some(&Principal::User("U-carol".into())));
}

#[test]
fn a_granted_privilege_is_held_until_revoked() {
    let mut s = world();
    assert!(!s.has_privilege(ALICE, HW));
    let grant = Command::SetPrivilege { user: "alice".into(), privilege: HW.into(), grant: true };
    let Reply::User(u) = ok(&mut s, grant.clone()) else { panic!("not a user") };
    assert_eq!(u.privileges, vec![HW]);
    assert!(s.has_privilege(ALICE, HW));
    ok(&mut s, grant);
    assert_eq!(s.users[ALICE].user.privileges, vec![HW], "granting twice holds it once");
    ok(&mut s, Command::SetPrivilege { user: ALICE.into(), privilege: HW.into(), grant: false });
    assert!(!s.has_privilege(ALICE, HW));
    assert!(s.users[ALICE].user.privileges.is_empty());
}

#[test]
fn a_privilege_change_needs_a_known_user_and_a_valid_privilege() {
    let mut s = world();
    let unknown = Command::SetPrivilege { user: "nobody".into(), privilege: HW.into(), grant: true };
    assert_refused(&mut s, unknown, ErrorCode::NotFound);
    let invalid = Command::SetPrivilege { user: ALICE.into(), privilege: "a b".into(), grant: true };
    assert_refused(&mut s, invalid, ErrorCode::BadRequest);
}

#[test]
fn the_admin_privilege_implies_every_privilege() {
    let mut s = world();
    ok(&mut s, Command::SetPrivilege { user: ALICE.into(), privilege: ADMIN.into(), grant: true });
    assert!(s.has_privilege(ALICE, HW));
    assert!(s.has_privilege(ADMIN, "anything"), "the cluster admin holds everything");
}

// ---------------------------------------------------------------------------
// Targets
// ---------------------------------------------------------------------------

#[test]
fn a_job_for_a_redirected_target_runs_on_the_final_target() {
    let mut s = world();
    ok(&mut s, target_cmd("older-linux", Some("old-linux"), None));
    assert_eq!(s.resolve_target("older-linux").unwrap().name, "linux");
    let Reply::Job(j) = ok(&mut s, submit_cmd("J1", ALICE, job("older-linux"))) else { panic!("not a job") };
    assert_eq!((j.target.as_str(), j.target_real.as_str()), ("older-linux", "linux"));
    ok(&mut s, redirect_cmd("old-linux", None));
    assert_eq!(s.resolve_target("older-linux").unwrap().name, "old-linux", "clearing a redirect is followed");
}

#[test]
fn a_redirect_that_makes_a_loop_is_refused() {
    let mut s = world();
    assert_refused(&mut s, redirect_cmd("linux", Some("linux")), ErrorCode::Conflict);
    // old-linux -> linux already, so linux -> old-linux closes a loop.
    assert_refused(&mut s, redirect_cmd("linux", Some("old-linux")), ErrorCode::Conflict);
    ok(&mut s, target_cmd("older-linux", Some("old-linux"), None));
    assert_refused(&mut s, redirect_cmd("linux", Some("older-linux")), ErrorCode::Conflict);
}

#[test]
fn a_redirect_loop_longer_than_the_redirect_limit_is_refused() {
    let mut s = world();
    // c0 -> c1 -> … -> c10: ten redirects, each created towards an existing target.
    ok(&mut s, target_cmd("c10", None, None));
    for i in (0..10).rev() {
        ok(&mut s, target_cmd(&format!("c{i}"), Some(&format!("c{}", i + 1)), None));
    }
    assert_refused(&mut s, redirect_cmd("c10", Some("c0")), ErrorCode::Conflict);
}

#[test]
fn a_redirect_to_an_unknown_target_is_not_found() {
    let mut s = world();
    assert_refused(&mut s, target_cmd("new", Some("nowhere"), None), ErrorCode::NotFound);
    assert_refused(&mut s, redirect_cmd("linux", Some("nowhere")), ErrorCode::NotFound);
    assert_refused(&mut s, redirect_cmd("nowhere", None), ErrorCode::NotFound);
}

#[test]
fn a_duplicate_or_invalid_target_is_refused() {
    let mut s = world();
    assert_refused(&mut s, target_cmd("linux", None, None), ErrorCode::Conflict);
    assert_refused(&mut s, target_cmd("a b", None, None), ErrorCode::BadRequest);
    assert_refused(&mut s, target_cmd("new", None, Some("a b")), ErrorCode::BadRequest);
}

#[test]
fn a_privileged_target_is_forbidden_to_a_user_without_the_privilege() {
    let mut s = world();
    assert_refused(&mut s, submit_cmd("J1", ALICE, job("lab")), ErrorCode::Forbidden);
    // Nor may she reach it through a redirect.
    ok(&mut s, target_cmd("lab-alias", Some("lab"), None));
    assert_refused(&mut s, submit_cmd("J1", ALICE, job("lab-alias")), ErrorCode::Forbidden);
}

#[test]
fn a_privileged_target_accepts_a_user_with_the_privilege() {
    let mut s = world();
    ok(&mut s, submit_cmd("J1", BOB, job("lab")));
    ok(&mut s, submit_cmd("J2", ADMIN, job("lab")));
    ok(&mut s, Command::SetPrivilege { user: ALICE.into(), privilege: HW.into(), grant: true });
    ok(&mut s, submit_cmd("J3", ALICE, job("lab")));
    assert_eq!(s.jobs["J3"].job.target_real, "lab");
}

// ---------------------------------------------------------------------------
// Factories and leases
// ---------------------------------------------------------------------------

#[test]
fn a_factory_is_created_enabled_and_can_be_disabled_and_enabled_again() {
    let mut s = world();
    let Reply::Factory(f) = ok(&mut s, factory_cmd("F9", "aws")) else { panic!("not a factory") };
    assert!(f.enabled);
    assert_eq!(s.principal("factory-token-F9"), Some(&Principal::Factory("F9".into())));
    ok(&mut s, Command::SetFactoryEnabled { factory: "aws".into(), enabled: false });
    assert!(!s.factories["F9"].factory.enabled, "a factory is found by name too");
    ok(&mut s, Command::SetFactoryEnabled { factory: "F9".into(), enabled: true });
    assert!(s.factories["F9"].factory.enabled);
    let unknown = Command::SetFactoryEnabled { factory: "nope".into(), enabled: true };
    assert_refused(&mut s, unknown, ErrorCode::NotFound);
}

#[test]
fn a_duplicate_or_invalid_factory_is_refused() {
    let mut s = world();
    assert_refused(&mut s, factory_cmd("F9", "factory0"), ErrorCode::Conflict);
    assert_refused(&mut s, factory_cmd(FACTORY, "other"), ErrorCode::Conflict);
    assert_refused(&mut s, factory_cmd("F9", "a b"), ErrorCode::BadRequest);
}

#[test]
fn a_disabled_factory_cannot_lease() {
    let mut s = world();
    ok(&mut s, request_cmd("W1", "linux"));
    ok(&mut s, Command::SetFactoryEnabled { factory: FACTORY.into(), enabled: false });
    assert_refused(&mut s, lease_cmd(FACTORY, &["linux"], "bh"), ErrorCode::Forbidden);
    ok(&mut s, Command::SetFactoryEnabled { factory: FACTORY.into(), enabled: true });
    assert!(matches!(ok(&mut s, lease_cmd(FACTORY, &["linux"], "bh")), Reply::Lease(Some(_))));
}

#[test]
fn an_unknown_factory_cannot_lease() {
    let mut s = world();
    ok(&mut s, request_cmd("W1", "linux"));
    assert_refused(&mut s, lease_cmd("F9", &["linux"], "bh"), ErrorCode::NotFound);
}

#[test]
fn a_lease_is_none_and_changes_nothing_when_no_worker_is_requested() {
    let mut s = world();
    let before = s.clone();
    assert_eq!(ok(&mut s, lease_cmd(FACTORY, &["linux", "lab"], "bh")), Reply::Lease(None));
    assert!(s == before);
}

#[test]
fn a_lease_takes_only_requested_workers_of_the_factorys_targets_oldest_first() {
    let mut s = world();
    ok(&mut s, request_cmd("W1", "lab"));
    ok(&mut s, request_cmd("W2", "linux"));
    ok(&mut s, request_cmd("W3", "linux"));
    let leased = |r: Reply| match r {
        Reply::Lease(l) => l.map(|l| (l.worker, l.target)),
        other => panic!("not a lease: {other:?}"),
    };
    assert_eq!(leased(ok(&mut s, lease_cmd(FACTORY, &["linux"], "bh-a"))), Some(("W2".into(), "linux".into())));
    assert_eq!(leased(ok(&mut s, lease_cmd(FACTORY, &["linux"], "bh-b"))), Some(("W3".into(), "linux".into())));
    assert_eq!(leased(ok(&mut s, lease_cmd(FACTORY, &["linux"], "bh-c"))), None, "bootstrapping ones are not leased");
    assert_eq!(worker_state(&s, "W1"), WorkerState::Requested, "another target's request is left alone");
    assert_eq!(s.workers["W2"].worker.factory.as_deref(), Some(FACTORY));
}

// ---------------------------------------------------------------------------
// Workers
// ---------------------------------------------------------------------------

#[test]
fn a_worker_goes_requested_bootstrapping_ready_assigned_destroying_destroyed() {
    let mut s = world();
    ok(&mut s, request_cmd("W1", "linux"));
    assert_eq!(worker_state(&s, "W1"), WorkerState::Requested);
    ok(&mut s, lease_cmd(FACTORY, &["linux"], "bh-1"));
    assert_eq!(worker_state(&s, "W1"), WorkerState::Bootstrapping);
    let report =
        Command::ReportInstance { factory: FACTORY.into(), worker: "W1".into(), instance_id: "i-1".into(), time: t(3) };
    ok(&mut s, report);
    assert_eq!(s.workers["W1"].worker.instance_id.as_deref(), Some("i-1"));
    ok(&mut s, bootstrap_cmd("bh-1", "wt-1"));
    assert_eq!(worker_state(&s, "W1"), WorkerState::Ready);
    assert_eq!(s.principal("wt-1"), Some(&Principal::Worker("W1".into())));

    ok(&mut s, submit_cmd("J1", ALICE, job("linux")));
    ok(&mut s, assign_cmd("J1", "W1"));
    let w = &s.workers["W1"].worker;
    assert_eq!((w.state, w.job.as_deref(), w.epoch), (WorkerState::Assigned, Some("J1"), 1));
    ok(&mut s, start_cmd("J1", fence("W1", 1)));
    ok(&mut s, finish_cmd("J1", fence("W1", 1), None));
    assert_eq!(worker_state(&s, "W1"), WorkerState::Destroying, "a worker runs one job");

    ok(&mut s, Command::WorkerDestroyed { factory: FACTORY.into(), worker: "W1".into(), time: t(11) });
    assert_eq!(worker_state(&s, "W1"), WorkerState::Destroyed);
    assert_eq!(s.principal("wt-1"), None, "a destroyed worker's credential is revoked");
    let times: Vec<&str> = s.workers["W1"].worker.times.keys().map(String::as_str).collect();
    for k in ["requested", "bootstrapping", "ready", "assigned", "destroying", "destroyed"] {
        assert!(times.contains(&k), "no time for {k} in {times:?}");
    }
    // A second report of the same destruction is harmless.
    let again = s.clone();
    ok(&mut s, Command::WorkerDestroyed { factory: FACTORY.into(), worker: "W1".into(), time: t(12) });
    assert!(s == again);
}

#[test]
fn a_bootstrap_token_is_single_use() {
    let mut s = world();
    ok(&mut s, request_cmd("W1", "linux"));
    ok(&mut s, lease_cmd(FACTORY, &["linux"], "bh-1"));
    ok(&mut s, bootstrap_cmd("bh-1", "wt-1"));
    assert_refused(&mut s, bootstrap_cmd("bh-1", "wt-2"), ErrorCode::Unauthorized);
    assert_eq!(s.principal("wt-2"), None);
}

#[test]
fn a_wrong_bootstrap_token_is_unauthorized() {
    let mut s = world();
    ok(&mut s, request_cmd("W1", "linux"));
    ok(&mut s, lease_cmd(FACTORY, &["linux"], "bh-1"));
    assert_refused(&mut s, bootstrap_cmd("bh-wrong", "wt-1"), ErrorCode::Unauthorized);
}

#[test]
fn a_bootstrap_token_of_a_recycled_worker_is_unauthorized() {
    let mut s = world();
    ok(&mut s, request_cmd("W1", "linux"));
    ok(&mut s, lease_cmd(FACTORY, &["linux"], "bh-1"));
    ok(&mut s, Command::RecycleWorker { worker: "W1".into(), time: t(3) });
    assert_refused(&mut s, bootstrap_cmd("bh-1", "wt-1"), ErrorCode::Unauthorized);
}

#[test]
fn a_worker_credential_hash_in_use_is_a_conflict() {
    let mut s = world();
    ok(&mut s, request_cmd("W1", "linux"));
    ok(&mut s, lease_cmd(FACTORY, &["linux"], "bh-1"));
    assert_refused(&mut s, bootstrap_cmd("bh-1", &format!("user-token-{ALICE}")), ErrorCode::Conflict);
}

#[test]
fn only_the_leasing_factory_may_report_on_a_worker() {
    let mut s = world();
    ok(&mut s, factory_cmd("F1", "other"));
    ok(&mut s, request_cmd("W1", "linux"));
    let destroyed = |f: &str| Command::WorkerDestroyed { factory: f.into(), worker: "W1".into(), time: t(3) };
    // Nobody has leased it yet.
    assert_refused(&mut s, destroyed(FACTORY), ErrorCode::Forbidden);
    ok(&mut s, lease_cmd(FACTORY, &["linux"], "bh-1"));
    assert_refused(&mut s, destroyed("F1"), ErrorCode::Forbidden);
    let report =
        Command::ReportInstance { factory: "F1".into(), worker: "W1".into(), instance_id: "i".into(), time: t(3) };
    assert_refused(&mut s, report, ErrorCode::Forbidden);
    let unknown = Command::WorkerDestroyed { factory: FACTORY.into(), worker: "W9".into(), time: t(3) };
    assert_refused(&mut s, unknown, ErrorCode::NotFound);
    ok(&mut s, destroyed(FACTORY));
    let late =
        Command::ReportInstance { factory: FACTORY.into(), worker: "W1".into(), instance_id: "i".into(), time: t(4) };
    assert_refused(&mut s, late, ErrorCode::Conflict);
}

#[test]
fn a_worker_recycled_while_running_fails_its_job_with_the_reason() {
    let mut s = world();
    ok(&mut s, submit_cmd("J1", ALICE, job("linux")));
    let f = running(&mut s, "J1", "W1");
    ok(&mut s, Command::RecycleWorker { worker: "W1".into(), time: t(20) });
    assert_eq!(job_state(&s, "J1"), JobState::Failed);
    assert_eq!(s.jobs["J1"].job.failure.as_deref(), Some("the worker was recycled by an operator"));
    assert_eq!(worker_state(&s, "W1"), WorkerState::Destroying);
    assert_refused(&mut s, finish_cmd("J1", f, None), ErrorCode::Conflict);
}

fn keyed(key: &str) -> JobSubmit {
    JobSubmit { submit_key: Some(key.into()), ..job("linux") }
}

#[test]
fn a_submit_retried_with_its_key_answers_the_first_job_and_makes_no_second() {
    let mut s = world();
    let Reply::Job(first) = ok(&mut s, submit_cmd("J1", ALICE, keyed("k-1"))) else { panic!("a job") };
    assert_eq!(first.id, "J1");
    running(&mut s, "J1", "W1");
    // The retry drew another id on another node; it answers J1 as it is now.
    let Reply::Job(again) = ok(&mut s, submit_cmd("J2", ALICE, keyed("k-1"))) else { panic!("a job") };
    assert_eq!((again.id.as_str(), again.state), ("J1", JobState::Running));
    assert!(!s.jobs.contains_key("J2"), "no second job");
    assert_eq!(s.jobs.len(), 1);

    // Keys are per owner, and another key is another job.
    let Reply::Job(bobs) = ok(&mut s, submit_cmd("J3", BOB, keyed("k-1"))) else { panic!("a job") };
    assert_eq!(bobs.id, "J3");
    let Reply::Job(other) = ok(&mut s, submit_cmd("J4", ALICE, keyed("k-2"))) else { panic!("a job") };
    assert_eq!(other.id, "J4");
    // Without a key every submit is a job of its own.
    ok(&mut s, submit_cmd("J5", ALICE, job("linux")));
    ok(&mut s, submit_cmd("J6", ALICE, job("linux")));
    assert_eq!(s.jobs.len(), 5);
}

#[test]
fn a_submit_key_reused_for_a_different_job_or_malformed_is_refused_and_changes_nothing() {
    let mut s = world();
    ok(&mut s, submit_cmd("J1", ALICE, keyed("k-1")));
    let before = s.clone();
    let different = JobSubmit { name: "another".into(), ..keyed("k-1") };
    let r = assert_refused(&mut s, submit_cmd("J2", ALICE, different), ErrorCode::Conflict);
    assert!(r.message.contains("k-1") && r.message.contains("J1"), "{}", r.message);
    for bad in ["", "has space", "tab\t", "é", &"k".repeat(129)] {
        let r = assert_refused(&mut s, submit_cmd("J3", ALICE, keyed(bad)), ErrorCode::BadRequest);
        assert!(r.message.contains("submit key"), "{}", r.message);
    }
    ok(&mut s, submit_cmd("J4", ALICE, keyed(&"k".repeat(128))));
    assert_eq!(s.jobs.len(), before.jobs.len() + 1);
    assert!(!s.jobs.contains_key("J2") && !s.jobs.contains_key("J3"));
}

#[test]
fn a_worker_lost_while_running_fails_its_job_with_the_reason() {
    let mut s = world();
    ok(&mut s, submit_cmd("J1", ALICE, job("linux")));
    assigned(&mut s, "J1", "W1");
    let lost = Command::WorkerLost { worker: "W1".into(), reason: "no heartbeat for 60 s".into(), time: t(20) };
    ok(&mut s, lost);
    assert_eq!(job_state(&s, "J1"), JobState::Failed);
    assert_eq!(s.jobs["J1"].job.failure.as_deref(), Some("no heartbeat for 60 s"));
    let last = s.jobs["J1"].events.last().unwrap();
    assert!(last.payload.contains("no heartbeat for 60 s"), "the log says why: {last:?}");
}

#[test]
fn a_job_that_asks_is_queued_again_when_its_worker_is_lost_and_the_lost_worker_is_fenced_off() {
    let mut s = world();
    let mut submit = job("linux");
    submit.retry_on_worker_loss = 1;
    ok(&mut s, submit_cmd("J1", ALICE, submit));
    let old = running(&mut s, "J1", "W1");
    ok(&mut s, events_cmd("J1", old.clone(), &["first attempt"]));
    ok(&mut s, output_cmd("J1", old.clone(), "/work/half.txt"));
    assert_eq!(s.refs.blobs_after(None, 10).len(), 1);
    ok(&mut s, Command::WorkerLost { worker: "W1".into(), reason: "no heartbeat for 60 s".into(), time: t(20) });
    assert!(s.refs.blobs_after(None, 10).is_empty(), "the dropped outputs' blobs are no longer referenced");
    let rec = &s.jobs["J1"];
    assert_eq!(rec.job.state, JobState::Queued);
    assert_eq!((rec.job.worker.clone(), rec.job.retry_on_worker_loss), (None, 0));
    assert!(rec.outputs.is_empty(), "the lost attempt's outputs are dropped");
    let last = rec.events.last().unwrap();
    assert!(last.payload.contains("queued again") && last.payload.contains("no heartbeat"), "{last:?}");
    assert_eq!(worker_state(&s, "W1"), WorkerState::Destroying);

    // The next attempt runs under a new epoch; the lost worker is refused.
    let new = running(&mut s, "J1", "W2");
    assert!(new.epoch > old.epoch);
    assert_refused(&mut s, events_cmd("J1", old.clone(), &["zombie"]), ErrorCode::StaleEpoch);
    assert_refused(&mut s, finish_cmd("J1", old, None), ErrorCode::StaleEpoch);

    // No retries left: the next loss fails it.
    ok(&mut s, Command::WorkerLost { worker: "W2".into(), reason: "gone again".into(), time: t(40) });
    assert_eq!(job_state(&s, "J1"), JobState::Failed);
    assert_eq!(s.jobs["J1"].job.failure.as_deref(), Some("gone again"));
}

#[test]
fn a_worker_destroyed_under_a_running_job_fails_the_job() {
    let mut s = world();
    ok(&mut s, submit_cmd("J1", ALICE, job("linux")));
    running(&mut s, "J1", "W1");
    ok(&mut s, Command::WorkerDestroyed { factory: FACTORY.into(), worker: "W1".into(), time: t(20) });
    assert_eq!(job_state(&s, "J1"), JobState::Failed);
    assert_eq!(s.jobs["J1"].job.failure.as_deref(), Some("the worker running it was destroyed"));
}

#[test]
fn retiring_a_destroyed_worker_is_a_conflict_and_a_destroying_one_a_no_op() {
    let mut s = world();
    ready_worker(&mut s, "W1", "linux");
    ok(&mut s, Command::RecycleWorker { worker: "W1".into(), time: t(20) });
    let before = s.clone();
    ok(&mut s, Command::WorkerLost { worker: "W1".into(), reason: "gone".into(), time: t(21) });
    assert!(s == before, "retiring a destroying worker again changes nothing");
    ok(&mut s, Command::WorkerDestroyed { factory: FACTORY.into(), worker: "W1".into(), time: t(22) });
    assert_refused(&mut s, Command::RecycleWorker { worker: "W1".into(), time: t(23) }, ErrorCode::Conflict);
    assert_refused(&mut s, Command::RecycleWorker { worker: "W9".into(), time: t(23) }, ErrorCode::NotFound);
}

#[test]
fn a_recycled_worker_that_no_factory_leased_does_not_linger() {
    let mut s = world();
    ok(&mut s, request_cmd("W1", "linux"));
    ok(&mut s, Command::RecycleWorker { worker: "W1".into(), time: t(3) });
    if worker_state(&s, "W1") != WorkerState::Destroyed {
        // Either it is gone at once, or some factory may report it gone.
        ok(&mut s, Command::WorkerDestroyed { factory: FACTORY.into(), worker: "W1".into(), time: t(4) });
    }
    assert_eq!(worker_state(&s, "W1"), WorkerState::Destroyed);
}

#[test]
fn a_held_worker_is_not_given_a_job() {
    let mut s = world();
    ok(&mut s, submit_cmd("J1", ALICE, job("linux")));
    ready_worker(&mut s, "W1", "linux");
    ok(&mut s, Command::HoldWorker { worker: "W1".into(), hold: true });
    assert_refused(&mut s, assign_cmd("J1", "W1"), ErrorCode::Conflict);
    ok(&mut s, Command::HoldWorker { worker: "W1".into(), hold: false });
    ok(&mut s, assign_cmd("J1", "W1"));
    assert_refused(&mut s, Command::HoldWorker { worker: "W9".into(), hold: true }, ErrorCode::NotFound);
}

// ---------------------------------------------------------------------------
// Job submission
// ---------------------------------------------------------------------------

#[test]
fn a_job_without_tasks_is_a_bad_request() {
    let mut s = world();
    let mut submit = job("linux");
    submit.tasks.clear();
    assert_refused(&mut s, submit_cmd("J1", ALICE, submit), ErrorCode::BadRequest);
}

#[test]
fn a_job_with_a_bad_output_rule_is_a_bad_request() {
    let mut s = world();
    for rule in ["!=/x", "relative/*.log", "/tmp/../etc/passwd"] {
        let mut submit = job("linux");
        submit.output_rules = vec!["=/tmp/ok.log".into(), rule.into()];
        assert_refused(&mut s, submit_cmd("J1", ALICE, submit), ErrorCode::BadRequest);
    }
}

#[test]
fn a_job_with_an_invalid_field_is_a_bad_request() {
    let mut s = world();
    let cases: Vec<fn(&mut JobSubmit)> = vec![
        |j| j.name = " ".into(),
        |j| j.name = "two\nlines".into(),
        |j| j.tasks[0].name = String::new(),
        |j| j.tasks[0].workdir = Some("relative".into()),
        |j| {
            j.tasks[0].env.insert("A=B".into(), "c".into());
        },
        |j| j.inputs = vec!["../x".into()],
        |j| j.timeout_secs = Some(0),
        |j| j.timeout_secs = Some(super::jobs::MAX_TIMEOUT_SECS + 1),
        |j| {
            j.store.insert("a b".into(), StorePut { value: "v".into(), secret: false });
        },
    ];
    for (i, break_it) in cases.into_iter().enumerate() {
        let mut submit = job("linux");
        break_it(&mut submit);
        let r = assert_refused(&mut s, submit_cmd("J1", ALICE, submit), ErrorCode::BadRequest);
        assert!(!r.message.is_empty(), "case {i} says why");
    }
}

#[test]
fn a_job_for_an_unknown_target_is_not_found() {
    let mut s = world();
    assert_refused(&mut s, submit_cmd("J1", ALICE, job("nowhere")), ErrorCode::NotFound);
}

#[test]
fn a_job_depending_on_an_unknown_job_is_not_found() {
    let mut s = world();
    let submit = after(job("linux"), "build", "J-nope", false, true);
    assert_refused(&mut s, submit_cmd("J1", ALICE, submit), ErrorCode::NotFound);
}

#[test]
fn a_job_depending_on_another_users_job_is_forbidden() {
    let mut s = world();
    ok(&mut s, submit_cmd("J1", BOB, job("linux")));
    let submit = after(job("linux"), "build", "J1", false, true);
    assert_refused(&mut s, submit_cmd("J2", ALICE, submit.clone()), ErrorCode::Forbidden);
    ok(&mut s, submit_cmd("J2", ADMIN, submit));
}

#[test]
fn a_job_id_is_submitted_once_and_by_a_known_owner() {
    let mut s = world();
    ok(&mut s, submit_cmd("J1", ALICE, job("linux")));
    assert_refused(&mut s, submit_cmd("J1", ALICE, job("linux")), ErrorCode::Conflict);
    assert_refused(&mut s, submit_cmd("J2", "U-nobody", job("linux")), ErrorCode::NotFound);
}

#[test]
fn a_job_without_dependencies_is_queued_with_epoch_zero_and_no_worker() {
    let mut s = world();
    let Reply::Job(j) = ok(&mut s, submit_cmd("J1", ALICE, job("linux"))) else { panic!("not a job") };
    assert_eq!((j.state, j.epoch, j.worker.clone()), (JobState::Queued, 0, None));
    assert_eq!(*j, s.jobs["J1"].job, "the reply is the job as stored");
}

// ---------------------------------------------------------------------------
// Dependencies
// ---------------------------------------------------------------------------

#[test]
fn a_job_depending_on_a_running_job_waits() {
    let mut s = world();
    ok(&mut s, submit_cmd("A", ALICE, job("linux")));
    running(&mut s, "A", "W1");
    ok(&mut s, submit_cmd("B", ALICE, after(job("linux"), "a", "A", false, true)));
    assert_eq!(job_state(&s, "B"), JobState::Waiting);
    ready_worker(&mut s, "W2", "linux");
    assert_refused(&mut s, assign_cmd("B", "W2"), ErrorCode::Conflict);
}

#[test]
fn a_waiting_job_is_queued_when_its_dependency_completes() {
    let mut s = world();
    ok(&mut s, submit_cmd("A", ALICE, job("linux")));
    ok(&mut s, submit_cmd("B", ALICE, after(job("linux"), "a", "A", false, true)));
    assert_eq!(job_state(&s, "B"), JobState::Waiting);
    run_to_end(&mut s, "A", None);
    assert_eq!(job_state(&s, "B"), JobState::Queued);
    assert!(s.jobs["B"].job.times.contains_key("ready"));
}

#[test]
fn a_waiting_job_fails_naming_the_dependency_when_it_fails() {
    let mut s = world();
    ok(&mut s, submit_cmd("A", ALICE, job("linux")));
    ok(&mut s, submit_cmd("B", ALICE, after(job("linux"), "compile", "A", false, true)));
    run_to_end(&mut s, "A", Some("exit status 2"));
    assert_eq!(job_state(&s, "B"), JobState::Failed);
    let why = s.jobs["B"].job.failure.clone().unwrap();
    assert!(why.contains("\"compile\"") && why.contains('A') && why.contains("failed"), "{why}");
}

#[test]
fn a_failed_job_fails_its_whole_chain_of_dependants() {
    let mut s = world();
    ok(&mut s, submit_cmd("A", ALICE, job("linux")));
    ok(&mut s, submit_cmd("B", ALICE, after(job("linux"), "a", "A", false, true)));
    ok(&mut s, submit_cmd("C", ALICE, after(job("linux"), "b", "B", false, true)));
    run_to_end(&mut s, "A", Some("boom"));
    assert_eq!(job_state(&s, "B"), JobState::Failed);
    assert_eq!(job_state(&s, "C"), JobState::Failed);
    assert!(s.jobs["C"].job.failure.as_deref().unwrap().contains("\"b\""), "C names its own dependency");
}

#[test]
fn an_on_failed_dependant_runs_when_its_dependency_fails() {
    let mut s = world();
    ok(&mut s, submit_cmd("A", ALICE, job("linux")));
    ok(&mut s, submit_cmd("B", ALICE, after(job("linux"), "a", "A", true, true)));
    run_to_end(&mut s, "A", Some("boom"));
    assert_eq!(job_state(&s, "B"), JobState::Queued);
}

#[test]
fn an_on_failed_dependant_runs_when_its_dependency_completes_too() {
    let mut s = world();
    ok(&mut s, submit_cmd("A", ALICE, job("linux")));
    ok(&mut s, submit_cmd("B", ALICE, after(job("linux"), "a", "A", true, true)));
    run_to_end(&mut s, "A", None);
    assert_eq!(job_state(&s, "B"), JobState::Queued);
}

#[test]
fn a_failure_only_dependant_fails_when_its_dependency_completes() {
    let mut s = world();
    ok(&mut s, submit_cmd("A", ALICE, job("linux")));
    ok(&mut s, submit_cmd("B", ALICE, after(job("linux"), "a", "A", true, false)));
    run_to_end(&mut s, "A", None);
    assert_eq!(job_state(&s, "B"), JobState::Failed);
    assert!(s.jobs["B"].job.failure.as_deref().unwrap().contains("completed"));
}

#[test]
fn a_dependant_of_a_cancelled_job_fails_saying_it_was_cancelled() {
    let mut s = world();
    ok(&mut s, submit_cmd("A", ALICE, job("linux")));
    ok(&mut s, submit_cmd("B", ALICE, after(job("linux"), "a", "A", false, true)));
    ok(&mut s, cancel_cmd("A", ALICE));
    assert_eq!(job_state(&s, "B"), JobState::Failed);
    assert!(s.jobs["B"].job.failure.as_deref().unwrap().contains("cancelled"));
}

#[test]
fn a_job_whose_dependencies_already_completed_is_queued_at_once() {
    let mut s = world();
    ok(&mut s, submit_cmd("A", ALICE, job("linux")));
    run_to_end(&mut s, "A", None);
    let Reply::Job(b) = ok(&mut s, submit_cmd("B", ALICE, after(job("linux"), "a", "A", false, true))) else {
        panic!("not a job")
    };
    assert_eq!(b.state, JobState::Queued, "the reply shows the settled state");
}

#[test]
fn a_job_whose_dependency_already_failed_fails_at_once() {
    let mut s = world();
    ok(&mut s, submit_cmd("A", ALICE, job("linux")));
    run_to_end(&mut s, "A", Some("boom"));
    ok(&mut s, submit_cmd("B", ALICE, after(job("linux"), "a", "A", false, true)));
    assert_eq!(job_state(&s, "B"), JobState::Failed);
}

#[test]
fn a_job_waits_for_all_of_its_dependencies() {
    let mut s = world();
    ok(&mut s, submit_cmd("A", ALICE, job("linux")));
    ok(&mut s, submit_cmd("B", ALICE, job("linux")));
    let submit = after(after(job("linux"), "a", "A", false, true), "b", "B", false, true);
    ok(&mut s, submit_cmd("C", ALICE, submit));
    run_to_end(&mut s, "A", None);
    assert_eq!(job_state(&s, "C"), JobState::Waiting);
    run_to_end(&mut s, "B", None);
    assert_eq!(job_state(&s, "C"), JobState::Queued);
}

// ---------------------------------------------------------------------------
// Cancellation
// ---------------------------------------------------------------------------

#[test]
fn a_queued_job_can_be_cancelled() {
    let mut s = world();
    ok(&mut s, submit_cmd("J1", ALICE, job("linux")));
    let Reply::Job(j) = ok(&mut s, cancel_cmd("J1", ALICE)) else { panic!("not a job") };
    assert_eq!(j.state, JobState::Cancelled);
    assert_eq!(j.failure, None);
    ready_worker(&mut s, "W1", "linux");
    assert_refused(&mut s, assign_cmd("J1", "W1"), ErrorCode::Conflict);
}

#[test]
fn cancelling_a_finished_job_is_a_conflict() {
    let mut s = world();
    ok(&mut s, submit_cmd("J1", ALICE, job("linux")));
    run_to_end(&mut s, "J1", None);
    assert_refused(&mut s, cancel_cmd("J1", ALICE), ErrorCode::Conflict);
    ok(&mut s, submit_cmd("J2", ALICE, job("linux")));
    ok(&mut s, cancel_cmd("J2", ALICE));
    assert_refused(&mut s, cancel_cmd("J2", ALICE), ErrorCode::Conflict);
}

#[test]
fn a_cancelled_jobs_late_reports_from_its_worker_are_refused_and_change_nothing() {
    let mut s = world();
    ok(&mut s, submit_cmd("J1", ALICE, job("linux")));
    let f = running(&mut s, "J1", "W1");
    ok(&mut s, cancel_cmd("J1", ALICE));
    assert_eq!(worker_state(&s, "W1"), WorkerState::Destroying, "its worker is released");
    let r = assert_refused(&mut s, events_cmd("J1", f.clone(), &["late line"]), ErrorCode::Conflict);
    assert!(r.message.contains("cancelled"), "{}", r.message);
    assert_refused(&mut s, finish_cmd("J1", f.clone(), None), ErrorCode::Conflict);
    assert_refused(&mut s, finish_cmd("J1", f.clone(), Some("killed")), ErrorCode::Conflict);
    assert_refused(&mut s, output_cmd("J1", f.clone(), "/out/a"), ErrorCode::Conflict);
    assert_refused(&mut s, store_cmd("J1", "k", "v", false, Some(f)), ErrorCode::Conflict);
    assert_eq!(job_state(&s, "J1"), JobState::Cancelled);
}

#[test]
fn a_user_cannot_see_or_cancel_another_users_job_but_the_admin_can() {
    let mut s = world();
    ok(&mut s, submit_cmd("J1", BOB, job("linux")));
    assert_refused(&mut s, cancel_cmd("J1", ALICE), ErrorCode::NotFound);
    assert_refused(&mut s, cancel_cmd("J9", ALICE), ErrorCode::NotFound);
    ok(&mut s, cancel_cmd("J1", ADMIN));
}

// ---------------------------------------------------------------------------
// Assignment and fencing
// ---------------------------------------------------------------------------

#[test]
fn a_job_is_assigned_only_when_queued_to_a_ready_worker_of_its_target() {
    let mut s = world();
    ok(&mut s, submit_cmd("J1", BOB, job("lab")));
    ready_worker(&mut s, "W-linux", "linux");
    assert_refused(&mut s, assign_cmd("J1", "W-linux"), ErrorCode::Conflict);
    ok(&mut s, request_cmd("W-req", "lab"));
    assert_refused(&mut s, assign_cmd("J1", "W-req"), ErrorCode::Conflict);
    assert_refused(&mut s, assign_cmd("J1", "W-none"), ErrorCode::NotFound);
    assert_refused(&mut s, assign_cmd("J-none", "W-linux"), ErrorCode::NotFound);
    // W-req is the oldest lab request, so lease and bootstrap it by hand.
    ok(&mut s, lease_cmd(FACTORY, &["lab"], "bh-lab"));
    ok(&mut s, bootstrap_cmd("bh-lab", "wt-lab"));
    ok(&mut s, assign_cmd("J1", "W-req"));
    assert_eq!((job_state(&s, "J1"), s.jobs["J1"].job.epoch), (JobState::Assigned, 1));
    // Neither the job nor the worker can be assigned twice.
    ok(&mut s, submit_cmd("J2", BOB, job("lab")));
    assert_refused(&mut s, assign_cmd("J2", "W-req"), ErrorCode::Conflict);
    ready_worker(&mut s, "W-lab2", "lab");
    assert_refused(&mut s, assign_cmd("J1", "W-lab2"), ErrorCode::Conflict);
}

#[test]
fn an_action_under_a_stale_epoch_or_another_worker_is_refused_and_changes_nothing() {
    let mut s = world();
    ok(&mut s, submit_cmd("J1", ALICE, job("linux")));
    let current = assigned(&mut s, "J1", "W1");
    assert_eq!(current, fence("W1", 1));
    ready_worker(&mut s, "W2", "linux");
    for stale in [fence("W1", 0), fence("W1", 2), fence("W2", 1), fence("W2", 0)] {
        assert_refused(&mut s, start_cmd("J1", stale.clone()), ErrorCode::StaleEpoch);
        assert_refused(&mut s, events_cmd("J1", stale.clone(), &["x"]), ErrorCode::StaleEpoch);
        assert_refused(&mut s, output_cmd("J1", stale.clone(), "/out/x"), ErrorCode::StaleEpoch);
        assert_refused(&mut s, finish_cmd("J1", stale.clone(), None), ErrorCode::StaleEpoch);
        assert_refused(&mut s, store_cmd("J1", "k", "v", false, Some(stale)), ErrorCode::StaleEpoch);
    }
    ok(&mut s, start_cmd("J1", current.clone()));
    ok(&mut s, finish_cmd("J1", current, None));
    assert_eq!(job_state(&s, "J1"), JobState::Completed);
}

#[test]
fn an_unassigned_job_accepts_no_agent_action() {
    let mut s = world();
    ok(&mut s, submit_cmd("J1", ALICE, job("linux")));
    ready_worker(&mut s, "W1", "linux");
    assert_refused(&mut s, start_cmd("J1", fence("W1", 0)), ErrorCode::StaleEpoch);
    assert_refused(&mut s, finish_cmd("J1", fence("W1", 0), None), ErrorCode::StaleEpoch);
    assert_refused(&mut s, start_cmd("J-none", fence("W1", 0)), ErrorCode::NotFound);
}

#[test]
fn a_job_is_started_once_and_only_when_assigned() {
    let mut s = world();
    ok(&mut s, submit_cmd("J1", ALICE, job("linux")));
    let f = running(&mut s, "J1", "W1");
    assert_eq!(job_state(&s, "J1"), JobState::Running);
    // A start sent again (its answer was lost) changes nothing.
    let events = s.jobs["J1"].events.len();
    ok(&mut s, start_cmd("J1", f.clone()));
    assert_eq!(s.jobs["J1"].events.len(), events);
    // Once finished, a start is refused.
    ok(&mut s, finish_cmd("J1", f.clone(), None));
    assert_refused(&mut s, start_cmd("J1", f), ErrorCode::Conflict);
}

#[test]
fn a_job_may_finish_before_it_reports_a_start() {
    let mut s = world();
    ok(&mut s, submit_cmd("J1", ALICE, job("linux")));
    let f = assigned(&mut s, "J1", "W1");
    ok(&mut s, finish_cmd("J1", f.clone(), Some("clone failed")));
    assert_eq!(job_state(&s, "J1"), JobState::Failed);
    assert_eq!(s.jobs["J1"].job.failure.as_deref(), Some("clone failed"));
    assert_refused(&mut s, finish_cmd("J1", f, None), ErrorCode::Conflict);
}

#[test]
fn an_output_path_is_absolute_without_dot_dot_and_uploaded_once() {
    let mut s = world();
    ok(&mut s, submit_cmd("J1", ALICE, job("linux")));
    let f = running(&mut s, "J1", "W1");
    assert_refused(&mut s, output_cmd("J1", f.clone(), "relative"), ErrorCode::BadRequest);
    assert_refused(&mut s, output_cmd("J1", f.clone(), "/a/../b"), ErrorCode::BadRequest);
    ok(&mut s, output_cmd("J1", f.clone(), "/out/a"));
    // Other content under the same path is refused.
    let Command::JobOutput { job, fence, mut output } = output_cmd("J1", f, "/out/a") else { unreachable!() };
    output.sha256 = "11".repeat(32);
    assert_refused(&mut s, Command::JobOutput { job, fence, output }, ErrorCode::Conflict);
    assert_eq!(s.jobs["J1"].outputs.len(), 1);
}

// ---------------------------------------------------------------------------
// Timeouts
// ---------------------------------------------------------------------------

#[test]
fn a_timed_out_running_job_fails_with_the_reason_and_releases_its_worker() {
    let mut s = world();
    ok(&mut s, submit_cmd("J1", ALICE, job("linux")));
    let f = running(&mut s, "J1", "W1");
    ok(&mut s, Command::JobTimeout { job: "J1".into(), time: t(4000) });
    assert_eq!(job_state(&s, "J1"), JobState::Failed);
    let why = s.jobs["J1"].job.failure.clone().unwrap();
    assert!(why.contains("timeout of 3600 s"), "{why}");
    assert_eq!(worker_state(&s, "W1"), WorkerState::Destroying);
    assert_refused(&mut s, finish_cmd("J1", f, None), ErrorCode::Conflict);
}

#[test]
fn only_an_assigned_or_running_job_can_time_out() {
    let mut s = world();
    ok(&mut s, submit_cmd("J1", ALICE, job("linux")));
    assert_refused(&mut s, Command::JobTimeout { job: "J1".into(), time: t(9) }, ErrorCode::Conflict);
    assert_refused(&mut s, Command::JobTimeout { job: "J9".into(), time: t(9) }, ErrorCode::NotFound);
    assigned(&mut s, "J1", "W1");
    ok(&mut s, Command::JobTimeout { job: "J1".into(), time: t(9) });
    assert_refused(&mut s, Command::JobTimeout { job: "J1".into(), time: t(10) }, ErrorCode::Conflict);
}

// ---------------------------------------------------------------------------
// The job store
// ---------------------------------------------------------------------------

#[test]
fn a_secret_store_value_is_hidden_from_users_but_not_from_the_job() {
    let mut s = world();
    ok(&mut s, submit_cmd("J1", ALICE, job("linux")));
    let Reply::Store(v) = ok(&mut s, store_cmd("J1", "token", "hunter2", true, None)) else { panic!("not a value") };
    assert_eq!((v.value, v.secret), (None, true), "the reply is what a user may see");
    let rec = &s.jobs["J1"].store["token"];
    assert_eq!(rec.view(false).value, None);
    assert_eq!(rec.view(true).value.as_deref(), Some("hunter2"));
    ok(&mut s, store_cmd("J1", "plain", "hello", false, None));
    assert_eq!(s.jobs["J1"].store["plain"].view(false).value.as_deref(), Some("hello"));
}

#[test]
fn a_store_value_once_secret_stays_secret() {
    let mut s = world();
    ok(&mut s, submit_cmd("J1", ALICE, job("linux")));
    ok(&mut s, store_cmd("J1", "token", "hunter2", true, None));
    let Reply::Store(v) = ok(&mut s, store_cmd("J1", "token", "public?", false, None)) else { panic!("not a value") };
    assert!(v.secret && v.value.is_none());
    assert!(s.jobs["J1"].store["token"].secret);
    assert_eq!(s.jobs["J1"].store["token"].view(false).value, None);
}

#[test]
fn a_secret_submitted_with_the_job_stays_secret() {
    let mut s = world();
    let mut submit = job("linux");
    submit.store.insert("key".into(), StorePut { value: "s3cr3t".into(), secret: true });
    ok(&mut s, submit_cmd("J1", ALICE, submit));
    let f = running(&mut s, "J1", "W1");
    ok(&mut s, store_cmd("J1", "key", "overwritten", false, Some(f)));
    let rec = &s.jobs["J1"].store["key"];
    assert_eq!((rec.secret, rec.view(false).value), (true, None));
    assert_eq!(rec.view(true).value.as_deref(), Some("overwritten"));
}

#[test]
fn a_finished_jobs_store_is_read_only() {
    let mut s = world();
    ok(&mut s, submit_cmd("J1", ALICE, job("linux")));
    run_to_end(&mut s, "J1", None);
    assert_refused(&mut s, store_cmd("J1", "k", "v", false, None), ErrorCode::Conflict);
    assert_refused(&mut s, store_cmd("J9", "k", "v", false, None), ErrorCode::NotFound);
}

#[test]
fn a_store_write_needs_a_valid_key_and_a_bounded_value() {
    let mut s = world();
    ok(&mut s, submit_cmd("J1", ALICE, job("linux")));
    assert_refused(&mut s, store_cmd("J1", "a b", "v", false, None), ErrorCode::BadRequest);
    let big = "x".repeat(super::jobs::MAX_STORE_VALUE + 1);
    assert_refused(&mut s, store_cmd("J1", "k", &big, false, None), ErrorCode::BadRequest);
}

// ---------------------------------------------------------------------------
// Control and events
// ---------------------------------------------------------------------------

#[test]
fn a_hold_refuses_assignments_and_worker_requests_until_released() {
    let mut s = world();
    ok(&mut s, submit_cmd("J1", ALICE, job("linux")));
    ready_worker(&mut s, "W1", "linux");
    assert_eq!(ok(&mut s, Command::SetHold { hold: true }), Reply::Control(bm_api::client::Control { hold: true }));
    assert_refused(&mut s, assign_cmd("J1", "W1"), ErrorCode::Conflict);
    assert_refused(&mut s, request_cmd("W2", "linux"), ErrorCode::Conflict);
    ok(&mut s, submit_cmd("J2", ALICE, job("linux")));
    ok(&mut s, Command::SetHold { hold: false });
    ok(&mut s, assign_cmd("J1", "W1"));
    ok(&mut s, request_cmd("W2", "linux"));
}

#[test]
fn a_worker_request_needs_a_known_target_and_a_new_id() {
    let mut s = world();
    assert_refused(&mut s, request_cmd("W1", "nowhere"), ErrorCode::NotFound);
    ok(&mut s, request_cmd("W1", "linux"));
    assert_refused(&mut s, request_cmd("W1", "linux"), ErrorCode::Conflict);
}

#[test]
fn job_events_are_numbered_by_their_index_without_gaps() {
    let mut s = world();
    ok(&mut s, submit_cmd("J1", ALICE, job("linux")));
    let f = running(&mut s, "J1", "W1");
    let Reply::Appended(next) = ok(&mut s, events_cmd("J1", f.clone(), &["a", "b", "c"])) else {
        panic!("not appended")
    };
    assert_eq!(next, s.jobs["J1"].events.len());
    ok(&mut s, events_cmd("J1", f.clone(), &[]));
    ok(&mut s, finish_cmd("J1", f, None));
    let events = &s.jobs["J1"].events;
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e.seq, i as u64, "{events:?}");
    }
    let streams: Vec<String> = events.iter().map(|e| e.stream).collect();
    assert_eq!(streams, ["control", "control", "control", "stdout", "stdout", "stdout", "control"]);
}

fn numbered(job: &str, fence: Fence, first: u64, lines: &[&str]) -> Command {
    let Command::JobEvents { job, fence, events, .. } = events_cmd(job, fence, lines) else { unreachable!() };
    Command::JobEvents { job, fence, first: Some(first), events, max_log_bytes: None }
}

#[test]
fn a_numbered_event_upload_sent_again_adds_nothing_twice() {
    let mut s = world();
    ok(&mut s, submit_cmd("J1", ALICE, job("linux")));
    let f = running(&mut s, "J1", "W1");
    ok(&mut s, numbered("J1", f.clone(), 0, &["a", "b"]));
    // The same upload again (its answer was lost), then one overlapping it.
    ok(&mut s, numbered("J1", f.clone(), 0, &["a", "b"]));
    ok(&mut s, numbered("J1", f.clone(), 1, &["b", "c"]));
    // A gap is refused and changes nothing.
    let before = s.jobs["J1"].events.len();
    assert_refused(&mut s, numbered("J1", f.clone(), 9, &["z"]), ErrorCode::Conflict);
    assert_eq!(s.jobs["J1"].events.len(), before);
    let lines: Vec<String> = s.jobs["J1"].events.iter().filter(|e| e.stream == "stdout").map(|e| e.payload).collect();
    assert_eq!(lines, ["a", "b", "c"]);
}

#[test]
fn a_log_over_its_limit_is_cut_with_a_note_and_numbering_goes_on() {
    let mut s = world();
    ok(&mut s, submit_cmd("J1", ALICE, job("linux")));
    let f = running(&mut s, "J1", "W1");
    let limited = |first: u64, lines: &[&str]| {
        let Command::JobEvents { job, fence, events, .. } = events_cmd("J1", f.clone(), lines) else { unreachable!() };
        Command::JobEvents { job, fence, first: Some(first), events, max_log_bytes: Some(10) }
    };
    ok(&mut s, limited(0, &["12345", "6789"]));
    ok(&mut s, limited(2, &["abc", "d"]));
    // A retry of the cut upload adds nothing either.
    ok(&mut s, limited(2, &["abc", "d"]));
    let rec = &s.jobs["J1"];
    let lines: Vec<String> = rec.events.iter().filter(|e| e.stream == "stdout").map(|e| e.payload).collect();
    assert_eq!(lines, ["12345", "6789"]);
    let notes = rec.events.iter().filter(|e| e.payload.starts_with("log truncated")).count();
    assert_eq!(notes, 1, "{:?}", rec.events);
    assert_eq!(rec.agent_events, 4);
}

#[test]
fn a_log_chunk_is_numbered_deduplicated_and_held_to_the_limit_like_an_inline_batch() {
    let mut s = world();
    ok(&mut s, submit_cmd("J1", ALICE, job("linux")));
    let f = running(&mut s, "J1", "W1");
    let (c1, c2, c3) = ([1u8; 32], [2u8; 32], [3u8; 32]);
    let chunk = |sha: [u8; 32], first: u64, lines: &[&str]| {
        let lens = lines.iter().map(|l| l.len() as u64).collect();
        let chunk = ChunkRef { sha, lens, time: t(8) };
        Command::JobChunk { job: "J1".into(), fence: f.clone(), first: Some(first), chunk, max_log_bytes: Some(10) }
    };
    ok(&mut s, chunk(c1, 0, &["1234", "56"]));
    // Sent again, then overlapping: only the new event is taken.
    ok(&mut s, chunk(c1, 0, &["1234", "56"]));
    let Reply::Appended(next) = ok(&mut s, chunk(c2, 1, &["56", "789", "abcdef"])) else { panic!("not appended") };
    let rec = &s.jobs["J1"];
    assert_eq!((rec.agent_events, rec.log_bytes), (4, 9), "the last line would pass the 10-byte limit");
    assert_eq!(next, rec.events.len());
    // Later chunks add nothing, and the note is made once.
    ok(&mut s, chunk(c3, 4, &["x"]));
    let rec = &s.jobs["J1"];
    let refs: Vec<[u8; 32]> = rec.events.chunks().copied().collect();
    assert_eq!(refs, [c1, c2], "an empty reference is not kept");
    let (l1, l2) = (Arc::new(events_of(&["1234", "56"])), Arc::new(events_of(&["56", "789", "abcdef"])));
    let all = rec.events.view(0, rec.events.len()).events(|sha| Some(if *sha == c1 { l1.clone() } else { l2.clone() }));
    let all: Vec<String> = all.unwrap().into_iter().map(|e| e.payload).collect();
    let truncated = all.iter().filter(|p| p.starts_with("log truncated")).count();
    assert_eq!(&all[all.len() - 4..all.len() - 1], ["1234", "56", "789"], "{all:?}");
    assert_eq!(truncated, 1, "{all:?}");
    assert_eq!(s.refs.chunks_after(None, usize::MAX), [c1, c2]);
    ok(&mut s, finish_cmd("J1", f, None));
    ok(&mut s, Command::PurgeJob { job: "J1".into(), time: t(60) });
    assert!(s.refs.chunks_after(None, usize::MAX).is_empty());
}

#[test]
fn a_purged_job_keeps_its_record_but_not_its_log_or_outputs() {
    let mut s = world();
    ok(&mut s, submit_cmd("J1", ALICE, job("linux")));
    let f = running(&mut s, "J1", "W1");
    assert_refused(&mut s, Command::PurgeJob { job: "J1".into(), time: t(50) }, ErrorCode::Conflict);
    ok(&mut s, output_cmd("J1", f.clone(), "/work/a"));
    ok(&mut s, events_cmd("J1", f.clone(), &["a"]));
    ok(&mut s, finish_cmd("J1", f, None));
    ok(&mut s, Command::PurgeJob { job: "J1".into(), time: t(60) });
    ok(&mut s, Command::PurgeJob { job: "J1".into(), time: t(61) });
    let rec = &s.jobs["J1"];
    assert!(rec.outputs.is_empty());
    assert_eq!(rec.events.len(), 1);
    assert_eq!(rec.job.state, JobState::Completed);
    assert_eq!(rec.purged, Some(t(60)));
    assert!(s.refs.blobs_after(None, usize::MAX).is_empty());
    assert_refused(&mut s, Command::PurgeJob { job: "J9".into(), time: t(60) }, ErrorCode::NotFound);
}

#[test]
fn a_bootstrap_sent_again_gets_the_same_credential_and_nothing_else_does() {
    let mut s = world();
    ready_worker(&mut s, "W1", "linux");
    // The agent's first answer was lost: the same exchange again.
    let Reply::Worker(w) = ok(&mut s, bootstrap_cmd("bh-W1", "wt-W1")) else { panic!("not a worker") };
    assert_eq!(w.id, "W1");
    // Another credential for the same bootstrap token is refused.
    assert_refused(&mut s, bootstrap_cmd("bh-W1", "wt-other"), ErrorCode::Unauthorized);
    // And none at all once the worker is going away.
    ok(&mut s, Command::RecycleWorker { worker: "W1".into(), time: t(9) });
    assert_refused(&mut s, bootstrap_cmd("bh-W1", "wt-W1"), ErrorCode::Unauthorized);
}

#[test]
fn the_same_output_uploaded_again_is_accepted_once() {
    let mut s = world();
    ok(&mut s, submit_cmd("J1", ALICE, job("linux")));
    let f = running(&mut s, "J1", "W1");
    ok(&mut s, output_cmd("J1", f.clone(), "/work/a"));
    ok(&mut s, output_cmd("J1", f.clone(), "/work/a"));
    assert_eq!(s.jobs["J1"].outputs.len(), 1);
}

// ---------------------------------------------------------------------------
// The Machine Raft drives: malformed bytes are fatal, refusals are answers.
// ---------------------------------------------------------------------------

/// Encodes a command as a proposer puts it in the log: a batch of one.
fn encode(cmd: &Command) -> Vec<u8> {
    codec::encode("test command", &vec![cmd.clone()]).expect("commands encode")
}

/// A [`Replicated`] holding [`world`] at log index 10.
fn replicated_world() -> Replicated {
    let mut r = Replicated::default();
    for (i, cmd) in setup(1).iter().enumerate() {
        r.apply(i as u64 + 1, &encode(cmd)).expect("setup applies");
    }
    r
}

#[test]
fn a_garbage_log_entry_is_a_fatal_error_not_a_skip() {
    let mut r = replicated_world();
    let before = r.0.clone();
    for garbage in [&[][..], &[0xff; 16][..], b"SubmitJob { id: J1 }", &[200, 1, 2, 3][..]] {
        let e = r.apply(99, garbage).expect_err("garbage must not apply");
        assert!(e.0.contains("log entry 99"), "the error names the entry: {e}");
        assert!(r.0 == before, "a fatal entry must not touch the state, not even `applied`");
    }
}

#[test]
fn a_truncated_or_padded_log_entry_is_a_fatal_error() {
    let mut r = replicated_world();
    let before = r.0.clone();
    let good = encode(&submit_cmd("J1", ALICE, job("linux")));
    let mut padded = good.clone();
    padded.push(0);
    r.apply(99, &good[..good.len() - 1]).expect_err("a truncated entry");
    r.apply(99, &padded).expect_err("trailing bytes");
    assert!(r.0 == before);
    r.apply(99, &good).expect("the entry itself applies");
    assert_eq!(r.0.applied, 99);
}

#[test]
fn a_refusal_is_an_encoded_answer_and_advances_applied() {
    let mut r = replicated_world();
    let bytes = r.apply(11, &encode(&submit_cmd("J1", ALICE, job("nowhere")))).expect("a refusal is not fatal");
    let outcome: Outcome = codec::decode::<Vec<Outcome>>("outcome", &bytes).unwrap().remove(0);
    assert_eq!(outcome.unwrap_err().code, ErrorCode::NotFound);
    assert_eq!(r.0.applied, 11, "the refused command still occupied its log index");
    let bytes = r.apply(12, &encode(&submit_cmd("J1", ALICE, job("linux")))).unwrap();
    let outcome: Outcome = codec::decode::<Vec<Outcome>>("outcome", &bytes).unwrap().remove(0);
    assert!(matches!(outcome, Ok(Reply::Job(_))));
}

#[test]
fn restoring_a_garbage_snapshot_is_an_error() {
    let good = replicated_world().snapshot().unwrap();
    let mut padded = good.clone();
    padded.push(0);
    for garbage in [&[][..], b"not a snapshot", &[0xff; 64][..], &good[..good.len() / 2], &padded[..]] {
        assert!(Replicated::restore(garbage).is_err(), "restored {} garbage bytes", garbage.len());
    }
}

#[test]
fn a_snapshot_restores_an_equal_state() {
    let mut s = world();
    ok(&mut s, submit_cmd("J1", ALICE, job("linux")));
    let f = running(&mut s, "J1", "W1");
    ok(&mut s, store_cmd("J1", "k", "v", true, Some(f)));
    let r = Replicated(s);
    let back = Replicated::restore(&r.snapshot().unwrap()).unwrap();
    assert!(back.0 == r.0);
}

// ---------------------------------------------------------------------------
// The model: what the proptest expects, written from the rules, not the code.
// ---------------------------------------------------------------------------

/// Job slots: jobs are `J0`..`J5`.
const JOBS: usize = 6;
/// Worker slots: workers are `W0`..`W5`.
const WORKERS: usize = 6;
/// Targets a command may name; the last one does not exist.
const TARGETS: [&str; 4] = ["linux", "lab", "old-linux", "nowhere"];
/// Submitters: two users and the cluster admin.
const OWNERS: [&str; 3] = [ALICE, BOB, ADMIN];

/// A job as the model sees it.
#[derive(Clone, Debug)]
struct MJob {
    owner: String,
    /// As submitted (a retried submit must name the same).
    target: String,
    target_real: String,
    state: JobState,
    worker: Option<String>,
    epoch: u64,
    /// (prior job, on_failed, on_completed), in dependency-name order.
    deps: Vec<(String, bool, bool)>,
    /// Store key -> secret.
    secret: BTreeMap<String, bool>,
}

/// A worker as the model sees it.
#[derive(Clone, Debug)]
struct MWorker {
    target: String,
    state: WorkerState,
    factory: Option<String>,
    /// The bootstrap hash while it may still be used.
    bootstrap: Option<String>,
    /// The bootstrap hash it was leased with, kept to replay it once used.
    leased_with: Option<String>,
    job: Option<String>,
    hold: bool,
}

/// The handful of rules that matter for jobs and workers, kept in plain maps.
#[derive(Clone, Debug, Default)]
struct Model {
    hold: bool,
    /// Factory id -> enabled.
    factories: BTreeMap<String, bool>,
    workers: BTreeMap<String, MWorker>,
    jobs: BTreeMap<String, MJob>,
    /// (owner, submit key) -> the job it made.
    keys: BTreeMap<(String, String), String>,
}

/// What the model expects of an accepted command: for a lease, which worker.
type Expect = Result<Option<String>, ErrorCode>;

impl Model {
    fn new(factories: usize) -> Self {
        Model { factories: (0..factories).map(|f| (format!("F{f}"), true)).collect(), ..Model::default() }
    }

    /// Target name -> (target jobs run on, privileges the submitter needs).
    fn target(name: &str) -> Option<(&'static str, &'static [&'static str])> {
        match name {
            "linux" | "old-linux" => Some(("linux", &[])),
            "lab" => Some(("lab", &[HW])),
            _ => None,
        }
    }

    fn has_privilege(owner: &str, p: &str) -> bool {
        owner == ADMIN || (owner == BOB && p == HW)
    }

    fn fenced(&self, job: &str, f: &Fence) -> Result<(), ErrorCode> {
        let j = self.jobs.get(job).ok_or(ErrorCode::NotFound)?;
        if j.worker.as_deref() != Some(f.worker.as_str()) || j.epoch != f.epoch {
            return Err(ErrorCode::StaleEpoch);
        }
        if j.state.is_terminal() {
            return Err(ErrorCode::Conflict);
        }
        Ok(())
    }

    /// Waiting jobs whose dependencies are decided move on; a failure can
    /// cascade, so repeat until nothing moves.
    fn settle(&mut self) {
        loop {
            let mut decided = Vec::new();
            for (id, j) in self.jobs.iter().filter(|(_, j)| j.state == JobState::Waiting) {
                // Any decided dependency that forbids running fails the job at
                // once, whatever the others are doing; else wait for all.
                let mut verdict = Some(JobState::Queued);
                for (prior, on_failed, on_completed) in &j.deps {
                    let allowed = match self.jobs[prior].state {
                        JobState::Completed => *on_completed,
                        JobState::Failed | JobState::Cancelled => *on_failed,
                        _ => {
                            verdict = verdict.and(None);
                            continue;
                        }
                    };
                    if !allowed {
                        verdict = Some(JobState::Failed);
                        break;
                    }
                }
                if let Some(v) = verdict {
                    decided.push((id.clone(), v));
                }
            }
            if decided.is_empty() {
                return;
            }
            for (id, v) in decided {
                self.jobs.get_mut(&id).unwrap().state = v;
            }
        }
    }

    /// A job ends once: its worker (if any) is released, dependants settle.
    fn end_job(&mut self, job: &str, state: JobState) {
        let Some(j) = self.jobs.get_mut(job) else { return };
        if j.state.is_terminal() {
            return;
        }
        j.state = state;
        if let Some(w) = j.worker.clone().and_then(|w| self.workers.get_mut(&w)) {
            if matches!(w.state, WorkerState::Assigned | WorkerState::Ready | WorkerState::Bootstrapping) {
                w.state = WorkerState::Destroying;
            }
        }
        self.settle();
    }

    /// Predicts the outcome of `cmd` and, when accepted, applies it.
    fn apply(&mut self, cmd: &Command) -> Expect {
        use ErrorCode::*;
        match cmd {
            Command::SubmitJob { id, owner, submit, .. } => {
                if self.jobs.contains_key(id) {
                    return Err(Conflict);
                }
                // The generator's only malformed submission is a bad output rule.
                if !submit.output_rules.is_empty() {
                    return Err(BadRequest);
                }
                // A retried submit answers its first job (generated jobs
                // differ only in their target) and changes nothing.
                let key = submit.submit_key.clone().map(|k| (owner.clone(), k));
                if let Some(made) = key.as_ref().and_then(|k| self.keys.get(k)) {
                    return if self.jobs[made].target == submit.target { Ok(None) } else { Err(Conflict) };
                }
                let (real, privileges) = Self::target(&submit.target).ok_or(NotFound)?;
                if privileges.iter().any(|p| !Self::has_privilege(owner, p)) {
                    return Err(Forbidden);
                }
                let mut deps = Vec::new();
                for d in submit.depends.values() {
                    let prior = self.jobs.get(&d.prior_job).ok_or(NotFound)?;
                    if prior.owner != *owner && owner != ADMIN {
                        return Err(Forbidden);
                    }
                    deps.push((d.prior_job.clone(), d.on_failed, d.on_completed));
                }
                let state = if deps.is_empty() { JobState::Queued } else { JobState::Waiting };
                let secret = submit.store.iter().map(|(k, v)| (k.clone(), v.secret)).collect();
                let j = MJob {
                    owner: owner.clone(),
                    target: submit.target.clone(),
                    target_real: real.into(),
                    state,
                    worker: None,
                    epoch: 0,
                    deps,
                    secret,
                };
                self.jobs.insert(id.clone(), j);
                if let Some(k) = key {
                    self.keys.insert(k, id.clone());
                }
                self.settle();
            }
            Command::CancelJob { job, by, .. } => {
                let j = self.jobs.get(job).ok_or(NotFound)?;
                if j.owner != *by && by != ADMIN {
                    return Err(NotFound);
                }
                if j.state.is_terminal() {
                    return Err(Conflict);
                }
                self.end_job(job, JobState::Cancelled);
            }
            Command::StorePut { job, name, put, fence, .. } => {
                match fence {
                    Some(f) => self.fenced(job, f)?,
                    None if self.jobs.get(job).ok_or(NotFound)?.state.is_terminal() => return Err(Conflict),
                    None => {}
                }
                let secret = self.jobs.get_mut(job).unwrap().secret.entry(name.clone()).or_default();
                *secret |= put.secret;
            }
            Command::SetHold { hold } => self.hold = *hold,
            Command::SetFactoryEnabled { factory, enabled } => {
                *self.factories.get_mut(factory).ok_or(NotFound)? = *enabled;
            }
            Command::RequestWorker { id, target, .. } => {
                if self.hold {
                    return Err(Conflict);
                }
                Self::target(target).ok_or(NotFound)?;
                if self.workers.contains_key(id) {
                    return Err(Conflict);
                }
                let w = MWorker {
                    target: target.clone(),
                    state: WorkerState::Requested,
                    factory: None,
                    bootstrap: None,
                    leased_with: None,
                    job: None,
                    hold: false,
                };
                self.workers.insert(id.clone(), w);
            }
            Command::LeaseWorker { factory, targets, bootstrap_hash, .. } => {
                if !*self.factories.get(factory).ok_or(NotFound)? {
                    return Err(Forbidden);
                }
                let oldest = self
                    .workers
                    .iter_mut()
                    .find(|(_, w)| w.state == WorkerState::Requested && targets.contains(&w.target));
                let Some((id, w)) = oldest else { return Ok(None) };
                w.state = WorkerState::Bootstrapping;
                w.factory = Some(factory.clone());
                w.bootstrap = Some(bootstrap_hash.clone());
                w.leased_with = Some(bootstrap_hash.clone());
                return Ok(Some(id.clone()));
            }
            Command::BootstrapWorker { bootstrap_hash, .. } => {
                let w = self
                    .workers
                    .values_mut()
                    .find(|w| w.state == WorkerState::Bootstrapping && w.bootstrap.as_ref() == Some(bootstrap_hash))
                    .ok_or(Unauthorized)?;
                w.state = WorkerState::Ready;
                w.bootstrap = None;
            }
            Command::ReportInstance { factory, worker, .. } => {
                let w = self.workers.get(worker).ok_or(NotFound)?;
                if w.factory.as_ref() != Some(factory) {
                    return Err(Forbidden);
                }
                if w.state == WorkerState::Destroyed {
                    return Err(Conflict);
                }
            }
            Command::WorkerDestroyed { factory, worker, .. } => {
                let w = self.workers.get_mut(worker).ok_or(NotFound)?;
                if w.factory.as_ref() != Some(factory) {
                    return Err(Forbidden);
                }
                if w.state != WorkerState::Destroyed {
                    w.state = WorkerState::Destroyed;
                    w.bootstrap = None;
                    if let Some(j) = w.job.clone() {
                        self.end_job(&j, JobState::Failed);
                    }
                }
            }
            Command::HoldWorker { worker, hold } => {
                let w = self.workers.get_mut(worker).ok_or(NotFound)?;
                if w.state == WorkerState::Destroyed {
                    return Err(Conflict);
                }
                w.hold = *hold;
            }
            Command::RecycleWorker { worker, .. } | Command::WorkerLost { worker, .. } => {
                let w = self.workers.get_mut(worker).ok_or(NotFound)?;
                match w.state {
                    WorkerState::Destroyed => return Err(Conflict),
                    WorkerState::Destroying => {}
                    _ => {
                        // Never leased: nothing to tear down, gone at once.
                        w.state = if w.factory.is_none() { WorkerState::Destroyed } else { WorkerState::Destroying };
                        if let Some(j) = w.job.clone() {
                            self.end_job(&j, JobState::Failed);
                        }
                    }
                }
            }
            Command::AssignJob { job, worker, .. } => {
                if self.hold {
                    return Err(Conflict);
                }
                let j = self.jobs.get(job).ok_or(NotFound)?;
                if j.state != JobState::Queued {
                    return Err(Conflict);
                }
                let w = self.workers.get(worker).ok_or(NotFound)?;
                if w.state != WorkerState::Ready || w.hold || w.target != j.target_real {
                    return Err(Conflict);
                }
                let j = self.jobs.get_mut(job).unwrap();
                j.epoch += 1;
                j.worker = Some(worker.clone());
                j.state = JobState::Assigned;
                let w = self.workers.get_mut(worker).unwrap();
                w.state = WorkerState::Assigned;
                w.job = Some(job.clone());
            }
            Command::JobStart { job, fence, .. } => {
                self.fenced(job, fence)?;
                let j = self.jobs.get_mut(job).unwrap();
                match j.state {
                    JobState::Running => {}
                    JobState::Assigned => j.state = JobState::Running,
                    _ => return Err(Conflict),
                }
            }
            Command::JobEvents { job, fence, .. }
            | Command::JobChunk { job, fence, .. }
            | Command::JobOutput { job, fence, .. } => self.fenced(job, fence)?,
            Command::JobFinish { job, fence, failure, .. } => {
                self.fenced(job, fence)?;
                self.end_job(job, if failure.is_some() { JobState::Failed } else { JobState::Completed });
            }
            Command::JobTimeout { job, .. } => {
                let j = self.jobs.get(job).ok_or(NotFound)?;
                if !matches!(j.state, JobState::Assigned | JobState::Running) {
                    return Err(Conflict);
                }
                self.end_job(job, JobState::Failed);
            }
            Command::PurgeJob { job, .. } => {
                let j = self.jobs.get(job).ok_or(NotFound)?;
                if !j.state.is_terminal() {
                    return Err(Conflict);
                }
            }
            Command::CreateUser { .. }
            | Command::SetPrivilege { .. }
            | Command::CreateTarget { .. }
            | Command::SetRedirect { .. }
            | Command::CreateFactory { .. } => unreachable!("the generator makes no {cmd:?}"),
        }
        Ok(None)
    }
}

// ---------------------------------------------------------------------------
// The proptest: random interleavings from several proposers.
// ---------------------------------------------------------------------------

/// How an agent's fence relates to the job's current assignment: most
/// reports are current, some come from a superseded or foreign proposer.
#[derive(Clone, Copy, Debug)]
enum FenceKind {
    Current,
    /// Current worker, an epoch that is not current.
    Stale,
    /// Current epoch, another worker.
    OtherWorker,
}

/// Which job or worker a step names. A fixed slot may name anything (often
/// something in the wrong state, which exercises refusals); a live pick
/// names the n-th one in the state that step's proposer would look for, as
/// the scheduler, a factory or an agent would, so that histories progress.
#[derive(Clone, Copy, Debug)]
enum Pick {
    Slot(usize),
    Live(usize),
}

/// One step of a history, before ids, hashes and fences are filled in from
/// the model (so "current fence" and "the right bootstrap token" mean
/// something at the moment the step runs).
#[derive(Clone, Debug)]
enum Op {
    /// An honest proposer's natural next step for the n-th thing that has
    /// one (see [`drive`]); the other ops are the noise around it.
    Drive(usize),
    /// Live: the first free slot; dependencies live: the n-th existing job.
    Submit {
        slot: Pick,
        owner: usize,
        target: usize,
        deps: Vec<(Pick, bool, bool)>,
        bad: bool,
        secret: bool,
        /// One of two submit keys, or none.
        key: Option<u8>,
    },
    /// Live: a job not yet finished.
    Cancel {
        job: Pick,
        by: usize,
    },
    Request {
        w: usize,
        target: usize,
    },
    Lease {
        factory: usize,
        targets: u8,
    },
    /// Live: a bootstrapping worker.
    Bootstrap {
        w: Pick,
        right: bool,
    },
    /// Live: a queued job; `w` none: a ready worker of the job's target.
    Assign {
        job: Pick,
        w: Option<usize>,
    },
    /// Live (for all agent steps): an assigned or running job.
    Start {
        job: Pick,
        fence: FenceKind,
    },
    Events {
        job: Pick,
        fence: FenceKind,
        n: usize,
    },
    Output {
        job: Pick,
        fence: FenceKind,
    },
    Finish {
        job: Pick,
        fence: FenceKind,
        success: bool,
    },
    Store {
        job: Pick,
        fence: Option<FenceKind>,
        key: usize,
        secret: bool,
    },
    Timeout {
        job: Pick,
    },
    /// Live: a finished job.
    Purge {
        job: Pick,
    },
    /// Live: a worker not destroyed.
    Retire {
        w: Pick,
        lost: bool,
    },
    /// Live: a destroying worker; `factory` none: the one that leased it.
    Destroyed {
        factory: Option<usize>,
        w: Pick,
    },
    Report {
        factory: Option<usize>,
        w: Pick,
    },
    HoldWorker {
        w: usize,
        hold: bool,
    },
    Hold {
        hold: bool,
    },
    FactoryEnabled {
        factory: usize,
        enabled: bool,
    },
}

fn fence_kind() -> impl Strategy<Value = FenceKind> {
    prop_oneof![6 => Just(FenceKind::Current), 1 => Just(FenceKind::Stale), 1 => Just(FenceKind::OtherWorker)]
}

/// A job pick: a third fixed slots, two thirds live.
fn job_pick() -> impl Strategy<Value = Pick> {
    prop_oneof![1 => (0..JOBS).prop_map(Pick::Slot), 2 => (0..JOBS).prop_map(Pick::Live)]
}

/// A worker pick: a third fixed slots, two thirds live.
fn worker_pick() -> impl Strategy<Value = Pick> {
    prop_oneof![1 => (0..WORKERS).prop_map(Pick::Slot), 2 => (0..WORKERS).prop_map(Pick::Live)]
}

/// A factory: mostly the one proposing about its own worker.
fn factory_pick() -> impl Strategy<Value = Option<usize>> {
    prop::option::weighted(0.25, 0..2usize)
}

/// An index into [`TARGETS`], mostly real ones.
fn target_index() -> impl Strategy<Value = usize> {
    prop_oneof![5 => Just(0usize), 3 => Just(1usize), 1 => Just(2usize), 1 => Just(3usize)]
}

/// Ops weighted so that jobs get somewhere: about as many attempts to move
/// a job on as to disturb it.
fn op() -> impl Strategy<Value = Op> {
    let dep = || (job_pick(), any::<bool>(), prop::bool::weighted(0.8));
    let deps = prop_oneof![
        3 => Just(Vec::new()),
        2 => prop::collection::vec(dep(), 1..=1),
        1 => prop::collection::vec(dep(), 2..=2),
    ];
    let lease_targets = prop_oneof![3 => Just(7u8), 2 => 1..7u8];
    prop_oneof![
        16 => (0..64usize).prop_map(Op::Drive),
        6 => (
            job_pick(),
            0..3usize,
            target_index(),
            deps,
            prop::bool::weighted(0.05),
            any::<bool>(),
            prop_oneof![2 => Just(None), 1 => (0..2u8).prop_map(Some)]
        )
            .prop_map(|(slot, owner, target, deps, bad, secret, key)| Op::Submit {
                slot,
                owner,
                target,
                deps,
                bad,
                secret,
                key
            }),
        1 => (job_pick(), 0..3usize).prop_map(|(job, by)| Op::Cancel { job, by }),
        4 => (0..WORKERS, target_index()).prop_map(|(w, target)| Op::Request { w, target }),
        4 => (prop::bool::weighted(0.2).prop_map(usize::from), lease_targets)
            .prop_map(|(factory, targets)| Op::Lease { factory, targets }),
        4 => (worker_pick(), prop::bool::weighted(0.9)).prop_map(|(w, right)| Op::Bootstrap { w, right }),
        5 => (job_pick(), prop::option::weighted(0.3, 0..WORKERS)).prop_map(|(job, w)| Op::Assign { job, w }),
        4 => (job_pick(), fence_kind()).prop_map(|(job, fence)| Op::Start { job, fence }),
        2 => (job_pick(), fence_kind(), 0..3usize).prop_map(|(job, fence, n)| Op::Events { job, fence, n }),
        1 => (job_pick(), fence_kind()).prop_map(|(job, fence)| Op::Output { job, fence }),
        6 => (job_pick(), fence_kind(), any::<bool>())
            .prop_map(|(job, fence, success)| Op::Finish { job, fence, success }),
        2 => (job_pick(), prop::option::of(fence_kind()), 0..2usize, any::<bool>())
            .prop_map(|(job, fence, key, secret)| Op::Store { job, fence, key, secret }),
        1 => job_pick().prop_map(|job| Op::Timeout { job }),
        1 => job_pick().prop_map(|job| Op::Purge { job }),
        1 => (worker_pick(), any::<bool>()).prop_map(|(w, lost)| Op::Retire { w, lost }),
        2 => (factory_pick(), worker_pick()).prop_map(|(factory, w)| Op::Destroyed { factory, w }),
        1 => (factory_pick(), worker_pick()).prop_map(|(factory, w)| Op::Report { factory, w }),
        1 => (0..WORKERS, any::<bool>()).prop_map(|(w, hold)| Op::HoldWorker { w, hold }),
        1 => prop::bool::weighted(0.3).prop_map(|hold| Op::Hold { hold }),
        1 => (0..2usize, prop::bool::weighted(0.7)).prop_map(|(factory, enabled)| Op::FactoryEnabled { factory, enabled }),
    ]
}

fn job_id(slot: usize) -> String {
    format!("J{slot}")
}

fn worker_id(w: usize) -> String {
    format!("W{w}")
}

/// The job `pick` names: a slot, or the n-th (wrapping) job in one of the
/// states `live`; slot 0 when there is none.
fn pick_job(m: &Model, pick: Pick, live: &[JobState]) -> String {
    let n = match pick {
        Pick::Slot(slot) => return job_id(slot),
        Pick::Live(n) => n,
    };
    let ids: Vec<&String> = m.jobs.iter().filter(|(_, j)| live.contains(&j.state)).map(|(id, _)| id).collect();
    if ids.is_empty() {
        job_id(0)
    } else {
        ids[n % ids.len()].clone()
    }
}

/// The worker `pick` names, as [`pick_job`] does for jobs.
fn pick_worker(m: &Model, pick: Pick, live: &[WorkerState]) -> String {
    let n = match pick {
        Pick::Slot(w) => return worker_id(w),
        Pick::Live(n) => n,
    };
    let ids: Vec<&String> = m.workers.iter().filter(|(_, w)| live.contains(&w.state)).map(|(id, _)| id).collect();
    if ids.is_empty() {
        worker_id(0)
    } else {
        ids[n % ids.len()].clone()
    }
}

/// Every job state.
const ANY_JOB: [JobState; 7] = [
    JobState::Queued,
    JobState::Waiting,
    JobState::Assigned,
    JobState::Running,
    JobState::Completed,
    JobState::Failed,
    JobState::Cancelled,
];
/// Job states in which an agent reports.
const RUNNING: [JobState; 2] = [JobState::Assigned, JobState::Running];
/// Job states that may still change.
const UNFINISHED: [JobState; 4] = [JobState::Queued, JobState::Waiting, JobState::Assigned, JobState::Running];
/// Worker states before destruction.
const ALIVE: [WorkerState; 5] = [
    WorkerState::Requested,
    WorkerState::Bootstrapping,
    WorkerState::Ready,
    WorkerState::Assigned,
    WorkerState::Destroying,
];

/// The fence an agent would present, given what the model knows now.
fn fence_for(m: &Model, job: &str, kind: FenceKind) -> Fence {
    let (worker, epoch) = m.jobs.get(job).map_or((None, 0), |j| (j.worker.clone(), j.epoch));
    let worker = worker.unwrap_or_else(|| worker_id(0));
    match kind {
        FenceKind::Current => Fence { worker, epoch },
        FenceKind::Stale => Fence { worker, epoch: if epoch > 0 { epoch - 1 } else { epoch + 1 } },
        FenceKind::OtherWorker => {
            let n: usize = worker[1..].parse().expect("a worker slot");
            Fence { worker: worker_id((n + 1) % WORKERS), epoch }
        }
    }
}

/// The factory a factory step comes from: the given one, or the one that
/// leased `worker` (F0 when none did).
fn factory_for(m: &Model, factory: Option<usize>, worker: &str) -> String {
    match factory {
        Some(f) => format!("F{f}"),
        None => m.workers.get(worker).and_then(|w| w.factory.clone()).unwrap_or_else(|| "F0".into()),
    }
}

/// What an honest party would propose next, for the n-th (wrapping) of all
/// the things that have a next step: a factory leases a requested worker or
/// reports a destroying one gone, an agent bootstraps, starts or finishes
/// (one finish in three fails), the scheduler assigns a queued job to a
/// ready worker or requests one. With nothing to do, alice submits a job.
fn drive(m: &Model, n: usize, step: i64) -> Command {
    let time = t(step);
    let mut next = Vec::new();
    for (id, w) in &m.workers {
        match w.state {
            WorkerState::Requested => next.push(Command::LeaseWorker {
                factory: "F0".into(),
                targets: vec![w.target.clone()],
                bootstrap_hash: format!("bh-{step}"),
                time,
            }),
            WorkerState::Bootstrapping => next.push(Command::BootstrapWorker {
                bootstrap_hash: w.bootstrap.clone().expect("a bootstrapping worker has a token"),
                token_hash: format!("wt-{step}"),
                time,
            }),
            WorkerState::Destroying => next.push(Command::WorkerDestroyed {
                factory: w.factory.clone().unwrap_or_else(|| "F0".into()),
                worker: id.clone(),
                time,
            }),
            _ => {}
        }
    }
    for (id, j) in &m.jobs {
        let current = || Fence { worker: j.worker.clone().expect("assigned"), epoch: j.epoch };
        match j.state {
            JobState::Queued => {
                let of_target = |w: &&MWorker| w.target == j.target_real;
                if let Some((w, _)) =
                    m.workers.iter().find(|(_, w)| w.state == WorkerState::Ready && !w.hold && of_target(w))
                {
                    next.push(Command::AssignJob { job: id.clone(), worker: w.clone(), time });
                } else if !m.workers.values().filter(of_target).any(|w| {
                    matches!(w.state, WorkerState::Requested | WorkerState::Bootstrapping | WorkerState::Ready)
                }) {
                    if let Some(w) = (0..WORKERS).map(worker_id).find(|w| !m.workers.contains_key(w)) {
                        next.push(Command::RequestWorker { id: w, target: j.target_real.clone(), time });
                    }
                }
            }
            JobState::Assigned => next.push(Command::JobStart { job: id.clone(), fence: current(), time }),
            JobState::Running => next.push(Command::JobFinish {
                job: id.clone(),
                fence: current(),
                failure: n.is_multiple_of(3).then(|| format!("task failed at step {step}")),
                time,
            }),
            _ => {}
        }
    }
    if next.is_empty() {
        if let Some(id) = (0..JOBS).map(job_id).find(|id| !m.jobs.contains_key(id)) {
            return Command::SubmitJob { id, owner: ALICE.into(), submit: job("linux"), time };
        }
        return Command::SetHold { hold: false };
    }
    next.swap_remove(n % next.len())
}

/// Turns an op into the command a proposer would commit at `step`.
fn concretise(op: &Op, m: &Model, step: i64) -> Command {
    let time = t(step);
    let agent_job = |pick| pick_job(m, pick, &RUNNING);
    match op.clone() {
        Op::Drive(n) => drive(m, n, step),
        Op::Submit { slot, owner, target, deps, bad, secret, key } => {
            let id = match slot {
                Pick::Slot(slot) => job_id(slot),
                Pick::Live(n) => (0..JOBS).map(job_id).find(|id| !m.jobs.contains_key(id)).unwrap_or(job_id(n)),
            };
            let mut submit = job(TARGETS[target]);
            if bad {
                submit.output_rules = vec!["!=/x".into()];
            }
            for (prior, on_failed, on_completed) in deps {
                let prior = pick_job(m, prior, &ANY_JOB);
                submit = after(submit, &format!("d-{prior}"), &prior, on_failed, on_completed);
            }
            submit.store.insert("k0".into(), StorePut { value: "initial".into(), secret });
            submit.submit_key = key.map(|k| format!("key-{k}"));
            Command::SubmitJob { id, owner: OWNERS[owner].into(), submit, time }
        }
        Op::Cancel { job, by } => {
            Command::CancelJob { job: pick_job(m, job, &UNFINISHED), by: OWNERS[by].into(), time }
        }
        Op::Request { w, target } => Command::RequestWorker { id: worker_id(w), target: TARGETS[target].into(), time },
        Op::Lease { factory, targets } => Command::LeaseWorker {
            factory: format!("F{factory}"),
            targets: (0..3).filter(|b| targets & (1 << b) != 0).map(|b| TARGETS[b].to_string()).collect(),
            bootstrap_hash: format!("bh-{step}"),
            time,
        },
        Op::Bootstrap { w, right } => {
            let w = pick_worker(m, w, &[WorkerState::Bootstrapping]);
            let leased = m.workers.get(&w).and_then(|w| w.leased_with.clone());
            let bootstrap_hash = leased.filter(|_| right).unwrap_or_else(|| "bh-wrong".into());
            Command::BootstrapWorker { bootstrap_hash, token_hash: format!("wt-{step}"), time }
        }
        Op::Assign { job, w } => {
            let job = pick_job(m, job, &[JobState::Queued]);
            let worker = w.map(worker_id).unwrap_or_else(|| {
                let target = m.jobs.get(&job).map(|j| j.target_real.clone());
                m.workers
                    .iter()
                    .find(|(_, w)| w.state == WorkerState::Ready && !w.hold && Some(&w.target) == target.as_ref())
                    .map_or_else(|| worker_id(0), |(id, _)| id.clone())
            });
            Command::AssignJob { job, worker, time }
        }
        Op::Start { job, fence } => {
            let job = agent_job(job);
            Command::JobStart { fence: fence_for(m, &job, fence), job, time }
        }
        Op::Events { job, fence, n } => {
            let job = agent_job(job);
            let events = EventLog::from_events((0..n).map(|i| EventIn {
                stream: "stdout".into(),
                task: Some(0),
                time,
                payload: format!("line {step}.{i}"),
            }))
            .expect("times in range");
            let fence = fence_for(m, &job, fence);
            if step % 2 == 0 {
                Command::JobEvents { fence, job, first: None, events, max_log_bytes: None }
            } else {
                // Every other batch goes as a log chunk (only its reference).
                let lens = (0..events.len()).map(|i| events.payload_len(i)).collect();
                let chunk = ChunkRef { sha: [step as u8; 32], lens, time };
                Command::JobChunk { fence, job, first: None, chunk, max_log_bytes: None }
            }
        }
        Op::Output { job, fence } => {
            let job = agent_job(job);
            let output =
                JobOutput { id: format!("O{step}"), path: format!("/out/{step}"), size: 1, sha256: "00".into() };
            Command::JobOutput { fence: fence_for(m, &job, fence), job, output }
        }
        Op::Finish { job, fence, success } => {
            let job = agent_job(job);
            let failure = (!success).then(|| format!("task failed at step {step}"));
            Command::JobFinish { fence: fence_for(m, &job, fence), job, failure, time }
        }
        Op::Store { job, fence, key, secret } => {
            let job = pick_job(m, job, if fence.is_some() { &RUNNING[..] } else { &UNFINISHED[..] });
            Command::StorePut {
                fence: fence.map(|k| fence_for(m, &job, k)),
                job,
                name: format!("k{key}"),
                put: StorePut { value: format!("v{step}"), secret },
                time,
            }
        }
        Op::Timeout { job } => Command::JobTimeout { job: agent_job(job), time },
        Op::Purge { job } => {
            let finished = [JobState::Completed, JobState::Failed, JobState::Cancelled];
            Command::PurgeJob { job: pick_job(m, job, &finished), time }
        }
        Op::Retire { w, lost } => {
            let worker = pick_worker(m, w, &ALIVE);
            if lost {
                Command::WorkerLost { worker, reason: format!("lost at step {step}"), time }
            } else {
                Command::RecycleWorker { worker, time }
            }
        }
        Op::Destroyed { factory, w } => {
            let worker = pick_worker(m, w, &[WorkerState::Destroying]);
            Command::WorkerDestroyed { factory: factory_for(m, factory, &worker), worker, time }
        }
        Op::Report { factory, w } => {
            let worker = pick_worker(m, w, &[WorkerState::Bootstrapping]);
            Command::ReportInstance {
                factory: factory_for(m, factory, &worker),
                worker,
                instance_id: format!("i-{step}"),
                time,
            }
        }
        Op::HoldWorker { w, hold } => Command::HoldWorker { worker: worker_id(w), hold },
        Op::Hold { hold } => Command::SetHold { hold },
        Op::FactoryEnabled { factory, enabled } => {
            Command::SetFactoryEnabled { factory: format!("F{factory}"), enabled }
        }
    }
}

/// Checks that the state machine accepted or refused `cmd` as the model did,
/// with the same code, and leased the same worker.
#[track_caller]
fn check_outcome(cmd: &Command, got: &Outcome, expected: &Expect) {
    match (got, expected) {
        (Ok(reply), Ok(lease)) => {
            if let Command::LeaseWorker { .. } = cmd {
                let Reply::Lease(l) = reply else { panic!("{cmd:?} replied {reply:?}") };
                assert_eq!(l.as_ref().map(|l| &l.worker), lease.as_ref(), "{cmd:?} leased another worker");
            }
        }
        (Err(r), Err(code)) => assert_eq!(r.code, *code, "{cmd:?} refused for another reason: {}", r.message),
        _ => panic!("{cmd:?}: the state machine said {got:?}, the model {expected:?}"),
    }
}

/// Checks that every job and worker is where the model says.
#[track_caller]
fn check_model(s: &State, m: &Model, cmd: &Command) {
    assert_eq!(s.jobs.keys().collect::<Vec<_>>(), m.jobs.keys().collect::<Vec<_>>(), "after {cmd:?}");
    for (id, mj) in &m.jobs {
        let j = &s.jobs[id];
        assert_eq!(j.job.state, mj.state, "job {id} after {cmd:?}");
        assert_eq!((j.job.epoch, &j.job.worker), (mj.epoch, &mj.worker), "job {id} assignment after {cmd:?}");
        let secret: BTreeMap<String, bool> = j.store.iter().map(|(k, v)| (k.clone(), v.secret)).collect();
        assert_eq!(secret, mj.secret, "job {id} store secrecy after {cmd:?}");
    }
    assert_eq!(s.workers.keys().collect::<Vec<_>>(), m.workers.keys().collect::<Vec<_>>(), "after {cmd:?}");
    for (id, mw) in &m.workers {
        let w = &s.workers[id].worker;
        assert_eq!(w.state, mw.state, "worker {id} after {cmd:?}");
        assert_eq!((&w.job, &w.factory, w.hold), (&mw.job, &mw.factory, mw.hold), "worker {id} after {cmd:?}");
    }
    assert_eq!(s.control.hold, m.hold);
    let enabled: BTreeMap<String, bool> = s.factories.iter().map(|(k, f)| (k.clone(), f.factory.enabled)).collect();
    assert_eq!(enabled, m.factories);
}

/// Invariants that hold whatever the model says, checked from the state
/// before (`prev`) and after (`s`) one command.
#[track_caller]
fn check_invariants(prev: &State, s: &State, cmd: &Command) {
    // The state indexes list exactly the jobs in their states.
    let with = |f: fn(JobState) -> bool| -> BTreeSet<&String> {
        s.jobs.iter().filter(|(_, r)| f(r.job.state)).map(|(id, _)| id).collect()
    };
    assert_eq!(with(|st| st == JobState::Queued), s.queued.iter().collect(), "queued index after {cmd:?}");
    let running = with(|st| matches!(st, JobState::Assigned | JobState::Running));
    assert_eq!(running, s.running.iter().collect(), "running index after {cmd:?}");
    let live: BTreeSet<&String> =
        s.workers.iter().filter(|(_, w)| w.worker.state != WorkerState::Destroyed).map(|(id, _)| id).collect();
    assert_eq!(live, s.live_workers.iter().collect(), "live worker index after {cmd:?}");
    // The reference index is what the jobs refer to.
    assert_eq!(s.refs, Refs::of_jobs(s.jobs.values().map(|j| &**j)), "reference index after {cmd:?}");
    for (id, rec) in &s.jobs {
        let j = &rec.job;
        // At most one live worker holds a live job (a job runs on one worker).
        if !j.state.is_terminal() {
            let holders = s
                .workers
                .values()
                .filter(|w| w.worker.state != WorkerState::Destroyed && w.worker.job.as_deref() == Some(id))
                .count();
            assert!(holders <= 1, "job {id} held by {holders} workers after {cmd:?}");
        }
        // An assigned or running job's worker is assigned to it, under its epoch.
        if matches!(j.state, JobState::Assigned | JobState::Running) {
            let w = &s.workers[j.worker.as_ref().expect("an assigned job names its worker")].worker;
            assert_eq!((w.state, w.job.as_ref(), w.epoch), (WorkerState::Assigned, Some(id), j.epoch), "{cmd:?}");
        }
        assert_eq!(j.state == JobState::Failed, j.failure.is_some(), "job {id}: failure iff failed, after {cmd:?}");
        let chunk = Arc::new(events_of(&["x"; 8]));
        let all = rec.events.view(0, rec.events.len()).events(|_| Some(chunk.clone())).expect("chunks given");
        for (i, e) in all.iter().enumerate() {
            assert_eq!(e.seq, i as u64, "job {id} event numbering after {cmd:?}");
        }
        if let Some(before) = prev.jobs.get(id) {
            assert!(j.epoch >= before.job.epoch, "job {id} epoch went back after {cmd:?}");
            if before.job.state.is_terminal() && matches!(cmd, Command::PurgeJob { job, .. } if job == id) {
                // Purging keeps the record and drops the log and outputs.
                assert_eq!(j.state, before.job.state, "purged job {id} state after {cmd:?}");
                assert!(rec.outputs.is_empty() && rec.purged.is_some(), "purged job {id} after {cmd:?}");
            } else if before.job.state.is_terminal() {
                assert!(rec == before, "finished job {id} changed after {cmd:?}");
            }
        }
    }
    for (id, w) in &s.workers {
        // An assigned worker's job is live and points back at it.
        if w.worker.state == WorkerState::Assigned {
            let j = &s.jobs[w.worker.job.as_ref().expect("an assigned worker names its job")].job;
            assert!(matches!(j.state, JobState::Assigned | JobState::Running), "worker {id} after {cmd:?}");
            assert_eq!(j.worker.as_ref(), Some(id));
        }
        if prev.workers.get(id).is_some_and(|p| p.worker.state == WorkerState::Destroyed) {
            assert_eq!(w.worker.state, WorkerState::Destroyed, "worker {id} came back after {cmd:?}");
        }
    }
}

/// A history as it ran: every command committed (setup first), what each
/// returned, and the state after each.
struct History {
    commands: Vec<Command>,
    outcomes: Vec<Outcome>,
    states: Vec<State>,
}

/// Runs `ops` on a fresh [`State`] and on the model side by side, checking
/// outcomes, the model and the invariants after every command.
fn run_history(factories: usize, ops: &[Op]) -> History {
    let mut s = State::default();
    let mut m = Model::new(factories);
    let mut h = History { commands: Vec::new(), outcomes: Vec::new(), states: Vec::new() };
    let mut record = |s: &State, cmd: Command, out: Outcome| {
        h.commands.push(cmd);
        h.outcomes.push(out);
        h.states.push(s.clone());
    };
    for cmd in setup(factories) {
        let out = s.apply(cmd.clone());
        assert!(out.is_ok(), "setup {cmd:?}: {out:?}");
        record(&s, cmd, out);
    }
    for (i, op) in ops.iter().enumerate() {
        let cmd = concretise(op, &m, 100 + i as i64);
        let prev = s.clone();
        let expected = m.apply(&cmd);
        let got = s.apply(cmd.clone());
        check_outcome(&cmd, &got, &expected);
        if got.is_err() {
            assert!(s == prev, "{cmd:?} was refused but changed the state");
        }
        check_model(&s, &m, &cmd);
        check_invariants(&prev, &s, &cmd);
        record(&s, cmd, got);
    }
    h
}

/// Applies `commands` to `r` through the [`Machine`] interface as Raft
/// would, log index `first`, `first + 1`, …, and returns the raw answers.
fn replay(r: &mut Replicated, commands: &[Command], first: u64) -> Vec<Vec<u8>> {
    commands.iter().zip(first..).map(|(c, i)| r.apply(i, &encode(c)).expect("a well-formed entry applies")).collect()
}

proptest! {
    // A case takes about a millisecond, so afford four times the default:
    // some rules (a secret overwritten in the clear, an assignment of a
    // waiting job) need a rare pair of steps to be exercised.
    #![proptest_config(ProptestConfig {
        cases: 1024,
        // Keep the tree clean: no regression files beside the sources.
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn random_interleavings_agree_with_the_model_and_keep_the_invariants(
        factories in 1..=2usize,
        ops in prop::collection::vec(op(), 1..40),
    ) {
        run_history(factories, &ops);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn replay_is_deterministic_and_a_snapshot_resumes_the_same_history(
        factories in 1..=2usize,
        ops in prop::collection::vec(op(), 1..40),
        cut in any::<Index>(),
    ) {
        let h = run_history(factories, &ops);
        let n = h.commands.len();

        // Two replicas applying the same log agree on every answer and the state.
        let (mut a, mut b) = (Replicated::default(), Replicated::default());
        let answers_a = replay(&mut a, &h.commands, 1);
        let answers_b = replay(&mut b, &h.commands, 1);
        prop_assert_eq!(&answers_a, &answers_b);
        prop_assert!(a.0 == b.0, "two replicas diverged");
        // …and answer what State::apply answered directly.
        for (bytes, direct) in answers_a.iter().zip(&h.outcomes) {
            let decoded: Outcome = codec::decode::<Vec<Outcome>>("outcome", bytes).unwrap().remove(0);
            prop_assert_eq!(&decoded, direct);
        }
        let mut expected_final = h.states[n - 1].clone();
        expected_final.applied = n as u64;
        prop_assert!(a.0 == expected_final, "the replica differs from the direct run");

        // A snapshot taken after `k` entries restores that state, and applying
        // the rest to the restored replica ends where the unbroken one did.
        let k = cut.index(n + 1);
        let mut c = Replicated::default();
        replay(&mut c, &h.commands[..k], 1);
        let snapshot = c.snapshot().unwrap();
        let mut restored = Replicated::restore(&snapshot).unwrap();
        prop_assert!(restored.0 == c.0, "restore after {} entries differs", k);
        if k > 0 {
            let mut at_cut = h.states[k - 1].clone();
            at_cut.applied = k as u64;
            prop_assert!(restored.0 == at_cut);
        }
        let rest = replay(&mut restored, &h.commands[k..], k as u64 + 1);
        prop_assert_eq!(&rest[..], &answers_a[k..]);
        prop_assert!(restored.0 == a.0, "resuming from a snapshot at {} ended elsewhere", k);
    }
}

/// The proptest proves little if its histories never get anywhere; this
/// checks, over a fixed sample of the same generator, that every kind of
/// step is sometimes accepted and every job state is reached.
#[test]
fn the_random_histories_reach_every_job_state_and_accept_every_kind_of_step() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;

    let mut runner = TestRunner::deterministic();
    let strategy = (1..=2usize, prop::collection::vec(op(), 1..40));
    let mut states = std::collections::BTreeSet::new();
    let mut accepted = std::collections::BTreeSet::new();
    let mut stale = 0;
    for _ in 0..256 {
        let (factories, ops) = strategy.new_tree(&mut runner).unwrap().current();
        let h = run_history(factories, &ops);
        for ((cmd, out), s) in h.commands.iter().zip(&h.outcomes).zip(&h.states) {
            states.extend(s.jobs.values().map(|j| j.job.state));
            let kind = format!("{cmd:?}");
            let kind = kind.split([' ', '{']).next().unwrap().to_string();
            match out {
                Ok(_) => {
                    accepted.insert(kind);
                }
                Err(r) if r.code == ErrorCode::StaleEpoch => stale += 1,
                Err(_) => {}
            }
        }
    }
    use JobState::*;
    for st in [Queued, Waiting, Assigned, Running, Completed, Failed, Cancelled] {
        assert!(states.contains(&st), "no history reached {st:?}: {accepted:?}");
    }
    for kind in [
        "SubmitJob",
        "CancelJob",
        "StorePut",
        "SetHold",
        "RequestWorker",
        "AssignJob",
        "LeaseWorker",
        "ReportInstance",
        "WorkerDestroyed",
        "HoldWorker",
        "RecycleWorker",
        "WorkerLost",
        "BootstrapWorker",
        "JobStart",
        "JobEvents",
        "JobChunk",
        "JobOutput",
        "JobFinish",
        "JobTimeout",
        "PurgeJob",
        "SetFactoryEnabled",
    ] {
        assert!(accepted.contains(kind), "no {kind} was ever accepted: {accepted:?}");
    }
    assert!(stale > 0, "no stale fence was ever presented to a live assignment");
}

#[test]
fn a_batch_entry_applies_its_commands_in_order_with_one_outcome_each() {
    let mut r = replicated_world();
    let batch = vec![
        submit_cmd("JB1", ALICE, job("linux")),
        submit_cmd("JB1", ALICE, job("linux")),
        submit_cmd("JB2", ALICE, job("linux")),
    ];
    let bytes = codec::encode("batch", &batch).unwrap();
    let out: Vec<Outcome> = codec::decode("outcomes", &r.apply(50, &bytes).unwrap()).unwrap();
    assert_eq!(out.len(), 3);
    assert!(out[0].is_ok() && out[2].is_ok(), "{out:?}");
    assert_eq!(out[1].as_ref().unwrap_err().code, ErrorCode::Conflict, "the second JB1 sees the first");
    assert!(r.0.jobs.contains_key("JB1") && r.0.jobs.contains_key("JB2"));
}

#[test]
fn commands_keep_their_places_in_the_encoding() {
    // Raft entries already written name a command by its place in the enum:
    // a command added anywhere but last would make them mean another.
    let place = |c: &Command| codec::encode("command", c).unwrap()[0];
    assert_eq!(
        place(&Command::CreateUser {
            id: "U".into(),
            name: "u".into(),
            privileges: vec![],
            token_hash: "h".into(),
            time: t(0)
        }),
        0
    );
    assert_eq!(place(&Command::JobTimeout { job: "J".into(), time: t(0) }), 23);
    assert_eq!(place(&Command::PurgeJob { job: "J".into(), time: t(0) }), 24);
    let chunk = ChunkRef { sha: [0; 32], lens: vec![], time: t(0) };
    let fence = Fence { worker: "W".into(), epoch: 1 };
    assert_eq!(place(&Command::JobChunk { job: "J".into(), fence, first: None, chunk, max_log_bytes: None }), 25);
}

/// The state's persistent maps and sets encode byte for byte as the
/// `BTreeMap`s and `BTreeSet`s they replaced, so a snapshot written before
/// the change restores after it, and the other way round.
#[test]
fn persistent_maps_encode_as_the_btree_maps_they_replaced() {
    let pairs = [("J2", "b"), ("J1", "a"), ("J3", "c")].map(|(k, v)| (k.to_string(), v.to_string()));
    let old: BTreeMap<String, String> = pairs.iter().cloned().collect();
    let new: imbl::OrdMap<String, String> = pairs.iter().cloned().collect();
    let bytes = codec::encode("map", &old).unwrap();
    assert_eq!(codec::encode("map", &new).unwrap(), bytes);
    assert_eq!(codec::decode::<imbl::OrdMap<String, String>>("map", &bytes).unwrap(), new);
    let old: BTreeSet<String> = pairs.iter().map(|(k, _)| k.clone()).collect();
    let new: imbl::OrdSet<String> = pairs.iter().map(|(k, _)| k.clone()).collect();
    let bytes = codec::encode("set", &old).unwrap();
    assert_eq!(codec::encode("set", &new).unwrap(), bytes);
    assert_eq!(codec::decode::<imbl::OrdSet<String>>("set", &bytes).unwrap(), new);
}

/// A copy of the state (what a snapshot encodes) is not changed by what
/// is applied after it, though the two share their maps' nodes.
#[test]
fn a_copy_of_the_state_keeps_its_contents_while_the_state_moves_on() {
    let mut s = world();
    ok(&mut s, submit_cmd("J1", ALICE, job("linux")));
    let copy = s.clone();
    ok(&mut s, submit_cmd("J2", ALICE, job("linux")));
    ok(&mut s, Command::CancelJob { job: "J1".into(), by: ALICE.into(), time: t(3) });
    assert_eq!(copy.jobs.keys().collect::<Vec<_>>(), ["J1"]);
    assert_eq!(copy.jobs["J1"].job.state, JobState::Queued);
    assert_eq!(copy.queued.iter().collect::<Vec<_>>(), ["J1"]);
    assert_eq!(s.jobs["J1"].job.state, JobState::Cancelled);
    assert_eq!(s.queued.iter().collect::<Vec<_>>(), ["J2"]);
}
