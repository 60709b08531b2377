//! Probe rounds as pure bookkeeping: which echo to send to which target and when, and whether
//! a received ICMP message is a reply to one of them. No sockets and no clock: the caller
//! passes `now`, sends what `poll_transmit` builds, and feeds back what it receives.
//!
//! A round sends up to `count` echoes to every target, spread over the first half of the
//! timeout, and stops sending to a target once it answered or a send to it failed. It ends when
//! every target with an address has answered or failed to send, or at the timeout. A reply counts only if it is an echo
//! reply with our identifier, our per-process cookie as payload, a sequence number in flight
//! in this round, and the source address that echo was sent to; everything else is counted
//! and dropped.
#![forbid(unsafe_code)]

use std::net::IpAddr;
use std::time::{Duration, Instant};

use crate::watchdog::Verdict;
use crate::wire::{Echo, EchoKind, Family, ECHO_HEADER_LEN};

pub const COOKIE_LEN: usize = 8;
/// The largest echo request we build.
pub const REQUEST_LEN: usize = ECHO_HEADER_LEN + COOKIE_LEN;

/// An echo request built into the caller's buffer, to be sent to `dest`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transmit {
    pub target: usize,
    pub dest: IpAddr,
    pub len: usize,
}

/// What a received message turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Received {
    Reply {
        target: usize,
        rtt: Duration,
    },
    /// Not ours: another program's ping, a wrong cookie or source, not an echo reply at all.
    Foreign,
    /// Ours, but its echo is no longer in flight (an earlier round, or a target that already
    /// answered this round).
    Late,
}

/// Counters since start, for the status line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    pub rounds: u64,
    pub good_rounds: u64,
    pub sent: u64,
    pub send_errors: u64,
    pub replies: u64,
    /// Echoes still unanswered when their round ended.
    pub lost: u64,
    pub foreign: u64,
    pub late: u64,
    pub rtt_min: Option<Duration>,
    pub rtt_max: Option<Duration>,
    pub rtt_sum: Duration,
}

impl Stats {
    pub fn rtt_avg(&self) -> Option<Duration> {
        let n = u32::try_from(self.replies).ok().filter(|&n| n > 0)?;
        Some(self.rtt_sum / n)
    }
}

/// One target's part of the current round.
#[derive(Debug, Clone, Copy)]
pub struct Slot {
    pub addr: Option<IpAddr>,
    pub rtt: Option<Duration>,
    /// A send to it failed this round (no route, interface down, filtered): the kernel said
    /// at once that nothing can get there, so no more echoes are sent to it this round.
    unreachable: bool,
    sent: u32,
    next_send: Instant,
}

impl Slot {
    /// Still owes an answer this round.
    fn pending(&self) -> bool {
        self.addr.is_some() && self.rtt.is_none() && !self.unreachable
    }
}

#[derive(Debug, Clone, Copy)]
struct InFlight {
    seq: u16,
    target: usize,
    sent_at: Instant,
}

#[derive(Debug, Clone, Copy)]
struct Round {
    start: Instant,
    deadline: Instant,
}

#[derive(Debug)]
pub struct Prober {
    idents: [u16; 2],
    cookie: [u8; COOKIE_LEN],
    count: u32,
    timeout: Duration,
    gap: Duration,
    quorum: usize,
    next_seq: u16,
    slots: Vec<Slot>,
    inflight: Vec<InFlight>,
    round: Option<Round>,
    stats: Stats,
}

impl Prober {
    pub fn new(
        count: u32,
        timeout: Duration,
        quorum: usize,
        ident: u16,
        cookie: [u8; COOKIE_LEN],
    ) -> Self {
        let count = count.max(1);
        Prober {
            idents: [ident; 2],
            cookie,
            count,
            timeout,
            // Echo k (0-based) leaves at start + k * gap, so the last one has at least half
            // the timeout to come back.
            gap: if count > 1 {
                timeout / (2 * count)
            } else {
                timeout
            },
            quorum,
            next_seq: 0,
            slots: Vec::new(),
            inflight: Vec::new(),
            round: None,
            stats: Stats::default(),
        }
    }

