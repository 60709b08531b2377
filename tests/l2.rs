//! The gateway's layer-2 probe against the real kernel (issue 10, CONTRACT10 "Gateway
//! liveness at L2"): a gateway namespace that drops all ICMP but answers ARP/NDP is alive; one
//! whose ARP is off or whose neighbour solicitations are dropped is dead; in the daemon the
//! probe runs only on the round after a failed one. Same harness and rules as
//! tests/probe_lab.rs: throw-away namespaces, documentation addresses only, root (or skip;
//! with CI=true a skip fails). The round trips are printed for the record (no timed
//! assertion: the bounds are the round's timeout).

mod lab;

use lab::{input_rule, Lab, Netheal, PEER4};
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

fn s(x: f64) -> Duration {
    Duration::from_secs_f64(x)
}

/// The host's default routes through the pair: IPv4 via the peer, IPv6 via `gw6`.
fn routes(lab: &Lab, v4: bool, gw6: Option<&str>) {
    if v4 {
        lab.ip(&lab.host, &["route", "add", "default", "via", PEER4]);
    }
    if let Some(gw) = gw6 {
        lab.ip(
            &lab.host,
            &["-6", "route", "add", "default", "via", gw, "dev", &lab.ifc],
        );
    }
}

/// The peer drops every ICMP and ICMPv6 echo it receives (NDP still passes).
fn drop_echoes(lab: &Lab) {
    lab.nft(
        &lab.peer,
        "noecho",
        &input_rule(
            "noecho",
            "meta l4proto icmp drop\n\t\ticmpv6 type echo-request drop",
        ),
    );
}

/// `--once -v -W 2s -t TARGET`: (exit code, every line).
fn once(lab: &Lab, target: &str) -> (i32, Vec<String>, Netheal) {
    let mut nh = lab.netheal(
        &lab.host,
        &["--once", "-v", "-W", "2s", "-t", target, &lab.ifc],
    );
    let st = nh.finish(s(15.0)).expect("--once exits");
    let lines = nh.lines().into_iter().map(|l| l.1).collect();
    (Netheal::code(st), lines, nh)
}

fn find<'a>(lines: &'a [String], what: &str) -> Option<&'a String> {
    lines.iter().find(|l| l.contains(what))
}

/// The milliseconds in "... (0.3 ms)".
fn ms(line: &str) -> Option<f64> {
    let open = line.rfind('(')?;
    line[open + 1..].strip_suffix(" ms)")?.parse().ok()
}

/// "gateway G answers P" with our own request's round trip, or the kernel's confirmation
/// (the kernel may resolve the gateway for the echo first; both are answers from it).
fn assert_answers(lines: &[String], gw: &str, proto: &str, nh: &Netheal) {
    let what = format!("gateway {gw} answers {proto} (");
    let Some(line) = find(lines, &what) else {
        nh.dump();
        panic!("no `{what}` line");
    };
    match ms(line) {
        Some(ms) => {
            assert!(ms < 2000.0, "within the round's timeout: {line}");
            eprintln!("observed: {proto} round trip to {gw}: {ms} ms");
        }
        None => assert!(line.contains("the kernel confirmed it reachable"), "{line}"),
    }
    let dead = format!("gateway {gw} does not answer {proto}");
    assert!(find(lines, &dead).is_none(), "{lines:?}");
}

#[test]
fn gateway_dropping_icmp_but_answering_arp_is_alive() {
    let Some(lab) = Lab::pair("l2a", 41, &["nft"]) else {
        return;
    };
    routes(&lab, true, None);
    drop_echoes(&lab);
    let (code, lines, nh) = once(&lab, "gateway");
    // The echo fails, layer 2 answers: the gateway filters ICMP, which is not an outage.
    assert_eq!(code, 0, "gateway-silent is ok: {lines:?}");
    assert!(
        find(&lines, "ok (gateway filters ICMP)").is_some(),
        "{lines:?}"
    );
    assert!(find(&lines, "round 1 failed").is_some(), "{lines:?}");
    assert_answers(&lines, PEER4, "ARP", &nh);
}

