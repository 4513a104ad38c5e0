//! A node that takes a request and never answers (stopped, or cut off
//! under a pooled connection) costs a client one limited wait, then the
//! client fails over to the next node and stays there.

use std::time::{Duration, Instant};

use bm_api::client::ClientError;
use bm_api::Client;
use reqwest::Method;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A listener nobody accepts on: the kernel completes the handshake and
/// takes the request, and no answer ever comes.
fn hung() -> (std::net::TcpListener, String) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    (l, url)
}

/// A node that answers every request with `200 {}`.
async fn answering() -> String {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                while let Ok(n) = s.read(&mut buf).await {
                    if n == 0 {
                        return;
                    }
                    let reply = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}";
                    if s.write_all(reply.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    url
}

#[tokio::test]
async fn a_node_that_never_answers_costs_one_limited_wait_then_the_client_moves_on() {
    let (_hung, hung_url) = hung();
    let good = answering().await;
    let patience = Duration::from_millis(400);
    let client = Client::new(vec![hung_url, good.clone()], None).with_patience(patience);

    let start = Instant::now();
    let resp = client.send(Method::GET, "whoami", &[], None).await.unwrap();
    let took = start.elapsed();
    assert_eq!(resp.status(), 200);
    assert!(resp.url().as_str().starts_with(&good), "answered by {}", resp.url());
    assert!(took >= patience && took < patience * 10, "failed over after {took:?}");

    // The client stays on the node that answered.
    let start = Instant::now();
    client.send(Method::GET, "whoami", &[], None).await.unwrap();
    assert!(start.elapsed() < patience, "went back to the hung node: {:?}", start.elapsed());
}

#[tokio::test]
async fn a_long_poll_gets_its_wait_on_top_and_the_error_says_what_happened() {
    let (_hung, hung_url) = hung();
    let patience = Duration::from_millis(300);
    let client = Client::new(vec![hung_url.clone()], None).with_patience(patience);
    let start = Instant::now();
    let err = client.send(Method::GET, "agent/instruction", &[("wait", "1".into())], None).await.unwrap_err();
    let took = start.elapsed();
    assert!(took >= Duration::from_millis(1300), "gave up on a 1 s long-poll after {took:?}");
    match err {
        ClientError::Transport { message, .. } => {
            assert!(message.contains("no answer within") && message.contains(&hung_url), "{message}")
        }
        e => panic!("not a transport error: {e:?}"),
    }
}
