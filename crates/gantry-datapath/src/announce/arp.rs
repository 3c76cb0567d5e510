//! Gratuitous ARP: tells the segment at once that an IPv4 address now lives
//! behind this node's MAC, so neighbours update their caches instead of
//! sending to the old holder until their entries go stale (tens of seconds).
//!
//! The frame is built here (pure, tested); sending it needs an `AF_PACKET`
//! socket, which `pnet_datalink` opens (this crate forbids `unsafe`), and
//! so the `NET_RAW` capability.

use std::{io, net::Ipv4Addr, time::Duration};

use super::{error::AnnounceError, iface::Interface};

/// Length of an ARP frame on Ethernet without padding.
pub(crate) const FRAME_LEN: usize = 42;

/// ARP operation: request (1) or reply (2). Neighbours update an existing
/// cache entry on either; some switches and hosts only look at one, so both
/// are sent (as arping -U and -A do).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Op {
    /// Who-has with sender = target = the address.
    Request = 1,
    /// Is-at, broadcast.
    Reply = 2,
}

/// A broadcast gratuitous ARP frame announcing `addr` at `mac`.
pub(crate) fn frame(mac: [u8; 6], addr: Ipv4Addr, op: Op) -> [u8; FRAME_LEN] {
    let mut f = [0u8; FRAME_LEN];
    f[0..6].copy_from_slice(&[0xff; 6]);
    f[6..12].copy_from_slice(&mac);
    f[12..14].copy_from_slice(&0x0806u16.to_be_bytes()); // ARP
    f[14..16].copy_from_slice(&1u16.to_be_bytes()); // Ethernet
    f[16..18].copy_from_slice(&0x0800u16.to_be_bytes()); // IPv4
    f[18] = 6;
    f[19] = 4;
    f[20..22].copy_from_slice(&(op as u16).to_be_bytes());
    f[22..28].copy_from_slice(&mac);
    f[28..32].copy_from_slice(&addr.octets());
    // Target hardware address: zero in a request, broadcast in a reply.
    let target_mac = if op == Op::Request { [0; 6] } else { [0xff; 6] };
    f[32..38].copy_from_slice(&target_mac);
    f[38..42].copy_from_slice(&addr.octets());
    f
}

/// Sends a gratuitous request and reply for `addr` on `iface`.
pub(crate) async fn announce(iface: &Interface, addr: Ipv4Addr) -> Result<(), AnnounceError> {
    let Some(mac) = iface.mac else {
        // Interfaces without a MAC (tunnels, loopback) have no ARP.
        return Ok(());
    };
    let link = iface.link.clone();
    let name = iface.name.clone();
    let frames = [frame(mac, addr, Op::Request), frame(mac, addr, Op::Reply)];
    let result = tokio::task::spawn_blocking(move || send_frames(&link, &[&frames[0], &frames[1]]))
        .await
        .unwrap_or_else(|e| Err(io::Error::other(e)));
    result.map_err(|source| AnnounceError::SendAnnouncement {
        addr: addr.into(),
        interface: name,
        source,
    })
}

/// Sends whole Ethernet frames on `link` (blocking).
pub(crate) fn send_frames(
    link: &pnet_datalink::NetworkInterface,
    frames: &[&[u8]],
) -> io::Result<()> {
    let config = pnet_datalink::Config {
        promiscuous: false,
        read_timeout: Some(Duration::from_millis(10)),
        write_timeout: Some(Duration::from_secs(1)),
        ..pnet_datalink::Config::default()
    };
    let mut tx = match pnet_datalink::channel(link, config)? {
        pnet_datalink::Channel::Ethernet(tx, _rx) => tx,
        _ => return Err(io::Error::other("not an Ethernet channel")),
    };
    for frame in frames {
        tx.send_to(frame, None)
            .unwrap_or_else(|| Err(io::Error::other("no room to send")))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_frame_matches_the_wire_format() {
        let mac = [0x02, 0, 0, 0, 0, 0x11];
        let f = frame(mac, Ipv4Addr::new(192, 0, 2, 100), Op::Request);
        let expected: [u8; FRAME_LEN] = [
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // to everyone
            0x02, 0, 0, 0, 0, 0x11, // from us
            0x08, 0x06, // ARP
            0, 1, 0x08, 0, 6, 4, // Ethernet/IPv4
            0, 1, // request
            0x02, 0, 0, 0, 0, 0x11, 192, 0, 2, 100, // sender
            0, 0, 0, 0, 0, 0, 192, 0, 2, 100, // target = sender address
        ];
        assert_eq!(f, expected);
    }

    #[test]
    fn reply_frame_is_broadcast_is_at() {
        let f = frame([2, 0, 0, 0, 0, 1], Ipv4Addr::new(192, 0, 2, 7), Op::Reply);
        assert_eq!(&f[20..22], &[0, 2]);
        assert_eq!(&f[32..38], &[0xff; 6]);
        assert_eq!(&f[28..32], &f[38..42]);
    }
}
