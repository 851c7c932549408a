//! Guards for admin-entered URLs and for peers' limits: addresses a webhook must not reach (an
//! SSRF risk: loopback, private, link-local…) unless the configuration allows them explicitly,
//! and the pace of posts to one Slack webhook (at most one a second).

use std::collections::HashMap;
use std::net::IpAddr;

use std::time::{Duration, Instant};

/// Why an address is refused as a webhook target, or `None` when it is public.
pub fn refused(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            if v4.is_loopback() {
                Some("loopback")
            } else if v4.is_private() {
                Some("private network")
            } else if v4.is_link_local() {
                Some("link-local (cloud metadata lives there)")
            } else if v4.is_unspecified() || v4.is_broadcast() || v4.is_multicast() || a == 0 {
                Some("not a host address")
            } else if a == 100 && (64..128).contains(&b) {
                Some("shared address space (carrier-grade NAT)")
            } else {
                None
            }
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return refused(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            if v6.is_loopback() {
                Some("loopback")
            } else if v6.is_unspecified() || v6.is_multicast() {
                Some("not a host address")
            } else if first & 0xfe00 == 0xfc00 {
                Some("private network (unique local)")
            } else if first & 0xffc0 == 0xfe80 {
                Some("link-local")
            } else {
                None
            }
        }
    }
}

/// At most one post per interval to each destination (Slack's limit for incoming webhooks: one a
/// second), in real time. A delivery asking for its turn gets a slot reserved under its key, so
/// that one deferred until its slot finds it still there when it comes back.
#[derive(Debug)]
pub struct Pacer {
    /// The time between two posts to one destination.
    interval: Duration,
    /// Each destination's next free slot.
    next: HashMap<String, Instant>,
    /// Slots reserved by deliveries (by key) and not used yet.
    reserved: HashMap<String, Instant>,
}

impl Default for Pacer {
    /// One post a second.
    fn default() -> Self {
        Self::new(Duration::from_secs(1))
    }
}

impl Pacer {
    /// A pacer leaving `interval` between two posts to one destination.
    pub fn new(interval: Duration) -> Self {
        Self { interval, next: HashMap::new(), reserved: HashMap::new() }
    }

    /// When the delivery `key` may post to `destination`, asking at `now`: its reserved slot if it
    /// has one, else the destination's next free second, reserved for it.
    pub fn slot(&mut self, destination: &str, key: &str, now: Instant) -> Instant {
        if let Some(at) = self.reserved.get(key) {
            return *at;
        }
        let at = self.next.get(destination).map_or(now, |next| (*next).max(now));
        self.next.insert(destination.to_owned(), at + self.interval);
        // Reservations of deliveries that never came back (cancelled, expired) are forgotten
        // after an hour.
        if self.reserved.len() > 10_000 {
            self.reserved.retain(|_, slot| *slot + Duration::from_secs(3600) > now);
        }
        self.reserved.insert(key.to_owned(), at);
        at
    }

    /// The delivery `key` used its slot.
    pub fn used(&mut self, key: &str) {
        self.reserved.remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("address")
    }

    #[test]
    fn loopback_private_and_link_local_targets_are_refused() {
        for (addr, why) in [
            ("127.0.0.1", "loopback"),
            ("10.1.2.3", "private network"),
            ("172.16.0.9", "private network"),
            ("192.168.1.1", "private network"),
            ("169.254.169.254", "link-local (cloud metadata lives there)"),
            ("100.64.0.1", "shared address space (carrier-grade NAT)"),
            ("0.0.0.0", "not a host address"),
            ("::1", "loopback"),
            ("fd00::1", "private network (unique local)"),
            ("fe80::1", "link-local"),
            ("::ffff:10.0.0.1", "private network"),
        ] {
            assert_eq!(refused(ip(addr)), Some(why), "{addr}");
        }
        for public in ["93.184.216.34", "172.32.0.1", "100.128.0.1", "2606:4700::1111"] {
            assert_eq!(refused(ip(public)), None, "{public}");
        }
    }

    #[test]
    fn posts_to_one_destination_go_a_second_apart() {
        let now = Instant::now();
        let s = |n: u64| now + Duration::from_secs(n);
        let mut pacer = Pacer::default();
        assert_eq!(pacer.slot("finance", "a", now), now);
        pacer.used("a");
        assert_eq!(pacer.slot("finance", "b", now), s(1));
        assert_eq!(pacer.slot("finance", "c", now), s(2));
        assert_eq!(pacer.slot("finance", "b", now), s(1), "a delivery coming back keeps its slot");
        assert_eq!(pacer.slot("sales", "d", now), now, "each destination has its own pace");
        assert_eq!(pacer.slot("finance", "e", s(10)), s(10));
    }
}
