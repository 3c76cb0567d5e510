//! Unsolicited Neighbour Advertisement (RFC 4861 §7.2.6): the IPv6
//! counterpart of gratuitous ARP, telling all nodes on the link that an
//! address now lives behind this node's MAC (Override flag set, so caches
//! replace the old holder's entry).
//!
//! The frame is built here (pure, tested) and sent like ARP through an
//! `AF_PACKET` socket from `pnet_datalink` (`NET_RAW`).

use std::{io, net::Ipv6Addr};

use super::{arp, error::AnnounceError, iface::Interface};

/// Ethernet (14) + IPv6 (40) + ICMPv6 NA (24) + target link-layer option (8).
pub(crate) const FRAME_LEN: usize = 86;

const ICMPV6_LEN: usize = 32;
const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);

/// An unsolicited NA for `addr` at `mac`, from `addr` to all nodes.
pub(crate) fn frame(mac: [u8; 6], addr: Ipv6Addr) -> [u8; FRAME_LEN] {
    let mut f = [0u8; FRAME_LEN];
    // Ethernet: to the all-nodes multicast MAC 33:33:00:00:00:01.
    f[0..6].copy_from_slice(&[0x33, 0x33, 0, 0, 0, 1]);
    f[6..12].copy_from_slice(&mac);
    f[12..14].copy_from_slice(&0x86ddu16.to_be_bytes());
    // IPv6 header: version 6, payload length, next header ICMPv6 (58),
    // hop limit 255 (receivers drop NDP with any other).
    let ip = 14;
    f[ip] = 0x60;
    f[ip + 4..ip + 6].copy_from_slice(&(ICMPV6_LEN as u16).to_be_bytes());
    f[ip + 6] = 58;
    f[ip + 7] = 255;
    f[ip + 8..ip + 24].copy_from_slice(&addr.octets());
    f[ip + 24..ip + 40].copy_from_slice(&ALL_NODES.octets());
    // ICMPv6 Neighbour Advertisement, Override flag, target = addr, option
    // 2 (target link-layer address) of one 8-byte unit.
    let icmp = ip + 40;
    f[icmp] = 136;
    f[icmp + 4] = 0x20;
    f[icmp + 8..icmp + 24].copy_from_slice(&addr.octets());
    f[icmp + 24] = 2;
    f[icmp + 25] = 1;
    f[icmp + 26..icmp + 32].copy_from_slice(&mac);
    let sum = checksum(addr, ALL_NODES, &f[icmp..]);
    f[icmp + 2..icmp + 4].copy_from_slice(&sum.to_be_bytes());
    f
}

/// The ICMPv6 checksum of `message` (with its checksum field zero, or the
/// value 0 when it is already set correctly), over the IPv6 pseudo-header.
pub(crate) fn checksum(src: Ipv6Addr, dst: Ipv6Addr, message: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    let mut add = |bytes: &[u8]| {
        for pair in bytes.chunks(2) {
            let hi = u32::from(pair[0]) << 8;
            let lo = pair.get(1).copied().map_or(0, u32::from);
            sum += hi | lo;
        }
    };
    add(&src.octets());
    add(&dst.octets());
    let len = u32::try_from(message.len()).unwrap_or(u32::MAX);
    add(&len.to_be_bytes());
    add(&[0, 0, 0, 58]);
    add(message);
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    // `sum` fits 16 bits after folding.
    !u16::try_from(sum).unwrap_or(u16::MAX)
}

/// Sends an unsolicited NA for `addr` on `iface`.
pub(crate) async fn announce(iface: &Interface, addr: Ipv6Addr) -> Result<(), AnnounceError> {
    let Some(mac) = iface.mac else {
        return Ok(());
    };
    let link = iface.link.clone();
    let name = iface.name.clone();
    let result = tokio::task::spawn_blocking(move || arp::send_frames(&link, &[&frame(mac, addr)]))
        .await
        .unwrap_or_else(|e| Err(io::Error::other(e)));
    result.map_err(|source| AnnounceError::SendAnnouncement {
        addr: addr.into(),
        interface: name,
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advertisement_has_the_wire_format_and_a_valid_checksum() {
        let mac = [0x02, 0, 0, 0, 0, 0x11];
        let addr: Ipv6Addr = "2001:db8::64".parse().expect("ip");
        let f = frame(mac, addr);
        assert_eq!(&f[0..6], &[0x33, 0x33, 0, 0, 0, 1]);
        assert_eq!(&f[12..14], &[0x86, 0xdd]);
        assert_eq!(f[14] >> 4, 6, "IPv6");
        assert_eq!(&f[18..20], &[0, 32], "payload length");
        assert_eq!((f[20], f[21]), (58, 255), "ICMPv6, hop limit 255");
        assert_eq!(&f[22..38], &addr.octets(), "source");
        assert_eq!(&f[38..54], &ALL_NODES.octets(), "destination");
        let icmp = &f[54..];
        assert_eq!((icmp[0], icmp[1]), (136, 0), "neighbour advertisement");
        assert_eq!(icmp[4], 0x20, "override, not solicited, not router");
        assert_eq!(&icmp[8..24], &addr.octets(), "target");
        assert_eq!(&icmp[24..32], &[2, 1, 0x02, 0, 0, 0, 0, 0x11]);
        // Summing a message that carries its checksum gives zero.
        assert_eq!(checksum(addr, ALL_NODES, icmp), 0);
    }

    #[test]
    fn checksum_matches_a_known_value() {
        // An echo request (type 128) from ::1 to ::1 with id 0, seq 0, no
        // data: !(1 + 1 + 8 + 58 + 0x8000) = 0x7fbb.
        let message = [128u8, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(
            checksum(Ipv6Addr::LOCALHOST, Ipv6Addr::LOCALHOST, &message),
            0x7fbb
        );
    }
}
