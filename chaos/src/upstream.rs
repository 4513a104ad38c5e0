//! A relay's NAT table: one upstream socket per source address, closed once idle.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::guard::TaskGuard;
use crate::link::Link;

/// How long an upstream socket may go without traffic either way before it is closed.
pub(crate) const IDLE: Duration = Duration::from_secs(60);

/// When an upstream socket was last used, shared by the relay (datagrams going up) and the upstream's reader
/// (replies coming back) without a lock.
#[derive(Clone)]
pub(crate) struct LastUse {
    epoch: Instant,
    /// Milliseconds since `epoch`.
    millis: Arc<AtomicU64>,
}

impl LastUse {
    /// Used now.
    pub(crate) fn new() -> Self {
        Self { epoch: Instant::now(), millis: Arc::new(AtomicU64::new(0)) }
    }

    /// Records a use now.
    pub(crate) fn touch(&self) {
        let millis = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.millis.store(millis, Ordering::Relaxed);
    }

    /// How long it has been unused at `now`.
    fn idle_at(&self, now: Instant) -> Duration {
        let last = self.epoch + Duration::from_millis(self.millis.load(Ordering::Relaxed));
        now.saturating_duration_since(last)
    }
}

/// One source's upstream socket; dropping it stops its reader and closes the socket.
pub(crate) struct Upstream {
    /// Sends to the endpoint's real address.
    pub(crate) link: Link,
    pub(crate) last: LastUse,
    pub(crate) _reader: TaskGuard,
}

/// The upstream sockets of one relay, by source address.
#[derive(Default)]
pub(crate) struct Upstreams(HashMap<SocketAddr, Upstream>);

impl Upstreams {
    /// The upstream of `src`, marked as used.
    pub(crate) fn get(&self, src: SocketAddr) -> Option<&Upstream> {
        let upstream = self.0.get(&src)?;
        upstream.last.touch();
        Some(upstream)
    }

    /// Adds the upstream of `src`.
    pub(crate) fn insert(&mut self, src: SocketAddr, upstream: Upstream) {
        self.0.insert(src, upstream);
    }

    /// Closes the upstreams unused for `idle` at `now`; returns how many.
    pub(crate) fn sweep(&mut self, now: Instant, idle: Duration) -> usize {
        let before = self.0.len();
        self.0.retain(|_, u| u.last.idle_at(now) < idle);
        before - self.0.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn upstream() -> Upstream {
        let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        Upstream {
            link: Link::connected(Arc::new(sock)),
            last: LastUse::new(),
            _reader: TaskGuard::spawn(std::future::pending()),
        }
    }

    #[tokio::test]
    async fn sweep_closes_only_idle_upstreams() {
        let mut table = Upstreams::default();
        let (a, b) = ("127.0.0.1:1".parse().unwrap(), "127.0.0.1:2".parse().unwrap());
        table.insert(a, upstream().await);
        table.insert(b, upstream().await);
        let now = Instant::now();
        assert_eq!(table.sweep(now, IDLE), 0);
        assert_eq!(table.sweep(now + IDLE + Duration::from_secs(1), IDLE), 2);
        assert!(table.get(a).is_none());
    }
}
