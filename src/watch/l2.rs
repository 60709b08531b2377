//! The watch's side of the gateway's layer-2 probe (the decisions are `crate::l2`'s, the
//! sockets `crate::sys::l2`'s): which gateway and which source to ask as, when to open and
//! close the sockets, sending and stamping the request, reading the answers, and one log
//! line per result.
//!
//! Sockets live only while a family is probing: opened at the first round that probes
//! (after a failed one), kept over the rounds of an outage, closed by the first round that
//! does not probe and whenever the interface's index changes. An AF_PACKET ETH_P_ARP socket
//! receives every ARP frame of the link (each host's broadcast who-has) and a raw ICMPv6
//! socket passing type 136 every advertisement the host receives (the kernel's own
//! confirmations): kept open they would wake the loop on healthy rounds, which must cost no
//! more than the echoes. The fds are polled only while an answer is awaited, and what queued
//! before a request is read and dropped before it goes out, so an old answer never counts.
//!
//! Costs per probing round (measured with strace in the lab, IPv4): recvfrom (the drain,
//! EAGAIN), sendto, and when the gateway answers one more poll wake-up and the recvfrom of
//! the answer: 3 calls and a wake-up answered, 2 unanswered. The first round of an outage
//! adds socket, bind and ioctl (SIOCGIFHWADDR, on the probe's socket); IPv6 alike with
//! recvmsg, and socket plus five setsockopts at open. Healthy rounds: none (no fd polled).
#![forbid(unsafe_code)]

use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::{AsFd, BorrowedFd};
use std::time::{Duration, Instant};

use super::Uplink;
use crate::config::human;
use crate::kernel::Iface;
use crate::l2::{source_v4, Asker, L2Probe, Request, L2};
use crate::log::{Level, Log};
use crate::sys::l2::{is_ethernet, ArpSocket, NdpSocket};
use crate::wire::arp::Mac;
use crate::wire::Family;

/// At most this many packets are read from a probe socket per turn (see watch.rs RECV_BATCH).
const RECV_BATCH: usize = 64;

/// The hardware address of the bound interface, read at the first probe after a bind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hw {
    Unread,
    Ethernet(Mac),
    /// Another hardware type (ppp, tun, wireguard...): no ARP or NDP to ask with.
    Other(u16),
}

/// The probe sockets and per-family probes of one watched interface.
#[derive(Debug)]
pub struct Layer2 {
    probes: [L2Probe; 2],
    arp: Option<ArpSocket>,
    ndp: Option<NdpSocket>,
    /// The interface index the sockets are bound to.
    index: Option<u32>,
    hw: Hw,
    /// From the kernel's cache: each family's gateway through the interface, and the IPv4
    /// address to ask as.
    gateway: [Option<IpAddr>; 2],
    our_v4: Option<Ipv4Addr>,
    /// Probe every round, not only after a failed one (`--once`: its one round must say).
    always: bool,
    /// The last result logged per family, so that without -v only changes are logged.
    logged: [L2; 2],
    verbose: bool,
    /// The last round's timeout, for the log line.
    timeout: Duration,
    /// "not possible" was said for this family since the last bind.
    refused: [bool; 2],
}

impl Layer2 {
    pub fn new(verbose: bool) -> Layer2 {
        Layer2 {
            probes: [L2Probe::new(Family::V4), L2Probe::new(Family::V6)],
            arp: None,
            ndp: None,
            index: None,
            hw: Hw::Unread,
            gateway: [None, None],
            our_v4: None,
            always: false,
            logged: [L2::Unknown; 2],
            verbose,
            timeout: Duration::ZERO,
            refused: [false; 2],
        }
    }

    /// `--once`: the one round probes, and says what it found.
    pub fn probe_every_round(&mut self) {
        self.always = true;
        self.verbose = true;
    }

