//! Address pools of one local class: which addresses may be handed out, and
//! the search for the lowest free one.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use gantry_model::class::{ClassError, parse_pool};

/// One inclusive range of usable addresses, as integers so that stepping
/// through IPv6 ranges is plain arithmetic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Range {
    first: u128,
    last: u128,
    v4: bool,
}

/// The parsed pools of a class, in the order the class lists them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Pools {
    ranges: Vec<Range>,
}

impl Pools {
    /// Parse pool entries: CIDRs or `first-last` ranges.
    ///
    /// The network and broadcast addresses of IPv4 CIDRs wider than /31 are
    /// left out: some hosts and routers treat them specially, so a balancer
    /// there would be unreachable for part of its clients. Explicit ranges are
    /// taken as written, since their author chose each end.
    pub(crate) fn parse(entries: &[String]) -> Result<Self, ClassError> {
        let mut ranges = Vec::with_capacity(entries.len());
        for (index, value) in entries.iter().enumerate() {
            let bad = |reason: String| ClassError::BadPool {
                index,
                value: value.clone(),
                reason,
            };
            let parsed = parse_pool(value).map_err(bad)?;
            let (mut first, mut last) = (to_int(parsed.first), to_int(parsed.last));
            if !value.contains('-') {
                let net: ipnet::IpNet = value.trim().parse().map_err(|e| bad(format!("{e}")))?;
                if let ipnet::IpNet::V4(v4) = net
                    && v4.prefix_len() < 31
                {
                    first += 1;
                    last -= 1;
                }
            }
            ranges.push(Range {
                first,
                last,
                v4: parsed.first.is_ipv4(),
            });
        }
        Ok(Self { ranges })
    }

    /// Whether there is nothing to hand out.
    pub(crate) fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// Whether any pool is IPv4.
    pub(crate) fn has_v4(&self) -> bool {
        self.ranges.iter().any(|r| r.v4)
    }

    /// Whether `ip` is a usable address of some pool.
    pub(crate) fn contains(&self, ip: IpAddr) -> bool {
        let (n, v4) = (to_int(ip), ip.is_ipv4());
        self.ranges
            .iter()
            .any(|r| r.v4 == v4 && r.first <= n && n <= r.last)
    }

    /// The first address of the wanted family, in pool order, for which
    /// `taken` is false.
    ///
    /// Each range is walked from its start, skipping taken addresses, so the
    /// walk is bounded by the number of taken addresses plus one per range.
    pub(crate) fn first_free(&self, v4: bool, taken: impl Fn(IpAddr) -> bool) -> Option<IpAddr> {
        for range in self.ranges.iter().filter(|r| r.v4 == v4) {
            let mut n = range.first;
            loop {
                let ip = from_int(n, v4);
                if !taken(ip) {
                    return Some(ip);
                }
                if n >= range.last {
                    break;
                }
                n += 1;
            }
        }
        None
    }
}

impl std::fmt::Display for Pools {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, r) in self.ranges.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{}-{}", from_int(r.first, r.v4), from_int(r.last, r.v4))?;
        }
        Ok(())
    }
}

fn to_int(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

fn from_int(n: u128, v4: bool) -> IpAddr {
    if v4 {
        // Ranges of the IPv4 family only hold values parsed from IPv4 addresses.
        IpAddr::V4(Ipv4Addr::from(u32::try_from(n).unwrap_or(u32::MAX)))
    } else {
        IpAddr::V6(Ipv6Addr::from(n))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    fn pools(entries: &[&str]) -> Pools {
        Pools::parse(&entries.iter().map(|s| s.to_string()).collect::<Vec<_>>()).expect("valid")
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn cidr_edges_are_skipped_only_when_wider_than_31() {
        let p = pools(&["192.0.2.0/30"]);
        assert!(!p.contains(ip("192.0.2.0")));
        assert!(p.contains(ip("192.0.2.1")));
        assert!(p.contains(ip("192.0.2.2")));
        assert!(!p.contains(ip("192.0.2.3")));
        let p = pools(&["192.0.2.4/31", "192.0.2.9/32"]);
        for a in ["192.0.2.4", "192.0.2.5", "192.0.2.9"] {
            assert!(p.contains(ip(a)), "{a}");
        }
        let p = pools(&["192.0.2.0-192.0.2.3"]);
        assert!(p.contains(ip("192.0.2.0")) && p.contains(ip("192.0.2.3")));
        let p = pools(&["2001:db8::/126"]);
        assert!(p.contains(ip("2001:db8::")) && p.contains(ip("2001:db8::3")));
        assert!(!p.contains(ip("192.0.2.1")));
    }

    #[test]
    fn first_free_walks_pools_in_order_by_family() {
        let p = pools(&["2001:db8::/127", "192.0.2.0/30", "198.51.100.7/32"]);
        assert!(p.has_v4());
        let mut taken = BTreeSet::new();
        let mut got = Vec::new();
        while let Some(a) = p.first_free(true, |a| taken.contains(&a)) {
            taken.insert(a);
            got.push(a.to_string());
        }
        assert_eq!(got, ["192.0.2.1", "192.0.2.2", "198.51.100.7"]);
        assert_eq!(
            p.first_free(false, |a| a == ip("2001:db8::")),
            Some(ip("2001:db8::1"))
        );
        assert_eq!(p.first_free(false, |_| true), None);
    }

    #[test]
    fn last_addresses_of_the_space_do_not_overflow() {
        let p = pools(&[
            "255.255.255.254/31",
            "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe/127",
        ]);
        assert_eq!(
            p.first_free(true, |a| a == ip("255.255.255.254")),
            Some(ip("255.255.255.255"))
        );
        assert_eq!(p.first_free(true, |_| true), None);
        assert_eq!(p.first_free(false, |_| true), None);
    }

    #[test]
    fn bad_entries_name_their_index() {
        let err = Pools::parse(&["192.0.2.0/30".into(), "nope".into()]).expect_err("bad");
        assert!(
            matches!(err, ClassError::BadPool { index: 1, .. }),
            "{err:?}"
        );
        assert_eq!(pools(&["192.0.2.0/30"]).to_string(), "192.0.2.1-192.0.2.2");
    }
}
