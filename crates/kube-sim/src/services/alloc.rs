//! The ClusterIP and NodePort allocators: the service CIDR and node-port
//! range the real server hands addresses and ports out of, with its
//! wrap-around search and its error details.

use std::{
    collections::BTreeSet,
    net::{IpAddr, Ipv4Addr},
    ops::RangeInclusive,
};

use ipnet::IpNet;

/// ClusterIP and NodePort allocators.
#[derive(Debug)]
pub struct Allocators {
    cidr: IpNet,
    ips: BTreeSet<u128>,
    next_ip: u128,
    ports: RangeInclusive<u16>,
    used_ports: BTreeSet<u16>,
    next_port: u16,
}

fn ip_to_u128(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u32::from(v4) as u128,
        IpAddr::V6(v6) => u128::from(v6),
    }
}

impl Allocators {
    /// Allocators over a service CIDR and a node-port range.
    pub fn new(cidr: IpNet, ports: RangeInclusive<u16>) -> Self {
        let next_port = *ports.start();
        Allocators {
            cidr,
            ips: BTreeSet::new(),
            next_ip: 1,
            ports,
            used_ports: BTreeSet::new(),
            next_port,
        }
    }

    fn ip_at(&self, offset: u128) -> IpAddr {
        let base = ip_to_u128(self.cidr.network());
        match self.cidr {
            IpNet::V4(_) => IpAddr::V4(Ipv4Addr::from((base + offset) as u32)),
            IpNet::V6(_) => IpAddr::V6(std::net::Ipv6Addr::from(base + offset)),
        }
    }

    fn size(&self) -> u128 {
        let bits = match self.cidr {
            IpNet::V4(_) => 32,
            IpNet::V6(_) => 128,
        };
        let host_bits = bits - u32::from(self.cidr.prefix_len());
        if host_bits >= 127 {
            u128::MAX / 2
        } else {
            1u128 << host_bits
        }
    }

    /// Usable offsets exclude the network and (for IPv4) broadcast addresses.
    fn usable(&self, offset: u128) -> bool {
        offset >= 1 && offset < self.size() - 1
    }

    /// Allocates a specific ClusterIP; `Err` carries the field detail.
    pub fn take_ip(&mut self, ip: &str) -> Result<(), String> {
        let parsed: IpAddr = ip.parse().map_err(|_| {
            "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)".to_string()
        })?;
        if !self.cidr.contains(&parsed) {
            return Err(format!(
                "failed to allocate IP {ip}: the provided IP ({ip}) is not in the valid range. The range of valid IPs is {}",
                self.cidr
            ));
        }
        let offset = ip_to_u128(parsed) - ip_to_u128(self.cidr.network());
        if !self.usable(offset) {
            return Err(format!(
                "failed to allocate IP {ip}: the provided IP ({ip}) is not in the valid range. The range of valid IPs is {}",
                self.cidr
            ));
        }
        if !self.ips.insert(offset) {
            return Err(format!(
                "failed to allocate IP {ip}: provided IP is already allocated"
            ));
        }
        Ok(())
    }

    /// Allocates the next free ClusterIP.
    pub fn next_ip(&mut self) -> Option<String> {
        let size = self.size();
        let span = size.saturating_sub(2).min(1 << 24);
        for i in 0..span {
            let offset = 1 + (self.next_ip - 1 + i) % span;
            if self.usable(offset) && !self.ips.contains(&offset) {
                self.ips.insert(offset);
                self.next_ip = offset + 1;
                return Some(self.ip_at(offset).to_string());
            }
        }
        None
    }

    /// Releases a ClusterIP.
    pub fn release_ip(&mut self, ip: &str) {
        if let Ok(parsed) = ip.parse::<IpAddr>()
            && self.cidr.contains(&parsed)
        {
            self.ips
                .remove(&(ip_to_u128(parsed) - ip_to_u128(self.cidr.network())));
        }
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
        if !self.used_ports.insert(port) {
            return Err("provided port is already allocated".into());
        }
        Ok(())
    }

    /// Allocates the next free node port.
    pub fn next_port(&mut self) -> Option<u16> {
        let (lo, hi) = (*self.ports.start() as u32, *self.ports.end() as u32);
        let span = hi - lo + 1;
        for i in 0..span {
            let p = (lo + (self.next_port as u32 - lo + i) % span) as u16;
            if !self.used_ports.contains(&p) {
                self.used_ports.insert(p);
                self.next_port = if p as u32 == hi { lo as u16 } else { p + 1 };
                return Some(p);
            }
        }
        None
    }

    /// Releases a node port.
    pub fn release_port(&mut self, port: u16) {
        self.used_ports.remove(&port);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alloc() -> Allocators {
        Allocators::new("10.96.0.0/16".parse().expect("cidr"), 30000..=30002)
    }

    #[test]
    fn ip_allocation_skips_taken_and_reuses_released() {
        let mut a = alloc();
        assert_eq!(a.next_ip().as_deref(), Some("10.96.0.1"));
        a.take_ip("10.96.0.2").expect("free");
        assert_eq!(a.next_ip().as_deref(), Some("10.96.0.3"));
        assert!(a.take_ip("10.96.0.2").is_err());
        assert!(a.take_ip("10.97.0.2").is_err());
        assert!(a.take_ip("10.96.255.255").is_err());
        a.release_ip("10.96.0.2");
        a.take_ip("10.96.0.2").expect("released");
    }

    #[test]
    fn port_allocation_wraps_and_exhausts() {
        let mut a = alloc();
        assert_eq!(a.next_port(), Some(30000));
        a.take_port(30002).expect("free");
        assert_eq!(a.next_port(), Some(30001));
        assert_eq!(a.next_port(), None);
        a.release_port(30000);
        assert_eq!(a.next_port(), Some(30000));
        assert!(a.take_port(29999).is_err());
    }
}
