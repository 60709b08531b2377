//! The receive path as `watch.rs` runs it, driven through a `Prober`: rounds are started,
//! echoes built, and datagrams fed in as a raw IPv4 socket (IPv4 header + ICMP) or a datagram
//! socket (ICMP only) returns them, through the same IPv4 strip and echo parse. A shadow model
//! of what was sent checks the prober's verdicts:
//! - a counted reply echoes (identifier, sequence, MAC) of a request sent this round to the
//!   reply's source, is the first for its target this round, and its RTT is the time since
//!   that request was built;
//! - an exact echo of such a request, for a target that has not answered or failed, counts;
//! - an ICMP error (raw socket, or a datagram socket's error queue) ends a target only if it
//!   quotes a request of this round to that target, first per target, naming its sender;
//!   one that quotes such a request of a target still pending does end it;
//! - nothing counts while no round runs; every packet is counted exactly once in the stats;
//! - requests go only to pending targets (never to one of our own addresses), at most COUNT
//!   per target per round, and parse back;
//! - a round's verdict counts exactly the targets that answered, and it ends by its deadline.
#![no_main]

use std::net::IpAddr;
use std::time::Duration;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use netheal::mono::Instant;
use netheal::probe::{Prober, Received, REQUEST_LEN};
use netheal::wire::{
    checksum, strip_ipv4_header, Echo, EchoKind, ErrorKind, Family, QuotedEcho, WireError,
};

const V4: [&str; 3] = ["198.51.100.1", "198.51.100.2", "203.0.113.9"];
const V6: [&str; 3] = ["2001:db8::1", "2001:db8::2", "fe80::1"];

fn addr(v6: bool, i: u8) -> IpAddr {
    let list = if v6 { V6 } else { V4 };
    list[usize::from(i) % list.len()].parse().unwrap()
}

#[derive(Arbitrary, Debug, Clone, Copy, PartialEq)]
enum Sock {
    RawV4,
    DgramV4,
    /// Raw and datagram ICMPv6 sockets both deliver the ICMPv6 message alone.
    V6,
}

impl Sock {
    fn family(self) -> Family {
        if self == Sock::V6 {
            Family::V6
        } else {
            Family::V4
        }
    }
}

/// Mirrors `IcmpSocket::icmp_part` and the `unwrap_or(&[])` in `Uplink::receive`.
fn icmp_part(sock: Sock, datagram: &[u8]) -> Result<&[u8], WireError> {
    match sock {
        Sock::RawV4 => strip_ipv4_header(datagram),
        _ => Ok(datagram),
    }
}

#[derive(Arbitrary, Debug)]
enum Op {
    Advance(u16),
    Transmit,
    SendFailed(u8),
    /// The reply to the k-th request of this round, as a socket would deliver it, then
    /// optionally corrupted.
    Echo {
        k: u8,
        sock: Sock,
        src: Option<u8>,
        checksum_ok: bool,
        flips: Vec<(u8, u8)>,
    },
    /// An ICMP error quoting the k-th request of this round (its first 8 to 16 bytes), as a
    /// raw socket receives it (`queued` false) or a datagram socket's error queue gives it.
    Error {
        k: u8,
        sock: Sock,
        reporter: u8,
        icmp_type: u8,
        code: u8,
        quote: u8,
        queued: bool,
        flips: Vec<(u8, u8)>,
    },
    /// Any bytes from any source.
    Raw {
        sock: Sock,
        src: u8,
        bytes: Vec<u8>,
    },
    RoundEnd,
}

#[derive(Arbitrary, Debug)]
struct Round {
    targets: Vec<Option<(bool, u8)>>,
    /// Targets marked as one of this host's own addresses.
    own: Vec<u8>,
    ops: Vec<Op>,
}

#[derive(Arbitrary, Debug)]
struct Script {
    count: u8,
    timeout_ms: u16,
    quorum: u8,
    ident: u16,
    dgram_idents: [Option<u16>; 2],
    key: [u8; 16],
    rounds: Vec<Round>,
}

struct Sent {
    target: usize,
    dest: IpAddr,
    at: Instant,
    bytes: Vec<u8>,
}

/// What this harness knows about the current round.
#[derive(Default)]
struct Model {
    addrs: Vec<Option<IpAddr>>,
    sent: Vec<Sent>,
    answered: Vec<bool>,
    failed: Vec<bool>,
    reported: Vec<bool>,
    own: Vec<bool>,
    per_target: Vec<u32>,
    running: bool,
    start: Option<Instant>,
}

