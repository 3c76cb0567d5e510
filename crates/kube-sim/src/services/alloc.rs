//! The ClusterIP and NodePort allocators: the service CIDR and node-port
//! range the real server hands addresses and ports out of, with its error
//! details and its allocation order.
//!
//! As the API server does, a range is split by an offset into a lower band
//! kept for static requests and an upper band dynamic allocations come from
//! first: a random start in the upper band, scanning forward with
//! wrap-around, then the lower band the same way once the upper one is full.

use std::{
    collections::BTreeSet,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    ops::RangeInclusive,
};

use ipnet::IpNet;

/// A small seeded generator (SplitMix64): allocation order only has to look
/// random, not be unpredictable.
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn seeded() -> Self {
        let seed = uuid::Uuid::new_v4().as_u128();
        Rng((seed as u64) ^ ((seed >> 64) as u64))
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A value in `0..n` (`n > 0`).
    fn below(&mut self, n: u128) -> u128 {
        let wide = (u128::from(self.next_u64()) << 64) | u128::from(self.next_u64());
        wide % n
    }
}

/// The static band's size for a range of `size` values: `size / step`,
/// clamped to `min..=max`, and none at all for ranges of `min` or fewer.
fn band_offset(size: u128, min: u128, max: u128, step: u128) -> u128 {
    if size <= min {
        0
    } else {
        (size / step).clamp(min, max)
    }
}

/// Picks a free offset in `0..total`: the upper band `offset..total` first,
/// then the lower band `0..offset`, each from a random start. `used` holds
/// the taken offsets.
fn pick(rng: &mut Rng, used: &BTreeSet<u128>, total: u128, offset: u128) -> Option<u128> {
    for (lo, hi) in [(offset, total), (0, offset)] {
        let span = hi.saturating_sub(lo);
        if span == 0 {
            continue;
        }
        let start = rng.below(span);
        // Among `used.len() + 1` consecutive candidates one is free unless the
        // band itself is full, so huge (IPv6) bands stay cheap to scan.
        let steps = span.min(used.len() as u128 + 1);
        for i in 0..steps {
            let at = lo + (start + i) % span;
            if !used.contains(&at) {
                return Some(at);
            }
        }
        // The bounded scan can miss a free value only in a nearly full band.
        if steps < span
            && let Some(at) = (lo..hi).find(|at| !used.contains(at))
        {
            return Some(at);
        }
    }
    None
}

/// ClusterIP and NodePort allocators.
#[derive(Debug)]
pub struct Allocators {
    cidr: IpNet,
    /// Offsets from the first usable address (network address + 1).
    ips: BTreeSet<u128>,
    ports: RangeInclusive<u16>,
    /// Offsets from the start of the node-port range.
    used_ports: BTreeSet<u128>,
    rng: Rng,
}

