//! Is the gateway there at layer 2? The pure side of the probe that asks it directly, with
//! an ARP request (IPv4) or a neighbour solicitation (IPv6), so that a gateway that filters
//! ICMP but answers ARP/NDP is alive, and one that stopped answering them is a local fault.
//!
//! Why an active probe on our own socket and not only the kernel's neighbour state: the
//! kernel probes a neighbour only while traffic goes to it, and its answer comes as state
//! changes that say "reachable" for up to `base_reachable_time` (about 30 s) after the last
//! confirmation, long after a gateway may have died; a request of ours is answered (or not)
//! within the round. The kernel's state is evidence too, and free: a change to REACHABLE
//! seen during the round proves the gateway answered the kernel (`neighbour`).
//!
//! When (CONTRACT10, "Gateway liveness at L2"): never on a healthy round (a healthy round
//! costs no system call here); a round of a family that failed, or whose gateway did not
//! answer, makes the next round of that family send one request (`note_round`). The result
//! of a round (`result`) is Alive as soon as an answer (or the kernel's REACHABLE) came,
//! Dead once the round's timeout passed without one, and Unknown when no probe ran (no
//! gateway, not Ethernet, no raw socket, a failed send) or it is still running.
//!
//! One `L2Probe` per family. Pure: no I/O, no clock; `now` is handed in, sockets are the
//! glue's (src/watch/l2.rs, src/sys/l2.rs).
#![forbid(unsafe_code)]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use crate::mono::Instant;
use crate::wire::arp::{Arp, Mac};
use crate::wire::ndp::{Advert, Solicit};
use crate::wire::netlink::{NUD_FAILED, NUD_INCOMPLETE, NUD_REACHABLE};
use crate::wire::Family;

/// What layer 2 says about the gateway in one round: the diagnosis's own type (one name
/// for one thing), `Unknown` also while a probe is still running.
pub use crate::diagnose::L2;

/// How the log and the status name a result.
pub fn name(l2: L2) -> &'static str {
    match l2 {
        L2::Unknown => "unknown",
        L2::Alive => "alive",
        L2::Dead => "dead",
        L2::Stale { .. } => "stale",
    }
}

/// What the glue must send for a probe that `start` began.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    /// A broadcast ARP request on the interface.
    Arp(Arp),
    /// A neighbour solicitation to `dest` (the gateway itself: unicast, as the kernel's
    /// PROBE state sends it, RFC 4861 7.3.3; the kernel resolves the destination first if
    /// it has to, and its own answer reaches our socket too).
    Ndp { ns: Solicit, dest: Ipv6Addr },
}

/// Who the probe asks, and as whom.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Asker {
    pub gateway: IpAddr,
    pub our_mac: Mac,
    /// IPv4: the sender protocol address of the request (an address of the interface,
    /// preferably on the gateway's subnet). Ignored for IPv6, where the kernel picks it.
    pub our_ip: Ipv4Addr,
}

#[derive(Debug, Clone, Copy)]
struct Probe {
    asker: Asker,
    /// Stamped right before sendto; None until the glue says it went out.
    sent_at: Option<Instant>,
    deadline: Instant,
}

/// One family's layer-2 probe.
#[derive(Debug, Clone)]
pub struct L2Probe {
    family: Family,
    /// Send a request with the next round (the last one of this family failed).
    wanted: bool,
    /// The probe of this round, while it waits for an answer.
    probe: Option<Probe>,
    /// This round's result so far.
    result: L2,
    /// The answer's round-trip time, when a request of ours was answered.
    rtt: Option<Duration>,
    /// The gateway whose neighbour state we follow, and whether it was REACHABLE.
    neigh: Option<(IpAddr, bool)>,
    /// The MAC this host's neighbour entry for that gateway holds (an entry that is not
    /// INCOMPLETE or FAILED, with a link-layer address): where our traffic to it goes.
    entry: Option<Mac>,
    /// Whether a round is running (kernel evidence counts only then).
    in_round: bool,
    pub stats: Stats,
}

