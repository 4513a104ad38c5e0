//! Ports for the nodes of a cluster planned on one machine (`bm up
//! --nodes N`, `bm local run`, the tests, the benches, the chaos suite).
//!
//! A cluster's files name every node's ports before any node runs, so the
//! planner must pick ports that nobody else takes in between. Binding port
//! 0 and closing the socket gives a port from the kernel's ephemeral range,
//! which the kernel hands to the next outgoing connection or port-0 bind of
//! any process: with many tests running at once, a node then sometimes
//! found its port taken and never came up. Ports here come from below the
//! ephemeral range instead, in turn from one counter shared by every
//! process of the user on this machine (a small file under the temporary
//! directory, locked while it is read and advanced), and each is checked
//! free before it is handed out. Where none of that is possible (no
//! ephemeral range to stay below, no writable temporary directory), the
//! kernel's port 0 is the fallback.

use std::fs::OpenOptions;
use std::io::{Read, Seek, SeekFrom, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, UdpSocket};
use std::ops::Range;
use std::path::{Path, PathBuf};

/// The lowest port handed out: above the well-known and most registered
/// service ports.
const LOWEST: u16 = 10_000;

/// A free TCP port on `ip`, for a node's HTTP API.
pub fn free_tcp(ip: IpAddr) -> std::io::Result<SocketAddr> {
    claim(&counter(), ip, |a| TcpListener::bind(a).map(drop), || TcpListener::bind((ip, 0))?.local_addr())
}

/// A free UDP port on `ip`, for a node's QUIC peer endpoint.
pub fn free_udp(ip: IpAddr) -> std::io::Result<SocketAddr> {
    claim(&counter(), ip, |a| UdpSocket::bind(a).map(drop), || UdpSocket::bind((ip, 0))?.local_addr())
}

/// The shared counter's file.
fn counter() -> PathBuf {
    std::env::temp_dir().join("bm-next-port")
}

fn claim(
    counter: &Path,
    ip: IpAddr,
    probe: impl Fn(SocketAddr) -> std::io::Result<()>,
    fallback: impl FnOnce() -> std::io::Result<SocketAddr>,
) -> std::io::Result<SocketAddr> {
    let Some(range) = below_ephemeral() else { return fallback() };
    for _ in 0..range.len() {
        let Ok(port) = next_port(counter, &range) else { return fallback() };
        let addr = SocketAddr::new(ip, port);
        if probe(addr).is_ok() {
            return Ok(addr);
        }
    }
    fallback()
}

/// The ports from [`LOWEST`] up to the start of the kernel's ephemeral
/// range, when there are at least a thousand.
fn below_ephemeral() -> Option<Range<u16>> {
    let text = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").ok()?;
    let low: u16 = text.split_whitespace().next()?.parse().ok()?;
    (low >= LOWEST + 1_000).then_some(LOWEST..low)
}

/// Takes the next port of `range` from the counter in `path` and advances it.
fn next_port(path: &Path, range: &Range<u16>) -> std::io::Result<u16> {
    let mut file = OpenOptions::new().read(true).write(true).create(true).truncate(false).open(path)?;
    file.lock()?;
    let mut text = String::new();
    file.read_to_string(&mut text)?;
    let port = match text.trim().parse::<u16>() {
        Ok(p) if range.contains(&p) => p,
        // A first use starts somewhere in the range, so that two machines'
        // worth of leftovers (or another user's counter) rarely line up.
        _ => range.start + (std::process::id() % u32::from(range.end - range.start)) as u16,
    };
    let next = if port + 1 >= range.end { range.start } else { port + 1 };
    file.set_len(0)?;
    file.seek(SeekFrom::Start(0))?;
    write!(file, "{next}")?;
    Ok(port)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

    #[test]
    fn ports_come_free_distinct_and_below_the_ephemeral_range() {
        let ports: Vec<SocketAddr> = (0..50).map(|_| free_tcp(LOOPBACK).unwrap()).collect();
        let mut distinct: Vec<u16> = ports.iter().map(|a| a.port()).collect();
        distinct.sort();
        distinct.dedup();
        assert_eq!(distinct.len(), ports.len(), "a port was handed out twice: {ports:?}");
        if let Some(range) = below_ephemeral() {
            assert!(ports.iter().all(|a| range.contains(&a.port())), "{ports:?} not in {range:?}");
        }
        for a in ports {
            TcpListener::bind(a).unwrap_or_else(|e| panic!("{a} was handed out but is not free: {e}"));
        }
    }

    #[test]
    fn a_port_in_use_is_skipped() {
        let Some(range) = below_ephemeral() else {
            eprintln!("no range below the ephemeral ports here; nothing to check");
            return;
        };
        let held = free_udp(LOOPBACK).unwrap();
        let _socket = UdpSocket::bind(held).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let counter = dir.path().join("next");
        std::fs::write(&counter, held.port().to_string()).unwrap();
        let probe = |a| UdpSocket::bind(a).map(drop);
        let got = claim(&counter, LOOPBACK, probe, || panic!("fell back to port 0")).unwrap();
        assert_ne!(got, held, "the port in use was handed out");
        assert!(range.contains(&got.port()), "{got} not in {range:?}");
        let next = if got.port() + 1 >= range.end { range.start } else { got.port() + 1 };
        let after = std::fs::read_to_string(&counter).unwrap();
        assert_eq!(after, next.to_string(), "the counter did not move past {got}");
    }
}