    /// The identifier replies must carry. Datagram ICMP sockets choose their own (the bound
    /// "port"), so the caller sets it per family after opening them.
    pub fn set_ident(&mut self, family: Family, ident: u16) {
        self.idents[family as usize] = ident;
    }

    pub fn ident(&self, family: Family) -> u16 {
        self.idents[family as usize]
    }

    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// The targets of the current or last round, with their round-trip times.
    pub fn slots(&self) -> &[Slot] {
        &self.slots
    }

    pub fn round_running(&self) -> bool {
        self.round.is_some()
    }

    /// Starts a round to `addrs` (one per target; `None` for a target whose address is not
    /// known this round, such as a missing default gateway: it counts as not answering).
    pub fn start_round(&mut self, now: Instant, addrs: impl IntoIterator<Item = Option<IpAddr>>) {
        self.slots.clear();
        self.slots.extend(addrs.into_iter().map(|addr| Slot {
            addr,
            rtt: None,
            unreachable: false,
            sent: 0,
            next_send: now,
        }));
        self.inflight.clear();
        let deadline = now.checked_add(self.timeout).unwrap_or(now);
        self.round = Some(Round {
            start: now,
            deadline,
        });
    }

    /// Builds the next echo that is due into `buf` (at least `REQUEST_LEN` bytes).
    pub fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<Transmit> {
        let round = self.round?;
        let (target, slot) = self
            .slots
            .iter_mut()
            .enumerate()
            .find(|(_, s)| s.pending() && s.sent < self.count && s.next_send <= now)?;
        let dest = slot.addr?;
        let seq = self.next_seq;
        let echo = Echo {
            kind: EchoKind::Request,
            ident: self.idents[Family::of(dest) as usize],
            seq,
            payload: &self.cookie,
        };
        let len = echo.emit(Family::of(dest), buf)?;
        self.next_seq = seq.wrapping_add(1);
        slot.sent += 1;
        slot.next_send = round.start + self.gap * slot.sent;
        self.inflight.push(InFlight {
            seq,
            target,
            sent_at: now,
        });
        self.stats.sent += 1;
        Some(Transmit { target, dest, len })
    }

    /// The echo just built for `target` could not be sent (no route, interface down,
    /// filtered): it counts as lost, and the target as not answering this round.
    pub fn send_failed(&mut self, target: usize) {
        self.stats.send_errors += 1;
        if let Some(slot) = self.slots.get_mut(target) {
            slot.unreachable = true;
        }
    }

    /// Classifies one received ICMP message (`icmp` starts at the ICMP header).
    pub fn handle_packet(
        &mut self,
        now: Instant,
        family: Family,
        src: IpAddr,
        icmp: &[u8],
    ) -> Received {
        let r = self.classify(now, family, src, icmp);
        match r {
            Received::Reply { rtt, .. } => {
                self.stats.replies += 1;
                self.stats.rtt_sum += rtt;
                self.stats.rtt_min = Some(self.stats.rtt_min.map_or(rtt, |m| m.min(rtt)));
                self.stats.rtt_max = Some(self.stats.rtt_max.map_or(rtt, |m| m.max(rtt)));
            }
            Received::Foreign => self.stats.foreign += 1,
            Received::Late => self.stats.late += 1,
        }
        r
    }

    fn classify(&mut self, now: Instant, family: Family, src: IpAddr, icmp: &[u8]) -> Received {
        let Ok(echo) = Echo::parse(family, icmp) else {
            return Received::Foreign;
        };
        if echo.kind != EchoKind::Reply
            || echo.ident != self.idents[family as usize]
            || echo.payload != self.cookie
        {
            return Received::Foreign;
        }
        let Some(i) = self.inflight.iter().position(|f| f.seq == echo.seq) else {
            return Received::Late;
        };
        let f = self.inflight[i];
        let slot = &mut self.slots[f.target];
        if slot.addr != Some(src) {
            return Received::Foreign;
        }
        self.inflight.swap_remove(i);
        if slot.rtt.is_some() {
            return Received::Late;
        }
        let rtt = now.saturating_duration_since(f.sent_at);
        slot.rtt = Some(rtt);
        Received::Reply {
            target: f.target,
            rtt,
        }
    }