fn with_ipv4_header(icmp: &[u8]) -> Vec<u8> {
    let total = (20 + icmp.len()) as u16;
    let mut p = vec![
        0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, 1, 0, 0, 198, 51, 100, 1, 198, 51, 100, 2,
    ];
    p[2..4].copy_from_slice(&total.to_be_bytes());
    p.extend_from_slice(icmp);
    p
}

fuzz_target!(|s: Script| {
    let count = u32::from(s.count % 6);
    let timeout = Duration::from_millis(u64::from(s.timeout_ms.max(1)));
    let quorum = usize::from(s.quorum % 4);
    let mut p = Prober::new(count, timeout, quorum, s.ident, s.key);
    for (family, ident) in [Family::V4, Family::V6].into_iter().zip(s.dgram_idents) {
        if let Some(id) = ident {
            p.set_ident(family, id);
        }
    }
    let mut now = Instant::now();
    let mut m;
    let (mut fed, mut replies, mut transmitted, mut send_failures) = (0u64, 0u64, 0u64, 0u64);
    let mut buf = [0u8; 256];
    for round in s.rounds.iter().take(8) {
        let addrs: Vec<Option<IpAddr>> = round
            .targets
            .iter()
            .take(5)
            .map(|t| t.map(|(v6, i)| addr(v6, i)))
            .collect();
        p.start_round(now, addrs.iter().copied());
        let mut own = vec![false; addrs.len()];
        for &t in round.own.iter().take(2) {
            if let Some(o) = own.get_mut(usize::from(t)) {
                p.exclude_own(usize::from(t));
                *o = true;
            }
        }
        m = Model {
            answered: vec![false; addrs.len()],
            failed: vec![false; addrs.len()],
            reported: vec![false; addrs.len()],
            own,
            per_target: vec![0; addrs.len()],
            addrs,
            running: true,
            start: Some(now),
            ..Model::default()
        };
        for op in round.ops.iter().take(64) {
            match op {
                Op::Advance(ms) => now += Duration::from_millis(u64::from(*ms)),
                Op::Transmit => {
                    let Some(tx) = p.poll_transmit(now, &mut buf) else {
                        continue;
                    };
                    assert!(m.running, "transmit outside a round");
                    assert!(tx.len <= REQUEST_LEN);
                    assert_eq!(m.addrs[tx.target], Some(tx.dest));
                    let t = tx.target;
                    assert!(
                        !m.answered[t] && !m.failed[t] && !m.reported[t],
                        "not pending"
                    );
                    assert!(!m.own[t], "probed one of our own addresses");
                    m.per_target[tx.target] += 1;
                    assert!(m.per_target[tx.target] <= count.max(1), "more than COUNT");
                    let family = Family::of(tx.dest);
                    let e = Echo::parse(family, &buf[..tx.len]).expect("request parses");
                    assert_eq!(e.kind, EchoKind::Request);
                    assert_eq!(e.ident, p.ident(family));
                    transmitted += 1;
                    m.sent.push(Sent {
                        target: tx.target,
                        dest: tx.dest,
                        at: now,
                        bytes: buf[..tx.len].to_vec(),
                    });
                }
                Op::SendFailed(t) => {
                    let t = usize::from(*t) % m.addrs.len().max(1);
                    p.send_failed(t);
                    send_failures += 1;
                    if let Some(f) = m.failed.get_mut(t) {
                        *f = true;
                    }
                }
                Op::Echo {
                    k,
                    sock,
                    src,
                    checksum_ok,
                    flips,
                } => {
                    if m.sent.is_empty() {
                        continue;
                    }
                    let q = &m.sent[usize::from(*k) % m.sent.len()];
                    let mut icmp = q.bytes.clone();
                    icmp[0] = if Family::of(q.dest) == Family::V4 {
                        0
                    } else {
                        129
                    };
                    icmp[2..4].fill(0);
                    if *checksum_ok && sock.family() == Family::V4 {
                        let sum = checksum(&icmp);
                        icmp[2..4].copy_from_slice(&sum.to_be_bytes());
                    }
                    let mut dgram = match sock {
                        Sock::RawV4 => with_ipv4_header(&icmp),
                        _ => icmp,
                    };
                    for &(at, x) in flips.iter().take(4) {
                        let at = usize::from(at) % dgram.len();
                        dgram[at] ^= x;
                    }
                    let from = match src {
                        Some(i) => addr(*sock == Sock::V6, *i),
                        None => q.dest,
                    };
                    // The kernel gives a v6 socket v6 sources only, and a v4 socket v4 ones.
                    if Family::of(from) != sock.family() {
                        continue;
                    }
                    fed += 1;
                    replies += u64::from(feed(&mut p, &mut m, now, *sock, from, &dgram));
                }
                Op::Error {
                    k,
                    sock,
                    reporter,
                    icmp_type,
                    code,
                    quote,
                    queued,
                    flips,
                } => {
                    if m.sent.is_empty() {
                        continue;
                    }
                    let q = &m.sent[usize::from(*k) % m.sent.len()];
                    let family = sock.family();
                    let from = addr(family == Family::V6, *reporter);
                    let mut echo = q.bytes.clone();
                    echo.truncate(8 + usize::from(*quote) % 9);
                    fed += 1;
                    if *queued {
                        // The kernel has read the error: type, code, destination come apart.
                        // An IPv6 socket's error queue names IPv6 destinations only, and an
                        // IPv4 socket's IPv4 ones.
                        if Family::of(q.dest) != family {
                            fed -= 1;
                            continue;
                        }
                        let kind = ErrorKind {
                            family,
                            icmp_type: *icmp_type,
                            code: *code,
                        };
                        for &(at, x) in flips.iter().take(2) {
                            let at = usize::from(at) % echo.len();
                            echo[at] ^= x;
                        }
                        let got = QuotedEcho::from_queued(kind, q.dest, &echo)
                            .map(|qe| p.handle_error(family, from, qe));
                        match got {
                            Ok(r) => {
                                let parsed = QuotedEcho::from_queued(kind, q.dest, &echo).unwrap();
                                error_verdict(&mut m, r, from, Some(parsed));
                            }
                            Err(_) => fed -= 1,
                        }
                        continue;
                    }
                    let mut dgram = icmp_error(family, *icmp_type, *code, q.dest, &echo);
                    if *sock == Sock::RawV4 {
                        dgram = with_ipv4_header(&dgram);
                    }
                    for &(at, x) in flips.iter().take(4) {
                        let at = usize::from(at) % dgram.len();
                        dgram[at] ^= x;
                    }
                    replies += u64::from(feed(&mut p, &mut m, now, *sock, from, &dgram));
                }
                Op::Raw { sock, src, bytes } => {
                    fed += 1;
                    let from = addr(*sock == Sock::V6, *src);
                    replies += u64::from(feed(&mut p, &mut m, now, *sock, from, bytes));
                }
                Op::RoundEnd => round_end(&mut p, &mut m, now, timeout, quorum),
            }
            let st = p.stats();
            assert_eq!(st.replies, replies);
            assert_eq!(
                st.replies + st.foreign + st.late + st.icmp_errors,
                fed,
                "each packet counted once"
            );
            assert_eq!(st.sent, transmitted);
            assert_eq!(st.send_errors, send_failures);
            assert!(st.replies + st.lost <= st.sent, "{st:?}");
            assert!(st.good_rounds <= st.rounds);
            assert!(st.rtt_min() <= st.rtt_max());
            match p.poll_timeout() {
                Some(t) => {
                    assert!(m.running);
                    assert!(t <= m.start.unwrap() + timeout, "timer past the deadline");
                }
                None => assert!(!m.running, "a running round with no timer"),
            }
            assert_eq!(p.round_running(), m.running);
        }
        round_end(&mut p, &mut m, now + timeout, timeout, quorum);
        now += timeout;
    }
});