#[test]
fn gateway_dropping_icmpv6_but_answering_ndp_is_alive() {
    let Some(lab) = Lab::pair("l2b", 42, &["nft"]) else {
        return;
    };
    let gw = lab.peer6();
    routes(&lab, false, Some(&gw));
    drop_echoes(&lab);
    let (code, lines, nh) = once(&lab, &gw);
    // The echo fails, layer 2 answers: the gateway filters ICMP, which is not an outage.
    assert_eq!(code, 0, "gateway-silent is ok: {lines:?}");
    assert!(
        find(&lines, "ok (gateway filters ICMP)").is_some(),
        "{lines:?}"
    );
    assert_answers(&lines, &gw, "NDP", &nh);
}

/// The usual IPv6 gateway is a router's link-local address (from its router adverts): the
/// solicitation goes out scoped to the interface.
#[test]
fn link_local_ipv6_gateway_answers_ndp() {
    let Some(lab) = Lab::pair("l2c", 43, &["nft"]) else {
        return;
    };
    lab.addrs(&lab.peer, &lab.pifc, &["fe80::1/64"]);
    routes(&lab, false, Some("fe80::1"));
    drop_echoes(&lab);
    let (code, lines, nh) = once(&lab, "gateway");
    // The echo fails, layer 2 answers: the gateway filters ICMP, which is not an outage.
    assert_eq!(code, 0, "gateway-silent is ok: {lines:?}");
    assert!(
        find(&lines, "ok (gateway filters ICMP)").is_some(),
        "{lines:?}"
    );
    assert_answers(&lines, "fe80::1", "NDP", &nh);
}

#[test]
fn gateway_with_arp_off_is_dead() {
    let Some(lab) = Lab::pair("l2d", 44, &["nft"]) else {
        return;
    };
    routes(&lab, true, None);
    // The gateway's side stops answering ARP (and so stops getting our echoes too).
    lab.ip(&lab.peer, &["link", "set", "dev", &lab.pifc, "arp", "off"]);
    lab.ip(&lab.host, &["neigh", "flush", "dev", &lab.ifc]);
    let (code, lines, nh) = once(&lab, "gateway");
    assert_eq!(code, 1, "{lines:?}");
    let what = format!("gateway {PEER4} does not answer ARP (no reply in 2s)");
    if find(&lines, &what).is_none() {
        nh.dump();
        panic!("no `{what}` line");
    }
    let alive = format!("gateway {PEER4} answers ARP");
    assert!(find(&lines, &alive).is_none(), "{lines:?}");
}

#[test]
fn gateway_dropping_neighbour_solicitations_is_dead() {
    let Some(lab) = Lab::pair("l2e", 45, &["nft"]) else {
        return;
    };
    let gw = lab.peer6();
    routes(&lab, false, Some(&gw));
    lab.nft(
        &lab.peer,
        "nons",
        &input_rule("nons", "icmpv6 type nd-neighbor-solicit drop"),
    );
    let (code, lines, nh) = once(&lab, &gw);
    assert_eq!(code, 1, "{lines:?}");
    let what = format!("gateway {gw} does not answer NDP (no reply in 2s)");
    if find(&lines, &what).is_none() {
        nh.dump();
        panic!("no `{what}` line");
    }
}

