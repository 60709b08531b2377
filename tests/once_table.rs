//! `--once` as an admin uses it at the console ("what is wrong with eth0?"), against the real
//! kernel: the diagnosis table on stdout, one row per layer check and a verdict per family,
//! and the exit status. Same harness and rules as tests/netns.rs: throw-away namespaces,
//! documentation addresses only, root (or skip; with CI=true a skip fails). No timing is
//! asserted.

mod lab;

use lab::{Lab, Netheal, PEER4};
use std::time::Duration;

/// `--once -W 1s ARGS IFACE` in the lab's host namespace: the exit status and the table's
/// rows (the stdout lines that start with the interface's name, blanks squeezed).
fn once(lab: &Lab, iface: &str, args: &[&str]) -> (i32, Vec<String>, Netheal) {
    let mut all = vec!["--once", "-W", "1s"];
    all.extend_from_slice(args);
    all.push(iface);
    let mut nh = lab.netheal(&lab.host, &all);
    let st = nh.finish(Duration::from_secs(15)).expect("--once exits");
    let rows: Vec<String> = nh
        .lines()
        .into_iter()
        .map(|l| l.1)
        .filter(|l| l.starts_with(&format!("{iface} ")))
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    (Netheal::code(st), rows, nh)
}

fn has(rows: &[String], want: &str) -> bool {
    rows.iter().any(|r| r.contains(want))
}

#[test]
fn once_prints_every_layer_and_exits_0_when_the_path_works() {
    let Some(lab) = Lab::pair("ok", 61, &[]) else {
        return;
    };
    lab.ip(
        &lab.host,
        &["route", "add", "default", "via", PEER4, "dev", &lab.ifc],
    );
    let (code, rows, nh) = once(&lab, &lab.ifc, &["-t", "gateway"]);
    for r in &rows {
        eprintln!("{r}");
    }
    assert_eq!(code, 0, "{:?}", nh.lines());
    let i = &lab.ifc;
    for want in [
        format!("{i} - absent interface present ok (index "),
        format!("{i} - admin-down administratively up ok"),
        format!("{i} - no-carrier carrier ok"),
        format!("{i} ipv4 no-address address ok (198.51.100.2/24)"),
        format!("{i} ipv4 no-route default route ok (via {PEER4}, table main)"),
        format!("{i} ipv4 gateway-silent gateway answers ICMP ok ("),
        format!("{i} ipv4 upstream targets (quorum 1) ok (1/1: {PEER4} "),
        format!("{i} ipv4 ok verdict ok"),
    ] {
        assert!(has(&rows, &want), "{want:?} missing from {rows:#?}");
    }
    assert_eq!(rows.len(), 3 + 6, "the link once, one family: {rows:#?}");
}

#[test]
fn once_names_the_failing_layer_admin_down_and_absent() {
    let Some(lab) = Lab::pair("ad", 62, &[]) else {
        return;
    };
    lab.ip(&lab.host, &["link", "set", &lab.ifc, "down"]);
    let (code, rows, _nh) = once(&lab, &lab.ifc, &["-t", PEER4]);
    for r in &rows {
        eprintln!("{r}");
    }
    assert_eq!(code, 1);
    let i = &lab.ifc;
    assert!(
        has(
            &rows,
            &format!("{i} - admin-down administratively up FAIL (link set down)")
        ),
        "{rows:#?}"
    );
    assert!(
        has(&rows, &format!("{i} - no-carrier carrier -")),
        "{rows:#?}"
    );
    assert!(
        has(
            &rows,
            &format!("{i} ipv4 admin-down verdict FAIL (interface administratively down; on-admin-down = link-up)")
        ),
        "{rows:#?}"
    );

    let gone = lab.name("zz");
    let (code, rows, _nh) = once(&lab, &gone, &["-t", PEER4]);
    for r in &rows {
        eprintln!("{r}");
    }
    assert_eq!(code, 1);
    assert!(
        has(
            &rows,
            &format!("{gone} - absent interface present FAIL (no such interface)")
        ),
        "{rows:#?}"
    );
    assert!(
        has(
            &rows,
            &format!("{gone} ipv4 absent verdict FAIL (interface not found")
        ),
        "{rows:#?}"
    );
}