/// Feeds one datagram; returns whether it counted as a reply.
fn feed(
    p: &mut Prober,
    m: &mut Model,
    now: Instant,
    sock: Sock,
    src: IpAddr,
    dgram: &[u8],
) -> bool {
    let family = sock.family();
    let icmp = icmp_part(sock, dgram).unwrap_or(&[]);
    let r = p.handle_packet(now, family, src, icmp);
    if Echo::parse(family, icmp).is_err() {
        if let Ok(qe) = QuotedEcho::parse(family, icmp) {
            error_verdict(m, r, src, Some(qe));
            return false;
        }
    }
    // Requests of this round this packet is an exact echo of, from the address it went to.
    let echoes: Vec<&Sent> = match Echo::parse(family, icmp) {
        Ok(e) if e.kind == EchoKind::Reply => m
            .sent
            .iter()
            .filter(|q| q.dest == src && Family::of(q.dest) == family)
            .filter(|q| {
                let req = Echo::parse(family, &q.bytes).unwrap();
                (req.ident, req.seq, req.payload) == (e.ident, e.seq, e.payload)
            })
            .collect(),
        _ => Vec::new(),
    };
    match r {
        Received::Reply { target, rtt } => {
            assert!(m.running, "a reply counted outside a round");
            let q = echoes
                .iter()
                .find(|q| q.target == target)
                .expect("counted a reply that echoes no request of this round");
            assert!(!m.answered[target], "second reply counted for one target");
            assert_eq!(rtt, now - q.at);
            m.answered[target] = true;
            true
        }
        Received::Unreachable { .. } => panic!("an error the harness cannot parse ended a target"),
        Received::Foreign | Received::Late => {
            let owed = m.running
                && echoes
                    .iter()
                    .any(|q| !m.answered[q.target] && !m.failed[q.target]);
            assert!(
                !owed,
                "an exact echo of a request in flight was not counted: {r:?}"
            );
            false
        }
    }
}