/// In the daemon, a healthy round sends no ARP; a failed round makes the next one ask; once
/// the echoes pass again, the probing stops. Counted from the -v lines: one per probe.
#[test]
fn the_daemon_probes_only_after_a_failed_round() {
    let Some(lab) = Lab::pair("l2f", 46, &["nft"]) else {
        return;
    };
    routes(&lab, true, None);
    let nh = lab.netheal(
        &lab.host,
        &[
            "-v",
            "--dry-run",
            "-i",
            "1s",
            "-W",
            "1s",
            "-n",
            "100",
            "-t",
            "gateway",
            &lab.ifc,
        ],
    );
    let answered = format!("gateway {PEER4} answers ARP");
    // Three good rounds: no probe.
    let first = nh.wait_line(0, s(20.0), |l| l.contains(": round 3 good"));
    assert!(first.is_some(), "three good rounds");
    assert_eq!(nh.count_lines(&answered), 0, "no probe on healthy rounds");
    drop_echoes(&lab);
    let failed = nh
        .wait_line(0, s(20.0), |l| l.contains(" failed: "))
        .expect("a failed round");
    let probed = nh
        .wait_line(failed.0, s(20.0), |l| l.contains(&answered))
        .expect("the next round probes");
    // The probe's line comes after the failed round's line and before the next verdict.
    let next_round = nh
        .wait_line(probed.0, s(20.0), |l| l.contains(": round "))
        .expect("the probing round ends");
    assert!(probed.0 > failed.0 && next_round.0 > probed.0);
    if let Some(ms) = ms(&probed.1 .1) {
        eprintln!("observed: ARP round trip in the daemon: {ms} ms");
    }
    // Echoes pass again: after the first good round no more probes.
    lab.exec(&lab.peer, &["nft", "delete", "table", "inet", "noecho"]);
    let good = nh
        .wait_line(next_round.0, s(20.0), |l| l.contains(" good: "))
        .expect("a good round");
    // The round after the first good one may still carry a probe begun before it ended;
    // from the second good round on, none.
    let second = nh
        .wait_line(good.0 + 1, s(20.0), |l| l.contains(" good: "))
        .expect("a second good round");
    let before = nh.count_lines(&answered);
    let third = nh.wait_line(second.0 + 1, s(20.0), |l| l.contains(" good: "));
    let fourth = third.and_then(|t| nh.wait_line(t.0 + 1, s(20.0), |l| l.contains(" good: ")));
    assert!(fourth.is_some(), "good rounds go on");
    assert_eq!(
        nh.count_lines(&answered),
        before,
        "no probe on healthy rounds"
    );
}

/// Without CAP_NET_RAW (as `nobody`, datagram echo sockets opened by ping_group_range in the
/// namespace) no ARP can be sent: the probe is "not possible", said once, and the gateway is
/// never called dead for it.
#[test]
fn without_cap_net_raw_the_probe_is_not_possible_and_never_dead() {
    let Some(lab) = Lab::pair("l2g", 47, &["nft", "setpriv", "sysctl"]) else {
        return;
    };
    routes(&lab, true, None);
    drop_echoes(&lab);
    lab.exec(
        &lab.host,
        &["sysctl", "-qw", "net.ipv4.ping_group_range=0 2147483647"],
    );
    let copy = lab.dir.join("netheal");
    std::fs::copy(lab::bin(), &copy).unwrap();
    std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut cmd = std::process::Command::new("ip");
    cmd.args(["netns", "exec", &lab.host])
        .args([
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
        ])
        .args([copy.to_str().unwrap(), "--log", "stderr"])
        .args(lab::quiet_args())
        .args(["-v", "--dry-run", "-i", "1s", "-W", "1s", "-n", "100"])
        .args(["-t", "gateway", &lab.ifc]);
    let nh = Netheal::spawn(cmd, "as nobody".into());
    let third = nh.wait_line(0, s(20.0), |l| l.contains(": round 3 failed"));
    if third.is_none() {
        nh.dump();
        panic!("three failed rounds");
    }
    assert_eq!(
        nh.count_lines("ARP probe of the gateway not possible: socket(AF_PACKET): "),
        1,
        "said once"
    );
    assert_eq!(nh.count_lines("does not answer ARP"), 0);
    assert!(nh.count_lines("datagram socket") > 0);
}

