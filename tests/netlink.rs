//! The kernel's own view (rtnetlink) driving netheal, against the real kernel in throw-away
//! namespaces (see `lab`): carrier loss, a deleted and re-created interface, a default route
//! in a policy-routing table, default routes that change, and a flood of notifications that
//! overflows the netlink socket. Needs root; skips without it unless CI=true.
//!
//! Figures are printed with `eprintln!`; see them with
//! `cargo test --test netlink -- --nocapture`.

mod lab;

use lab::{is_good_round, is_round, secs, Lab, HOST4, PEER4};
use std::time::{Duration, Instant};

fn s(x: f64) -> Duration {
    Duration::from_secs_f64(x)
}

/// The `state X` of a SIGUSR1 status line.
fn state_of(line: &str) -> &str {
    line.split("state ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .unwrap_or("")
}

/// The peer side of the link goes down: the kernel knows at once (no LOWER_UP on our side),
/// and so does netheal, with a long interval that would otherwise hide it for 10 s.
#[test]
fn peer_carrier_loss_is_logged_at_once() {
    let Some(lab) = Lab::pair("cl", 0x11, &[]) else {
        return;
    };
    let nh = lab.netheal_ladder(
        &lab.host,
        &[
            "-t",
            PEER4,
            "-i",
            "10s",
            "-W",
            "300ms",
            "--dry-run",
            "-v",
            &lab.ifc,
        ],
    );
    nh.expect(nh.started, "-> up", s(10.0));
    // The kernel batches non-urgent link changes (carrier off among them) to one per second
    // (net/core/link_watch.c): a second after the lab's own link changes, it reports at once.
    std::thread::sleep(s(1.1));
    // What `ip monitor` hears, on a socket of its own: the kernel's moment, against which
    // netheal's own delay is measured (the link-watch batching is shared by every
    // namespace, so parallel tests delay both alike).
    let mut mon = std::process::Command::new("ip");
    mon.args(["-n", &lab.host, "monitor", "link"]);
    let mon = lab::Netheal::spawn(mon, "ip monitor link".into());
    std::thread::sleep(s(0.2));
    let t0 = Instant::now();
    lab.ip(&lab.peer, &["link", "set", &lab.pifc, "down"]);
    let (t_carrier, line) = nh.expect(t0, "carrier lost", s(3.0));
    let (t_kernel, _) = mon.expect(t0, "NO-CARRIER", s(3.0));
    let own = secs(t_kernel, t_carrier);
    assert!(
        own < 0.5,
        "netheal logged carrier loss {own:.3}s after ip monitor heard of it"
    );
    assert!(
        line.contains(&format!("{}: carrier lost", lab.ifc)),
        "{line}"
    );
    let (t_suspect, _) = nh.expect(t0, "-> suspect", s(3.0));
    let (logged, confirmed) = (secs(t0, t_carrier), secs(t0, t_suspect));
    // The interval is 10 s: a failed round within 2 s can only be the confirming round the
    // carrier loss started (300 ms timeout + slack on two shared cores).
    assert!(logged < 1.0, "carrier loss logged after {logged:.3}s");
    assert!(
        confirmed < 2.0,
        "confirming round failed after {confirmed:.3}s"
    );
    let t1 = Instant::now();
    lab.ip(&lab.peer, &["link", "set", &lab.pifc, "up"]);
    nh.expect(t1, "carrier regained", s(3.0));
    let (t_up, _) = nh.expect(t1, "-> up", s(5.0));
    eprintln!(
        "carrier: lost logged {:.1} ms after the peer went down ({:.1} ms after `ip monitor` heard it), confirming round failed {:.1} ms after; up again {:.2}s after it came back",
        logged * 1e3,
        own * 1e3,
        confirmed * 1e3,
        secs(t1, t_up)
    );
}

/// The watched interface is deleted (as a USB NIC or a ppp link dies): netheal says so, stops
/// saying `up`, counts the missing interface as failed rounds, heals, and recovers once the
/// heal step has re-created it (under a new index: the sockets are re-opened).
#[test]
fn deleted_interface_is_not_up_and_heals() {
    let Some(lab) = Lab::pair("gone", 0x12, &[]) else {
        return;
    };
    let step = lab.script(
        "recreate.sh",
        &format!(
            "#!/bin/sh\nPATH=/usr/sbin:/usr/bin:/sbin:/bin\n\
             ip link add {ifc} type veth peer name {pifc} netns {peer}\n\
             ip link set {ifc} up\n\
             ip -n {peer} link set {pifc} up\n\
             ip addr add {HOST4}/24 dev {ifc}\n\
             ip -n {peer} addr add {PEER4}/24 dev {pifc}\n",
            ifc = lab.ifc,
            pifc = lab.pifc,
            peer = lab.peer,
        ),
    );
    let step = step.to_str().unwrap();
    let nh = lab.netheal_ladder(
        &lab.host,
        &[
            "-t", PEER4, "-i", "1s", "-W", "300ms", "-a", step, "-b", "1s:2s", "-v", &lab.ifc,
        ],
    );
    nh.expect(nh.started, "-> up", s(10.0));
    let t0 = Instant::now();
    lab.ip(&lab.host, &["link", "del", &lab.ifc]);
    let (t_gone, _) = nh.expect(t0, &format!("{}: interface is gone", lab.ifc), s(3.0));
    // The kernel says "link set down" before the delete: suspect at once on that; the
    // rounds then say why (the first state line naming the interface gone).
    nh.expect(t0, "-> suspect", s(3.0));
    let (_, gone) = nh.expect(t0, &format!("interface {} is gone", lab.ifc), s(5.0));
    assert!(gone.contains(": state "), "{gone}");
    let (line, _) = nh.status(s(3.0)).expect("status line");
    assert_ne!(state_of(&line), "up", "{line}");
    let (t_heal, _) = nh.expect(t0, "heal attempt 1: running", s(10.0));
    nh.expect(t_heal, "interface appeared", s(10.0));
    let (t_up, _) = nh.expect(t_heal, "-> up", s(10.0));
    let (line, _) = nh.status(s(3.0)).expect("status line");
    assert_eq!(state_of(&line), "up", "{line}");
    eprintln!(
        "deleted interface: logged {:.1} ms after, heal {:.2}s, up again {:.2}s after the delete",
        secs(t0, t_gone) * 1e3,
        secs(t0, t_heal),
        secs(t0, t_up)
    );
}

/// Policy routing: the uplink's default route lives in table 100 only. `gateway` finds it
/// (netheal used to read only the main table, and failed every round).
#[test]
fn gateway_in_a_policy_routing_table() {
    let Some(lab) = Lab::pair("pol", 0x13, &[]) else {
        return;
    };
    lab.ip(
        &lab.host,
        &[
            "route", "add", "default", "via", PEER4, "dev", &lab.ifc, "table", "100",
        ],
    );
    let nh = lab.netheal_ladder(
        &lab.host,
        &[
            "-t",
            "gateway",
            "-i",
            "200ms",
            "-W",
            "300ms",
            "--dry-run",
            "-v",
            &lab.ifc,
        ],
    );
    nh.wait_nth(5, s(10.0), is_round).expect("5 rounds");
    let rounds = nh.rounds();
    assert!(
        rounds.iter().take(5).all(|r| r.1 && r.2.contains(PEER4)),
        "{rounds:?}"
    );
    assert_eq!(nh.count_lines("no default gateway"), 0);
    // Pinned to a table: only that table's default route counts.
    for (table, good) in [
        ("100", true),
        ("200", false),
        ("main", false),
        ("any", true),
    ] {
        let mut once = lab.netheal_ladder(
            &lab.host,
            &[
                "--once", "-t", "gateway", "--table", table, "-W", "500ms", &lab.ifc,
            ],
        );
        let st = once.finish(s(10.0)).expect("--once exits");
        assert_eq!(
            lab::Netheal::code(st) == 0,
            good,
            "table {table}: {:?}",
            once.lines()
        );
    }
}

/// Two default routes with different metrics: the lower one's gateway is probed; removed, the
/// other takes over at once; moved to another interface, `gateway` through this one is gone
/// and the rounds fail (the host's traffic no longer leaves through it).
#[test]
fn default_route_metrics_removal_and_move() {
    let Some(mut lab) = Lab::pair("drt", 0x14, &[]) else {
        return;
    };
    let peer2 = "198.51.100.3";
    lab.addrs(
        &lab.peer.clone(),
        &lab.pifc.clone(),
        &[&format!("{peer2}/24")],
    );
    let (host, ifc) = (lab.host.clone(), lab.ifc.clone());
    lab.ip(
        &host,
        &[
            "route", "add", "default", "via", PEER4, "dev", &ifc, "metric", "100",
        ],
    );
    lab.ip(
        &host,
        &[
            "route", "add", "default", "via", peer2, "dev", &ifc, "metric", "200",
        ],
    );
    let nh = lab.netheal_ladder(
        &host,
        &[
            "-t",
            "gateway",
            "-i",
            "300ms",
            "-W",
            "300ms",
            "--dry-run",
            "-v",
            &ifc,
        ],
    );
    nh.wait_nth(3, s(10.0), is_good_round)
        .expect("3 good rounds");
    assert!(
        nh.rounds().iter().all(|r| r.2.contains(PEER4)),
        "{:?}",
        nh.rounds()
    );
    let t0 = Instant::now();
    lab.ip(
        &host,
        &[
            "route", "del", "default", "via", PEER4, "dev", &ifc, "metric", "100",
        ],
    );
    let (t_new, _) = nh.expect(t0, &format!("IPv4 default route now via {peer2}"), s(3.0));
    let from = nh.index_at(t_new);
    let (_, (_, r)) = nh
        .wait_line(from, s(3.0), is_round)
        .expect("a round after the change");
    assert!(r.contains(peer2) && is_good_round(&r), "{r}");
    // Moved: the default route now leaves through another interface.
    let other = lab.name("c");
    let pother = lab.name("d");
    let peer = lab.peer.clone();
    lab.veth(&host, &other, &peer, &pother);
    lab.addrs(&host, &other, &["203.0.113.2/24"]);
    lab.addrs(&peer, &pother, &["203.0.113.1/24"]);
    let t1 = Instant::now();
    lab.ip(
        &host,
        &["route", "del", "default", "via", peer2, "dev", &ifc],
    );
    lab.ip(
        &host,
        &[
            "route",
            "add",
            "default",
            "via",
            "203.0.113.1",
            "dev",
            &other,
        ],
    );
    nh.expect(t1, "IPv4 default route gone", s(3.0));
    nh.expect(t1, "-> suspect", s(3.0));
    let _ = &mut lab;
}

/// A flood of address changes on another interface while netheal is not reading (stopped
/// with SIGSTOP between two rounds, as a loaded machine would delay it): the netlink socket
/// overflows, netheal re-reads the kernel's state, logs it, and neither fails a round nor loses
/// track of the watched interface (a carrier loss afterwards is still seen).
#[test]
fn netlink_overflow_resyncs_without_a_wrong_verdict() {
    let Some(mut lab) = Lab::pair("ovf", 0x15, &[]) else {
        return;
    };
    let (host, ifc) = (lab.host.clone(), lab.ifc.clone());
    let (fa, fb) = (lab.name("f"), lab.name("g"));
    lab.veth(&host, &fa, &host, &fb);
    let mut batch = String::new();
    for i in 0..200 {
        batch += &format!("addr add 203.0.113.{}/32 dev {fa}\n", i + 1);
    }
    for i in 0..200 {
        batch += &format!("addr del 203.0.113.{}/32 dev {fa}\n", i + 1);
    }
    let file = lab.write_file("flood.batch", &batch, 0o644);
    let mut cmd = std::process::Command::new("ip");
    cmd.args(["netns", "exec", &host, lab::bin(), "--log", "stderr"])
        .args(lab::quiet_args())
        .args([
            "-t",
            PEER4,
            "-i",
            "2s",
            "-W",
            "300ms",
            "--dry-run",
            "-v",
            &ifc,
        ])
        .env("NETHEAL_TEST_NETLINK_RCVBUF", "4096");
    let nh = lab::Netheal::spawn(cmd, "netheal (small netlink buffer)".into());
    nh.expect(nh.started, "-> up", s(10.0));
    nh.wait_line(nh.mark(), s(5.0), is_good_round)
        .expect("a good round");
    std::thread::sleep(s(0.05));
    // Between two rounds (2 s apart): nothing of the verdict depends on the pause.
    let t0 = Instant::now();
    assert!(nh.send_signal("STOP"));
    lab.exec(&host, &["ip", "-batch", file.to_str().unwrap()]);
    let flood = secs(t0, Instant::now());
    assert!(nh.send_signal("CONT"));
    assert!(
        flood < 1.5,
        "the flood took {flood:.2}s: rounds would be due"
    );
    let (t_resync, _) = nh.expect(t0, "re-reading the kernel's state", s(3.0));
    nh.wait_nth(3, s(10.0), |l| is_round(l) && !l.contains("round 1 "))
        .expect("rounds after the resync");
    let bad: Vec<String> = nh
        .rounds()
        .into_iter()
        .filter(|r| !r.1)
        .map(|r| r.2)
        .collect();
    assert!(bad.is_empty(), "failed rounds around the overflow: {bad:?}");
    assert_eq!(nh.count_lines("-> suspect"), 0);
    assert_eq!(nh.count_lines("interface is gone"), 0);
    assert_eq!(
        nh.count_lines("address 203.0.113."),
        0,
        "another interface's addresses"
    );
    // Still tracking the watched interface after the resync.
    let t1 = Instant::now();
    lab.ip(
        &lab.peer.clone(),
        &["link", "set", &lab.pifc.clone(), "down"],
    );
    nh.expect(t1, "carrier lost", s(3.0));
    eprintln!(
        "overflow: 400 address changes in {flood:.3}s while stopped; resync logged {:.1} ms after SIGCONT",
        secs(t0, t_resync) * 1e3 - flood * 1e3
    );
    let _ = &mut lab;
}

/// Unprivileged (ICMP datagram sockets, as uid 65534): the interface is deleted and created
/// again under a new index. The sockets are re-opened, not re-bound (a bound datagram socket
/// refuses a second bind with EPERM/EINVAL), so rounds are good again.
#[test]
fn unprivileged_datagram_mode_across_recreation() {
    let Some(lab) = Lab::pair("udg", 0x16, &["setpriv", "sysctl"]) else {
        return;
    };
    lab.exec(
        &lab.host,
        &[
            "sysctl",
            "-q",
            "-w",
            "net.ipv4.ping_group_range=0 2147483647",
        ],
    );
    let copy = lab.dir.join("netheal");
    std::fs::copy(lab::bin(), &copy).unwrap();
    let copy = copy.to_str().unwrap().to_owned();
    let mut cmd = std::process::Command::new("ip");
    cmd.args(["netns", "exec", &lab.host])
        .args([
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
        ])
        .args([copy.as_str(), "--log", "stderr"])
        .args(lab::quiet_args())
        .args([
            "-t",
            PEER4,
            "-i",
            "200ms",
            "-W",
            "300ms",
            "--dry-run",
            "-v",
            &lab.ifc,
        ]);
    let nh = lab::Netheal::spawn(cmd, "netheal as nobody".into());
    let (_, start) = nh.expect(nh.started, "watching targets", s(5.0));
    assert!(start.contains("datagram socket"), "{start}");
    nh.expect(nh.started, "-> up", s(10.0));
    lab.ip(&lab.host, &["link", "del", &lab.ifc]);
    // Long enough for a few rounds to find it missing.
    std::thread::sleep(s(1.0));
    lab.veth(&lab.host, &lab.ifc, &lab.peer, &lab.pifc);
    lab.addrs(&lab.host, &lab.ifc, &[&format!("{HOST4}/24")]);
    lab.addrs(&lab.peer, &lab.pifc, &[&format!("{PEER4}/24")]);
    let t1 = Instant::now();
    let from = nh.index_at(t1);
    nh.wait_line(from, s(10.0), is_good_round)
        .expect("a good round on the re-created interface");
    assert_eq!(nh.count_lines("binding sockets"), 0, "{:?}", nh.lines());
    eprintln!(
        "datagram mode: good again {:.2}s after the re-creation",
        secs(t1, Instant::now())
    );
}

/// Renamed away (as udev or an administrator does) and moved to another namespace: under the
/// watched name there is nothing, so netheal says so and stops saying `up`; renamed back, or
/// moved back, it recovers (the heal step is a no-op: this test is about the kernel's view).
#[test]
fn renamed_and_moved_interface_is_not_up() {
    let Some(mut lab) = Lab::pair("ren", 0x17, &[]) else {
        return;
    };
    let noop = lab.script("noop.sh", "#!/bin/sh\nexit 0\n");
    let (host, ifc) = (lab.host.clone(), lab.ifc.clone());
    let nh = lab.netheal_ladder(
        &host,
        &[
            "-t",
            PEER4,
            "-i",
            "300ms",
            "-W",
            "300ms",
            "-a",
            noop.to_str().unwrap(),
            "-b",
            "1s:2s",
            "-v",
            &ifc,
        ],
    );
    nh.expect(nh.started, "-> up", s(10.0));
    let other = lab.name("x");
    let t0 = Instant::now();
    lab.ip(&host, &["link", "set", &ifc, "down"]);
    lab.ip(&host, &["link", "set", &ifc, "name", &other]);
    nh.expect(t0, &format!("{ifc}: interface renamed to {other}"), s(3.0));
    nh.expect(t0, "-> suspect", s(3.0));
    let (_, line) = nh.expect(t0, &format!("interface {ifc} is gone"), s(5.0));
    assert!(line.contains(": state "), "{line}");
    let (st, _) = nh.status(s(3.0)).expect("status");
    assert_ne!(state_of(&st), "up", "{st}");
    let t1 = Instant::now();
    lab.ip(&host, &["link", "set", &other, "name", &ifc]);
    lab.ip(&host, &["link", "set", &ifc, "up"]);
    nh.expect(t1, "interface appeared", s(3.0));
    nh.expect(t1, "-> up", s(10.0));
    // Moved to another namespace: gone from ours.
    let away = lab.add_ns("m");
    let t2 = Instant::now();
    lab.ip(&host, &["link", "set", &ifc, "netns", &away]);
    nh.expect(t2, &format!("{ifc}: interface is gone"), s(3.0));
    nh.expect(t2, "-> suspect", s(3.0));
    let t3 = Instant::now();
    lab.ip(&away, &["link", "set", &ifc, "netns", &host]);
    lab.ip(&host, &["link", "set", &ifc, "up"]);
    // Moving between namespaces flushes the addresses.
    lab.ip(
        &host,
        &["addr", "replace", &format!("{HOST4}/24"), "dev", &ifc],
    );
    nh.expect(t3, "interface appeared", s(3.0));
    nh.expect(t3, "-> up", s(10.0));
}

/// The built-in `link` step bounces the interface, which removes its static default route,
/// its other static routes (any table) and its IPv6 global address; the kernel brings back
/// only the connected route. netheal puts back what was there before, so the heal does not
/// leave the host worse off, and the outage ends with the default route back.
#[test]
fn link_step_puts_back_routes_and_addresses() {
    let Some(lab) = Lab::pair("lnk", 0x18, &[]) else {
        return;
    };
    let (host, ifc) = (lab.host.clone(), lab.ifc.clone());
    let peer6 = lab.peer6();
    lab.ip(
        &host,
        &[
            "route", "add", "default", "via", PEER4, "dev", &ifc, "metric", "100",
        ],
    );
    lab.ip(
        &host,
        &["route", "add", "203.0.113.0/24", "via", PEER4, "dev", &ifc],
    );
    lab.ip(
        &host,
        &[
            "route", "add", "default", "via", PEER4, "dev", &ifc, "table", "100",
        ],
    );
    lab.ip(
        &host,
        &["-6", "route", "add", "default", "via", &peer6, "dev", &ifc],
    );
    let routes = |lab: &Lab| {
        [
            lab.ip(&host, &["route", "show", "default"]),
            lab.ip(&host, &["route", "show", "203.0.113.0/24"]),
            lab.ip(&host, &["route", "show", "table", "100"]),
            lab.ip(&host, &["-6", "route", "show", "default"]),
        ]
    };
    let before = routes(&lab);
    assert!(before.iter().all(|r| !r.trim().is_empty()), "{before:?}");
    let nh = lab.netheal_ladder(
        &host,
        &[
            "-t", PEER4, "-i", "300ms", "-W", "300ms", "-n", "2", "-a", "link", "-b", "2s:4s",
            "-v", &ifc,
        ],
    );
    nh.expect(nh.started, "-> up", s(10.0));
    // A bogus permanent neighbour: echoes go nowhere; the bounce flushes it.
    lab.ip(
        &host,
        &[
            "neigh",
            "replace",
            PEER4,
            "lladdr",
            "02:00:00:00:00:01",
            "dev",
            &ifc,
            "nud",
            "permanent",
        ],
    );
    let t0 = Instant::now();
    let (t_heal, _) = nh.expect(t0, "heal attempt 1: running link", s(10.0));
    let (_, put) = nh.expect(t_heal, "link: putting back", s(3.0));
    assert!(
        put.contains("203.0.113.0/24") && put.contains("table 100") && put.contains(&peer6),
        "{put}"
    );
    nh.expect(t_heal, "-> up", s(10.0));
    std::thread::sleep(s(1.2)); // past the check of what was put back
    let after = routes(&lab);
    for (b, a) in before.iter().zip(&after) {
        assert_eq!(
            b.trim(),
            a.trim(),
            "before the heal:\n{before:?}\nafter:\n{after:?}"
        );
    }
    assert!(lab.has_addr(&host, &ifc, &lab.host6()));
    assert_eq!(nh.count_lines("could not put back"), 0);
}
