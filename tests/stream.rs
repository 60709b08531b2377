//! `tcp:` and `dns:` targets against the real kernel (issue 10, "probes beyond ICMP"): a
//! port open while ICMP echo is dropped, a closed port (RST), TCP dropped entirely, and DNS
//! resolvers (dnsmasq, and a few lines of Python that also send a wrong-id response first)
//! in the peer namespace; IPv4 and IPv6 in every case. Same harness and rules as
//! tests/netns.rs: throw-away namespaces, documentation addresses only, root (or skip; with
//! CI=true a skip fails). Heals are dry runs: only the probe verdicts are under test.

mod lab;

use lab::{wait_until, Lab, Netheal, PEER4};
use std::fs;
use std::time::Duration;

fn s(x: f64) -> Duration {
    Duration::from_secs_f64(x)
}

fn python() -> String {
    ["/usr/bin/python3"]
        .into_iter()
        .map(std::path::PathBuf::from)
        .find(|p| p.exists())
        .or_else(|| lab::which("python3"))
        .expect("python3")
        .to_str()
        .unwrap()
        .to_owned()
}

/// A dual-stack TCP listener on port argv[1] that accepts and closes; prints "ready".
const LISTENER: &str = r#"
import socket, sys
s = socket.socket(socket.AF_INET6)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("::", int(sys.argv[1])))
s.listen(64)
print("ready", flush=True)
while True:
    c, _ = s.accept()
    c.close()
"#;

/// A dual-stack DNS responder on UDP port argv[1]: to every query it first sends a response
/// with another id (which must count as foreign), then the right one with RCODE REFUSED and
/// the question echoed. Prints "ready".
const RESPONDER: &str = r#"
import socket, sys
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
s.bind(("::", int(sys.argv[1])))
print("ready", flush=True)
while True:
    q, peer = s.recvfrom(512)
    if len(q) < 12:
        continue
    wrong = bytes([q[0] ^ 0x5a, q[1]])
    body = bytes([0x80 | (q[2] & 0x01), 0x05]) + q[4:6] + bytes(6) + q[12:]
    s.sendto(wrong + body, peer)
    s.sendto(q[0:2] + body, peer)
"#;

/// Starts `script PORT` in the peer namespace and waits until it says it listens.
fn helper(lab: &mut Lab, script: &str, port: &str, log: &str) {
    let (peer, py) = (lab.peer.clone(), python());
    lab.spawn_bg(&peer, &[&py, "-c", script, port], log);
    let path = lab.path(log);
    assert!(
        wait_until(s(10.0), || fs::read_to_string(&path)
            .is_ok_and(|t| t.contains("ready"))),
        "{log}: {}",
        fs::read_to_string(&path).unwrap_or_default()
    );
}

/// netheal -v, dry run, 200 ms between rounds, with `targets`, quorum `k` (capped per family
/// lane at its targets), timeout `w`.
fn watch(lab: &Lab, targets: &[String], k: &str, w: &str, extra: &[&str]) -> Netheal {
    let mut args: Vec<&str> = vec!["-v", "--dry-run", "-i", "200ms", "-W", w, "-k", k];
    for t in targets {
        args.extend(["-t", t.as_str()]);
    }
    args.extend_from_slice(extra);
    args.push(&lab.ifc);
    lab.netheal(&lab.host, &args)
}

/// Waits for `n` round lines (of every lane: one line per family per round); returns them.
fn rounds(nh: &Netheal, n: usize) -> Vec<(bool, String)> {
    nh.wait_nth(n, s(60.0), lab::is_round)
        .unwrap_or_else(|| panic!("fewer than {n} rounds"));
    nh.rounds()
        .into_iter()
        .take(n)
        .map(|(_, good, line)| (good, line))
        .collect()
}

/// What `line` (a `-v` round line) says of target `t`: `Some(true)` with an RTT, `Some(false)`
/// lost, failed or send failed, None when the line is another lane's.
fn answered(line: &str, t: &str) -> Option<bool> {
    let after = line.split(&format!(" {t} ")).nth(1)?;
    Some(after.starts_with(|c: char| c.is_ascii_digit()))
}