    /// When the round needs attention next: an echo falls due, or the timeout.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let round = self.round?;
        let next_send = self
            .slots
            .iter()
            .filter(|s| s.pending() && s.sent < self.count)
            .map(|s| s.next_send)
            .min();
        Some(next_send.map_or(round.deadline, |t| t.min(round.deadline)))
    }

    /// Ends the round if it is over, and returns its verdict.
    pub fn poll_round_end(&mut self, now: Instant) -> Option<Verdict> {
        let round = self.round?;
        let answered = self.slots.iter().filter(|s| s.rtt.is_some()).count();
        // Over early once every target with an address has answered or is known unreachable.
        // A round with no address at all waits for the timeout, like a silent one. Either way
        // the watchdog spaces rounds, so an early failed round does not make the loop spin.
        let decided =
            self.slots.iter().any(|s| s.addr.is_some()) && !self.slots.iter().any(Slot::pending);
        if now < round.deadline && !decided {
            return None;
        }
        self.round = None;
        self.stats.lost += self.inflight.len() as u64;
        self.inflight.clear();
        let good = answered >= self.quorum;
        self.stats.rounds += 1;
        self.stats.good_rounds += u64::from(good);
        Some(Verdict {
            good,
            answered,
            targets: self.slots.len(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const COOKIE: [u8; COOKIE_LEN] = *b"\x01cookie\x02";
    const T1: &str = "198.51.100.1";
    const T2: &str = "2001:db8::1";

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn prober(count: u32, quorum: usize) -> Prober {
        Prober::new(count, ms(2000), quorum, 0x1a2b, COOKIE)
    }

    /// The reply a well-behaved target sends to the request in `req`.
    fn reply_to(family: Family, req: &[u8]) -> Vec<u8> {
        let e = Echo::parse(family, req).unwrap();
        let mut buf = vec![0; req.len()];
        Echo {
            kind: EchoKind::Reply,
            ..e
        }
        .emit(family, &mut buf)
        .unwrap();
        buf
    }

    fn sends(p: &mut Prober, now: Instant) -> Vec<(Transmit, Vec<u8>)> {
        let mut out = Vec::new();
        let mut buf = [0u8; 64];
        while let Some(t) = p.poll_transmit(now, &mut buf) {
            out.push((t, buf[..t.len].to_vec()));
        }
        out
    }

    #[test]
    fn good_round_ends_as_soon_as_every_target_answered() {
        let t0 = Instant::now();
        let mut p = prober(3, 1);
        p.start_round(t0, [Some(ip(T1)), Some(ip(T2))]);
        let tx = sends(&mut p, t0);
        assert_eq!(tx.len(), 2, "one echo per target at once");
        assert_eq!(tx[0].0.dest, ip(T1));
        assert_eq!(tx[1].0.len, REQUEST_LEN);
        let r = reply_to(Family::V4, &tx[0].1);
        assert_eq!(
            p.handle_packet(t0 + ms(3), Family::V4, ip(T1), &r),
            Received::Reply {
                target: 0,
                rtt: ms(3)
            }
        );
        assert_eq!(
            p.poll_round_end(t0 + ms(3)),
            None,
            "target 2 still owes an answer"
        );
        let r = reply_to(Family::V6, &tx[1].1);
        assert!(matches!(
            p.handle_packet(t0 + ms(5), Family::V6, ip(T2), &r),
            Received::Reply { target: 1, .. }
        ));
        assert_eq!(
            p.poll_round_end(t0 + ms(5)),
            Some(Verdict {
                good: true,
                answered: 2,
                targets: 2
            })
        );
        assert!(!p.round_running());
        let st = p.stats();
        assert_eq!(
            (st.sent, st.replies, st.lost, st.rounds, st.good_rounds),
            (2, 2, 0, 1, 1)
        );
        assert_eq!(
            (st.rtt_min, st.rtt_max, st.rtt_avg()),
            (Some(ms(3)), Some(ms(5)), Some(ms(4)))
        );
    }

    #[test]
    fn echoes_are_spread_over_half_the_timeout_and_stop_after_an_answer() {
        let t0 = Instant::now();
        let mut p = prober(4, 1);
        p.start_round(t0, [Some(ip(T1))]);
        assert_eq!(sends(&mut p, t0).len(), 1);
        assert_eq!(p.poll_timeout(), Some(t0 + ms(250)));
        assert!(sends(&mut p, t0 + ms(249)).is_empty());
        let second = sends(&mut p, t0 + ms(250));
        assert_eq!(second.len(), 1);
        assert_eq!(Echo::parse(Family::V4, &second[0].1).unwrap().seq, 1);
        let r = reply_to(Family::V4, &second[0].1);
        p.handle_packet(t0 + ms(260), Family::V4, ip(T1), &r);
        assert!(
            sends(&mut p, t0 + ms(500)).is_empty(),
            "answered: no more echoes"
        );
        assert!(p.poll_round_end(t0 + ms(260)).unwrap().good);
    }

    #[test]
    fn silent_round_sends_count_echoes_and_fails_at_the_timeout() {
        let t0 = Instant::now();
        let mut p = prober(3, 1);
        p.start_round(t0, [Some(ip(T1))]);
        let mut sent = 0;
        let mut now = t0;
        while let Some(t) = p.poll_timeout() {
            now = t;
            sent += sends(&mut p, now).len();
            if let Some(v) = p.poll_round_end(now) {
                assert_eq!(
                    v,
                    Verdict {
                        good: false,
                        answered: 0,
                        targets: 1
                    }
                );
                break;
            }
        }
        assert_eq!(sent, 3);
        assert_eq!(now, t0 + ms(2000));
        assert_eq!(p.stats().lost, 3);
    }

    #[test]
    fn quorum_counts_answering_targets() {
        let t0 = Instant::now();
        let mut p = prober(1, 2);
        p.start_round(t0, [Some(ip(T1)), Some(ip("203.0.113.1"))]);
        let tx = sends(&mut p, t0);
        p.handle_packet(t0, Family::V4, ip(T1), &reply_to(Family::V4, &tx[0].1));
        assert_eq!(p.poll_round_end(t0 + ms(1999)), None);
        assert_eq!(
            p.poll_round_end(t0 + ms(2000)),
            Some(Verdict {
                good: false,
                answered: 1,
                targets: 2
            })
        );
    }

    #[test]
    fn unknown_gateway_counts_as_silent_and_never_ends_a_round_early() {
        let t0 = Instant::now();
        let mut p = prober(3, 1);
        p.start_round(t0, [None]);
        assert!(sends(&mut p, t0).is_empty());
        assert_eq!(p.poll_timeout(), Some(t0 + ms(2000)));
        assert_eq!(
            p.poll_round_end(t0),
            None,
            "a failing round lasts the timeout: no spinning"
        );
        assert!(!p.poll_round_end(t0 + ms(2000)).unwrap().good);
    }

    #[test]
    fn foreign_and_late_packets_do_not_count() {
        let t0 = Instant::now();
        let mut p = prober(1, 1);
        p.start_round(t0, [Some(ip(T1))]);
        let tx = sends(&mut p, t0);
        let good = reply_to(Family::V4, &tx[0].1);
        let echo = Echo::parse(Family::V4, &good).unwrap();
        let other = |e: Echo| {
            let mut b = [0u8; 64];
            let n = e.emit(Family::V4, &mut b).unwrap();
            b[..n].to_vec()
        };
        let wrong_cookie = other(Echo {
            payload: b"notours!",
            ..echo
        });
        let wrong_ident = other(Echo {
            ident: 0x1a2c,
            ..echo
        });
        let not_reply = other(Echo {
            kind: EchoKind::Request,
            ..echo
        });
        let other_seq = other(Echo { seq: 999, ..echo });
        let mut corrupt = good.clone();
        corrupt[9] ^= 1;
        let cases: [(&[u8], IpAddr, Received); 7] = [
            (&wrong_cookie, ip(T1), Received::Foreign),
            (&wrong_ident, ip(T1), Received::Foreign),
            (&not_reply, ip(T1), Received::Foreign),
            (&corrupt, ip(T1), Received::Foreign),
            (&good[..5], ip(T1), Received::Foreign),
            (&good, ip("198.51.100.9"), Received::Foreign),
            (&other_seq, ip(T1), Received::Late),
        ];
        for (pkt, src, want) in cases {
            assert_eq!(
                p.handle_packet(t0, Family::V4, src, pkt),
                want,
                "{pkt:02x?} from {src}"
            );
        }
        assert_eq!(p.poll_round_end(t0), None, "nothing counted as an answer");
        assert!(matches!(
            p.handle_packet(t0, Family::V4, ip(T1), &good),
            Received::Reply { .. }
        ));
        assert_eq!(
            p.handle_packet(t0, Family::V4, ip(T1), &good),
            Received::Late,
            "duplicate"
        );
        assert!(p.poll_round_end(t0).unwrap().good);
        // Next round: the previous round's reply is late, not an answer.
        p.start_round(t0 + ms(10), [Some(ip(T1))]);
        let _ = sends(&mut p, t0 + ms(10));
        assert_eq!(
            p.handle_packet(t0 + ms(11), Family::V4, ip(T1), &good),
            Received::Late
        );
        let st = p.stats();
        assert_eq!((st.foreign, st.late, st.replies), (6, 3, 1));
    }

    #[test]
    fn an_unreachable_target_does_not_hold_up_an_answered_one() {
        let t0 = Instant::now();
        let mut p = prober(3, 1);
        p.start_round(t0, [Some(ip(T1)), Some(ip(T2))]);
        let tx = sends(&mut p, t0);
        p.send_failed(1);
        assert_eq!(p.poll_round_end(t0), None, "target 1 still owes an answer");
        p.handle_packet(
            t0 + ms(2),
            Family::V4,
            ip(T1),
            &reply_to(Family::V4, &tx[0].1),
        );
        assert_eq!(
            p.poll_round_end(t0 + ms(2)),
            Some(Verdict {
                good: true,
                answered: 1,
                targets: 2
            })
        );
    }

    #[test]
    fn datagram_idents_are_per_family_and_sequence_wraps() {
        let t0 = Instant::now();
        let mut p = prober(1, 1);
        p.set_ident(Family::V6, 77);
        p.next_seq = u16::MAX;
        p.start_round(t0, [Some(ip(T2)), Some(ip(T1))]);
        let tx = sends(&mut p, t0);
        let e6 = Echo::parse(Family::V6, &tx[0].1).unwrap();
        let e4 = Echo::parse(Family::V4, &tx[1].1).unwrap();
        assert_eq!((e6.ident, e6.seq), (77, u16::MAX));
        assert_eq!((e4.ident, e4.seq), (0x1a2b, 0));
        assert_eq!(e4.payload, COOKIE);
    }

    #[test]
    fn a_target_that_cannot_be_sent_to_fails_the_round_at_once() {
        let t0 = Instant::now();
        let mut p = prober(1, 1);
        p.start_round(t0, [Some(ip(T1))]);
        let _ = sends(&mut p, t0);
        p.send_failed(0);
        assert!(
            sends(&mut p, t0 + ms(1000)).is_empty(),
            "no more echoes to an unreachable target"
        );
        // Known at once: the round need not wait for the timeout.
        assert!(!p.poll_round_end(t0 + ms(1)).unwrap().good);
        assert_eq!((p.stats().send_errors, p.stats().lost), (1, 1));
    }
}
