//! Putting an address on an interface and taking it off, with the `ip`
//! command (iproute2).
//!
//! Why `ip` rather than netlink from Rust: the address is added with a
//! *lifetime* (`valid_lft`) equal to the Lease's, refreshed on every renewal,
//! so the kernel itself drops the address of a holder that was killed or
//! cut from the API before anyone else may take the Lease; `ip addr replace`
//! does add-or-refresh in one idempotent call, and it keeps the crate free of
//! a netlink stack. The cost is iproute2 in the image and one short process
//! per held address and renewal.

use std::{net::IpAddr, time::Duration};

use tokio::process::Command;

use super::error::AnnounceError;

/// Where an address is announced.
#[derive(Clone, Debug)]
pub(crate) struct Interface {
    /// Its name.
    pub name: String,
    /// Its hardware address, when it has one.
    pub mac: Option<[u8; 6]>,
    /// The interface as the raw-socket layer knows it.
    pub link: pnet_datalink::NetworkInterface,
}

/// The interface for `addr`: `configured` when set, else the one (up) whose
/// own network contains `addr`, as a neighbour would expect.
pub(crate) fn find(addr: IpAddr, configured: Option<&str>) -> Result<Interface, AnnounceError> {
    let all = pnet_datalink::interfaces();
    let found =
        match configured {
            Some(name) => all.into_iter().find(|i| i.name == name).ok_or_else(|| {
                AnnounceError::NoInterface {
                    addr,
                    reason: format!("interface {name} does not exist"),
                }
            })?,
            None => all
                .into_iter()
                .filter(|i| i.is_up() && !i.is_loopback())
                // The address itself (a /32 or /128 this node added) says
                // nothing about the network; any wider prefix does.
                .find(|i| {
                    i.ips
                        .iter()
                        .any(|n| n.contains(addr) && n.prefix() < host_prefix(addr))
                })
                .ok_or_else(|| AnnounceError::NoInterface {
                    addr,
                    reason: "no interface is on a network containing it".into(),
                })?,
        };
    Ok(Interface {
        name: found.name.clone(),
        mac: found.mac.map(|m| m.octets()).filter(|m| *m != [0; 6]),
        link: found,
    })
}

fn host_prefix(addr: IpAddr) -> u8 {
    if addr.is_ipv4() { 32 } else { 128 }
}

/// The arguments of `ip` that add `addr` on `iface` (or refresh it) for
/// `lifetime` (whole seconds, at least 1).
pub(crate) fn add_args(addr: IpAddr, iface: &str, lifetime: Duration) -> Vec<String> {
    let secs = lifetime.as_secs().max(1).to_string();
    let mut args: Vec<String> = [
        "addr",
        "replace",
        &format!("{addr}/{}", host_prefix(addr)),
        "dev",
        iface,
        "valid_lft",
        &secs,
        "preferred_lft",
        &secs,
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    if addr.is_ipv6() {
        // No duplicate address detection: the Lease already says this node
        // is the only holder, and DAD would keep the address unusable
        // (tentative) for a second or more.
        args.push("nodad".into());
    }
    args
}

/// Adds `addr` to `iface`, or refreshes its lifetime.
pub(crate) async fn add(
    addr: IpAddr,
    iface: &str,
    lifetime: Duration,
) -> Result<(), AnnounceError> {
    ip(&add_args(addr, iface, lifetime)).await
}

/// Removes `addr` from `iface`; an address already gone is not an error.
pub(crate) async fn remove(addr: IpAddr, iface: &str) -> Result<(), AnnounceError> {
    let prefix = format!("{addr}/{}", host_prefix(addr));
    match ip(&[
        "addr".into(),
        "del".into(),
        prefix,
        "dev".into(),
        iface.into(),
    ])
    .await
    {
        Err(AnnounceError::IpFailed { stderr, .. }) if stderr.contains("Cannot assign") => Ok(()),
        other => other,
    }
}

async fn ip(args: &[String]) -> Result<(), AnnounceError> {
    let joined = args.join(" ");
    let out = Command::new("ip")
        .args(args)
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|source| AnnounceError::RunIp {
            args: joined.clone(),
            source,
        })?;
    if out.status.success() {
        Ok(())
    } else {
        Err(AnnounceError::IpFailed {
            args: joined,
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_added_as_hosts_with_the_lease_lifetime() {
        let v4 = add_args(
            "192.0.2.100".parse().expect("ip"),
            "eth0",
            Duration::from_secs(3),
        );
        assert_eq!(
            v4.join(" "),
            "addr replace 192.0.2.100/32 dev eth0 valid_lft 3 preferred_lft 3"
        );
        let v6 = add_args(
            "2001:db8::1".parse().expect("ip"),
            "eth1",
            Duration::from_millis(10),
        );
        assert_eq!(
            v6.join(" "),
            "addr replace 2001:db8::1/128 dev eth1 valid_lft 1 preferred_lft 1 nodad"
        );
    }

    #[test]
    fn a_missing_configured_interface_is_permanent() {
        let err = find("192.0.2.1".parse().expect("ip"), Some("no-such-if0"))
            .expect_err("no such interface");
        assert!(!err.is_transient(), "{err}");
    }
}