/// The round lines naming `t`, from the first in which it answered (the first may race
/// neighbour discovery on a freshly made veth): at least `min`, and in each it answered and
/// its lane's round was good.
fn assert_answers(rs: &[(bool, String)], t: &str, min: usize) {
    let mine: Vec<&(bool, String)> = rs
        .iter()
        .filter(|(_, l)| answered(l, t).is_some())
        .collect();
    let from = mine
        .iter()
        .position(|(_, l)| answered(l, t) == Some(true))
        .unwrap_or_else(|| panic!("{t} never answered: {rs:#?}"));
    assert!(mine.len() - from >= min, "{t}: {rs:#?}");
    for (good, line) in &mine[from..] {
        assert!(*good && answered(line, t) == Some(true), "{t}: {line}");
    }
}

#[test]
fn tcp_open_port_answers_while_icmp_echo_is_dropped() {
    let Some(mut lab) = Lab::pair("to", 200, &["nft", "python3"]) else {
        return;
    };
    let peer = lab.peer.clone();
    lab.nft(
        &peer,
        "noping",
        &lab::input_rule(
            "nhnoping",
            "icmp type echo-request drop\n\t\ticmpv6 type echo-request drop",
        ),
    );
    helper(&mut lab, LISTENER, "8080", "listener.log");
    let targets = [
        format!("tcp:{PEER4}:8080"),
        format!("tcp:[{}]:8080", lab.peer6()),
        PEER4.to_string(),
        lab.peer6(),
    ];
    // Quorum 1 per family lane: its tcp: target answers, its echo target cannot.
    let nh = watch(&lab, &targets, "1", "2s", &[]);
    let rs = rounds(&nh, 16);
    for t in &targets[..2] {
        assert_answers(&rs, t, 5);
    }
    // The echo targets, whose requests are dropped, never answer.
    for t in &targets[2..] {
        let named: Vec<_> = rs.iter().filter_map(|(_, l)| answered(l, t)).collect();
        assert!(named.len() >= 6 && named.iter().all(|a| !a), "{t}: {rs:#?}");
    }
    eprintln!("tcp open, ICMP dropped: {}", rs[rs.len() - 2].1);
    eprintln!("tcp open, ICMP dropped: {}", rs[rs.len() - 1].1);
    assert_eq!(nh.count_lines("-> down"), 0);
}

#[test]
fn tcp_closed_port_answers_with_rst() {
    let Some(lab) = Lab::pair("tc", 201, &[]) else {
        return;
    };
    // Nothing listens on port 9 in the peer: its kernel answers every SYN with an RST.
    let targets = [format!("tcp:{PEER4}:9"), format!("tcp:[{}]:9", lab.peer6())];
    let nh = watch(&lab, &targets, "1", "2s", &[]);
    let rs = rounds(&nh, 12);
    for t in &targets {
        assert_answers(&rs, t, 4);
    }
    let (line, st) = nh.status(s(5.0)).expect("status line");
    eprintln!("tcp closed (RST): {}; {line}", rs.last().unwrap().1);
    assert!(st["replies"] >= 10, "{line}");
    assert_eq!(nh.count_lines("-> down"), 0);
    // `--once` judges one round the same way: exit 0.
    let mut once = lab.netheal(&lab.host, &["--once", "-v", "-t", &targets[0], &lab.ifc]);
    let code = Netheal::code(once.finish(s(20.0)).expect("--once exits"));
    assert_eq!(code, 0, "--once with a closed (RST) port");
}