/// Each family is probed on its own (CONTRACT10 lanes): with IPv4 healthy and the IPv6
/// gateway silent to echo and to solicitations, only NDP is asked, and it finds the IPv6
/// gateway dead; IPv4's gateway is never asked.
#[test]
fn each_family_is_probed_on_its_own() {
    let Some(lab) = Lab::pair("l2h", 48, &["nft"]) else {
        return;
    };
    let gw6 = lab.peer6();
    routes(&lab, true, Some(&gw6));
    lab.nft(
        &lab.peer,
        "v6off",
        &input_rule(
            "v6off",
            "icmpv6 type { echo-request, nd-neighbor-solicit } drop",
        ),
    );
    let nh = lab.netheal(
        &lab.host,
        &[
            "-v",
            "--dry-run",
            "-i",
            "1s",
            "-W",
            "1s",
            "-n",
            "100",
            "-t",
            PEER4,
            "-t",
            &gw6,
            &lab.ifc,
        ],
    );
    let dead = format!("gateway {gw6} does not answer NDP (no reply in 1s)");
    let line = nh.wait_line(0, s(20.0), |l| l.contains(&dead));
    if line.is_none() {
        nh.dump();
        panic!("no `{dead}` line");
    }
    // Two more IPv4 rounds after it: still no ARP asked.
    let at = line.unwrap().0;
    let v4 = |l: &str| l.contains(" good: ") && l.contains(PEER4);
    let next = nh.wait_line(at, s(20.0), v4).expect("IPv4 rounds go on");
    nh.wait_line(next.0 + 1, s(20.0), v4)
        .expect("IPv4 rounds go on");
    assert_eq!(nh.count_lines("ARP"), 0, "the IPv4 gateway is not asked");
}

/// The peer's MAC on its end of the pair.
fn peer_mac(lab: &Lab) -> String {
    let out = lab.ip(&lab.peer, &["-br", "link", "show", "dev", &lab.pifc]);
    out.split_whitespace().nth(2).expect("a MAC").to_string()
}

/// This host's neighbour entry for the gateway is wrong (a bogus permanent lladdr, the
/// issue's fault): the gateway answers our broadcast ARP request fine, but every packet of
/// ours goes to the bogus MAC. That is a local fault (a link bounce or ifup flushes the
/// entry): gateway-dead, with both MACs said, and --once exits 1. Before, the answer made
/// the gateway "alive" and the gateway-only round gateway-silent (ignored): exit 0.
#[test]
fn bogus_permanent_neighbour_entry_is_gateway_dead() {
    let Some(lab) = Lab::pair("l2i", 49, &[]) else {
        return;
    };
    routes(&lab, true, None);
    let bogus = "02:00:00:00:00:01";
    lab.ip(
        &lab.host,
        &[
            "neigh",
            "replace",
            PEER4,
            "lladdr",
            bogus,
            "dev",
            &lab.ifc,
            "nud",
            "permanent",
        ],
    );
    let mac = peer_mac(&lab);
    let (code, lines, nh) = once(&lab, "gateway");
    let said = format!(
        "gateway {PEER4} answers ARP from {mac} but this host's neighbour entry says {bogus} (stale): a local fault"
    );
    if code != 1 || find(&lines, &said).is_none() {
        nh.dump();
        panic!("exit {code}, no `{said}` line");
    }
    let row = find(&lines, "gateway answers ARP").expect("the table's layer-2 row");
    assert!(row.contains("gateway-dead"), "{row}");
    assert!(
        row.contains(&format!(
            "FAIL (answers from {mac}, this host's neighbour entry says {bogus} (stale))"
        )),
        "{row}"
    );
    assert!(
        find(&lines, "ok (gateway filters ICMP)").is_none(),
        "{lines:?}"
    );
    eprintln!("observed: {row}");
}

/// IPv6 needs no MAC comparison: the solicitation goes unicast through the kernel's entry,
/// so a bogus permanent entry means no advert, Dead.
#[test]
fn bogus_permanent_ipv6_neighbour_entry_is_gateway_dead() {
    let Some(lab) = Lab::pair("l2j", 50, &[]) else {
        return;
    };
    let gw = lab.peer6();
    routes(&lab, false, Some(&gw));
    lab.ip(
        &lab.host,
        &[
            "-6",
            "neigh",
            "replace",
            &gw,
            "lladdr",
            "02:00:00:00:00:01",
            "dev",
            &lab.ifc,
            "nud",
            "permanent",
        ],
    );
    let (code, lines, nh) = once(&lab, &gw);
    let what = format!("gateway {gw} does not answer NDP (no reply in 2s)");
    if code != 1 || find(&lines, &what).is_none() {
        nh.dump();
        panic!("exit {code}, no `{what}` line");
    }
    let row = find(&lines, "gateway answers NDP").expect("the table's layer-2 row");
    assert!(row.contains("FAIL (no answer in 2s)"), "{row}");
}
