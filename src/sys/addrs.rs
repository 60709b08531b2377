//! This host's own addresses, from getifaddrs(3) (nix's safe wrapper: no `unsafe` here). A
//! target that is one of them answers from the host itself, dead link or not; the decision
//! is `probe::own_address`, this only gathers the list.
use std::io;
use std::net::IpAddr;

/// Every IPv4 and IPv6 address configured on any interface of this network namespace.
pub fn host_addresses() -> io::Result<Vec<IpAddr>> {
    let mut out = Vec::new();
    for ifa in nix::ifaddrs::getifaddrs()? {
        let Some(sa) = ifa.address else { continue };
        if let Some(a) = sa.as_sockaddr_in() {
            out.push(IpAddr::V4(a.ip()));
        } else if let Some(a) = sa.as_sockaddr_in6() {
            out.push(IpAddr::V6(a.ip()));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn loopback_is_among_them() {
        // Every network namespace has lo; its 127.0.0.1 is there once lo is up, which it is
        // in any namespace that runs the test suite (cargo needs no network, but lo is up on
        // every normal system). ::1 may be disabled, so only IPv4 is asserted.
        let addrs = super::host_addresses().unwrap();
        assert!(addrs.contains(&"127.0.0.1".parse().unwrap()), "{addrs:?}");
    }
}