/// Counters for the status line and the measurements.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    pub sent: u64,
    pub answered: u64,
    pub dead: u64,
    pub kernel_confirmed: u64,
    /// Answers from another MAC than the neighbour entry's (`L2::Stale`).
    pub stale: u64,
}

impl L2Probe {
    pub fn new(family: Family) -> L2Probe {
        L2Probe {
            family,
            wanted: false,
            probe: None,
            result: L2::Unknown,
            rtt: None,
            neigh: None,
            entry: None,
            in_round: false,
            stats: Stats::default(),
        }
    }

    pub fn family(&self) -> Family {
        self.family
    }

    /// Whether the next round sends a request.
    pub fn wanted(&self) -> bool {
        self.wanted
    }

    /// At the end of a round of this family: whether it failed (or its gateway did not
    /// answer). A failed round makes the next one probe; a good one stops probing.
    pub fn note_round(&mut self, failed: bool) {
        self.wanted = failed;
    }

    /// A round of this family starts: the previous round's result is done with. When a
    /// probe is wanted and `asker` says whom to ask (None: no gateway, not Ethernet, no
    /// socket), returns the request to send; its answer is awaited until `now + timeout`.
    #[inline]
    pub fn start(
        &mut self,
        now: Instant,
        timeout: Duration,
        asker: Option<Asker>,
    ) -> Option<Request> {
        self.probe = None;
        self.result = L2::Unknown;
        self.rtt = None;
        self.in_round = true;
        let asker = asker.filter(|a| self.wanted && Family::of(a.gateway) == self.family)?;
        let req = match asker.gateway {
            IpAddr::V4(gw) => Request::Arp(Arp::request(asker.our_mac, asker.our_ip, gw)),
            IpAddr::V6(gw) => Request::Ndp {
                ns: Solicit {
                    target: gw,
                    our_mac: asker.our_mac,
                },
                dest: gw,
            },
        };
        self.probe = Some(Probe {
            asker,
            sent_at: None,
            deadline: now.checked_add(timeout).unwrap_or(now),
        });
        Some(req)
    }

    /// The request went out; `now` is taken right before the sendto.
    pub fn sent(&mut self, now: Instant) {
        if let Some(p) = self.probe.as_mut() {
            p.sent_at = Some(now);
            self.stats.sent = self.stats.sent.saturating_add(1);
        }
    }

    /// The request could not be sent: no probe this round (Unknown), not a dead gateway (a
    /// firewall dropping our own output, a downed interface: other layers say which).
    pub fn send_failed(&mut self) {
        self.probe = None;
    }

    /// Whether the glue should read the probe's socket.
    #[inline(always)]
    pub fn waiting(&self) -> bool {
        self.probe.is_some_and(|p| p.sent_at.is_some())
    }

    /// A packet from the probe's socket (an ARP packet, or an ICMPv6 message that arrived
    /// with hop limit 255). Returns whether it was the gateway's answer, or (the first
    /// time in a round) an ARP answer from another MAC than the kernel's neighbour entry
    /// for the gateway holds: `L2::Stale`, a local fault (our traffic goes to the entry's
    /// MAC, which is not the gateway's). The request stays awaited then: an answer from the
    /// entry's MAC before the deadline (a second box answering too, VRRP) is still Alive.
    /// IPv6 needs no such check: the solicitation goes unicast through the kernel's entry,
    /// so a wrong entry is no answer, Dead.
    pub fn handle_packet(&mut self, now: Instant, pkt: &[u8]) -> bool {
        let Some(p) = self.probe else { return false };
        let Some(sent_at) = p.sent_at else {
            return false;
        };
        let ours = match p.asker.gateway {
            IpAddr::V4(gw) => match Arp::parse_reply_from(pkt, gw, p.asker.our_ip) {
                Ok(answer) => match self.entry {
                    Some(entry) if entry != answer => {
                        if self.result != L2::Unknown {
                            return false;
                        }
                        self.result = L2::Stale { answer, entry };
                        self.stats.stale = self.stats.stale.saturating_add(1);
                        return true;
                    }
                    _ => true,
                },
                Err(_) => false,
            },
            IpAddr::V6(gw) => Advert::parse_for(pkt, gw).is_ok(),
        };
        if !ours {
            return false;
        }
        self.probe = None;
        self.result = L2::Alive;
        self.rtt = Some(now.saturating_duration_since(sent_at));
        self.stats.answered = self.stats.answered.saturating_add(1);
        true
    }

