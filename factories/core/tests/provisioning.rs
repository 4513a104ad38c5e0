//! The provisioning loop against a real node. The provider is a fake that
//! records what it is asked to do (the loop is what is tested here; the
//! local provider's sandboxes are tested in `bm-factory-local` and `bm`).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bm_api::factories::{FactoryCreate, LeaseRequest, WorkerLease};
use bm_api::jobs::JobSubmit;
use bm_api::targets::TargetCreate;
use bm_api::workers::{Worker, WorkerState};
use bm_api::Client;
use bm_factory::launch::BOOTSTRAP_TOKEN_ENV;
use bm_factory::{AgentLaunch, LoopConfig, Provider};
use tokio::sync::watch;

/// What the fake provider was asked to do.
#[derive(Default)]
struct Record {
    /// Each create: the worker and the launch it was given.
    created: Vec<(String, AgentLaunch)>,
    /// Instance ids destroyed, in order.
    destroyed: Vec<String>,
    /// Instances alive now, and the most ever alive at once.
    alive: usize,
    most_alive: usize,
    /// The `live` list of each orphan sweep.
    sweeps: Vec<Vec<String>>,
    shut_down: bool,
    /// Creates fail while this is set.
    fail_creates: bool,
}

#[derive(Clone)]
struct Fake {
    record: Arc<Mutex<Record>>,
    reap_every: Duration,
}

impl Fake {
    fn new() -> Self {
        Self { record: Default::default(), reap_every: Duration::from_secs(3600) }
    }

    fn with<T>(&self, f: impl FnOnce(&mut Record) -> T) -> T {
        f(&mut self.record.lock().unwrap())
    }
}

struct FakeInstance {
    id: String,
}

impl Provider for Fake {
    type Instance = FakeInstance;

    async fn create(&self, lease: &WorkerLease, launch: &AgentLaunch) -> anyhow::Result<FakeInstance> {
        self.with(|r| {
            r.created.push((lease.worker.clone(), launch.clone()));
            if r.fail_creates {
                anyhow::bail!("no machine today");
            }
            r.alive += 1;
            r.most_alive = r.most_alive.max(r.alive);
            Ok(FakeInstance { id: format!("fake-{}", lease.worker) })
        })
    }

    fn instance_id(&self, instance: &FakeInstance) -> String {
        instance.id.clone()
    }

    async fn destroy(&self, instance: FakeInstance) -> anyhow::Result<()> {
        self.with(|r| {
            r.alive -= 1;
            r.destroyed.push(instance.id);
        });
        Ok(())
    }

    async fn reap_orphans(&self, live: &[String]) -> anyhow::Result<usize> {
        self.with(|r| r.sweeps.push(live.to_vec()));
        Ok(0)
    }

    fn reap_every(&self) -> Duration {
        self.reap_every
    }

    async fn shutdown(self) {
        self.with(|r| r.shut_down = true);
    }
}

/// A node with target `default` and a registered factory.
struct Fixture {
    _tmp: tempfile::TempDir,
    node: bm_node::Running,
    admin: Client,
    /// The factory's token.
    token: String,
}

async fn fixture() -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = bm_node::NodeConfig::in_dir(tmp.path(), "127.0.0.1:0".parse().unwrap());
    let node = bm_node::start(cfg).await.unwrap();
    let admin_token = std::fs::read_to_string(tmp.path().join("admin-token")).unwrap().trim().to_string();
    let admin = Client::new(vec![node.url()], Some(admin_token));
    admin.target_create(&TargetCreate::named("default")).await.unwrap();
    let f = admin.factory_create(&FactoryCreate { name: "fake".into() }).await.unwrap();
    Fixture { _tmp: tmp, node, admin, token: f.token }
}

