//! The routing-table readers on any text, as /proc/net/route (first byte even) or
//! /proc/net/ipv6_route (odd) would print it, for a few interface names. A gateway is found
//! only for an interface the table names, lines of other interfaces do not change it, and
//! neither does the same table printed twice.
#![no_main]

use std::net::IpAddr;

use libfuzzer_sys::fuzz_target;
use netheal::route::{ipv4_default_gateway, ipv6_default_gateway};

const IFACES: [&str; 4] = ["eth0", "veth-nh0", "wlan0", "lo"];

fn gateway(v6: bool, table: &str, iface: &str) -> Option<IpAddr> {
    if v6 {
        ipv6_default_gateway(table, iface).map(IpAddr::V6)
    } else {
        ipv4_default_gateway(table, iface).map(IpAddr::V4)
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    let Ok(table) = std::str::from_utf8(rest) else {
        return;
    };
    let v6 = which & 1 == 1;
    let iface = IFACES[usize::from(which >> 1) % IFACES.len()];
    let gw = gateway(v6, table, iface);
    if !table.contains(iface) {
        assert_eq!(
            gw, None,
            "a gateway for an interface the table does not name"
        );
        return;
    }
    if let Some(IpAddr::V6(a)) = gw {
        assert!(!a.is_unspecified());
    }
    // /proc/net/route has a header line; /proc/net/ipv6_route has none.
    let (header, body) = match v6 {
        true => ("", table),
        false => table.split_once('\n').map_or((table, ""), |(h, b)| (h, b)),
    };
    let nl = if v6 { "" } else { "\n" };
    let mine: String = body
        .lines()
        .filter(|l| l.split_whitespace().any(|f| f == iface))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(
        gateway(v6, &format!("{header}{nl}{mine}"), iface),
        gw,
        "other lines matter"
    );
    let body_nl = if body.is_empty() || body.ends_with('\n') {
        ""
    } else {
        "\n"
    };
    let twice = format!("{header}{nl}{body}{body_nl}{body}");
    assert_eq!(gateway(v6, &twice, iface), gw, "printed twice");
});
