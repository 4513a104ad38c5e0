//! A job's events over long-poll and server-sent events, from a real node.

use std::time::{Duration, Instant};

mod common;

use bm_api::jobs::JobSubmit;
use bm_api::Client;

async fn node() -> (tempfile::TempDir, bm_node::Running, Client, String) {
    common::in_process().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_poll_returns_as_soon_as_an_event_is_applied() {
    let (_tmp, running, admin, _) = node().await;
    let j = admin.job_submit(&JobSubmit::script("lp", "default", "true")).await.unwrap();
    let first = admin.job_events(&j.id, 0, None).await.unwrap();
    let next = first.events.len() as u64;
    let waiter = {
        let admin = admin.clone();
        let id = j.id.clone();
        tokio::spawn(async move {
            let t = Instant::now();
            let page = admin.job_events(&id, next, Some(30)).await.unwrap();
            (page, t.elapsed())
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    admin.job_cancel(&j.id).await.unwrap();
    let (page, waited) = waiter.await.unwrap();
    assert!(waited < Duration::from_secs(30), "the long-poll ran to its limit");
    assert_eq!(page.events[0].seq, next, "no gap after what the reader had");
    assert!(page.events.iter().any(|e| e.payload == "job cancelled"), "{:?}", page.events);
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_sent_events_carry_every_event_in_order_and_end_with_the_job() {
    let (_tmp, running, admin, token) = node().await;
    let j = admin.job_submit(&JobSubmit::script("sse", "default", "true")).await.unwrap();
    admin.job_cancel(&j.id).await.unwrap();
    let all = admin.job_events(&j.id, 0, None).await.unwrap().events;
    let body = reqwest::Client::new()
        .get(format!("{}/v1/jobs/{}/events/sse", running.url(), j.id))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let ids: Vec<u64> = body.lines().filter_map(|l| l.strip_prefix("id:")).map(|v| v.trim().parse().unwrap()).collect();
    assert_eq!(ids, (0..all.len() as u64).collect::<Vec<_>>(), "{body}");
    assert!(body.lines().any(|l| l.trim() == "event:control"), "{body}");
    let unauth = reqwest::get(format!("{}/v1/jobs/{}/events/sse", running.url(), j.id)).await.unwrap();
    assert_eq!(unauth.status(), 401);
    running.stop().await;
}