/// A v6-only failure is not a v4 one: the IPv4 lane's verdict is ok, the IPv6 lane's names
/// its own layer, and --once fails.
#[test]
fn once_judges_ipv4_and_ipv6_apart() {
    let Some(lab) = Lab::pair("v6", 63, &[]) else {
        return;
    };
    // IPv6 has an address but no default route: its lane fails at no-route.
    let silent6 = format!("2001:db8:{:x}::99", lab.net6);
    let (code, rows, _nh) = once(&lab, &lab.ifc, &["-t", PEER4, "-t", &silent6]);
    for r in &rows {
        eprintln!("{r}");
    }
    assert_eq!(code, 1, "one family's outage fails --once");
    let i = &lab.ifc;
    assert!(has(&rows, &format!("{i} ipv4 ok verdict ok")), "{rows:#?}");
    assert!(
        has(
            &rows,
            &format!("{i} ipv6 no-route default route FAIL (none through {i})")
        ),
        "{rows:#?}"
    );
    assert!(
        has(
            &rows,
            &format!("{i} ipv6 upstream targets (quorum 1) FAIL (0/1: {silent6} ")
        ),
        "{rows:#?}"
    );
    assert!(
        has(
            &rows,
            &format!("{i} ipv6 no-route verdict FAIL (no default route")
        ),
        "{rows:#?}"
    );
    assert_eq!(rows.len(), 3 + 6 + 6, "{rows:#?}");
}

/// The gateway drops ICMP echo but answers ARP: the table says so, and it is no outage
/// (exit 0); once it stops answering ARP too, the gateway is dead (exit 1).
#[test]
fn once_tells_a_filtering_gateway_from_a_dead_one() {
    let Some(lab) = Lab::pair("gw", 64, &["nft"]) else {
        return;
    };
    lab.ip(
        &lab.host,
        &["route", "add", "default", "via", PEER4, "dev", &lab.ifc],
    );
    lab.nft(
        &lab.peer,
        "noecho",
        &lab::input_rule("noecho", "icmp type echo-request drop"),
    );
    let (code, rows, nh) = once(&lab, &lab.ifc, &["-t", "gateway"]);
    for r in &rows {
        eprintln!("{r}");
    }
    let i = &lab.ifc;
    assert_eq!(code, 0, "a filter is not an outage: {:?}", nh.lines());
    for want in [
        format!("{i} ipv4 gateway-dead gateway answers ARP ok ("),
        format!("{i} ipv4 gateway-silent gateway answers ICMP FAIL (no reply in 1s)"),
        format!("{i} ipv4 gateway-silent verdict ok (gateway filters ICMP)"),
    ] {
        assert!(has(&rows, &want), "{want:?} missing from {rows:#?}");
    }

    // The gateway's address gone from the peer: nobody answers ARP for it.
    lab.ip(
        &lab.peer,
        &["addr", "del", &format!("{PEER4}/24"), "dev", &lab.pifc],
    );
    let (code, rows, nh) = once(&lab, &lab.ifc, &["-t", "gateway"]);
    for r in &rows {
        eprintln!("{r}");
    }
    assert_eq!(code, 1, "{:?}", nh.lines());
    for want in [
        format!("{i} ipv4 gateway-dead gateway answers ARP FAIL (no answer in 1s)"),
        format!("{i} ipv4 gateway-dead verdict FAIL (gateway {PEER4} does not answer ARP; on-gateway-dead = heal)"),
    ] {
        assert!(has(&rows, &want), "{want:?} missing from {rows:#?}");
    }
}

/// A `tcp:` target is named as configured in the table (a closed port's RST answers).
#[test]
fn once_names_a_tcp_target_as_configured() {
    let Some(lab) = Lab::pair("tc", 65, &[]) else {
        return;
    };
    let target = format!("tcp:{PEER4}:9");
    let (code, rows, nh) = once(&lab, &lab.ifc, &["-t", &target]);
    for r in &rows {
        eprintln!("{r}");
    }
    assert_eq!(code, 0, "{:?}", nh.lines());
    let i = &lab.ifc;
    assert!(
        has(
            &rows,
            &format!("{i} ipv4 upstream targets (quorum 1) ok (1/1: {target} ")
        ),
        "{rows:#?}"
    );
}
