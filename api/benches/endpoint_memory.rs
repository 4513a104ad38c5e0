//! Memory benchmark: what opening one QUIC endpoint costs in resident
//! memory, with quinn's own socket and with bm's (`bm_api::quic::endpoint`,
//! whose receive buffer is bounded).
//!
//! `cargo bench -p bm-api --bench endpoint_memory`. Every node, agent and
//! QUIC client opens one endpoint, and a process that opens them over and
//! over (the data-plane bench's agents, a CLI retrying) reuses freed
//! memory. The figures are the growth of this process's resident set
//! (VmRSS, Linux) and the time to open one, once endpoints were opened and
//! closed before. The allocator is mimalloc, as in the `bm` binaries: it
//! zero-fills a reused allocation (fresh pages from the system are zero
//! already and cost nothing until touched).

use std::net::SocketAddr;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Resident set of this process, KiB.
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Opens and closes endpoints with `open`, then opens some (kept open)
/// and prints the mean growth of the resident set and time per endpoint.
async fn measure(name: &str, open: impl Fn() -> quinn::Endpoint) {
    const N: u64 = 4;
    for e in (0..N).map(|_| open()).collect::<Vec<_>>() {
        e.close(0u32.into(), b"");
        e.wait_idle().await;
    }
    // The endpoints' drivers end and free their buffers.
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let before = rss_kib();
    let started = std::time::Instant::now();
    let kept: Vec<quinn::Endpoint> = (0..N).map(|_| open()).collect();
    let took = started.elapsed();
    let after = rss_kib();
    println!(
        "{name}: {:.1} MiB resident and {:.1} ms per endpoint ({N} opened after {N} closed)",
        after.saturating_sub(before) as f64 / N as f64 / 1024.0,
        took.as_secs_f64() * 1000.0 / N as f64
    );
    drop(kept);
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let any: SocketAddr = "127.0.0.1:0".parse().expect("an address");
    if rss_kib() == 0 {
        println!("no /proc/self/status here: nothing to measure");
        return;
    }
    measure("quinn's socket, bm's endpoint config (64 KB datagrams)", || {
        let socket = std::net::UdpSocket::bind(any).expect("a UDP socket");
        let config = bm_api::quic::endpoint_config().expect("the endpoint config");
        quinn::Endpoint::new(config, None, socket, quinn::default_runtime().expect("a runtime")).expect("an endpoint")
    })
    .await;
    measure("bm_api::quic::endpoint (bounded receive buffer)", || {
        bm_api::quic::endpoint(any, None).expect("an endpoint")
    })
    .await;
}
