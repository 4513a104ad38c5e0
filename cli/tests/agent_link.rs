//! The agent link over QUIC: an agent streams its log to the nearest node,
//! and when that node dies it reconnects to another and goes on, without a
//! gap or a duplicate in the log any node serves.

mod common;

use std::time::{Duration, Instant};

use bm_api::jobs::{JobState, JobSubmit};
use bm_api::Client;
use bm_node::config::RaftTuning;
use common::{default_target, factory, Cluster};

/// Lines the job prints, one every 20 ms (about 8 s in all).
const LINES: usize = 400;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_whose_node_is_killed_reconnects_and_every_node_serves_the_whole_log() {
    let mut c = Cluster::start(3, RaftTuning::frequent_snapshots()).await;
    let admin = c.client();
    default_target(&admin).await;
    let _factory = factory(&c).await;
    // Every 100th line comes with a burst of 1,500 more, which the agent
    // ships in batches large enough to go as log chunks.
    let script = format!(
        "for i in $(seq 1 {LINES}); do echo line-$i; \
         if [ $((i % 100)) = 0 ]; then seq -f \"burst-$i-%g\" 1 1500; fi; sleep 0.02; done\n"
    );
    let job = admin.job_submit(&JobSubmit::script("stream", "default", &script)).await.unwrap().id;

    // Find the node the running job's agent talks to, once some lines are in.
    let deadline = Instant::now() + Duration::from_secs(120);
    let carrier = loop {
        let running = admin.job(&job).await.map(|j| j.state == JobState::Running).unwrap_or(false);
        let lines = stdout_lines(&admin, &job).await.len();
        if running && lines > 20 {
            let mut found = None;
            for id in c.procs.keys().copied().collect::<Vec<_>>() {
                if c.node_status(id).await.is_some_and(|s| s.agents > 0) {
                    found = Some(id);
                }
            }
            if let Some(id) = found {
                break id;
            }
        }
        assert!(Instant::now() < deadline, "the job never ran with an agent connected over QUIC");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    c.kill(carrier);

    // The agent moves to another node (it was killed after about a tenth
    // of the lines) and the job ends well.
    let admin = c.client();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        match admin.job(&job).await {
            Ok(j) if j.state.is_terminal() => {
                assert_eq!(j.state, JobState::Completed, "{j:?}");
                break;
            }
            other => assert!(Instant::now() < deadline, "the job did not end: {other:?}"),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Every surviving node serves exactly what the program wrote.
    let want: Vec<String> = (1..=LINES)
        .flat_map(|i| {
            let burst = (1..=1500).take(if i % 100 == 0 { 1500 } else { 0 });
            std::iter::once(format!("line-{i}")).chain(burst.map(move |b| format!("burst-{i}-{b}")))
        })
        .collect();
    for id in c.procs.keys().copied().filter(|id| *id != carrier).collect::<Vec<_>>() {
        let node = c.client_of(id);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let got = stdout_lines(&node, &job).await;
            if got == want {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "node {id} serves {} lines, not the {} written in order; first difference at {:?}",
                got.len(),
                want.len(),
                got.iter().zip(&want).position(|(a, b)| a != b)
            );
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }
}

/// The job's standard output as a node serves it (all pages).
async fn stdout_lines(client: &Client, job: &str) -> Vec<String> {
    let mut lines = Vec::new();
    let mut next = 0;
    loop {
        let Ok(page) = client.job_events(job, next, None).await else { return lines };
        let Some(last) = page.events.last() else { return lines };
        next = last.seq + 1;
        lines.extend(page.events.iter().filter(|e| e.stream == "stdout").map(|e| e.payload.clone()));
    }
}

/// A packed events batch that is garbage, shorter than announced or over
/// the frame limit is refused with an error that names the job and what
/// was wrong; the connection goes on serving good calls.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_packed_events_batch_is_refused_with_its_reason() {
    use bm_api::agent::AgentEvent;
    use bm_api::agent_link::{proto::MAX_FRAME, AgentCall, AgentLink};
    use bm_api::{eventlog::EventLog, ClientError, ErrorCode};

    let c = Cluster::start(1, RaftTuning::default()).await;
    let ca = std::fs::read_to_string(c.path().join("c/ca.pem")).unwrap();
    let link = AgentLink::new(vec![c.peer(1)], &ca).unwrap();
    let call = |size: u64| AgentCall::Events { job: "J1".into(), epoch: 1, first: Some(0), size };
    let refusal = |r: Result<_, ClientError>| match r {
        Err(ClientError::Api { error, .. }) => error,
        other => panic!("expected an API error, got {other:?}"),
    };

    let e = refusal(link.call(call(5), Some(bytes::Bytes::from_static(b"\xff\xff\xff\xff\xff"))).await);
    assert_eq!(e.code, ErrorCode::BadRequest, "{e:?}");
    assert!(e.message.contains("events of job J1") && e.message.contains("cannot decode events"), "{e:?}");

    let e = refusal(link.call(call(100), Some(bytes::Bytes::from_static(b"short"))).await);
    assert_eq!(e.code, ErrorCode::BadRequest, "{e:?}");
    assert!(e.message.contains("not received whole"), "{e:?}");

    let e = refusal(link.call(call(MAX_FRAME as u64 + 1), None).await);
    assert_eq!(e.code, ErrorCode::BadRequest, "{e:?}");
    assert!(e.message.contains("over the limit"), "{e:?}");

    // A well-formed batch gets past the checks and is refused only for
    // want of a worker credential: nothing above broke the connection.
    let line = AgentEvent { stream: "stdout".into(), task: Some(0), time: chrono::Utc::now(), payload: "hi".into() };
    let packed = bm_api::codec::encode("events", &EventLog::from_events([line]).unwrap()).unwrap();
    let e = refusal(link.call(call(packed.len() as u64), Some(packed.into())).await);
    assert_eq!(e.code, ErrorCode::Unauthorized, "{e:?}");
}