    /// The kernel cache's facts about the interface, after every change: the gateways, the
    /// address to ask as, and the gateways' neighbour states (evidence, see `L2Probe`).
    pub fn kernel_facts(&mut self, i: &Iface) {
        for f in [Family::V4, Family::V6] {
            let gw = i.gateway(f);
            self.gateway[f as usize] = gw;
            self.probes[f as usize].neighbour(gw, i.gateway_neighbour(f));
        }
        let v4 = i.addresses().filter_map(|a| match a.addr {
            IpAddr::V4(ip) => Some((ip, a.prefix_len)),
            IpAddr::V6(_) => None,
        });
        self.our_v4 = source_v4(v4, self.gateway[0]);
    }

    /// Sockets and hardware address are for one device: forget them.
    fn unbind(&mut self) {
        self.arp = None;
        self.ndp = None;
        self.hw = Hw::Unread;
        self.index = None;
        self.refused = [false; 2];
    }

    /// A round of `family` starts on interface `iface` (index `index`, None while it is not
    /// bound): sends the probe's request when one is due.
    #[allow(clippy::too_many_arguments)]
    pub fn start_round(
        &mut self,
        now: Instant,
        timeout: Duration,
        family: Family,
        index: Option<u32>,
        iface: &str,
        log: &mut Log,
        clock: impl Fn() -> Instant,
    ) {
        let f = family as usize;
        self.timeout = timeout;
        if self.index != index {
            self.unbind();
            self.index = index;
        }
        if self.always {
            self.probes[f].note_round(true);
        }
        if !self.probes[f].wanted() {
            self.probes[f].start(now, timeout, None);
            // Healthy: close what an outage opened; the next outage reads the hardware
            // address again (it may have changed: a bond's, a MAC set by hand).
            match family {
                Family::V4 => self.arp = None,
                Family::V6 => self.ndp = None,
            }
            if self.arp.is_none() && self.ndp.is_none() && matches!(self.hw, Hw::Ethernet(_)) {
                self.hw = Hw::Unread;
            }
            return;
        }
        let asker = self.asker(family, iface, log);
        let Some(req) = self.probes[f].start(now, timeout, asker) else {
            return;
        };
        let mut buf = [0u8; 64];
        self.drain(family);
        let sent = match req {
            Request::Arp(arp) => {
                let len = arp.emit(&mut buf).unwrap_or(0);
                let Some(s) = self.arp.as_ref() else { return };
                let at = clock();
                s.send_broadcast(&buf[..len]).map(|()| at)
            }
            Request::Ndp { ns, dest } => {
                let len = ns.emit(&mut buf).unwrap_or(0);
                let Some(s) = self.ndp.as_ref() else { return };
                let at = clock();
                s.send_to(&buf[..len], dest).map(|()| at)
            }
        };
        match sent {
            Ok(at) => self.probes[f].sent(at),
            Err(e) => {
                self.probes[f].send_failed();
                let what = proto(family);
                log.limited(
                    now,
                    Level::Info,
                    format!("{iface}: {what} request to the gateway: {e}"),
                );
            }
        }
    }