/// Checks what the prober made of an ICMP error (`q`: how the harness itself parsed it).
fn error_verdict(m: &mut Model, r: Received, src: IpAddr, q: Option<QuotedEcho>) {
    // Requests of this round the error quotes: identifier, sequence, destination, and the
    // quoted part of the MAC.
    let quoted: Vec<usize> = q.map_or(Vec::new(), |qe| {
        m.sent
            .iter()
            .filter(|s| s.dest == qe.dest && Family::of(s.dest) == qe.kind.family)
            .filter(|s| {
                let req = Echo::parse(qe.kind.family, &s.bytes).unwrap();
                (req.ident, req.seq) == (qe.ident, qe.seq) && req.payload.starts_with(qe.payload)
            })
            .map(|s| s.target)
            .collect()
    });
    match r {
        Received::Unreachable { target, report } => {
            assert!(m.running, "an error counted outside a round");
            assert!(
                quoted.contains(&target),
                "ended a target its error does not quote"
            );
            assert!(
                !m.answered[target] && !m.reported[target],
                "target already decided"
            );
            assert_eq!(report.from, src);
            m.reported[target] = true;
        }
        Received::Reply { .. } => panic!("an ICMP error counted as a reply"),
        Received::Foreign | Received::Late => {
            let owed = m.running
                && quoted
                    .iter()
                    .any(|&t| !m.answered[t] && !m.reported[t] && !m.failed[t]);
            assert!(
                !owed,
                "an error quoting a pending target's echo was ignored: {r:?}"
            );
        }
    }
}

/// An ICMP error message quoting `echo` (the IP header of the datagram it was about, then
/// `echo`), checksummed for ICMPv4 as a reporter would.
fn icmp_error(family: Family, icmp_type: u8, code: u8, dest: IpAddr, echo: &[u8]) -> Vec<u8> {
    let mut m = vec![icmp_type, code, 0, 0, 0, 0, 0, 0];
    match dest {
        IpAddr::V4(d) => {
            let total = (20 + echo.len()) as u16;
            m.extend_from_slice(&[0x45, 0, 0, 0, 0, 0, 0x40, 0, 1, 1, 0, 0, 198, 51, 100, 2]);
            m[10..12].copy_from_slice(&total.to_be_bytes());
            m.extend_from_slice(&d.octets());
        }
        IpAddr::V6(d) => {
            m.extend_from_slice(&[0x60, 0, 0, 0]);
            m.extend_from_slice(&(echo.len() as u16).to_be_bytes());
            m.extend_from_slice(&[58, 1]);
            m.extend_from_slice(&[0x20, 1, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
            m.extend_from_slice(&d.octets());
        }
    }
    m.extend_from_slice(echo);
    if family == Family::V4 {
        let sum = checksum(&m);
        m[2..4].copy_from_slice(&sum.to_be_bytes());
    }
    m
}

fn round_end(p: &mut Prober, m: &mut Model, now: Instant, timeout: Duration, quorum: usize) {
    match p.poll_round_end(now) {
        Some(v) => {
            assert!(m.running, "a verdict with no round");
            let answered = m.answered.iter().filter(|&&a| a).count();
            assert_eq!(v.answered, answered);
            assert_eq!(v.targets, m.addrs.len());
            assert_eq!(v.good, answered >= quorum);
            m.running = false;
        }
        None => {
            if let Some(start) = m.start.filter(|_| m.running) {
                assert!(
                    now < start + timeout,
                    "round still running past its deadline"
                );
            }
        }
    }
}