fn ip_to_u128(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

impl Allocators {
    /// Allocators over a service CIDR and a node-port range.
    pub fn new(cidr: IpNet, ports: RangeInclusive<u16>) -> Self {
        Allocators {
            cidr,
            ips: BTreeSet::new(),
            ports,
            used_ports: BTreeSet::new(),
            rng: Rng::seeded(),
        }
    }

    /// Addresses in the CIDR (capped for very large IPv6 ranges).
    fn cidr_size(&self) -> u128 {
        let bits = match self.cidr {
            IpNet::V4(_) => 32,
            IpNet::V6(_) => 128,
        };
        let host_bits = bits - u32::from(self.cidr.prefix_len());
        1u128 << host_bits.min(64)
    }

    /// Usable addresses: all but the network address, and for IPv4 the
    /// broadcast address too.
    fn ip_count(&self) -> u128 {
        match self.cidr {
            IpNet::V4(_) => self.cidr_size().saturating_sub(2),
            IpNet::V6(_) => self.cidr_size().saturating_sub(1),
        }
    }

    fn ip_at(&self, offset: u128) -> IpAddr {
        let first = ip_to_u128(self.cidr.network()) + 1 + offset;
        match self.cidr {
            IpNet::V4(_) => IpAddr::V4(Ipv4Addr::from(first as u32)),
            IpNet::V6(_) => IpAddr::V6(Ipv6Addr::from(first)),
        }
    }

    fn ip_offset(&self, ip: &str) -> Option<u128> {
        let parsed: IpAddr = ip.parse().ok()?;
        if !self.cidr.contains(&parsed) {
            return None;
        }
        let offset = ip_to_u128(parsed).checked_sub(ip_to_u128(self.cidr.network()) + 1)?;
        (offset < self.ip_count()).then_some(offset)
    }

    /// The first usable address, which the `kubernetes` Service holds.
    pub fn first_ip(&self) -> String {
        self.ip_at(0).to_string()
    }

    /// Allocates a specific ClusterIP; `Err` carries the field detail.
    pub fn take_ip(&mut self, ip: &str) -> Result<(), String> {
        if ip.parse::<IpAddr>().is_err() {
            return Err("must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)".into());
        }
        let Some(offset) = self.ip_offset(ip) else {
            return Err(format!(
                "failed to allocate IP {ip}: the provided IP ({ip}) is not in the valid range. The range of valid IPs is {}",
                self.cidr
            ));
        };
        if !self.ips.insert(offset) {
            return Err(format!(
                "failed to allocate IP {ip}: provided IP is already allocated"
            ));
        }
        Ok(())
    }

    /// Allocates a free ClusterIP, upper band first.
    pub fn next_ip(&mut self) -> Option<String> {
        let offset = band_offset(self.cidr_size(), 16, 256, 16);
        let total = self.ip_count();
        let at = pick(&mut self.rng, &self.ips, total, offset)?;
        self.ips.insert(at);
        Some(self.ip_at(at).to_string())
    }

    /// Releases a ClusterIP.
    pub fn release_ip(&mut self, ip: &str) {
        if let Some(offset) = self.ip_offset(ip) {
            self.ips.remove(&offset);
        }
    }

    fn port_count(&self) -> u128 {
        u128::from(*self.ports.end()).saturating_sub(u128::from(*self.ports.start())) + 1
    }

    /// Allocates a specific node port; `Err` carries the field detail.
    pub fn take_port(&mut self, port: u16) -> Result<(), String> {
        if !self.ports.contains(&port) {
            return Err(format!(
                "provided port is not in the valid range. The range of valid ports is {}-{}",
                self.ports.start(),
                self.ports.end()
            ));
        }
        if !self
            .used_ports
            .insert(u128::from(port - *self.ports.start()))
        {
            return Err("provided port is already allocated".into());
        }
        Ok(())
    }

    /// Allocates a free node port, upper band first.
    pub fn next_port(&mut self) -> Option<u16> {
        let total = self.port_count();
        let offset = band_offset(total, 16, 128, 32);
        let at = pick(&mut self.rng, &self.used_ports, total, offset)?;
        self.used_ports.insert(at);
        Some(*self.ports.start() + at as u16)
    }

    /// Releases a node port.
    pub fn release_port(&mut self, port: u16) {
        if self.ports.contains(&port) {
            self.used_ports
                .remove(&u128::from(port - *self.ports.start()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alloc(ports: RangeInclusive<u16>) -> Allocators {
        Allocators::new("10.96.0.0/16".parse().expect("cidr"), ports)
    }

    #[test]
    fn band_offsets_match_the_real_formula() {
        // Node ports: 30000-32767 keeps 86 ports for static requests.
        assert_eq!(band_offset(2768, 16, 128, 32), 86);
        assert_eq!(band_offset(16, 16, 128, 32), 0);
        assert_eq!(band_offset(100, 16, 128, 32), 16);
        assert_eq!(band_offset(65536, 16, 128, 32), 128);
        // Service CIDRs: a /16 keeps 256 addresses, a /24 keeps 16.
        assert_eq!(band_offset(65536, 16, 256, 16), 256);
        assert_eq!(band_offset(256, 16, 256, 16), 16);
        assert_eq!(band_offset(16, 16, 256, 16), 0);
    }

    #[test]
    fn dynamic_ports_come_from_the_upper_band_then_the_lower() {
        let mut a = alloc(30000..=30099);
        // 100 ports: 16 kept for static requests.
        let mut got = Vec::new();
        for _ in 0..84 {
            got.push(a.next_port().expect("upper band"));
        }
        assert!(got.iter().all(|p| (30016..=30099).contains(p)), "{got:?}");
        let lower = a.next_port().expect("lower band once the upper is full");
        assert!((30000..30016).contains(&lower));
        for _ in 0..15 {
            a.next_port().expect("rest of the lower band");
        }
        assert_eq!(a.next_port(), None);
        a.release_port(30050);
        assert_eq!(a.next_port(), Some(30050));
        assert!(a.take_port(29999).is_err());
        assert!(a.take_port(30050).is_err());
    }

    #[test]
    fn dynamic_ports_are_not_sequential() {
        let mut a = alloc(30000..=32767);
        let got: Vec<u16> = (0..20).filter_map(|_| a.next_port()).collect();
        let mut sorted = got.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), 20);
        assert!(got.iter().all(|p| *p >= 30086), "{got:?}");
        assert!(got.windows(2).any(|w| w[1] != w[0] + 1), "{got:?}");
    }

    #[test]
    fn ip_allocation_skips_taken_and_reuses_released() {
        let mut a = alloc(30000..=30002);
        assert_eq!(a.first_ip(), "10.96.0.1");
        let ip: Ipv4Addr = a.next_ip().expect("ip").parse().expect("v4");
        // Offsets 0..256 from 10.96.0.1 are the static band.
        assert!(
            u32::from(ip) >= u32::from(Ipv4Addr::new(10, 96, 1, 1)),
            "{ip}"
        );
        a.take_ip("10.96.0.2").expect("free");
        assert!(a.take_ip("10.96.0.2").is_err());
        assert!(a.take_ip("10.97.0.2").is_err());
        assert!(a.take_ip("10.96.255.255").is_err());
        assert!(a.take_ip("10.96.0.0").is_err());
        assert!(a.take_ip("nonsense").is_err());
        a.release_ip("10.96.0.2");
        a.take_ip("10.96.0.2").expect("released");
    }

    #[test]
    fn small_cidr_fills_completely() {
        let mut a = Allocators::new("10.0.0.0/29".parse().expect("cidr"), 30000..=30000);
        let mut got: Vec<String> = (0..6).filter_map(|_| a.next_ip()).collect();
        got.sort();
        assert_eq!(
            got,
            [
                "10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5", "10.0.0.6"
            ]
        );
        assert_eq!(a.next_ip(), None);
    }
}
