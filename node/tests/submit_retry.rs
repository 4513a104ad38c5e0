//! A submit whose answer is lost is retried on another address and still
//! makes one job: `bm_api::Client` gives each submit a key, and the state
//! machine answers a retry with the job the first attempt made.

mod common;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bm_api::jobs::{JobListQuery, JobSubmit};
use bm_api::Client;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Reads one HTTP/1.1 message (headers and a `content-length` body) from `s`.
async fn read_message(s: &mut TcpStream) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        if let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&got[..end]).to_ascii_lowercase();
            let len = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map(|v| v.trim().parse::<usize>().unwrap())
                .unwrap_or(0);
            if got.len() >= end + 4 + len {
                return got;
            }
        }
        let n = s.read(&mut buf).await.unwrap();
        assert!(n > 0, "the peer closed mid-message");
        got.extend_from_slice(&buf[..n]);
    }
}

/// A proxy in front of `node` that passes each request on, waits for the
/// node's answer, and then closes the client's connection without it: a
/// node that committed and died (or a network that lost the answer).
/// Returns its URL and the requests it passed on.
async fn answer_dropping_proxy(node: SocketAddr) -> (String, Arc<Mutex<Vec<String>>>) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let passed = seen.clone();
    tokio::spawn(async move {
        loop {
            let (mut client, _) = l.accept().await.unwrap();
            let passed = passed.clone();
            tokio::spawn(async move {
                let request = read_message(&mut client).await;
                let mut up = TcpStream::connect(node).await.unwrap();
                up.write_all(&request).await.unwrap();
                let answer = read_message(&mut up).await;
                assert!(answer.starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&answer));
                passed.lock().unwrap().push(String::from_utf8_lossy(&request).into_owned());
                // Dropped: the client never hears the answer.
            });
        }
    });
    (url, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_submit_whose_answer_was_lost_is_retried_elsewhere_and_makes_one_job() {
    let (_tmp, running, admin, token) = common::in_process().await;
    admin.control_hold(true).await.unwrap();

    let node_addr: SocketAddr = running.url().trim_start_matches("http://").parse().unwrap();
    let (proxy, passed) = answer_dropping_proxy(node_addr).await;
    // The proxy first: the client's first attempt commits and loses its
    // answer; the client fails over to the node itself.
    let client = Client::new(vec![proxy, running.url()], Some(token));
    let job = client.job_submit(&JobSubmit::script("once", "default", "true")).await.unwrap();

    let passed = passed.lock().unwrap().clone();
    assert_eq!(passed.len(), 1, "the first attempt reached the node: {passed:?}");
    assert!(passed[0].contains("\"submit_key\":\""), "the client keyed the submit: {}", passed[0]);
    let named: Vec<_> =
        admin.jobs(&JobListQuery::default()).await.unwrap().into_iter().filter(|j| j.name == "once").collect();
    assert_eq!(named.len(), 1, "one job, not one per attempt: {named:?}");
    assert_eq!(named[0].id, job.id, "the retry answered the job the first attempt made");

    // A caller's own key holds across separate calls too (`bm job run
    // --submit-key`), and a different job under it is refused.
    let keyed = JobSubmit { submit_key: Some("release-42".into()), ..JobSubmit::script("rel", "default", "true") };
    let a = admin.job_submit(&keyed).await.unwrap();
    let b = admin.job_submit(&keyed).await.unwrap();
    assert_eq!(a.id, b.id);
    let other = JobSubmit { submit_key: Some("release-42".into()), ..JobSubmit::script("rel2", "default", "true") };
    let e = admin.job_submit(&other).await.unwrap_err();
    assert_eq!(e.code(), Some(bm_api::ErrorCode::Conflict), "{e}");
    assert!(e.to_string().contains("release-42"), "{e}");
    running.stop().await;
}
