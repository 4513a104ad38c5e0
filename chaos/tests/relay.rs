//! The relay with real UDP sockets on 127.0.0.1: forwarding, NAT behaviour, cuts, partitions and link quality.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use bm_chaos::{Endpoint, Net, Quality, Stats};
use tokio::net::UdpSocket;
use tokio::time::timeout;

/// How long a datagram that should arrive may take.
const ARRIVES: Duration = Duration::from_secs(5);
/// How long to wait to be satisfied that a blocked datagram does not arrive.
const SILENCE: Duration = Duration::from_millis(300);

async fn socket() -> UdpSocket {
    UdpSocket::bind("127.0.0.1:0").await.unwrap()
}

/// Receives one datagram, or `None` if nothing comes within `wait`.
async fn recv_within(sock: &UdpSocket, wait: Duration) -> Option<(Vec<u8>, SocketAddr)> {
    let mut buf = vec![0u8; 65536];
    let (n, from) = timeout(wait, sock.recv_from(&mut buf)).await.ok()?.unwrap();
    Some((buf[..n].to_vec(), from))
}

async fn recv(sock: &UdpSocket) -> (Vec<u8>, SocketAddr) {
    recv_within(sock, ARRIVES).await.expect("a datagram should have arrived")
}

async fn silent(sock: &UdpSocket) {
    if let Some((data, from)) = recv_within(sock, SILENCE).await {
        panic!("unexpected datagram {data:?} from {from}");
    }
}

/// A network of endpoints, each a real socket behind its relay.
struct Cluster {
    net: Net,
    socks: HashMap<Endpoint, UdpSocket>,
    relays: HashMap<Endpoint, SocketAddr>,
}

impl Cluster {
    async fn new(ids: &[Endpoint]) -> Self {
        let net = Net::new(42);
        let (mut socks, mut relays) = (HashMap::new(), HashMap::new());
        for &id in ids {
            let sock = socket().await;
            relays.insert(id, net.add(id, sock.local_addr().unwrap()).await.unwrap());
            socks.insert(id, sock);
        }
        Self { net, socks, relays }
    }

    /// Sends `data` from endpoint `from` to endpoint `to` through `to`'s relay.
    async fn send(&self, from: Endpoint, to: Endpoint, data: &[u8]) {
        self.socks[&from].send_to(data, self.relays[&to]).await.unwrap();
    }

    /// Sends from `from` to `to` and checks that `to` gets it; returns the address `to` sees `from` at.
    async fn reaches(&self, from: Endpoint, to: Endpoint) -> SocketAddr {
        let data = format!("{from}->{to}");
        self.send(from, to, data.as_bytes()).await;
        let (got, seen) = recv(&self.socks[&to]).await;
        assert_eq!(got, data.as_bytes());
        seen
    }

    /// Sends from `from` to `to` and checks that nothing arrives.
    async fn blocked(&self, from: Endpoint, to: Endpoint) {
        self.send(from, to, b"blocked").await;
        silent(&self.socks[&to]).await;
    }
}

#[tokio::test]
async fn forwards_both_ways() {
    let c = Cluster::new(&[1, 2]).await;
    let seen = c.reaches(2, 1).await;
    assert_ne!(seen, c.socks[&2].local_addr().unwrap(), "node 1 sees the relay's upstream socket");
    c.socks[&1].send_to(b"pong", seen).await.unwrap();
    let (got, from) = recv(&c.socks[&2]).await;
    assert_eq!((got.as_slice(), from), (&b"pong"[..], c.relays[&1]), "the reply comes from node 1's relay");
    assert_eq!(c.net.stats(), Stats { forwarded: 2, ..Stats::default() });
}

#[tokio::test]
async fn two_sources_get_distinct_stable_upstreams() {
    let c = Cluster::new(&[1, 2, 3]).await;
    let from2 = c.reaches(2, 1).await;
    let from3 = c.reaches(3, 1).await;
    assert_ne!(from2, from3);
    assert_eq!(c.reaches(2, 1).await, from2);
    assert_eq!(c.reaches(3, 1).await, from3);
    for (seen, to, other) in [(from2, 2, 3), (from3, 3, 2)] {
        c.socks[&1].send_to(b"back", seen).await.unwrap();
        assert_eq!(recv(&c.socks[&to]).await, (b"back".to_vec(), c.relays[&1]));
        silent(&c.socks[&other]).await;
    }
}

#[tokio::test]
async fn cut_blocks_one_direction_only() {
    let c = Cluster::new(&[1, 2]).await;
    let seen = c.reaches(2, 1).await;

    c.net.cut(2, 1);
    c.blocked(2, 1).await;
    c.socks[&1].send_to(b"reply", seen).await.unwrap();
    assert_eq!(recv(&c.socks[&2]).await.0, b"reply", "replies from 1 to 2 still pass");
    c.reaches(1, 2).await;

    c.net.heal();
    c.net.cut(1, 2);
    c.reaches(2, 1).await;
    c.socks[&1].send_to(b"reply", seen).await.unwrap();
    silent(&c.socks[&2]).await;
    c.blocked(1, 2).await;
    assert_eq!(c.net.stats().cut, 3);
}

#[tokio::test]
async fn partition_separates_groups() {
    let c = Cluster::new(&[1, 2, 3]).await;
    c.net.partition(&[vec![1], vec![2, 3]]);
    c.reaches(2, 3).await;
    c.reaches(3, 2).await;
    for (from, to) in [(1, 2), (2, 1), (1, 3), (3, 1)] {
        c.blocked(from, to).await;
    }
}

#[tokio::test]
async fn isolate_cuts_one_endpoint_off() {
    let c = Cluster::new(&[1, 2, 3]).await;
    c.net.isolate(1);
    c.blocked(2, 1).await;
    c.blocked(1, 3).await;
    c.reaches(2, 3).await;
}

