//! `GET /v1/cluster/latency`: a node's commit-latency counts, from a real node.

mod common;

use bm_api::jobs::JobSubmit;
use bm_api::users::UserCreate;
use bm_api::{Client, ErrorCode};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_committed_command_is_counted_and_only_admins_may_read_the_counts() {
    let (_tmp, running, admin, _) = common::in_process().await;
    // New work held: the scheduler asks for no workers for the jobs below,
    // so the only commands committed in between are the five submits.
    admin.control_hold(true).await.unwrap();

    let before = admin.cluster_latency().await.unwrap();
    assert_eq!(before.node, running.node.id());
    for i in 0..5 {
        admin.job_submit(&JobSubmit::script(&format!("j{i}"), "default", "true")).await.unwrap();
    }
    let after = admin.cluster_latency().await.unwrap();
    let five = after.since(&before);
    assert_eq!(five.total(), 5, "{five:?}");
    let p99 = five.quantile_us(0.99).unwrap();
    assert!(p99 > 0 && p99 < 60_000_000, "{p99} µs");

    let user = admin.user_create(&UserCreate { name: "u".into(), privileges: vec![] }).await.unwrap();
    let e = Client::new(vec![running.url()], Some(user.token)).cluster_latency().await.unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::Forbidden), "{e}");
    running.stop().await;
}

/// The benches' lean connection (`bm_api::loadgen`) speaks to a real node:
/// submits commit and count like any other, and a bad token is an error
/// with the node's answer, so a bench never counts a refused request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_benches_lean_connection_submits_to_a_real_node_and_sees_its_refusals() {
    let (_tmp, running, admin, token) = common::in_process().await;
    admin.control_hold(true).await.unwrap();

    let mut conn = bm_api::loadgen::LoadConn::connect(&running.url(), &token).await.unwrap();
    let mut ids = Vec::new();
    for i in 0..3 {
        ids.push(conn.submit(&JobSubmit::script(&format!("lean{i}"), "default", "true")).await.unwrap().id);
    }
    for id in &ids {
        let job = admin.job(id).await.unwrap();
        assert!(job.name.starts_with("lean"), "{job:?}");
    }

    let mut bad = bm_api::loadgen::LoadConn::connect(&running.url(), "not-a-token").await.unwrap();
    let e = bad.call("GET", "whoami", None).await.unwrap_err();
    assert!(matches!(e, bm_api::loadgen::LoadError::Status { status: 401, .. }), "{e}");
    let e = conn.call("POST", "jobs", Some(b"{\"name\":")).await.unwrap_err();
    assert!(matches!(e, bm_api::loadgen::LoadError::Status { status: 400, .. }), "{e}");
    running.stop().await;
}
