//! The peer link over real QUIC on 127.0.0.1: Raft replication, elections and
//! snapshot transfer between three nodes, mutual TLS, and what a broken or
//! hostile peer can and cannot do.

use std::collections::BTreeMap;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use bm_api::quic::{anonymous_client_config, Route};
use bm_raft::peer::{AppHandler, FrameLimits, PeerEndpoint, PeerError};
use bm_raft::tls::{ClusterCa, PeerTls, ALPN_PEER, PEER_SERVER_NAME};
use bm_raft::{codec, Durable, Machine, MachineError, NodeInfo, Payload, Raft, SmStore, Storage};
use futures::FutureExt;
use openraft::{Config, ServerState, SnapshotPolicy};
use serde::{Deserialize, Serialize};

const WAIT: Duration = Duration::from_secs(20);
const CALL: Duration = Duration::from_secs(5);

// ---------------------------------------------------------------------------
// Logs: every test's warnings land in one buffer, so tests can check that a
// refusal was logged with the peer's address (BM_TEST_LOGS=1 also prints them).

#[derive(Clone)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if std::env::var_os("BM_TEST_LOGS").is_some() {
            std::io::stderr().write_all(buf)?;
        }
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn logs() -> &'static Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let writer = Capture(buf.clone());
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::WARN)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        let _ = tracing::subscriber::set_global_default(subscriber);
        buf
    })
}

fn logged() -> String {
    String::from_utf8_lossy(&logs().lock().unwrap()).into_owned()
}

/// Waits until the captured logs hold a line with every one of `needles`.
async fn wait_for_log(needles: &[&str]) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if logged().lines().any(|l| needles.iter().all(|n| l.contains(n))) {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "no log line with {needles:?} in:\n{}", logged());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

// ---------------------------------------------------------------------------
// A tiny replicated machine: a list of numbers.

#[derive(Clone, Default, Serialize, Deserialize)]
struct Numbers {
    values: Vec<u64>,
}

impl Machine for Numbers {
    fn apply(&mut self, _index: u64, command: &[u8]) -> Result<Vec<u8>, MachineError> {
        let n: [u8; 8] = command.try_into().map_err(|_| MachineError("command is not a u64".into()))?;
        self.values.push(u64::from_le_bytes(n));
        Ok((self.values.len() as u64).to_le_bytes().to_vec())
    }
    fn snapshot(&self) -> Result<Vec<u8>, MachineError> {
        codec::encode("numbers", self).map_err(|e| MachineError(e.to_string()))
    }
    fn restore(bytes: &[u8]) -> Result<Self, MachineError> {
        codec::decode("numbers", bytes).map_err(|e| MachineError(e.to_string()))
    }
}

// ---------------------------------------------------------------------------
// Nodes.

fn tls_for(ca: &ClusterCa, id: u64) -> PeerTls {
    let issued = ca.issue_node(id, &["127.0.0.1".into()]).unwrap();
    PeerTls::from_pem(ca.cert_pem(), &issued.cert_pem, &issued.key_pem).unwrap()
}

fn localhost() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

fn echo() -> AppHandler {
    // The request, then its body if it came with one.
    Arc::new(|mut req: Vec<u8>, body: Option<bytes::Bytes>| {
        async move {
            req.extend_from_slice(body.as_deref().unwrap_or_default());
            Ok(req)
        }
        .boxed()
    })
}

struct TestNode {
    id: u64,
    raft: Raft,
    sm: SmStore<Numbers>,
    durable: Durable,
    endpoint: PeerEndpoint,
    _dir: tempfile::TempDir,
}

impl TestNode {
    async fn start(id: u64, ca: &ClusterCa, config: &Arc<Config>, app: AppHandler) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::<Numbers>::open(dir.path(), Some(id)).unwrap();
        let sm = storage.sm.clone();
        let endpoint = PeerEndpoint::bind(localhost(), &tls_for(ca, id), FrameLimits::default()).unwrap();
        let durable = storage.durable();
        let net = endpoint.network(durable.clone());
        let raft = Raft::new(id, config.clone(), net, storage.log, storage.sm).await.unwrap();
        endpoint.serve(raft.clone(), app);
        Self { id, raft, sm, durable, endpoint, _dir: dir }
    }

    fn info(&self) -> NodeInfo {
        NodeInfo { peer_addr: self.endpoint.local_addr().to_string(), api_addr: format!("http://node-{}", self.id) }
    }

    fn addr(&self) -> String {
        self.endpoint.local_addr().to_string()
    }

    async fn stop(&self) {
        self.raft.shutdown().await.unwrap();
        self.endpoint.close();
    }

    fn values(&self) -> Vec<u64> {
        self.sm.read(|m| m.values.clone())
    }

    async fn write(&self, n: u64) -> u64 {
        let resp = self.raft.client_write(Payload(n.to_le_bytes().to_vec())).await.unwrap();
        resp.log_id.index
    }

    async fn applied(&self, index: u64) {
        self.raft
            .wait(Some(WAIT))
            .applied_index_at_least(Some(index), format!("node {} applies {index}", self.id))
            .await
            .unwrap();
    }
}