#[tokio::test]
async fn heal_restores_every_link() {
    let c = Cluster::new(&[1, 2, 3]).await;
    c.net.cut_both(1, 2);
    c.net.isolate(3);
    c.blocked(1, 2).await;
    c.blocked(2, 1).await;
    c.blocked(2, 3).await;
    c.net.heal();
    for (from, to) in [(1, 2), (2, 1), (2, 3), (3, 1)] {
        c.reaches(from, to).await;
    }
}

#[tokio::test]
async fn named_sources_can_be_cut_and_anonymous_ones_cannot() {
    let c = Cluster::new(&[1]).await;
    let (agent, stranger) = (socket().await, socket().await);
    c.net.name_source(100, agent.local_addr().unwrap());
    c.net.cut(100, 1);
    c.net.isolate(1);
    agent.send_to(b"agent", c.relays[&1]).await.unwrap();
    stranger.send_to(b"stranger", c.relays[&1]).await.unwrap();
    assert_eq!(recv(&c.socks[&1]).await.0, b"stranger");
    silent(&c.socks[&1]).await;
}

#[tokio::test]
async fn certain_drop_drops_everything() {
    let c = Cluster::new(&[1, 2]).await;
    c.net.set_quality(Quality { drop: 1.0, ..Quality::default() });
    for _ in 0..20 {
        c.send(2, 1, b"lost").await;
    }
    silent(&c.socks[&1]).await;
    assert_eq!(c.net.stats(), Stats { dropped: 20, ..Stats::default() });
}

#[tokio::test]
async fn a_bad_link_spoils_only_that_link() {
    let c = Cluster::new(&[1, 2, 3]).await;
    c.net.set_link_quality(2, 1, Quality { drop: 1.0, ..Quality::default() });
    for _ in 0..10 {
        c.send(2, 1, b"lost").await;
    }
    silent(&c.socks[&1]).await;
    c.send(3, 1, b"from 3").await;
    assert_eq!(recv(&c.socks[&1]).await.0, b"from 3");
    c.send(1, 2, b"other way").await;
    assert_eq!(recv(&c.socks[&2]).await.0, b"other way");
    c.net.clear_link_qualities();
    c.send(2, 1, b"healed").await;
    assert_eq!(recv(&c.socks[&1]).await.0, b"healed");
    assert_eq!(c.net.stats(), Stats { dropped: 10, forwarded: 3, ..Stats::default() });
}

#[tokio::test]
async fn certain_duplication_doubles_everything() {
    let c = Cluster::new(&[1, 2]).await;
    c.net.set_quality(Quality { duplicate: 1.0, ..Quality::default() });
    for i in 0..10u8 {
        c.send(2, 1, &[i]).await;
    }
    let mut got = Vec::new();
    for _ in 0..20 {
        got.push(recv(&c.socks[&1]).await.0[0]);
    }
    silent(&c.socks[&1]).await;
    got.sort_unstable();
    assert_eq!(got, (0..10u8).flat_map(|i| [i, i]).collect::<Vec<_>>());
    assert_eq!(c.net.stats(), Stats { forwarded: 10, duplicated: 10, ..Stats::default() });
}

#[tokio::test]
async fn a_delay_range_reorders() {
    let c = Cluster::new(&[1, 2]).await;
    let ms = Duration::from_millis(1);
    c.net.set_quality(Quality { delay_min: ms, delay_max: 40 * ms, ..Quality::default() });
    for i in 0..200u16 {
        c.send(2, 1, &i.to_be_bytes()).await;
    }
    let mut got = Vec::new();
    while let Some((data, _)) = recv_within(&c.socks[&1], Duration::from_secs(2)).await {
        got.push(u16::from_be_bytes([data[0], data[1]]));
        if got.len() == 200 {
            break;
        }
    }
    assert!(got.len() >= 150, "only {} of 200 datagrams arrived", got.len());
    assert!(got.windows(2).any(|w| w[0] > w[1]), "no datagram overtook another");
    assert_eq!(c.net.stats().delayed, 200);
}

#[tokio::test]
async fn survives_empty_datagrams_and_a_dead_upstream() {
    let net = Net::new(1);
    let dead = socket().await.local_addr().unwrap(); // the socket is closed at once
    let dead_relay = net.add(1, dead).await.unwrap();
    let live = socket().await;
    let live_relay = net.add(2, live.local_addr().unwrap()).await.unwrap();
    let client = socket().await;
    for _ in 0..5 {
        client.send_to(b"anyone?", dead_relay).await.unwrap();
        client.send_to(b"", dead_relay).await.unwrap();
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    client.send_to(b"", live_relay).await.unwrap();
    assert_eq!(recv(&live).await.0, b"");
    client.send_to(b"still there", dead_relay).await.unwrap();
    client.send_to(b"after", live_relay).await.unwrap();
    assert_eq!(recv(&live).await.0, b"after");
    // Relay 1 runs apart from relay 2: give it time to count its last datagram.
    let counted = async {
        while net.stats().forwarded < 13 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    timeout(ARRIVES, counted).await.expect("relay 1 stopped forwarding");
    assert_eq!(net.stats().forwarded, 13);
}

#[tokio::test]
async fn shutdown_stops_the_relays() {
    let c = Cluster::new(&[1, 2]).await;
    c.reaches(2, 1).await;
    c.net.shutdown();
    tokio::task::yield_now().await;
    c.send(2, 1, b"too late").await;
    silent(&c.socks[&1]).await;
    assert!(c.net.add(3, "127.0.0.1:9".parse().unwrap()).await.is_err());
}