    /// Whom to ask and as whom, opening the socket if needed; None (probe not possible,
    /// logged once per bind) for no gateway, no IPv4 address, a non-Ethernet link, or no
    /// socket (no CAP_NET_RAW).
    fn asker(&mut self, family: Family, iface: &str, log: &mut Log) -> Option<Asker> {
        let gateway = self.gateway[family as usize]?;
        let index = self.index?;
        if let Hw::Other(_) = self.hw {
            return None;
        }
        let opened = match family {
            Family::V4 if self.arp.is_none() => ArpSocket::open(index).map(|s| self.arp = Some(s)),
            Family::V6 if self.ndp.is_none() => {
                NdpSocket::open(iface, index).map(|s| self.ndp = Some(s))
            }
            _ => Ok(()),
        };
        if let Err(e) = opened {
            // Said once per bind: without CAP_NET_RAW it fails every round alike.
            if !std::mem::replace(&mut self.refused[family as usize], true) {
                log.log(
                    Level::Notice,
                    &format!(
                        "{iface}: {} probe of the gateway not possible: {e}",
                        proto(family)
                    ),
                );
            }
            return None;
        }
        if self.hw == Hw::Unread {
            let got = match family {
                Family::V4 => self.arp.as_ref().map(|s| s.link_address(iface)),
                Family::V6 => self.ndp.as_ref().map(|s| s.link_address(iface)),
            };
            self.hw = match got {
                Some(Ok((t, mac))) if is_ethernet(t) => Hw::Ethernet(mac),
                Some(Ok((t, _))) => {
                    log.log(
                        Level::Notice,
                        &format!("{iface}: hardware type {t} is not Ethernet: the gateway is not probed by ARP/NDP"),
                    );
                    self.arp = None;
                    self.ndp = None;
                    Hw::Other(t)
                }
                Some(Err(e)) => {
                    log.log(Level::Info, &format!("{iface}: {e}"));
                    return None;
                }
                None => return None,
            };
        }
        let Hw::Ethernet(our_mac) = self.hw else {
            return None;
        };
        let our_ip = match family {
            Family::V4 => self.our_v4?,
            Family::V6 => Ipv4Addr::UNSPECIFIED,
        };
        Some(Asker {
            gateway,
            our_mac,
            our_ip,
        })
    }

    /// Reads and drops what queued on `family`'s socket since the last request.
    fn drain(&mut self, family: Family) {
        let mut buf = [0u8; 128];
        for _ in 0..RECV_BATCH {
            let got = match family {
                Family::V4 => self.arp.as_ref().map(|s| s.recv(&mut buf)),
                Family::V6 => self.ndp.as_ref().map(|s| s.recv(&mut buf)),
            };
            if !matches!(got, Some(Ok(Some(_)))) {
                break;
            }
        }
    }

    /// The probe sockets to poll: only those awaiting an answer.
    pub fn poll_fds(&self) -> impl Iterator<Item = BorrowedFd<'_>> {
        let arp = self
            .arp
            .as_ref()
            .filter(|_| self.probes[0].waiting())
            .map(|s| s.as_fd());
        let ndp = self
            .ndp
            .as_ref()
            .filter(|_| self.probes[1].waiting())
            .map(|s| s.as_fd());
        arp.into_iter().chain(ndp)
    }

    /// Reads the answers waiting on the probe sockets (at most RECV_BATCH each).
    pub fn receive(&mut self, now: Instant, iface: &str, log: &mut Log) {
        let mut buf = [0u8; 1500];
        for family in [Family::V4, Family::V6] {
            let f = family as usize;
            for _ in 0..RECV_BATCH {
                if !self.probes[f].waiting() {
                    break;
                }
                let got = match family {
                    Family::V4 => self.arp.as_ref().map(|s| s.recv(&mut buf)),
                    Family::V6 => self.ndp.as_ref().map(|s| s.recv(&mut buf)),
                };
                match got {
                    Some(Ok(Some(n))) => {
                        if self.probes[f].handle_packet(now, &buf[..n]) {
                            self.say_result(family, iface, log);
                        }
                    }
                    Some(Ok(None)) | None => break,
                    Some(Err(e)) => {
                        // The device went away under the socket (ENETDOWN), or worse: the
                        // next probe opens a new one.
                        log.limited(
                            now,
                            Level::Info,
                            format!("{iface}: {} receive: {e}", proto(family)),
                        );
                        match family {
                            Family::V4 => self.arp = None,
                            Family::V6 => self.ndp = None,
                        }
                        break;
                    }
                }
            }
        }
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        self.probes.iter().filter_map(L2Probe::poll_timeout).min()
    }

    /// Ends the probes whose deadline has come (Dead when a request went unanswered).
    pub fn handle_timeout(&mut self, now: Instant, iface: &str, log: &mut Log) {
        for family in [Family::V4, Family::V6] {
            let f = family as usize;
            let before = self.probes[f].result();
            self.probes[f].handle_timeout(now);
            if before != self.probes[f].result() {
                self.say_result(family, iface, log);
            }
        }
    }

    /// A round of `family` has ended; `failed`: it failed, or its gateway did not answer
    /// (the next round then probes). Call after `handle_timeout`.
    pub fn end_round(&mut self, family: Family, failed: bool, iface: &str, log: &mut Log) {
        let p = &mut self.probes[family as usize];
        let before = p.result();
        p.round_ended();
        p.note_round(failed);
        // A kernel confirmation (no request of ours) is said here, once per round, and only
        // for a failed one: on a healthy round it is no news (the kernel resolved the
        // gateway for our echoes).
        if failed && before == L2::Alive && p.rtt().is_none() {
            self.say_result(family, iface, log);
        }
    }

    /// This round's layer-2 verdict about `family`'s gateway (see `crate::l2`).
    pub fn result(&self, family: Family) -> L2 {
        self.probes[family as usize].result()
    }

    /// Its round trip, when our request was answered.
    pub fn rtt(&self, family: Family) -> Option<Duration> {
        self.probes[family as usize].rtt()
    }

    fn say_result(&mut self, family: Family, iface: &str, log: &mut Log) {
        let f = family as usize;
        let p = &self.probes[f];
        let result = p.result();
        let gw = self.gateway[f].map_or_else(|| "-".to_string(), |g| g.to_string());
        let what = proto(family);
        let (level, line) = match (result, p.rtt()) {
            (L2::Alive, Some(rtt)) => (
                Level::Notice,
                format!(
                    "gateway {gw} answers {what} ({:.1} ms)",
                    rtt.as_secs_f64() * 1e3
                ),
            ),
            (L2::Alive, None) => (
                Level::Notice,
                format!("gateway {gw} answers {what} (the kernel confirmed it reachable)"),
            ),
            (L2::Dead, _) => (
                Level::Warning,
                format!(
                    "gateway {gw} does not answer {what} (no reply in {})",
                    human(self.timeout)
                ),
            ),
            (L2::Unknown, _) => return,
        };
        if self.verbose || self.logged[f] != result {
            let level = if self.logged[f] == result {
                Level::Info
            } else {
                level
            };
            log.log(level, &format!("{iface}: {line}"));
            self.logged[f] = result;
        }
    }
}

