//! Finding IFACE's default gateway in the kernel's routing tables as /proc/net/route and
//! /proc/net/ipv6_route print them (proc(5)). Pure text parsing; the caller reads the files
//! (of its own network namespace) every round, so a gateway changed by DHCP is followed.
#![forbid(unsafe_code)]

use std::net::{Ipv4Addr, Ipv6Addr};

const RTF_UP: u32 = 0x1;
const RTF_GATEWAY: u32 = 0x2;

/// The IPv4 default gateway through `iface` with the lowest metric. /proc/net/route prints
/// addresses as the hex of the raw 32-bit value in host byte order, so the bytes are read back
/// in native order.
pub fn ipv4_default_gateway(table: &str, iface: &str) -> Option<Ipv4Addr> {
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let (dev, dest, gw, flags, metric, mask) = (
                f.first()?,
                f.get(1)?,
                f.get(2)?,
                f.get(3)?,
                f.get(6)?,
                f.get(7)?,
            );
            let hex = |s: &str| u32::from_str_radix(s, 16).ok();
            let flags = hex(flags)?;
            let default = hex(dest)? == 0 && hex(mask)? == 0;
            let usable = flags & RTF_UP != 0 && flags & RTF_GATEWAY != 0;
            (*dev == iface && default && usable).then_some(())?;
            Some((
                metric.parse::<u32>().ok()?,
                Ipv4Addr::from(hex(gw)?.to_ne_bytes()),
            ))
        })
        .min_by_key(|(metric, _)| *metric)
        .map(|(_, gw)| gw)
}

/// The IPv6 default gateway (usually link-local) through `iface` with the lowest metric.
/// Fields: dest, dest prefix length, source, source prefix length, next hop, metric, refcount,
/// use, flags, device; addresses as 32 hex digits in network order.
pub fn ipv6_default_gateway(table: &str, iface: &str) -> Option<Ipv6Addr> {
    table
        .lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 10
                || f[9] != iface
                || f[1] != "00"
                || u128::from_str_radix(f[0], 16).ok()? != 0
            {
                return None;
            }
            let flags = u32::from_str_radix(f[8], 16).ok()?;
            let gw = u128::from_str_radix(f[4], 16).ok()?;
            (flags & RTF_UP != 0 && flags & RTF_GATEWAY != 0 && gw != 0).then_some(())?;
            Some((u32::from_str_radix(f[5], 16).ok()?, Ipv6Addr::from(gw)))
        })
        .min_by_key(|(metric, _)| *metric)
        .map(|(_, gw)| gw)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// /proc/net/route with the addresses encoded for this machine's byte order, as the
    /// kernel prints them.
    /// (device, destination, gateway, flags, metric, mask)
    type Row<'a> = (&'a str, [u8; 4], [u8; 4], u32, u32, [u8; 4]);

    fn v4_table(rows: &[Row]) -> String {
        let mut t = String::from(
            "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n",
        );
        for (dev, dest, gw, flags, metric, mask) in rows {
            let h = |a: &[u8; 4]| format!("{:08X}", u32::from_ne_bytes(*a));
            t += &format!(
                "{dev}\t{}\t{}\t{flags:04X}\t0\t0\t{metric}\t{}\t0\t0\t0\n",
                h(dest),
                h(gw),
                h(mask)
            );
        }
        t
    }

    #[test]
    fn ipv4_picks_the_default_route_of_the_interface_with_the_lowest_metric() {
        let t = v4_table(&[
            ("eth1", [0; 4], [203, 0, 113, 1], 3, 100, [0; 4]),
            ("eth0", [198, 51, 100, 0], [0; 4], 1, 0, [255, 255, 255, 0]),
            ("eth0", [0; 4], [198, 51, 100, 254], 3, 200, [0; 4]),
            ("eth0", [0; 4], [198, 51, 100, 1], 3, 100, [0; 4]),
            (
                "eth0",
                [203, 0, 113, 0],
                [198, 51, 100, 9],
                3,
                0,
                [255, 255, 255, 0],
            ),
        ]);
        assert_eq!(
            ipv4_default_gateway(&t, "eth0"),
            Some(Ipv4Addr::new(198, 51, 100, 1))
        );
        assert_eq!(
            ipv4_default_gateway(&t, "eth1"),
            Some(Ipv4Addr::new(203, 0, 113, 1))
        );
        assert_eq!(ipv4_default_gateway(&t, "eth2"), None);
    }

    #[test]
    fn ipv4_ignores_routes_that_are_down_or_direct() {
        let t = v4_table(&[
            ("eth0", [0; 4], [198, 51, 100, 1], 2, 0, [0; 4]),
            ("eth0", [0; 4], [0; 4], 1, 0, [0; 4]),
        ]);
        assert_eq!(ipv4_default_gateway(&t, "eth0"), None);
        assert_eq!(ipv4_default_gateway("", "eth0"), None);
        assert_eq!(
            ipv4_default_gateway("header only\ngarbage line\n", "eth0"),
            None
        );
    }

    const V6: &str = "\
00000000000000000000000000000000 00 00000000000000000000000000000000 00 fe800000000000000000000000000001 00000400 00000001 00000000 00450003 wlan0
00000000000000000000000000000000 00 00000000000000000000000000000000 00 fe800000000000000000000000000002 00000400 00000001 00000000 00450003 eth0
00000000000000000000000000000000 00 00000000000000000000000000000000 00 fe800000000000000000000000000003 00000100 00000001 00000000 00450003 eth0
20010db8000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001 eth0
00000000000000000000000000000000 00 00000000000000000000000000000000 00 00000000000000000000000000000000 ffffffff 00000001 00000000 00200200 lo
";

    #[test]
    fn ipv6_default_gateway_by_interface_and_metric() {
        assert_eq!(
            ipv6_default_gateway(V6, "eth0"),
            Some("fe80::3".parse().unwrap())
        );
        assert_eq!(
            ipv6_default_gateway(V6, "wlan0"),
            Some("fe80::1".parse().unwrap())
        );
        assert_eq!(
            ipv6_default_gateway(V6, "lo"),
            None,
            "unreachable route, no gateway"
        );
        assert_eq!(ipv6_default_gateway("short line\n", "eth0"), None);
    }
}
