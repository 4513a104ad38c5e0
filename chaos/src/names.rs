//! Which endpoint a source address belongs to.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::Endpoint;

/// Maps the addresses datagrams come from to the endpoints faults name.
#[derive(Default)]
pub(crate) struct Names(HashMap<SocketAddr, Endpoint>);

impl Names {
    /// Records that datagrams from `addr` come from `id`. A wildcard address (a socket bound to 0.0.0.0:p)
    /// sends to the relays from loopback, so its loopback form is recorded too.
    pub(crate) fn insert(&mut self, addr: SocketAddr, id: Endpoint) {
        self.0.insert(addr, id);
        let reachable = reachable(addr);
        if reachable != addr {
            self.0.insert(reachable, id);
        }
    }

    /// The endpoint `addr` belongs to, or `None` for an anonymous source.
    pub(crate) fn who(&self, addr: SocketAddr) -> Option<Endpoint> {
        self.0.get(&addr).copied()
    }
}

/// Where a relay must send to reach a socket listening on `addr`: a wildcard address is reached on loopback.
pub(crate) fn reachable(addr: SocketAddr) -> SocketAddr {
    if addr.ip().is_unspecified() {
        SocketAddr::new(loopback(addr), addr.port())
    } else {
        addr
    }
}

/// The loopback address of `addr`'s family, where relays bind so that they can talk to `addr`.
pub(crate) fn loopback(addr: SocketAddr) -> IpAddr {
    match addr {
        SocketAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
        SocketAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcard_listeners_are_known_by_their_loopback_address() {
        let mut names = Names::default();
        names.insert("0.0.0.0:4000".parse().unwrap(), 1);
        names.insert("127.0.0.1:5000".parse().unwrap(), 2);
        assert_eq!(names.who("127.0.0.1:4000".parse().unwrap()), Some(1));
        assert_eq!(names.who("0.0.0.0:4000".parse().unwrap()), Some(1));
        assert_eq!(names.who("127.0.0.1:5000".parse().unwrap()), Some(2));
        assert_eq!(names.who("127.0.0.1:6000".parse().unwrap()), None);
    }

    #[test]
    fn reachable_keeps_concrete_addresses_and_families() {
        let concrete: SocketAddr = "127.0.0.2:7".parse().unwrap();
        assert_eq!(reachable(concrete), concrete);
        assert_eq!(reachable("[::]:9".parse().unwrap()), "[::1]:9".parse().unwrap());
    }
}
