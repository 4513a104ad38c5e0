//! `GET /v1/cluster/latency`: a node's commit-latency counts, from a real node.

use bm_api::jobs::JobSubmit;
use bm_api::targets::TargetCreate;
use bm_api::users::UserCreate;
use bm_api::{Client, ErrorCode};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_committed_command_is_counted_and_only_admins_may_read_the_counts() {
    let tmp = tempfile::tempdir().unwrap();
    let running =
        bm_node::start(bm_node::NodeConfig::in_dir(tmp.path(), "127.0.0.1:0".parse().unwrap())).await.unwrap();
    let token = std::fs::read_to_string(tmp.path().join("admin-token")).unwrap().trim().to_string();
    let admin = Client::new(vec![running.url()], Some(token));
    admin.target_create(&TargetCreate::named("default")).await.unwrap();
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
