//! What a node acknowledged survives `kill -9` and a restart.

mod common;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bm_api::jobs::{JobListQuery, StorePut};
use bm_api::targets::TargetCreate;
use bm_api::users::UserCreate;
use common::{job, NodeProc};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_users_tokens_and_jobs_survive_kill_9() {
    let tmp = tempfile::tempdir().unwrap();
    let mut node = NodeProc::start(tmp.path());
    let admin = node.admin();
    admin.target_create(&TargetCreate::named("default")).await.unwrap();
    let alice = admin.user_create(&UserCreate { name: "alice".into(), privileges: vec![] }).await.unwrap();
    let as_alice = bm_api::Client::new(vec![node.url.clone()], Some(alice.token.clone()));
    let j = as_alice.job_submit(&job("build", "default")).await.unwrap();
    as_alice.job_store_put(&j.id, "secret", &StorePut { value: "hunter2".into(), secret: true }).await.unwrap();

    node.restart();

    let admin = node.admin();
    let as_alice = bm_api::Client::new(vec![node.url.clone()], Some(alice.token.clone()));
    let me = as_alice.whoami().await.expect("alice's token still works after kill -9");
    assert_eq!(me.name, "alice");
    let back = as_alice.job(&j.id).await.unwrap();
    assert_eq!(back.name, "build");
    assert_eq!(back.owner, alice.user.id);
    let s = as_alice.job_store_get(&j.id, "secret").await.unwrap();
    assert!(s.secret && s.value.is_none(), "secret stays hidden: {s:?}");
    assert_eq!(admin.targets().await.unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_job_acknowledged_before_a_kill_9_is_there_after_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let mut node = NodeProc::start(tmp.path());
    let admin = node.admin();
    admin.target_create(&TargetCreate::named("default")).await.unwrap();
    let acked = Arc::new(Mutex::new(BTreeSet::new()));
    let mut tasks = Vec::new();
    for c in 0..16 {
        let (client, acked) = (admin.clone(), acked.clone());
        tasks.push(tokio::spawn(async move {
            for i in 0..10_000 {
                match client.job_submit(&job(&format!("c{c}-{i}"), "default")).await {
                    Ok(j) => {
                        acked.lock().unwrap().insert(j.id);
                    }
                    Err(_) => return,
                }
            }
        }));
    }
    // Let writes flow, then pull the plug mid-stream.
    while acked.lock().unwrap().len() < 300 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    node.kill9();
    for t in tasks {
        t.await.unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    node.restart();
    let jobs = node.admin().jobs(&JobListQuery { limit: Some(1_000_000), ..Default::default() }).await.unwrap();
    let present: BTreeSet<String> = jobs.into_iter().map(|j| j.id).collect();
    let lost: Vec<_> = acked.difference(&present).collect();
    assert!(lost.is_empty(), "{} of {} acknowledged jobs lost after kill -9: {:?}", lost.len(), acked.len(), lost);
}