/// The loop, running on a task until the sender says stop.
struct Running {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Running {
    async fn stop(self) {
        self.stop.send(true).unwrap();
        tokio::time::timeout(Duration::from_secs(10), self.task).await.unwrap().unwrap().unwrap();
    }
}

fn start(fx: &Fixture, fake: &Fake, max_workers: usize) -> Running {
    let cfg =
        LoopConfig { urls: vec![fx.node.url()], token: fx.token.clone(), targets: vec!["default".into()], max_workers };
    let (stop, rx) = watch::channel(false);
    let task = tokio::spawn(bm_factory::run(cfg, fake.clone(), rx));
    Running { stop, task }
}

async fn submit(fx: &Fixture, name: &str) -> String {
    fx.admin.job_submit(&JobSubmit::script(name, "default", "true")).await.unwrap().id
}

/// Waits up to 20 s for `f` to hold.
async fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn worker(fx: &Fixture, id: &str) -> Worker {
    fx.admin.workers(true).await.unwrap().into_iter().find(|w| w.id == id).expect("the worker exists")
}

/// Waits up to 20 s for worker `id` to be in `state`.
async fn wait_state(fx: &Fixture, id: &str, state: WorkerState) -> Worker {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let w = worker(fx, id).await;
        if w.state == state {
            return w;
        }
        assert!(Instant::now() < deadline, "worker {id} stuck in {:?}, not {state:?}", w.state);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn created(fake: &Fake) -> Vec<String> {
    fake.with(|r| r.created.iter().map(|(w, _)| w.clone()).collect())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_requested_worker_is_made_reported_and_destroyed_once_the_cluster_retires_it() {
    let fx = fixture().await;
    let fake = Fake::new();
    let run = start(&fx, &fake, 2);
    submit(&fx, "one").await;
    eventually("a machine is made", || fake.with(|r| r.created.len() == 1)).await;
    let (id, launch) = fake.with(|r| r.created[0].clone());
    // No peer link on this node, so no QUIC: the agent is told the node's URL.
    assert_eq!(launch.args, ["--url".to_string(), fx.node.url()]);
    assert_eq!(launch.env.len(), 1, "{:?}", launch.env);
    assert_eq!(launch.env[0].0, BOOTSTRAP_TOKEN_ENV);
    assert!(!launch.env[0].1.is_empty(), "an empty bootstrap token");
    let w = wait_state(&fx, &id, WorkerState::Bootstrapping).await;
    assert_eq!(w.instance_id.as_deref(), Some(format!("fake-{id}").as_str()), "the instance is reported");

    fx.admin.worker_action(&id, "recycle").await.unwrap();
    wait_state(&fx, &id, WorkerState::Destroyed).await;
    assert_eq!(fake.with(|r| r.destroyed.clone()), [format!("fake-{id}")]);
    run.stop().await;
    assert!(fake.with(|r| r.shut_down), "the provider was not shut down");
    fx.node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_worker_is_destroyed_only_once_released() {
    let fx = fixture().await;
    let fake = Fake::new();
    let run = start(&fx, &fake, 2);
    submit(&fx, "held").await;
    eventually("a machine is made", || !created(&fake).is_empty()).await;
    let id = created(&fake)[0].clone();
    fx.admin.worker_action(&id, "hold").await.unwrap();
    fx.admin.worker_action(&id, "recycle").await.unwrap();
    // Several passes go by (each waits up to a second for a lease).
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(fake.with(|r| r.destroyed.is_empty()), "a held worker's machine was destroyed");
    assert_eq!(worker(&fx, &id).await.state, WorkerState::Destroying);

    fx.admin.worker_action(&id, "release").await.unwrap();
    wait_state(&fx, &id, WorkerState::Destroyed).await;
    assert_eq!(fake.with(|r| r.destroyed.clone()), [format!("fake-{id}")]);
    run.stop().await;
    fx.node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_more_machines_than_the_cap_are_alive_at_once() {
    let fx = fixture().await;
    let fake = Fake::new();
    let run = start(&fx, &fake, 1);
    submit(&fx, "first").await;
    submit(&fx, "second").await;
    eventually("a machine is made", || !created(&fake).is_empty()).await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(created(&fake).len(), 1, "a second machine beyond the cap of 1");
    let waiting = fx.admin.workers(false).await.unwrap().into_iter().filter(|w| w.state == WorkerState::Requested);
    assert_eq!(waiting.count(), 1, "the second job's worker request waits for room");

    let first = created(&fake)[0].clone();
    fx.admin.worker_action(&first, "recycle").await.unwrap();
    eventually("the next machine is made once the first is gone", || created(&fake).len() == 2).await;
    assert_eq!(fake.with(|r| r.most_alive), 1);
    run.stop().await;
    fx.node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_left_by_an_earlier_run_is_reported_destroyed() {
    let fx = fixture().await;
    // An earlier run of this factory leased a worker and died.
    submit(&fx, "orphaned").await;
    let earlier = Client::new(vec![fx.node.url()], Some(fx.token.clone()));
    let req = LeaseRequest { targets: vec!["default".into()], capacity: None };
    let lease = earlier.factory_lease_wait(&req, 10).await.unwrap().expect("a worker request");
    earlier.factory_instance(&lease.worker, "gone-with-the-earlier-run").await.unwrap();

    let fake = Fake::new();
    let run = start(&fx, &fake, 2);
    wait_state(&fx, &lease.worker, WorkerState::Destroyed).await;
    assert!(!created(&fake).contains(&lease.worker), "the loop made a machine for a worker already leased");
    assert!(fake.with(|r| r.destroyed.is_empty()), "the provider was asked to destroy what it never made");
    run.stop().await;
    fx.node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_whose_machine_could_not_be_made_is_reported_destroyed() {
    let fx = fixture().await;
    let fake = Fake::new();
    fake.with(|r| r.fail_creates = true);
    let run = start(&fx, &fake, 1);
    submit(&fx, "unlucky").await;
    eventually("a create is tried", || !created(&fake).is_empty()).await;
    let id = created(&fake)[0].clone();
    wait_state(&fx, &id, WorkerState::Destroyed).await;
    assert_eq!(fake.with(|r| r.alive), 0);
    run.stop().await;
    fx.node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_destroys_every_machine_and_shuts_the_provider_down() {
    let fx = fixture().await;
    let fake = Fake::new();
    let run = start(&fx, &fake, 2);
    submit(&fx, "a").await;
    submit(&fx, "b").await;
    eventually("two machines are made", || created(&fake).len() == 2).await;
    run.stop().await;
    let mut destroyed = fake.with(|r| r.destroyed.clone());
    destroyed.sort();
    let mut expected: Vec<String> = created(&fake).iter().map(|w| format!("fake-{w}")).collect();
    expected.sort();
    assert_eq!(destroyed, expected);
    assert!(fake.with(|r| r.shut_down), "the provider was not shut down");
    fx.node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orphans_are_swept_on_start_and_then_periodically_sparing_live_machines() {
    let fx = fixture().await;
    let mut fake = Fake::new();
    fake.reap_every = Duration::from_millis(300);
    let run = start(&fx, &fake, 2);
    eventually("the first sweep", || fake.with(|r| !r.sweeps.is_empty())).await;
    assert!(fake.with(|r| r.sweeps[0].is_empty()), "the first sweep comes before any machine");
    submit(&fx, "kept").await;
    eventually("a machine is made", || !created(&fake).is_empty()).await;
    let id = format!("fake-{}", created(&fake)[0]);
    eventually("a sweep is told of the live machine", || {
        fake.with(|r| r.sweeps.iter().any(|s| s == std::slice::from_ref(&id)))
    })
    .await;
    run.stop().await;
    fx.node.stop().await;
}