#[test]
fn tcp_dropped_entirely_fails_the_rounds() {
    let Some(mut lab) = Lab::pair("td", 202, &["nft", "python3"]) else {
        return;
    };
    let peer = lab.peer.clone();
    helper(&mut lab, LISTENER, "8080", "listener.log");
    // SYNs are dropped silently: no SYN-ACK, no RST, no ICMP error.
    lab.nft(
        &peer,
        "notcp",
        &lab::input_rule("nhnotcp", "tcp dport 8080 drop"),
    );
    let targets = [
        format!("tcp:{PEER4}:8080"),
        format!("tcp:[{}]:8080", lab.peer6()),
    ];
    let nh = watch(&lab, &targets, "1", "500ms", &["-n", "2"]);
    let rs = rounds(&nh, 8);
    for (good, line) in &rs {
        assert!(!good, "a round was good with TCP dropped: {line}");
        let lost = targets.iter().any(|t| line.contains(&format!(" {t} lost")));
        assert!(lost, "{line}");
    }
    for t in &targets {
        assert!(rs.iter().any(|(_, l)| answered(l, t).is_some()), "{t}");
    }
    nh.expect(nh.started, "-> down", s(30.0));
    let (line, st) = nh.status(s(5.0)).expect("status line");
    eprintln!("tcp dropped: {}; {line}", rs.last().unwrap().1);
    assert_eq!(st["replies"], 0, "{line}");
    assert!(st["lost"] >= 8, "one attempt lost per lane round: {line}");
    let args = ["--once", "-W", "500ms", "-t", &targets[1], &lab.ifc];
    let mut once = lab.netheal(&lab.host, &args);
    let code = Netheal::code(once.finish(s(20.0)).expect("--once exits"));
    assert_eq!(code, 1, "--once with TCP dropped");
}

#[test]
fn dns_targets_answer_from_resolvers_in_the_namespace() {
    let Some(mut lab) = Lab::pair("dn", 203, &["dnsmasq", "python3"]) else {
        return;
    };
    let (peer, peer6) = (lab.peer.clone(), lab.peer6());
    let dnsmasq = lab::which("dnsmasq").unwrap();
    // No upstream, no hosts file: it answers `. NS` itself (REFUSED or from nothing).
    let (l4, l6) = (
        format!("--listen-address={PEER4}"),
        format!("--listen-address={peer6}"),
    );
    lab.spawn_bg(
        &peer,
        &[
            dnsmasq.to_str().unwrap(),
            "--no-resolv",
            "--no-hosts",
            "--keep-in-foreground",
            "--conf-file=/dev/null",
            "--user=root",
            "--bind-interfaces",
            &l4,
            &l6,
            "--pid-file=",
            "--log-facility=-",
        ],
        "dnsmasq.log",
    );
    helper(&mut lab, RESPONDER, "5353", "responder.log");
    let targets = [
        format!("dns:{PEER4}"),
        format!("dns:{peer6}"),
        format!("dns:[{peer6}]:5353"),
        format!("dns:{PEER4}:5353"),
        // Nothing listens here: the peer's port unreachable fails it at once.
        format!("dns:{PEER4}:5354"),
    ];
    // Quorum 2 per lane: IPv4 has three targets, one of them without a resolver.
    let nh = watch(&lab, &targets, "2", "2s", &[]);
    let rs = rounds(&nh, 16);
    for t in &targets[..4] {
        assert_answers(&rs, t, 5);
    }
    // The first port unreachable fails it at once; later ones may fall to the peer's ICMP
    // rate limit (icmp_ratelimit), and then it is lost at the timeout. Never an answer.
    let closed = &targets[4];
    let first = rs
        .iter()
        .find(|(_, l)| answered(l, closed).is_some())
        .expect("the closed port's lane");
    assert!(first.1.contains(&format!("{closed} failed")), "{}", first.1);
    assert!(rs.iter().all(|(_, l)| answered(l, closed) != Some(true)));
    for (_, line) in rs.iter().rev().take(2) {
        eprintln!("dns: {line}");
    }
    let (line, st) = nh.status(s(5.0)).expect("status line");
    eprintln!("dns: {line}");
    // Python's wrong-id response before each right one: counted foreign, never an answer.
    assert!(st["foreign"] >= 2 * 5, "{line}");
    assert_eq!(nh.count_lines("-> down"), 0);
}
