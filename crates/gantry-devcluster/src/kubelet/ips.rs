//! The pod address pool: consecutive addresses from the configured base,
//! lowest free first, so pod IPs stay small and readable in tests.

use std::{collections::BTreeSet, net::Ipv4Addr};

/// How many pod addresses one dev cluster hands out at most.
const POOL_SIZE: u32 = 65_536;

/// Pod addresses in use.
#[derive(Debug)]
pub struct IpPool {
    base: Ipv4Addr,
    used: BTreeSet<u32>,
}

impl IpPool {
    /// A pool starting at `base`.
    pub fn new(base: Ipv4Addr) -> Self {
        IpPool {
            base,
            used: BTreeSet::new(),
        }
    }

    fn offset(&self, ip: Ipv4Addr) -> Option<u32> {
        let off = u32::from(ip).checked_sub(u32::from(self.base))?;
        (off < POOL_SIZE).then_some(off)
    }

    /// Takes `ip` if it belongs to the pool and is free (a pod keeps its
    /// address across restarts of the dev cluster).
    pub fn claim(&mut self, ip: Ipv4Addr) -> bool {
        match self.offset(ip) {
            Some(off) => self.used.insert(off),
            None => false,
        }
    }

    /// The lowest free address.
    pub fn allocate(&mut self) -> Option<Ipv4Addr> {
        let free = (0..POOL_SIZE).find(|off| !self.used.contains(off))?;
        let ip = u32::from(self.base).checked_add(free)?;
        self.used.insert(free);
        Some(Ipv4Addr::from(ip))
    }

    /// Returns `ip` to the pool.
    pub fn release(&mut self, ip: Ipv4Addr) {
        if let Some(off) = self.offset(ip) {
            self.used.remove(&off);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lowest_free_first_and_reuse() {
        let mut pool = IpPool::new(Ipv4Addr::new(127, 1, 0, 1));
        assert_eq!(pool.allocate(), Some(Ipv4Addr::new(127, 1, 0, 1)));
        assert_eq!(pool.allocate(), Some(Ipv4Addr::new(127, 1, 0, 2)));
        pool.release(Ipv4Addr::new(127, 1, 0, 1));
        assert_eq!(pool.allocate(), Some(Ipv4Addr::new(127, 1, 0, 1)));
        assert!(pool.claim(Ipv4Addr::new(127, 1, 0, 9)));
        assert!(!pool.claim(Ipv4Addr::new(127, 1, 0, 9)), "already taken");
        assert!(!pool.claim(Ipv4Addr::new(10, 0, 0, 1)), "outside the pool");
        assert_eq!(pool.allocate(), Some(Ipv4Addr::new(127, 1, 0, 3)));
    }
}