    /// The kernel's neighbour entry of this family's gateway (its NUD_* state and
    /// link-layer address), from the netlink cache, whenever it may have changed. A change
    /// to REACHABLE during a round is the kernel's own confirmation (RFC 4861 7.3.3; ARP
    /// likewise): Alive, whether or not we probed. A Stale round turns Alive when the entry
    /// now holds the MAC that answered (the kernel took our answer, or an admin fixed it).
    pub fn neighbour(&mut self, gateway: Option<IpAddr>, state: Option<u16>, lladdr: Option<Mac>) {
        let reachable = state.is_some_and(|s| s & NUD_REACHABLE != 0);
        let before = match (self.neigh, gateway) {
            (Some((g, r)), Some(now_gw)) if g == now_gw => r,
            _ => false,
        };
        self.neigh = gateway.map(|g| (g, reachable));
        let valid = state.is_some_and(|s| s != 0 && s & (NUD_INCOMPLETE | NUD_FAILED) == 0);
        self.entry = lladdr.filter(|m| valid && gateway.is_some() && m.0 != [0; 6]);
        let confirmed = match self.result {
            // the kernel's REACHABLE counts only for the MAC that answered us
            L2::Stale { answer, .. } => self.entry.is_none_or(|e| e == answer),
            L2::Alive => false,
            _ => true,
        };
        if let L2::Stale { answer, .. } = self.result {
            if self.in_round && self.entry == Some(answer) {
                self.result = L2::Alive;
                self.stats.kernel_confirmed = self.stats.kernel_confirmed.saturating_add(1);
                return;
            }
        }
        // A request of ours still in flight keeps waiting, for its round trip; its timeout
        // no longer makes the round Dead.
        if reachable && !before && self.in_round && confirmed {
            self.result = L2::Alive;
            self.stats.kernel_confirmed = self.stats.kernel_confirmed.saturating_add(1);
        }
    }

    /// When `handle_timeout` has work: the deadline of a request awaiting its answer.
    #[inline(always)]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.probe.as_ref().map(|p| p.deadline)
    }

    /// At (or after) the deadline: no answer, the gateway is dead at layer 2. The timer is
    /// disarmed before anything else.
    pub fn handle_timeout(&mut self, now: Instant) {
        let Some(p) = self.probe else { return };
        if now < p.deadline {
            return;
        }
        self.probe = None;
        if p.sent_at.is_some() && self.result == L2::Unknown {
            self.result = L2::Dead;
            self.stats.dead = self.stats.dead.saturating_add(1);
        }
    }

    /// The round has ended (the glue calls `handle_timeout` first): kernel evidence stops
    /// counting until the next one. An answer still awaited keeps its deadline.
    pub fn round_ended(&mut self) {
        self.in_round = false;
    }

    /// This round's result so far (see the module comment).
    pub fn result(&self) -> L2 {
        self.result
    }

    /// The round trip of this round's answer to our request.
    pub fn rtt(&self) -> Option<Duration> {
        self.rtt
    }

    /// The gateway asked this round, while its answer is awaited.
    pub fn asking(&self) -> Option<IpAddr> {
        self.probe.as_ref().map(|p| p.asker.gateway)
    }
}