fn raft_config(tune: impl FnOnce(&mut Config)) -> Arc<Config> {
    let mut c = Config {
        cluster_name: "peer-test".into(),
        heartbeat_interval: 100,
        election_timeout_min: 600,
        election_timeout_max: 1200,
        ..Default::default()
    };
    tune(&mut c);
    Arc::new(c.validate().unwrap())
}

/// Waits until some node of `nodes` leads, as seen by all of them, and returns its index in `nodes`.
async fn leader_of(nodes: &[&TestNode], not: Option<u64>) -> usize {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        for (i, n) in nodes.iter().enumerate() {
            let m = n.raft.metrics().borrow().clone();
            let agreed = nodes.iter().all(|o| o.raft.metrics().borrow().current_leader == Some(n.id));
            if m.state == ServerState::Leader && Some(n.id) != not && agreed {
                return i;
            }
        }
        assert!(tokio::time::Instant::now() < deadline, "no leader elected");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

// ---------------------------------------------------------------------------
// Raft over the peer link.

/// Three nodes with certificates from a new CA named `ca`, initialised as
/// one cluster with the default test tuning.
async fn three_nodes(ca: &str) -> Vec<TestNode> {
    logs();
    let ca = ClusterCa::generate(ca).unwrap();
    let config = raft_config(|_| {});
    let mut nodes = Vec::new();
    for id in 1..=3 {
        nodes.push(TestNode::start(id, &ca, &config, echo()).await);
    }
    let members: BTreeMap<u64, NodeInfo> = nodes.iter().map(|n| (n.id, n.info())).collect();
    nodes[0].raft.initialize(members).await.unwrap();
    nodes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_replicate_and_elect_a_new_leader_when_the_leader_stops() {
    let nodes = three_nodes("three").await;

    let refs: Vec<&TestNode> = nodes.iter().collect();
    let leader = refs[leader_of(&refs, None).await];
    let mut last = 0;
    for n in 1..=10u64 {
        last = leader.write(n * 7).await;
    }
    let want: Vec<u64> = (1..=10).map(|n| n * 7).collect();
    for n in &nodes {
        n.applied(last).await;
        assert_eq!(n.values(), want, "node {}", n.id);
    }

    let old = leader.id;
    leader.stop().await;
    let survivors: Vec<&TestNode> = nodes.iter().filter(|n| n.id != old).collect();
    let new_leader = survivors[leader_of(&survivors, Some(old)).await];
    assert_ne!(new_leader.id, old);
    for n in 11..=15u64 {
        last = new_leader.write(n * 7).await;
    }
    let want: Vec<u64> = (1..=15).map(|n| n * 7).collect();
    for n in &survivors {
        n.applied(last).await;
        assert_eq!(n.values(), want, "node {}", n.id);
    }
    for n in &survivors {
        n.stop().await;
    }
}

/// The leader writes its own log while it replicates it (see
/// `bm_raft::Durable`): still, no write is acknowledged before the
/// leader's disk holds it, and no follower applies an entry before then.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_is_acknowledged_or_applied_before_the_leaders_disk_holds_it() {
    let nodes = three_nodes("durable").await;
    let refs: Vec<&TestNode> = nodes.iter().collect();
    let leader = refs[leader_of(&refs, None).await];
    let followers: Vec<SmStore<Numbers>> = nodes.iter().filter(|n| n.id != leader.id).map(|n| n.sm.clone()).collect();

    // Many writers at once, so that batches are in flight while the
    // leader's flusher syncs the ones before.
    let mut writers = tokio::task::JoinSet::new();
    for w in 0..32u64 {
        let (raft, durable, followers) = (leader.raft.clone(), leader.durable.clone(), followers.clone());
        writers.spawn(async move {
            let mut seen = Vec::new();
            for i in 0..25u64 {
                let at = raft.client_write(Payload((w * 100 + i).to_le_bytes().to_vec())).await.unwrap().log_id.index;
                let on_disk = durable.upto().map_or(0, |l| l.index);
                if on_disk < at {
                    seen.push(format!("entry {at} acknowledged with the leader's disk at {on_disk}"));
                }
                for f in &followers {
                    // Applied first, mark second: the mark only grows.
                    let applied = f.last_applied();
                    let on_disk = durable.upto().map_or(0, |l| l.index);
                    if applied > on_disk {
                        seen.push(format!("a follower applied {applied} with the leader's disk at {on_disk}"));
                    }
                }
            }
            seen
        });
    }
    let mut wrong = Vec::new();
    while let Some(seen) = writers.join_next().await {
        wrong.extend(seen.unwrap());
    }
    assert!(wrong.is_empty(), "{} of 800 writes broke the rule, first: {:?}", wrong.len(), wrong.first());
    let last = leader.raft.metrics().borrow().last_applied.expect("applied").index;
    for n in &nodes {
        // A follower hears the last commit index with the next heartbeat.
        n.applied(last).await;
        assert_eq!(n.sm.read(|m| m.values.len()), 800, "node {}", n.id);
    }
    for n in &nodes {
        n.stop().await;
    }
}

/// A node alone commits on its own disk: the same rule, where openraft
/// counts the early report as the whole majority.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_node_acknowledges_a_write_only_once_its_disk_holds_it() {
    let dir = tempfile::tempdir().unwrap();
    let storage = Storage::<Numbers>::open(dir.path(), Some(1)).unwrap();
    let durable = storage.durable();
    let raft = Raft::new(1, raft_config(|_| {}), bm_raft::NoNetwork, storage.log, storage.sm).await.unwrap();
    let me = NodeInfo { peer_addr: String::new(), api_addr: "http://alone".into() };
    raft.initialize(BTreeMap::from([(1, me)])).await.unwrap();
    raft.wait(Some(WAIT)).state(ServerState::Leader, "lead").await.unwrap();
    let mut writers = tokio::task::JoinSet::new();
    for w in 0..32u64 {
        let (raft, durable) = (raft.clone(), durable.clone());
        writers.spawn(async move {
            let mut early = 0;
            for i in 0..25u64 {
                let at = raft.client_write(Payload((w * 100 + i).to_le_bytes().to_vec())).await.unwrap().log_id.index;
                if durable.upto().map_or(0, |l| l.index) < at {
                    early += 1;
                }
            }
            early
        });
    }
    let mut early = 0;
    while let Some(n) = writers.join_next().await {
        early += n.unwrap();
    }
    assert_eq!(early, 0, "writes acknowledged before their fsync");
    raft.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_learner_catches_up_through_a_snapshot_sent_in_chunks() {
    logs();
    let ca = ClusterCa::generate("snap").unwrap();
    let config = raft_config(|c| {
        c.snapshot_policy = SnapshotPolicy::LogsSinceLast(20);
        c.max_in_snapshot_log_to_keep = 0;
        c.purge_batch_size = 1;
        // The snapshot of 50 large numbers is about 450 bytes: several chunks.
        c.snapshot_max_chunk_size = 64;
        c.install_snapshot_timeout = 2000;
    });
    let n1 = TestNode::start(1, &ca, &config, echo()).await;
    let n2 = TestNode::start(2, &ca, &config, echo()).await;
    n1.raft.initialize(BTreeMap::from([(1, n1.info()), (2, n2.info())])).await.unwrap();
    let pair = [&n1, &n2];
    let leader = pair[leader_of(&pair, None).await];

    let big = |n: u64| n * 1_000_000_007;
    for n in 1..=50u64 {
        leader.write(big(n)).await;
    }
    let m = leader
        .raft
        .wait(Some(WAIT))
        .metrics(|m| m.snapshot.is_some() && m.purged.is_some(), "leader snapshots and purges its log")
        .await
        .unwrap();
    assert!(m.purged.unwrap().index >= 20, "purged up to {:?}", m.purged);

    let n3 = TestNode::start(3, &ca, &config, echo()).await;
    leader.raft.add_learner(3, n3.info(), true).await.unwrap();
    let leader_applied = leader.raft.metrics().borrow().last_applied.unwrap().index;
    n3.applied(leader_applied).await;
    let m3 = n3.raft.metrics().borrow().clone();
    assert!(m3.snapshot.is_some(), "the learner installed no snapshot: {m3:?}");
    assert_eq!(n3.values(), leader.values());

    // Replication goes on by log after the snapshot.
    let last = leader.write(big(51)).await;
    n3.applied(last).await;
    let want: Vec<u64> = (1..=51).map(big).collect();
    assert_eq!(n3.values(), want);

    for n in [&n1, &n2, &n3] {
        n.stop().await;
    }
}

// ---------------------------------------------------------------------------
// The application channel and the link's defences.

/// A node that only answers application requests (its Raft is never initialised).
async fn app_node(ca: &ClusterCa, id: u64, app: AppHandler) -> TestNode {
    TestNode::start(id, ca, &raft_config(|_| {}), app).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_app_round_trips_and_carries_the_handlers_error() {
    logs();
    let ca = ClusterCa::generate("app").unwrap();
    let echo_node = app_node(&ca, 1, echo()).await;
    let failing: AppHandler = Arc::new(|_req: Vec<u8>, _body| async { Err("no such job: j-42".to_string()) }.boxed());
    let failing_node = app_node(&ca, 2, failing).await;
    let caller = PeerEndpoint::bind(localhost(), &tls_for(&ca, 3), FrameLimits::default()).unwrap();

    let answer = caller.call_app(&echo_node.addr(), b"hello".to_vec(), CALL).await.unwrap();
    assert_eq!(answer, b"hello");
    // A larger request, and the cached connection reused.
    let big: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
    assert_eq!(caller.call_app(&echo_node.addr(), big.clone(), CALL).await.unwrap(), big);

    match caller.call_app(&failing_node.addr(), b"x".to_vec(), CALL).await {
        Err(PeerError::Remote(msg)) => assert_eq!(msg, "no such job: j-42"),
        other => panic!("expected a remote error, got {other:?}"),
    }

    // Nothing answers on this port (we hold it): unreachable, within the timeout.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let silent_addr = silent.local_addr().unwrap().to_string();
    let started = std::time::Instant::now();
    match caller.call_app(&silent_addr, b"x".to_vec(), Duration::from_millis(300)).await {
        Err(PeerError::Unreachable(msg)) => assert!(msg.contains(&silent_addr), "{msg}"),
        other => panic!("expected unreachable, got {other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(2));
    match caller.call_app("", b"x".to_vec(), CALL).await {
        Err(PeerError::Unreachable(msg)) => assert!(msg.contains("no peer address"), "{msg}"),
        other => panic!("expected unreachable, got {other:?}"),
    }
    caller.close();
    echo_node.stop().await;
    failing_node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_without_a_certificate_from_the_cluster_ca_are_refused() {
    logs();
    let ca = ClusterCa::generate("good").unwrap();
    let other_ca = ClusterCa::generate("other").unwrap();
    let node = app_node(&ca, 1, echo()).await;

    // A node of another cluster: it does not trust us, we do not trust it.
    let foreign = PeerEndpoint::bind(localhost(), &tls_for(&other_ca, 7), FrameLimits::default()).unwrap();
    let e = foreign.call_app(&node.addr(), b"hi".to_vec(), CALL).await.unwrap_err();
    assert!(matches!(e, PeerError::Unreachable(_)), "{e}");
    wait_for_log(&["refused peer connection", &foreign.local_addr().to_string()]).await;

    // An impostor that trusts our CA but shows a certificate from another one.
    let stolen = other_ca.issue_node(8, &[]).unwrap();
    let impostor_tls = PeerTls::from_pem(ca.cert_pem(), &stolen.cert_pem, &stolen.key_pem).unwrap();
    let impostor = PeerEndpoint::bind(localhost(), &impostor_tls, FrameLimits::default()).unwrap();
    let e = impostor.call_app(&node.addr(), b"hi".to_vec(), CALL).await.unwrap_err();
    assert!(matches!(e, PeerError::Unreachable(_)), "{e}");
    wait_for_log(&["refused peer connection", &impostor.local_addr().to_string()]).await;

    // A client with no certificate at all (what an agent has).
    let mut anon = quinn::Endpoint::client(localhost()).unwrap();
    anon.set_default_client_config(anonymous_client_config(ca.cert_pem(), ALPN_PEER, Route::Loopback).unwrap());
    let anon_addr = anon.local_addr().unwrap().to_string();
    let refused = async {
        let conn = anon.connect(node.endpoint.local_addr(), PEER_SERVER_NAME).unwrap().await?;
        let (mut send, mut recv) = conn.open_bi().await?;
        send.write_all(&frame(&app_request(b"hi"))).await?;
        send.finish()?;
        recv.read_to_end(1 << 20).await?;
        anyhow::Ok(())
    };
    assert!(tokio::time::timeout(CALL, refused).await.unwrap().is_err());
    wait_for_log(&["refused peer connection", &anon_addr]).await;

    // The node still serves its own cluster, also a node whose certificate
    // comes from the CA reloaded from its PEM files.
    let reloaded = ClusterCa::from_pem(ca.cert_pem(), ca.key_pem()).unwrap();
    let friend = PeerEndpoint::bind(localhost(), &tls_for(&reloaded, 2), FrameLimits::default()).unwrap();
    assert_eq!(friend.call_app(&node.addr(), b"hi".to_vec(), CALL).await.unwrap(), b"hi");
    node.stop().await;
}

/// The request enum as it is on the wire (bincode: variant index, then the
/// fields); only the application variant is built here.
#[derive(Serialize)]
enum WireRequest {
    _AppendEntries(()),
    _Vote(()),
    _InstallSnapshot(()),
    App(Vec<u8>),
    AppBody { head: Vec<u8>, body_len: u64 },
}

#[derive(Deserialize, Debug)]
enum WireResponse {
    _AppendEntries(()),
    _Vote(()),
    _InstallSnapshot(()),
    App(Result<Vec<u8>, String>),
}

fn app_request(body: &[u8]) -> Vec<u8> {
    codec::encode("request", &WireRequest::App(body.to_vec())).unwrap()
}

fn frame(body: &[u8]) -> Vec<u8> {
    let mut f = (body.len() as u32).to_be_bytes().to_vec();
    f.extend_from_slice(body);
    f
}

/// Sends `bytes` on a new stream of `conn` and returns the raw answer.
async fn raw_exchange(conn: &quinn::Connection, bytes: &[u8]) -> anyhow::Result<Vec<u8>> {
    let (mut send, mut recv) = conn.open_bi().await?;
    // The server may stop the stream before all is written; the answer tells.
    let _ = send.write_all(bytes).await;
    let _ = send.finish();
    Ok(recv.read_to_end(1 << 20).await?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_frames_reset_only_their_own_stream() {
    logs();
    let ca = ClusterCa::generate("garbage").unwrap();
    let node = app_node(&ca, 1, echo()).await;
    let mut raw = quinn::Endpoint::client(localhost()).unwrap();
    raw.set_default_client_config(tls_for(&ca, 5).client_config(Route::Loopback).unwrap());
    let raw_addr = raw.local_addr().unwrap().to_string();
    let conn = raw.connect(node.endpoint.local_addr(), PEER_SERVER_NAME).unwrap().await.unwrap();

    // Random bytes (a fixed xorshift sequence), a well-framed body that is not
    // a request, a 4 GiB length header, and a frame cut short.
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let random: Vec<u8> = (0..256)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    let mut huge = u32::MAX.to_be_bytes().to_vec();
    huge.extend_from_slice(&[0u8; 64]);
    let mut cut = 100u32.to_be_bytes().to_vec();
    cut.extend_from_slice(&[1u8; 10]);
    // A request announcing a body over the frame limit, and one whose body
    // ends early.
    let body_request = |body_len| codec::encode("request", &WireRequest::AppBody { head: b"h".to_vec(), body_len });
    let huge_body = frame(&body_request(1 << 40).unwrap());
    let mut cut_body = frame(&body_request(100).unwrap());
    cut_body.extend_from_slice(&[1u8; 10]);
    let cases: [(&str, Vec<u8>); 6] = [
        ("random", random),
        ("not a request", frame(&[0xff; 32])),
        ("4 GiB header", huge),
        ("cut short", cut),
        ("1 TiB body", huge_body),
        ("body cut short", cut_body),
    ];
    // All at once on the one connection, and each on its own.
    let answers = futures::future::join_all(cases.iter().map(|(_, b)| raw_exchange(&conn, b))).await;
    for ((name, _), answer) in cases.iter().zip(answers) {
        let e = answer.expect_err(name);
        assert!(e.to_string().contains("reset by peer"), "{name}: {e}");
    }
    for (name, bytes) in &cases {
        let e = raw_exchange(&conn, bytes).await.expect_err(name);
        assert!(e.to_string().contains("reset by peer"), "{name}: {e}");
    }
    wait_for_log(&["refused a peer request", &raw_addr, "over the limit"]).await;
    wait_for_log(&["refused a peer request", &raw_addr, "a body of 1099511627776 bytes is over the limit"]).await;

    // The connection survived, and a valid request on it is answered.
    assert!(conn.close_reason().is_none());
    let answer = raw_exchange(&conn, &frame(&app_request(b"still here"))).await.unwrap();
    let len = u32::from_be_bytes(answer[..4].try_into().unwrap()) as usize;
    assert_eq!(len, answer.len() - 4);
    let resp: WireResponse = codec::decode("response", &answer[4..]).unwrap();
    assert!(matches!(resp, WireResponse::App(Ok(ref b)) if b == b"still here"), "{resp:?}");

    // And the node serves a proper peer as before.
    let peer = PeerEndpoint::bind(localhost(), &tls_for(&ca, 2), FrameLimits::default()).unwrap();
    assert_eq!(peer.call_app(&node.addr(), b"ok".to_vec(), CALL).await.unwrap(), b"ok");
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frame_limits_hold_on_both_sides() {
    logs();
    let ca = ClusterCa::generate("limits").unwrap();
    let small = FrameLimits { max_frame: 1024 };
    let dir = tempfile::tempdir().unwrap();
    let storage = Storage::<Numbers>::open(dir.path(), Some(1)).unwrap();
    let server = PeerEndpoint::bind(localhost(), &tls_for(&ca, 1), small).unwrap();
    let net = server.network(storage.durable());
    let raft = Raft::new(1, raft_config(|_| {}), net, storage.log, storage.sm).await.unwrap();
    server.serve(raft.clone(), echo());
    let addr = server.local_addr().to_string();

    // The server refuses a request over its limit.
    let caller = PeerEndpoint::bind(localhost(), &tls_for(&ca, 2), FrameLimits::default()).unwrap();
    match caller.call_app(&addr, vec![7; 4000], CALL).await {
        Err(PeerError::Protocol(msg)) => assert!(msg.contains(&addr), "{msg}"),
        other => panic!("expected a protocol error, got {other:?}"),
    }
    // A small caller does not send what it may not.
    let small_caller = PeerEndpoint::bind(localhost(), &tls_for(&ca, 3), small).unwrap();
    match small_caller.call_app(&addr, vec![7; 4000], CALL).await {
        Err(PeerError::Protocol(msg)) => assert!(msg.contains("over the frame limit"), "{msg}"),
        other => panic!("expected a protocol error, got {other:?}"),
    }
    assert_eq!(caller.call_app(&addr, vec![7; 100], CALL).await.unwrap(), vec![7; 100]);
    // The same for a body: refused by the server, not sent by a small caller.
    let body = bytes::Bytes::from(vec![8u8; 4000]);
    match caller.call_app_with(&addr, vec![7], body.clone(), CALL).await {
        Err(PeerError::Protocol(msg)) => assert!(msg.contains(&addr), "{msg}"),
        other => panic!("expected a protocol error, got {other:?}"),
    }
    match small_caller.call_app_with(&addr, vec![7], body, CALL).await {
        Err(PeerError::Protocol(msg)) => assert!(msg.contains("over the frame limit"), "{msg}"),
        other => panic!("expected a protocol error, got {other:?}"),
    }
    let answer = caller.call_app_with(&addr, vec![7; 10], bytes::Bytes::from(vec![8u8; 500]), CALL).await.unwrap();
    assert_eq!(answer, [vec![7; 10], vec![8; 500]].concat());
    raft.shutdown().await.unwrap();
    server.close();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_peer_is_reached_on_a_fresh_connection() {
    logs();
    let ca = ClusterCa::generate("restart").unwrap();
    let first = app_node(&ca, 1, echo()).await;
    let addr = first.endpoint.local_addr();
    let caller = PeerEndpoint::bind(localhost(), &tls_for(&ca, 2), FrameLimits::default()).unwrap();
    assert_eq!(caller.call_app(&addr.to_string(), b"one".to_vec(), CALL).await.unwrap(), b"one");
    first.stop().await;
    drop(first);

    // Same address, new process state: the cached connection is dead.
    let tls = tls_for(&ca, 1);
    let deadline = tokio::time::Instant::now() + WAIT;
    let second = loop {
        match PeerEndpoint::bind(addr, &tls, FrameLimits::default()) {
            Ok(e) => break e,
            Err(e) => {
                assert!(tokio::time::Instant::now() < deadline, "cannot bind {addr} again: {e:#}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    let dir = tempfile::tempdir().unwrap();
    let storage = Storage::<Numbers>::open(dir.path(), Some(1)).unwrap();
    let net = second.network(storage.durable());
    let raft = Raft::new(1, raft_config(|_| {}), net, storage.log, storage.sm).await.unwrap();
    second.serve(raft.clone(), echo());

    // The first call may still meet the old connection; a retry must succeed.
    let mut answer = caller.call_app(&addr.to_string(), b"two".to_vec(), CALL).await;
    if answer.is_err() {
        answer = caller.call_app(&addr.to_string(), b"two".to_vec(), CALL).await;
    }
    assert_eq!(answer.unwrap(), b"two");
    raft.shutdown().await.unwrap();
    second.close();
}

/// A UDP relay between one client and one server that can drop every packet,
/// as a cut network link would.
struct Relay {
    addr: SocketAddr,
    cut: Arc<std::sync::atomic::AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl Relay {
    async fn start(server: SocketAddr) -> Self {
        let front = Arc::new(tokio::net::UdpSocket::bind(localhost()).await.unwrap());
        let back = Arc::new(tokio::net::UdpSocket::bind(localhost()).await.unwrap());
        back.connect(server).await.unwrap();
        let addr = front.local_addr().unwrap();
        let cut = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (c, f, b) = (cut.clone(), front.clone(), back.clone());
        let task = tokio::spawn(async move {
            let mut client = None;
            let (mut up, mut down) = (vec![0u8; 65536], vec![0u8; 65536]);
            loop {
                tokio::select! {
                    r = f.recv_from(&mut up) => {
                        let Ok((n, from)) = r else { continue };
                        client = Some(from);
                        if !c.load(std::sync::atomic::Ordering::SeqCst) {
                            let _ = b.send(&up[..n]).await;
                        }
                    }
                    r = b.recv(&mut down) => {
                        let Ok(n) = r else { continue };
                        if let (Some(to), false) = (client, c.load(std::sync::atomic::Ordering::SeqCst)) {
                            let _ = f.send_to(&down[..n], to).await;
                        }
                    }
                }
            }
        });
        Self { addr, cut, task }
    }

    fn set_cut(&self, cut: bool) {
        self.cut.store(cut, std::sync::atomic::Ordering::SeqCst);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_link_is_noticed_and_a_fresh_connection_made_once_it_heals() {
    logs();
    let ca = ClusterCa::generate("cut").unwrap();
    let node = app_node(&ca, 1, echo()).await;
    let relay = Relay::start(node.endpoint.local_addr()).await;
    let via = relay.addr.to_string();
    let caller = PeerEndpoint::bind(localhost(), &tls_for(&ca, 2), FrameLimits::default()).unwrap();
    assert_eq!(caller.call_app(&via, b"before".to_vec(), CALL).await.unwrap(), b"before");

    relay.set_cut(true);
    // The connection is still believed up: the call times out.
    match caller.call_app(&via, b"during".to_vec(), Duration::from_millis(500)).await {
        Err(PeerError::Timeout) => {}
        other => panic!("expected a timeout, got {other:?}"),
    }
    // Past the idle timeout the connection is known dead; no new one can be made.
    tokio::time::sleep(Duration::from_secs(6)).await;
    match caller.call_app(&via, b"during".to_vec(), Duration::from_millis(500)).await {
        Err(PeerError::Unreachable(msg)) => assert!(msg.contains(&via), "{msg}"),
        other => panic!("expected unreachable, got {other:?}"),
    }

    relay.set_cut(false);
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        match caller.call_app(&via, b"after".to_vec(), Duration::from_secs(1)).await {
            Ok(answer) => break assert_eq!(answer, b"after"),
            Err(e) => assert!(tokio::time::Instant::now() < deadline, "link healed but calls fail: {e}"),
        }
    }
    relay.task.abort();
    caller.close();
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_without_a_certificate_reach_only_the_agent_service() {
    logs();
    let ca = ClusterCa::generate("good").unwrap();
    let node = app_node(&ca, 1, echo()).await;
    let mut agent = quinn::Endpoint::client(localhost()).unwrap();
    agent.set_default_client_config(
        anonymous_client_config(ca.cert_pem(), bm_api::agent_link::ALPN, Route::Loopback).unwrap(),
    );
    let agent_addr = agent.local_addr().unwrap().to_string();
    let to = node.endpoint.local_addr();
    let echo_once = |agent: quinn::Endpoint| async move {
        let conn = agent.connect(to, PEER_SERVER_NAME).unwrap().await?;
        let (mut send, mut recv) = conn.open_bi().await?;
        send.write_all(b"ping").await?;
        send.finish()?;
        anyhow::Ok(recv.read_to_end(1 << 10).await?)
    };
    // No agent service yet: the connection is closed, with a warning naming the agent.
    assert!(tokio::time::timeout(CALL, echo_once(agent.clone())).await.unwrap().is_err());
    wait_for_log(&["refused agent connection", &agent_addr]).await;

    // With one, the same client is served by it, and only by it: the
    // agent's streams never reach Raft or the application handler.
    node.endpoint.serve_agents(Arc::new(|conn: quinn::Connection| {
        async move {
            while let Ok((mut send, mut recv)) = conn.accept_bi().await {
                let got = recv.read_to_end(1 << 10).await.unwrap_or_default();
                let _ = send.write_all(&[b"agent service: ".as_slice(), &got].concat()).await;
                let _ = send.finish();
            }
        }
        .boxed()
    }));
    let answer = tokio::time::timeout(CALL, echo_once(agent.clone())).await.unwrap().unwrap();
    assert_eq!(answer, b"agent service: ping");
    node.stop().await;
}

/// On loopback (MTU 64 KiB) bm's endpoints find, by quinn's path MTU
/// discovery, that the path carries datagrams near 64 KB, and then send
/// them: a bulk transfer costs a fraction of the packets it would at the
/// 1,200-1,452 bytes QUIC starts from. Endpoints set up for another host
/// stay at the size every network carries.
///
/// Discovery is a binary search that takes a lost probe for "too large"
/// and does not search again for ten minutes; on a loaded machine a
/// receive buffer that overflows during the bulk transfer drops a probe,
/// and that connection settles lower (57,583 bytes once in CI). So a
/// connection that settles under 60 KB is replaced by a fresh one, up to
/// three times: every connection must grow past the network's sizes, and
/// one must reach 60 KB.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loopback_connections_grow_their_datagrams_to_near_64_kb() {
    let mut seen = Vec::new();
    for _ in 0..3 {
        let mtu = path_mtu_after_bulk(Route::Loopback).await;
        assert!(mtu > 1500 && mtu <= bm_api::quic::LARGEST_DATAGRAM, "a loopback path settled at {mtu} bytes");
        seen.push(mtu);
        if mtu >= 60_000 {
            break;
        }
    }
    assert!(seen.iter().any(|m| *m >= 60_000), "no loopback connection reached 60 KB: {seen:?}");
    let network = path_mtu_after_bulk(Route::Network).await;
    assert!(network <= 1500, "a network path was sent {network}-byte datagrams");
}

/// Sends 4 MiB at a time (up to 20 times, until the path MTU reaches 60 KB)
/// between two endpoints on loopback configured for `route`; returns the
/// sender's path MTU.
async fn path_mtu_after_bulk(route: Route) -> u16 {
    let ca = ClusterCa::generate("mtu").unwrap();
    let server = bm_api::quic::endpoint(localhost(), Some(tls_for(&ca, 1).server_config(route).unwrap())).unwrap();
    let mut client = bm_api::quic::endpoint(localhost(), None).unwrap();
    client.set_default_client_config(tls_for(&ca, 2).client_config(route).unwrap());
    let addr = server.local_addr().unwrap();
    let sink = tokio::spawn(async move {
        let conn = server.accept().await.unwrap().await.unwrap();
        while let Ok(mut s) = conn.accept_uni().await {
            s.read_to_end(64 << 20).await.unwrap();
        }
    });
    let conn = client.connect(addr, PEER_SERVER_NAME).unwrap().await.unwrap();
    let chunk = vec![7u8; 4 << 20];
    let mut mtu = 0;
    for _ in 0..20 {
        let mut s = conn.open_uni().await.unwrap();
        s.write_all(&chunk).await.unwrap();
        s.finish().unwrap();
        s.stopped().await.unwrap();
        mtu = conn.stats().path.current_mtu;
        if mtu >= 60_000 {
            break;
        }
    }
    conn.close(0u32.into(), b"done");
    sink.abort();
    mtu
}