fn proto(family: Family) -> &'static str {
    match family {
        Family::V4 => "ARP",
        Family::V6 => "NDP",
    }
}

/// The Uplink's calls (watch.rs keeps one line at each site): per lane, so per family.
impl Uplink {
    /// At lane `k`'s StartRound, after its prober's round began: the family's probe, if one
    /// is due (only a lane with targets starts a round: a family without is not judged).
    pub(super) fn l2_round_start(&mut self, now: Instant, log: &mut Log, k: usize) {
        let sys = &self.sys;
        let family = self.lanes[k].family;
        self.l2.start_round(
            now,
            self.cfg.timeout,
            family,
            self.bound,
            &self.cfg.iface,
            log,
            || sys.now(),
        );
    }

    /// At the end of lane `k`'s round (before its verdict is acted on; the turn ran the
    /// probes' timeouts first): the family's result is final now, and when one of the lane's
    /// targets did not answer (the round failed, or the gateway kept silent) the next round
    /// of the family probes.
    pub(super) fn l2_round_end(&mut self, now: Instant, log: &mut Log, k: usize) {
        self.l2.handle_timeout(now, &self.cfg.iface, log);
        let lane = &self.lanes[k];
        let failed = lane
            .prober
            .slots()
            .iter()
            .any(|s| !s.own && s.rtt.is_none());
        self.l2.end_round(lane.family, failed, &self.cfg.iface, log);
    }

    /// What layer 2 said about `family`'s gateway this round: Alive, Dead, or Unknown (no
    /// probe ran: a healthy previous round, no gateway, not Ethernet, no raw socket).
    pub fn l2_result(&self, family: Family) -> L2 {
        self.l2.result(family)
    }

    /// The round trip of this round's ARP/NDP answer, for the --once table and the status.
    pub fn l2_rtt(&self, family: Family) -> Option<Duration> {
        self.l2.rtt(family)
    }
}