/// The sender address of our ARP request, from the interface's IPv4 addresses (address,
/// prefix length): the first on the gateway's subnet, else the first. A gateway may refuse
/// a request from an address off its subnet (Linux routes the reply back to the sender
/// first, and reverse-path filtering can drop it); one on it is what the kernel's own
/// requests carry (inet_select_addr).
pub fn source_v4(
    addrs: impl IntoIterator<Item = (Ipv4Addr, u8)>,
    gateway: Option<IpAddr>,
) -> Option<Ipv4Addr> {
    let on_link = |ip: Ipv4Addr, len: u8| match gateway {
        Some(IpAddr::V4(gw)) => {
            let mask = u32::MAX
                .checked_shl(32 - u32::from(len.min(32)))
                .unwrap_or(0);
            u32::from(ip) & mask == u32::from(gw) & mask
        }
        _ => false,
    };
    let mut first = None;
    for (ip, len) in addrs {
        if on_link(ip, len) {
            return Some(ip);
        }
        first.get_or_insert(ip);
    }
    first
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::netlink::{NUD_DELAY, NUD_PERMANENT, NUD_STALE};

    const GW4: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);
    const OUR4: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 2);
    const GW6: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1);
    const MAC: Mac = Mac([0x02, 0, 0x5e, 0x10, 0, 2]);
    const GW_MAC: Mac = Mac([0x02, 0, 0x5e, 0x10, 0, 1]);
    const T: Duration = Duration::from_secs(2);

    fn asker(gw: IpAddr) -> Option<Asker> {
        Some(Asker {
            gateway: gw,
            our_mac: MAC,
            our_ip: OUR4,
        })
    }

    fn arp_reply(from: Ipv4Addr) -> [u8; 28] {
        let mut b = [0; 28];
        Arp {
            reply: true,
            sender_mac: GW_MAC,
            sender_ip: from,
            target_mac: MAC,
            target_ip: OUR4,
        }
        .emit(&mut b)
        .unwrap();
        b
    }

    fn na(target: Ipv6Addr) -> [u8; 24] {
        let mut b = [0; 24];
        b[0] = 136;
        b[4] = 0x60;
        b[8..24].copy_from_slice(&target.octets());
        b
    }

    /// A v4 probe that failed once, so the next round probes.
    fn armed(family: Family) -> L2Probe {
        let mut p = L2Probe::new(family);
        p.note_round(true);
        p
    }

    #[test]
    fn a_healthy_round_sends_nothing() {
        let t0 = Instant::now();
        let mut p = L2Probe::new(Family::V4);
        assert_eq!(p.start(t0, T, asker(GW4.into())), None);
        assert_eq!(p.poll_timeout(), None);
        assert!(!p.waiting());
        p.note_round(false);
        assert_eq!(p.start(t0 + T, T, asker(GW4.into())), None);
        assert_eq!(p.result(), L2::Unknown);
    }

    #[test]
    fn after_a_failed_round_the_next_one_asks_by_arp_and_an_answer_is_alive() {
        let t0 = Instant::now();
        let mut p = armed(Family::V4);
        let req = p.start(t0, T, asker(GW4.into())).unwrap();
        assert_eq!(req, Request::Arp(Arp::request(MAC, OUR4, GW4)));
        assert!(!p.waiting(), "not read before it was sent");
        p.sent(t0 + Duration::from_millis(1));
        assert!(p.waiting());
        assert_eq!(p.poll_timeout(), Some(t0 + T));
        // another host's reply and our own request seen going out are not the answer
        assert!(!p.handle_packet(t0, &arp_reply(Ipv4Addr::new(198, 51, 100, 9))));
        let mut ours = [0; 28];
        Arp::request(MAC, OUR4, GW4).emit(&mut ours).unwrap();
        assert!(!p.handle_packet(t0, &ours));
        assert_eq!(p.result(), L2::Unknown);
        assert!(p.handle_packet(t0 + Duration::from_micros(1300), &arp_reply(GW4)));
        assert_eq!(p.result(), L2::Alive);
        assert_eq!(p.rtt(), Some(Duration::from_micros(300)));
        assert_eq!(p.poll_timeout(), None, "disarmed");
        // a late duplicate changes nothing
        assert!(!p.handle_packet(t0 + T, &arp_reply(GW4)));
        p.handle_timeout(t0 + T);
        assert_eq!(p.result(), L2::Alive);
        assert_eq!(p.stats.answered, 1);
    }

    #[test]
    fn no_answer_by_the_rounds_timeout_is_dead_and_the_next_round_starts_afresh() {
        let t0 = Instant::now();
        let mut p = armed(Family::V4);
        p.start(t0, T, asker(GW4.into())).unwrap();
        p.sent(t0);
        p.handle_timeout(t0 + T - Duration::from_millis(1));
        assert_eq!(p.result(), L2::Unknown, "still waiting");
        p.handle_timeout(t0 + T);
        assert_eq!(p.result(), L2::Dead);
        assert_eq!(p.poll_timeout(), None, "one-shot");
        p.round_ended();
        // a reply after the round is too late for it
        assert!(!p.handle_packet(t0 + T, &arp_reply(GW4)));
        p.note_round(true);
        p.start(t0 + 2 * T, T, asker(GW4.into())).unwrap();
        assert_eq!(p.result(), L2::Unknown, "a new round, no verdict yet");
        assert_eq!(p.stats.dead, 1);
    }

    #[test]
    fn ndp_solicits_the_gateway_itself_and_its_advert_is_alive() {
        let t0 = Instant::now();
        let mut p = armed(Family::V6);
        let req = p.start(t0, T, asker(GW6.into())).unwrap();
        assert_eq!(
            req,
            Request::Ndp {
                ns: Solicit {
                    target: GW6,
                    our_mac: MAC
                },
                dest: GW6
            }
        );
        p.sent(t0);
        assert!(!p.handle_packet(t0, &na(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 2))));
        assert!(!p.handle_packet(t0, &na(GW6)[..20]), "truncated");
        assert!(p.handle_packet(t0 + Duration::from_millis(2), &na(GW6)));
        assert_eq!(p.result(), L2::Alive);
        assert_eq!(p.rtt(), Some(Duration::from_millis(2)));
    }

    #[test]
    fn no_gateway_or_a_failed_send_is_unknown_not_dead() {
        let t0 = Instant::now();
        let mut p = armed(Family::V4);
        assert_eq!(p.start(t0, T, None), None);
        assert_eq!(p.poll_timeout(), None);
        // a gateway of the other family is not this probe's
        assert_eq!(p.start(t0, T, asker(GW6.into())), None);
        p.start(t0, T, asker(GW4.into())).unwrap();
        p.send_failed();
        assert_eq!(p.poll_timeout(), None);
        p.handle_timeout(t0 + T);
        assert_eq!(p.result(), L2::Unknown);
        // started but never sent (the glue found no socket): Unknown too
        p.start(t0, T, asker(GW4.into())).unwrap();
        p.handle_timeout(t0 + T);
        assert_eq!(p.result(), L2::Unknown);
        assert_eq!(p.stats.dead, 0);
    }

    #[test]
    fn the_kernel_turning_reachable_during_a_round_is_alive_without_a_probe() {
        let t0 = Instant::now();
        let gw = Some(IpAddr::V4(GW4));
        let mut p = L2Probe::new(Family::V4);
        // REACHABLE before any round is not evidence for a round
        p.neighbour(gw, Some(NUD_REACHABLE), None);
        p.start(t0, T, asker(GW4.into()));
        assert_eq!(p.result(), L2::Unknown);
        // still REACHABLE (the cache refreshes): no change, no evidence
        p.neighbour(gw, Some(NUD_REACHABLE), None);
        assert_eq!(p.result(), L2::Unknown);
        p.neighbour(gw, Some(NUD_STALE), None);
        p.neighbour(gw, Some(NUD_DELAY), None);
        assert_eq!(p.result(), L2::Unknown);
        p.neighbour(gw, Some(NUD_REACHABLE), None);
        assert_eq!(p.result(), L2::Alive);
        assert_eq!(p.stats.kernel_confirmed, 1);
        p.round_ended();
        // between rounds it does not count
        p.neighbour(gw, Some(NUD_FAILED), None);
        p.neighbour(gw, Some(NUD_REACHABLE), None);
        p.start(t0 + T, T, None);
        assert_eq!(p.result(), L2::Unknown);
    }

    #[test]
    fn the_kernel_confirming_makes_a_running_probe_alive() {
        let t0 = Instant::now();
        let gw = Some(IpAddr::V4(GW4));
        let mut p = armed(Family::V4);
        p.neighbour(gw, Some(NUD_FAILED), None);
        p.start(t0, T, asker(GW4.into())).unwrap();
        p.sent(t0);
        p.neighbour(gw, Some(NUD_REACHABLE), None);
        assert_eq!(p.result(), L2::Alive);
        assert_eq!(p.rtt(), None);
        // our own answer still comes, for its round trip
        assert!(p.waiting());
        assert!(p.handle_packet(t0 + Duration::from_millis(1), &arp_reply(GW4)));
        assert_eq!(p.rtt(), Some(Duration::from_millis(1)));
        assert_eq!(p.poll_timeout(), None);
        // or it does not: the timeout does not undo the kernel's word
        p.note_round(true);
        p.start(t0 + T, T, asker(GW4.into())).unwrap();
        p.sent(t0 + T);
        p.neighbour(gw, Some(NUD_STALE), None);
        p.neighbour(gw, Some(NUD_REACHABLE), None);
        p.handle_timeout(t0 + 2 * T);
        assert_eq!(p.result(), L2::Alive);
        assert_eq!(p.poll_timeout(), None);
        // a new gateway's REACHABLE is a change too
        let mut p = L2Probe::new(Family::V4);
        p.neighbour(gw, Some(NUD_REACHABLE), None);
        p.start(t0, T, None);
        p.neighbour(Some(IpAddr::V4(OUR4)), Some(NUD_REACHABLE), None);
        assert_eq!(p.result(), L2::Alive);
    }

    #[test]
    fn an_arp_answer_from_another_mac_than_the_neighbour_entry_is_stale() {
        let t0 = Instant::now();
        let gw = Some(IpAddr::V4(GW4));
        let bogus = Mac([2, 0, 0, 0, 0, 1]);
        let stale = L2::Stale {
            answer: GW_MAC,
            entry: bogus,
        };
        let mut p = armed(Family::V4);
        p.neighbour(gw, Some(NUD_PERMANENT), Some(bogus));
        p.start(t0, T, asker(GW4.into())).unwrap();
        p.sent(t0);
        assert!(p.handle_packet(t0 + Duration::from_millis(1), &arp_reply(GW4)));
        assert_eq!(p.result(), stale);
        assert_eq!(p.rtt(), None);
        // the same answer again is no news; the request stays awaited (another box may
        // answer from the entry's MAC), and the deadline keeps the verdict
        assert!(!p.handle_packet(t0 + Duration::from_millis(2), &arp_reply(GW4)));
        assert!(p.waiting());
        p.handle_timeout(t0 + T);
        assert_eq!(p.result(), stale, "not turned into a plain Dead");
        assert_eq!(p.poll_timeout(), None);
        assert_eq!((p.stats.stale, p.stats.dead, p.stats.answered), (1, 0, 0));
        p.round_ended();

        // an answer from the entry's MAC is Alive; so is one while the entry has no MAC
        // (INCOMPLETE, FAILED: the kernel is resolving it) or none is known
        for (state, mac) in [
            (Some(NUD_PERMANENT), Some(GW_MAC)),
            (Some(NUD_FAILED), Some(bogus)),
            (Some(NUD_INCOMPLETE), Some(bogus)),
            (None, None),
        ] {
            let mut p = armed(Family::V4);
            p.neighbour(gw, state, mac);
            p.start(t0, T, asker(GW4.into())).unwrap();
            p.sent(t0);
            assert!(p.handle_packet(t0, &arp_reply(GW4)));
            assert_eq!(p.result(), L2::Alive, "{state:?} {mac:?}");
        }

        // the kernel takes our answer into a dynamic entry during the round: Alive
        let mut p = armed(Family::V4);
        p.neighbour(gw, Some(NUD_STALE), Some(bogus));
        p.start(t0, T, asker(GW4.into())).unwrap();
        p.sent(t0);
        assert!(p.handle_packet(t0, &arp_reply(GW4)));
        assert_eq!(p.result(), stale);
        // REACHABLE for the wrong MAC still is not the gateway
        p.neighbour(gw, Some(NUD_REACHABLE), Some(bogus));
        assert_eq!(p.result(), stale);
        p.neighbour(gw, Some(NUD_REACHABLE), Some(GW_MAC));
        assert_eq!(p.result(), L2::Alive);
        p.handle_timeout(t0 + T);
        assert_eq!(p.result(), L2::Alive);

        // and an answer from the entry's MAC after a stranger's, before the deadline
        let mut p = armed(Family::V4);
        p.neighbour(gw, Some(NUD_REACHABLE), Some(bogus));
        p.start(t0, T, asker(GW4.into())).unwrap();
        p.sent(t0);
        assert!(p.handle_packet(t0, &arp_reply(GW4)));
        let mut b = [0; 28];
        Arp {
            reply: true,
            sender_mac: bogus,
            sender_ip: GW4,
            target_mac: MAC,
            target_ip: OUR4,
        }
        .emit(&mut b)
        .unwrap();
        assert!(p.handle_packet(t0 + Duration::from_millis(3), &b));
        assert_eq!(p.result(), L2::Alive);
        assert_eq!(p.rtt(), Some(Duration::from_millis(3)));
    }

    #[test]
    fn ndp_does_not_compare_macs() {
        // the solicitation went through the kernel's entry: an advert is the gateway's
        let t0 = Instant::now();
        let mut p = armed(Family::V6);
        p.neighbour(
            Some(GW6.into()),
            Some(NUD_PERMANENT),
            Some(Mac([2, 0, 0, 0, 0, 1])),
        );
        p.start(t0, T, asker(GW6.into())).unwrap();
        p.sent(t0);
        assert!(p.handle_packet(t0, &na(GW6)));
        assert_eq!(p.result(), L2::Alive);
    }

    #[test]
    fn the_source_is_on_the_gateways_subnet_when_one_is() {
        let other = Ipv4Addr::new(203, 0, 113, 7);
        let gw = Some(IpAddr::V4(GW4));
        assert_eq!(source_v4([(other, 24), (OUR4, 24)], gw), Some(OUR4));
        assert_eq!(source_v4([(other, 24)], gw), Some(other));
        assert_eq!(
            source_v4([(other, 0)], gw),
            Some(other),
            "/0 holds the gateway too"
        );
        assert_eq!(
            source_v4([(OUR4, 32), (other, 24)], gw),
            Some(OUR4),
            "first"
        );
        assert_eq!(source_v4([], gw), None);
        assert_eq!(source_v4([(other, 24), (OUR4, 24)], None), Some(other));
    }

    #[test]
    fn l2_names() {
        assert_eq!(
            [
                L2::Unknown,
                L2::Alive,
                L2::Dead,
                L2::Stale {
                    answer: GW_MAC,
                    entry: MAC
                }
            ]
            .map(name),
            ["unknown", "alive", "dead", "stale"]
        );
    }
}
