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
//!
//! The sockets are behind a two-method seam (`L2Net` opens, `L2Sock` is one socket) so the
//! tests below run the glue in virtual time against a fake link.
#![forbid(unsafe_code)]

use std::fmt::Debug;
use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::{AsFd, BorrowedFd};
use std::time::Duration;

use super::{earliest, Uplink};
use crate::config::human;
use crate::kernel::Iface;
use crate::l2::{source_v4, Asker, L2Probe, Request, L2};
use crate::log::{Level, Log};
use crate::mono::{self, Instant};
use crate::probe::Slot;
use crate::sys::l2::{is_ethernet, ArpSocket, NdpSocket};
use crate::wire::arp::Mac;
use crate::wire::Family;

/// At most this many packets are read from a probe socket per turn (see watch.rs RECV_BATCH).
const RECV_BATCH: usize = 64;

/// One probe socket as the glue uses it.
pub(super) trait L2Sock: Debug {
    /// The interface's hardware type (ARPHRD_*) and address.
    fn link_address(&self, iface: &str) -> io::Result<(u16, Mac)>;
    /// Sends one request: an ARP packet is broadcast on the interface (`dest` unused), an
    /// ICMPv6 message goes to `dest`.
    fn send(&self, msg: &[u8], dest: IpAddr) -> io::Result<()>;
    /// One received packet into `buf`: its length, or None when nothing is waiting.
    fn recv(&self, buf: &mut [u8]) -> io::Result<Option<usize>>;
    fn fd(&self) -> BorrowedFd<'_>;
}

/// Opens a family's probe socket on the interface.
pub(super) trait L2Net: Debug {
    fn open(&self, family: Family, iface: &str, index: u32) -> io::Result<Box<dyn L2Sock>>;
}

/// The real ones (src/sys/l2.rs).
#[derive(Debug)]
struct HostNet;

impl L2Net for HostNet {
    fn open(&self, family: Family, iface: &str, index: u32) -> io::Result<Box<dyn L2Sock>> {
        Ok(match family {
            Family::V4 => Box::new(ArpSocket::open(index)?),
            Family::V6 => Box::new(NdpSocket::open(iface, index)?),
        })
    }
}

impl L2Sock for ArpSocket {
    fn link_address(&self, iface: &str) -> io::Result<(u16, Mac)> {
        ArpSocket::link_address(self, iface)
    }
    fn send(&self, msg: &[u8], _: IpAddr) -> io::Result<()> {
        self.send_broadcast(msg)
    }
    fn recv(&self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        ArpSocket::recv(self, buf)
    }
    fn fd(&self) -> BorrowedFd<'_> {
        self.as_fd()
    }
}

impl L2Sock for NdpSocket {
    fn link_address(&self, iface: &str) -> io::Result<(u16, Mac)> {
        NdpSocket::link_address(self, iface)
    }
    fn send(&self, msg: &[u8], dest: IpAddr) -> io::Result<()> {
        match dest {
            IpAddr::V6(a) => self.send_to(msg, a),
            IpAddr::V4(_) => Err(io::Error::from(io::ErrorKind::InvalidInput)),
        }
    }
    fn recv(&self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        NdpSocket::recv(self, buf)
    }
    fn fd(&self) -> BorrowedFd<'_> {
        self.as_fd()
    }
}

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
    /// Each family's probe socket (ARP, NDP), while it is probing.
    socks: [Option<Box<dyn L2Sock>>; 2],
    net: Box<dyn L2Net>,
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
    /// Probe sockets a healthy round's start let go of, closed after the turn sent its
    /// echoes (`close_retired`): closing an AF_PACKET socket waits for an RCU grace period
    /// in the kernel (packet_release, synchronize_net), ~11 ms measured here, which delayed
    /// the confirming echo after a carrier loss by as much.
    retired: Vec<Box<dyn L2Sock>>,
    /// A round that asked nothing at its start asks at this instant if an echo of it is
    /// still unanswered, with what is left of its timeout, the one kept here (see
    /// `ask_late`).
    late: [Option<(Instant, Duration)>; 2],
    /// The earlier of the two `late` instants, kept as they change (`set_late`): the loop
    /// asks `late_due` twice a turn (issue 9).
    late_next: Option<Instant>,
}

impl Layer2 {
    pub fn new(verbose: bool) -> Layer2 {
        Layer2::with_net(verbose, Box::new(HostNet))
    }

    pub(super) fn with_net(verbose: bool, net: Box<dyn L2Net>) -> Layer2 {
        Layer2 {
            probes: [L2Probe::new(Family::V4), L2Probe::new(Family::V6)],
            socks: [None, None],
            net,
            index: None,
            hw: Hw::Unread,
            gateway: [None, None],
            our_v4: None,
            always: false,
            logged: [L2::Unknown; 2],
            verbose,
            timeout: Duration::ZERO,
            refused: [false; 2],
            retired: Vec::new(),
            late: [None, None],
            late_next: None,
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
            self.probes[f as usize].neighbour(gw, i.gateway_neighbour(f), i.gateway_lladdr(f));
        }
        let v4 = i.addresses().filter_map(|a| match a.addr {
            IpAddr::V4(ip) => Some((ip, a.prefix_len)),
            IpAddr::V6(_) => None,
        });
        self.our_v4 = source_v4(v4, self.gateway[0]);
    }

    /// Sockets and hardware address are for one device: forget them.
    fn unbind(&mut self) {
        self.socks = [None, None];
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
            self.set_late(f, half_way(now, timeout).map(|at| (at, timeout)));
            // Healthy: close what an outage opened; the next outage reads the hardware
            // address again (it may have changed: a bond's, a MAC set by hand).
            if let Some(sock) = self.socks[f].take() {
                self.retired.push(sock);
            }
            if matches!(self.hw, Hw::Ethernet(_))
                && self.socks[0].is_none()
                && self.socks[1].is_none()
            {
                self.hw = Hw::Unread;
            }
            return;
        }
        self.set_late(f, None);
        let asker = self.asker(family, iface, log);
        let Some(req) = self.probes[f].start(now, timeout, asker) else {
            return;
        };
        let mut buf = [0u8; 64];
        self.drain(family);
        let (len, dest) = match req {
            Request::Arp(arp) => (arp.emit(&mut buf), IpAddr::V4(arp.target_ip)),
            Request::Ndp { ns, dest } => (ns.emit(&mut buf), IpAddr::V6(dest)),
        };
        let (Some(len), Some(sock)) = (len, self.socks[f].as_ref()) else {
            return;
        };
        let at = clock();
        let sent = sock.send(&buf[..len], dest).map(|()| at);
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
        let f = family as usize;
        let opened = match self.socks[f] {
            None => self
                .net
                .open(family, iface, index)
                .map(|s| self.socks[f] = Some(s)),
            Some(_) => Ok(()),
        };
        if let Err(e) = opened {
            // Said once per bind: without CAP_NET_RAW it fails every round alike.
            if !std::mem::replace(&mut self.refused[f], true) {
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
            let got = self.socks[f].as_ref().map(|s| s.link_address(iface));
            self.hw = match got {
                Some(Ok((t, mac))) if is_ethernet(t) => Hw::Ethernet(mac),
                Some(Ok((t, _))) => {
                    log.log(
                        Level::Notice,
                        &format!("{iface}: hardware type {t} is not Ethernet: the gateway is not probed by ARP/NDP"),
                    );
                    self.socks = [None, None];
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
            let got = self.socks[family as usize]
                .as_ref()
                .map(|s| s.recv(&mut buf));
            if !matches!(got, Some(Ok(Some(_)))) {
                break;
            }
        }
    }

    /// The probe sockets to poll: only those awaiting an answer.
    /// Whether a probe waits for its answer (`poll_fds` has its socket).
    pub fn any_waiting(&self) -> bool {
        self.probes[0].waiting() || self.probes[1].waiting()
    }

    pub fn poll_fds(&self) -> impl Iterator<Item = BorrowedFd<'_>> {
        self.socks
            .iter()
            .zip(&self.probes)
            .filter(|(_, p)| p.waiting())
            .filter_map(|(s, _)| s.as_ref().map(|s| s.fd()))
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
                let got = self.socks[f].as_ref().map(|s| s.recv(&mut buf));
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
                        self.socks[f] = None;
                        break;
                    }
                }
            }
        }
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        earliest(self.probes_due(), self.late_due())
    }

    /// The probes' deadlines (a request awaiting its answer): one of the turn's chores.
    pub fn probes_due(&self) -> Option<Instant> {
        earliest(self.probes[0].poll_timeout(), self.probes[1].poll_timeout())
    }

    /// Closes the probe sockets healthy rounds let go of (see `retired`): the turn calls it
    /// after its echoes went out.
    #[inline]
    pub fn close_retired(&mut self) {
        if !self.retired.is_empty() {
            self.retired.clear();
        }
    }

    /// When a round's late ask is due (`ask_late`): armed by every round's start, disarmed
    /// by its end, so asked apart from the chores.
    #[inline(always)]
    pub fn late_due(&self) -> Option<Instant> {
        debug_assert_eq!(
            self.late_next,
            earliest(self.late[0].map(|l| l.0), self.late[1].map(|l| l.0))
        );
        self.late_next
    }

    /// Arms (Some) or disarms `family`'s late ask, keeping `late_next` right.
    #[inline(always)]
    fn set_late(&mut self, f: usize, late: Option<(Instant, Duration)>) {
        self.late[f] = late;
        let other = self.late[f ^ 1].map(|l| l.0);
        self.late_next = earliest(late.map(|l| l.0), other);
    }

    /// Half a timeout into a round of `family` that asked nothing at its start (the round
    /// before it was good): if one of its echoes is still unanswered (`pending`), asks now,
    /// the answer awaited until the round's own deadline. So the round that fails first has
    /// the gateway's liveness too, not only the rounds after it; a healthy round, answered
    /// before then, asks nothing.
    #[allow(clippy::too_many_arguments)]
    pub fn ask_late(
        &mut self,
        now: Instant,
        family: Family,
        pending: bool,
        index: Option<u32>,
        iface: &str,
        log: &mut Log,
        clock: impl Fn() -> Instant,
    ) {
        let f = family as usize;
        let Some((at, round_timeout)) = self.late[f] else {
            return;
        };
        if now < at {
            return;
        }
        self.set_late(f, None); // disarmed before acting on it
        if !pending || self.probes[f].result() != L2::Unknown {
            return; // answered, or the kernel has confirmed the gateway meanwhile
        }
        let timeout = self.timeout;
        let left = round_timeout.saturating_sub(round_timeout / 2);
        self.probes[f].note_round(true);
        self.start_round(now, left, family, index, iface, log, clock);
        self.set_late(f, None);
        self.timeout = timeout; // the log line names the round's timeout
    }

    /// Ends the probes whose deadline has come (Dead when a request went unanswered).
    #[inline]
    pub fn handle_timeout(&mut self, now: Instant, iface: &str, log: &mut Log) {
        for family in [Family::V4, Family::V6] {
            let f = family as usize;
            if self.probes[f].poll_timeout().is_none_or(|t| now < t) {
                continue; // nothing due (every turn that runs the chores asks)
            }
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
        self.set_late(family as usize, None);
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
            (L2::Stale { answer, entry }, _) => (
                Level::Warning,
                format!(
                    "gateway {gw} answers {what} from {answer} but this host's neighbour entry says {entry} (stale): a local fault"
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

/// Half a round's `timeout` into it, from `now` (None past the clock's range): through the
/// nanoseconds, which every timeout from the configuration has, their floor halved being
/// what `Duration / 2` gives, without its division and carry (issue 9).
#[inline(always)]
fn half_way(now: Instant, timeout: Duration) -> Option<Instant> {
    match mono::nanos(timeout) {
        Some(ns) => now.checked_add_nanos(ns / 2),
        None => now.checked_add(timeout / 2),
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
        if self.l2.probes_due().is_some() {
            self.chores.moved = true; // a request went out: its deadline is a chore
        }
    }

    /// Every turn, before the probes' timeouts: a lane's round whose echo is late asks
    /// layer 2 (`Layer2::ask_late`).
    pub(super) fn l2_late(&mut self, now: Instant, log: &mut Log) {
        let sys = &self.sys;
        for lane in &self.lanes {
            let pending =
                lane.prober.round_running() && lane.prober.slots().iter().any(Slot::pending);
            self.l2.ask_late(
                now,
                lane.family,
                pending,
                self.bound,
                &self.cfg.iface,
                log,
                || sys.now(),
            );
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::arp::Arp;
    use crate::wire::ndp::Solicit;
    use std::cell::RefCell;
    use std::collections::VecDeque;
    use std::net::Ipv6Addr;
    use std::os::unix::net::UnixDatagram;
    use std::path::PathBuf;
    use std::rc::Rc;

    const GW4: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);
    const OUR4: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 2);
    const GW6: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1);
    const MAC: Mac = Mac([0x02, 0, 0x5e, 0x10, 0, 2]);
    const GW_MAC: Mac = Mac([0x02, 0, 0x5e, 0x10, 0, 1]);
    const T: Duration = Duration::from_secs(2);
    const ARPHRD_PPP: u16 = 512;

    /// The fake link: what was opened, sent, and what waits to be received.
    #[derive(Debug, Default)]
    struct Link {
        opens: usize,
        live: usize,
        refuse: bool,
        hw_type: u16,
        sent: Vec<(Vec<u8>, IpAddr)>,
        inbox: [VecDeque<Vec<u8>>; 2],
        recvs: usize,
    }
    type Shared = Rc<RefCell<Link>>;

    #[derive(Debug)]
    struct FakeNet(Shared);
    #[derive(Debug)]
    struct FakeSock {
        family: Family,
        link: Shared,
        fd: std::fs::File,
    }

    impl L2Net for FakeNet {
        fn open(&self, family: Family, _: &str, _: u32) -> io::Result<Box<dyn L2Sock>> {
            let mut l = self.0.borrow_mut();
            if l.refuse {
                return Err(io::Error::from(io::ErrorKind::PermissionDenied));
            }
            l.opens += 1;
            l.live += 1;
            Ok(Box::new(FakeSock {
                family,
                link: self.0.clone(),
                fd: std::fs::File::open("/dev/null")?,
            }))
        }
    }

    impl Drop for FakeSock {
        fn drop(&mut self) {
            self.link.borrow_mut().live -= 1;
        }
    }

    impl L2Sock for FakeSock {
        fn link_address(&self, _: &str) -> io::Result<(u16, Mac)> {
            Ok((self.link.borrow().hw_type, MAC))
        }
        fn send(&self, msg: &[u8], dest: IpAddr) -> io::Result<()> {
            self.link.borrow_mut().sent.push((msg.to_vec(), dest));
            Ok(())
        }
        fn recv(&self, buf: &mut [u8]) -> io::Result<Option<usize>> {
            let mut l = self.link.borrow_mut();
            l.recvs += 1;
            Ok(l.inbox[self.family as usize].pop_front().map(|p| {
                buf[..p.len()].copy_from_slice(&p);
                p.len()
            }))
        }
        fn fd(&self) -> BorrowedFd<'_> {
            self.fd.as_fd()
        }
    }

    struct Rig {
        l2: Layer2,
        link: Shared,
        log: Log,
        sink: UnixDatagram,
        path: PathBuf,
        now: Instant,
        index: u32,
    }

    impl Drop for Rig {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.path); // not fatal: a temp file
        }
    }

    fn rig(tag: &str) -> Rig {
        let now = Instant::now();
        let link = Rc::new(RefCell::new(Link {
            hw_type: crate::wire::arp::HTYPE_ETHER,
            ..Link::default()
        }));
        let path =
            std::env::temp_dir().join(format!("netheal-l2-{}-{tag}.sock", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let sink = UnixDatagram::bind(&path).unwrap();
        sink.set_nonblocking(true).unwrap();
        let log = Log::with_syslog(Some(path.clone()), now);
        let mut l2 = Layer2::with_net(false, Box::new(FakeNet(link.clone())));
        l2.gateway = [Some(GW4.into()), Some(GW6.into())];
        l2.our_v4 = Some(OUR4);
        Rig {
            l2,
            link,
            log,
            sink,
            path,
            now,
            index: 7,
        }
    }

    impl Rig {
        /// One round of `family`: starts, the gateway answers when `answer`, the deadline
        /// passes, it ends (`failed`: a target did not answer). Its L2 result.
        fn round(&mut self, family: Family, answer: bool, failed: bool) -> L2 {
            let now = self.now;
            self.l2.start_round(
                now,
                T,
                family,
                Some(self.index),
                "nh0",
                &mut self.log,
                || now,
            );
            self.l2.close_retired(); // as the turn does, after its echoes
            if answer {
                self.link.borrow_mut().inbox[family as usize].push_back(reply(family));
            }
            if self.l2.poll_fds().count() > 0 {
                let at = now + Duration::from_millis(1);
                self.l2.receive(at, "nh0", &mut self.log);
            }
            self.now += T;
            self.l2.handle_timeout(self.now, "nh0", &mut self.log);
            let result = self.l2.result(family);
            self.l2.end_round(family, failed, "nh0", &mut self.log);
            result
        }

        fn lines(&self) -> Vec<String> {
            let mut out = Vec::new();
            let mut buf = [0u8; 4096];
            while let Ok(n) = self.sink.recv(&mut buf) {
                out.push(String::from_utf8_lossy(&buf[..n]).into_owned());
            }
            out
        }
    }

    fn reply(family: Family) -> Vec<u8> {
        match family {
            Family::V4 => {
                let mut b = vec![0; 28];
                Arp {
                    reply: true,
                    sender_mac: GW_MAC,
                    sender_ip: GW4,
                    target_mac: MAC,
                    target_ip: OUR4,
                }
                .emit(&mut b)
                .unwrap();
                b
            }
            Family::V6 => {
                let mut b = vec![0; 24];
                b[0] = 136;
                b[4] = 0x60;
                b[8..24].copy_from_slice(&GW6.octets());
                b
            }
        }
    }

    #[test]
    fn a_stale_neighbour_entry_is_said_once_per_change() {
        use crate::wire::netlink::NUD_PERMANENT;
        let mut r = rig("stale");
        let bogus = Mac([2, 0, 0, 0, 0, 1]);
        let entry = |r: &mut Rig, mac| {
            r.l2.probes[0].neighbour(Some(GW4.into()), Some(NUD_PERMANENT), Some(mac))
        };
        entry(&mut r, bogus);
        r.round(Family::V4, false, true);
        let stale = L2::Stale {
            answer: GW_MAC,
            entry: bogus,
        };
        for _ in 0..3 {
            assert_eq!(r.round(Family::V4, true, true), stale);
        }
        let said = "nh0: gateway 198.51.100.1 answers ARP from 02:00:5e:10:00:01 but this host's neighbour entry says 02:00:00:00:00:01 (stale): a local fault";
        let lines = r.lines();
        assert_eq!(
            lines.iter().filter(|l| l.ends_with(said)).count(),
            1,
            "{lines:?}"
        );
        // another bogus MAC is a change: said again
        entry(&mut r, Mac([2, 0, 0, 0, 0, 3]));
        r.round(Family::V4, true, true);
        let lines = r.lines();
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(
            lines[0].contains("says 02:00:00:00:00:03 (stale)"),
            "{lines:?}"
        );
        // the entry put right (a flush, the kernel's own resolution): alive again
        entry(&mut r, GW_MAC);
        assert_eq!(r.round(Family::V4, true, true), L2::Alive);
        let lines = r.lines();
        assert!(
            lines
                .iter()
                .any(|l| l.contains("gateway 198.51.100.1 answers ARP (")),
            "{lines:?}"
        );
    }

    #[test]
    fn sockets_live_only_while_a_family_is_probing() {
        let mut r = rig("live");
        for _ in 0..3 {
            assert_eq!(r.round(Family::V4, false, false), L2::Unknown);
        }
        assert_eq!(r.link.borrow().opens, 0, "healthy rounds open nothing");
        assert_eq!(r.link.borrow().recvs, 0);
        // a failed round: the next one asks, once, from our MAC and address
        r.round(Family::V4, false, true);
        assert_eq!(r.round(Family::V4, true, true), L2::Alive);
        {
            let l = r.link.borrow();
            assert_eq!((l.opens, l.live, l.sent.len()), (1, 1, 1));
            let mut want = [0u8; 28];
            Arp::request(MAC, OUR4, GW4).emit(&mut want).unwrap();
            assert_eq!(l.sent[0], (want.to_vec(), IpAddr::V4(GW4)));
        }
        assert_eq!(r.l2.rtt(Family::V4), Some(Duration::from_millis(1)));
        assert_eq!(r.l2.poll_fds().count(), 0, "answered: not polled");
        // the outage goes on: the same socket
        assert_eq!(r.round(Family::V4, false, false), L2::Dead);
        assert_eq!(r.link.borrow().opens, 1);
        // the round after a good one closes it
        assert_eq!(r.round(Family::V4, false, false), L2::Unknown);
        assert_eq!(r.link.borrow().live, 0);
        let lines = r.lines();
        let said = |w: &str| lines.iter().filter(|l| l.contains(w)).count();
        assert_eq!(
            said("nh0: gateway 198.51.100.1 answers ARP (1.0 ms)"),
            1,
            "{lines:?}"
        );
        assert_eq!(
            said("nh0: gateway 198.51.100.1 does not answer ARP (no reply in 2s)"),
            1
        );
    }

    /// The first failing round of an outage asks too, half a timeout in, when its echo is
    /// late; a round whose echoes were all answered by then asks nothing.
    /// Half a timeout through the nanoseconds is `Duration / 2`, odd seconds and nanoseconds
    /// alike; a timeout past u64 nanoseconds takes the `Duration` way.
    #[test]
    fn half_way_is_half_the_timeout() {
        let now = Instant::now();
        for t in [
            Duration::ZERO,
            Duration::from_nanos(1),
            Duration::from_nanos(3),
            Duration::from_millis(1500),
            Duration::new(3, 1),
            Duration::new(7, 999_999_999),
            Duration::from_secs(86_400),
        ] {
            assert_eq!(half_way(now, t), now.checked_add(t / 2), "{t:?}");
        }
        assert_eq!(
            half_way(now, Duration::MAX),
            now.checked_add(Duration::MAX / 2)
        );
    }

    /// `late_due` is the earlier family's late ask while both are armed, and the other's
    /// once that one is disarmed (by its round's end, or its ask).
    #[test]
    fn late_due_follows_both_families() {
        let mut r = rig("late2");
        let start = r.now;
        let v6 = start + Duration::from_millis(1);
        assert_eq!(r.l2.late_due(), None);
        for (family, at) in [(Family::V4, start), (Family::V6, v6)] {
            r.l2.start_round(at, T, family, Some(r.index), "nh0", &mut r.log, || at);
        }
        assert_eq!(r.l2.late_due(), Some(start + T / 2));
        r.l2.end_round(Family::V4, false, "nh0", &mut r.log);
        assert_eq!(r.l2.late_due(), Some(v6 + T / 2));
        let half = v6 + T / 2;
        r.l2.ask_late(
            half,
            Family::V6,
            false,
            Some(r.index),
            "nh0",
            &mut r.log,
            || half,
        );
        assert_eq!(r.l2.late_due(), None);
        r.l2.start_round(
            half,
            T,
            Family::V4,
            Some(r.index),
            "nh0",
            &mut r.log,
            || half,
        );
        assert_eq!(r.l2.late_due(), Some(half + T / 2));
    }

    #[test]
    fn a_late_echo_asks_within_the_same_round() {
        let mut r = rig("late");
        let start = r.now;
        r.l2.start_round(
            start,
            T,
            Family::V4,
            Some(r.index),
            "nh0",
            &mut r.log,
            || start,
        );
        assert_eq!(
            r.l2.poll_timeout(),
            Some(start + T / 2),
            "the late ask is armed"
        );
        let early = start + T / 4;
        r.l2.ask_late(
            early,
            Family::V4,
            true,
            Some(r.index),
            "nh0",
            &mut r.log,
            || early,
        );
        assert_eq!(r.link.borrow().sent.len(), 0, "not yet");
        let half = start + T / 2;
        // answered by then: nothing asked, and the ask is disarmed
        r.l2.ask_late(
            half,
            Family::V4,
            false,
            Some(r.index),
            "nh0",
            &mut r.log,
            || half,
        );
        assert_eq!(r.link.borrow().sent.len(), 0);
        assert_eq!(r.l2.poll_timeout(), None);
        r.l2.end_round(Family::V4, false, "nh0", &mut r.log);
        // the next round's echo is still out half a timeout in: ARP now, answer in the round
        let start = start + T;
        r.l2.start_round(
            start,
            T,
            Family::V4,
            Some(r.index),
            "nh0",
            &mut r.log,
            || start,
        );
        let half = start + T / 2;
        r.l2.ask_late(
            half,
            Family::V4,
            true,
            Some(r.index),
            "nh0",
            &mut r.log,
            || half,
        );
        assert_eq!(r.link.borrow().sent.len(), 1, "asked in the same round");
        assert_eq!(
            r.l2.poll_timeout(),
            Some(start + T),
            "awaited until the round's end"
        );
        r.link.borrow_mut().inbox[0].push_back(reply(Family::V4));
        r.l2.receive(half + Duration::from_millis(1), "nh0", &mut r.log);
        r.l2.handle_timeout(start + T, "nh0", &mut r.log);
        assert_eq!(r.l2.result(Family::V4), L2::Alive);
    }

    #[test]
    fn what_queued_before_the_request_never_counts() {
        let mut r = rig("stale");
        r.round(Family::V4, false, true);
        r.round(Family::V4, true, true);
        // a gateway reply arrives between rounds (the kernel's own exchange, a late one)
        r.link.borrow_mut().inbox[0].push_back(reply(Family::V4));
        assert_eq!(r.round(Family::V4, false, true), L2::Dead);
        assert!(
            r.link.borrow().inbox[0].is_empty(),
            "drained before the request"
        );
    }

    #[test]
    fn ndp_solicits_the_gateway_on_its_own_socket() {
        let mut r = rig("ndp");
        r.round(Family::V6, false, true);
        assert_eq!(r.round(Family::V6, true, true), L2::Alive);
        let l = r.link.borrow();
        let mut want = [0u8; 32];
        Solicit {
            target: GW6,
            our_mac: MAC,
        }
        .emit(&mut want)
        .unwrap();
        assert_eq!(l.sent, vec![(want.to_vec(), IpAddr::V6(GW6))]);
        drop(l);
        // the IPv4 lane, healthy meanwhile, asked nothing
        assert_eq!(r.round(Family::V4, false, false), L2::Unknown);
        assert_eq!(r.link.borrow().opens, 1);
    }

    #[test]
    fn without_privilege_it_is_said_once_and_unknown() {
        let mut r = rig("eperm");
        r.link.borrow_mut().refuse = true;
        r.round(Family::V4, false, true);
        for _ in 0..3 {
            assert_eq!(r.round(Family::V4, false, true), L2::Unknown);
        }
        let lines = r.lines();
        let n = lines.iter().filter(|l| l.contains("not possible")).count();
        assert_eq!(n, 1, "{lines:?}");
        assert!(lines.iter().all(|l| !l.contains("does not answer")));
    }

    /// A healthy round's start lets go of the outage's probe socket but does not close it:
    /// the turn closes it after its echoes (closing an AF_PACKET socket waits for the
    /// kernel's RCU grace period, which held the confirming echo back ~11 ms).
    #[test]
    fn a_healthy_rounds_start_closes_the_probe_socket_only_when_told() {
        let mut r = rig("late-close");
        r.round(Family::V4, false, true); // failed: the next round asks
        assert_eq!(r.round(Family::V4, true, false), L2::Alive);
        assert_eq!(r.link.borrow().live, 1, "kept over the outage");
        let now = r.now;
        r.l2.start_round(now, T, Family::V4, Some(r.index), "nh0", &mut r.log, || now);
        assert_eq!(r.link.borrow().live, 1, "not closed by the round's start");
        assert_eq!(r.l2.poll_fds().count(), 0, "nor polled");
        r.l2.close_retired();
        assert_eq!(
            r.link.borrow().live,
            0,
            "closed when the turn is done sending"
        );
    }

    #[test]
    fn a_link_that_is_not_ethernet_is_not_asked() {
        let mut r = rig("ppp");
        r.link.borrow_mut().hw_type = ARPHRD_PPP;
        r.round(Family::V4, false, true);
        for _ in 0..3 {
            assert_eq!(r.round(Family::V4, false, true), L2::Unknown);
        }
        let l = r.link.borrow();
        assert!(l.sent.is_empty());
        assert_eq!(
            (l.opens, l.live),
            (1, 0),
            "opened once to read the type, then closed"
        );
        drop(l);
        let lines = r.lines();
        let n = lines.iter().filter(|l| l.contains("not Ethernet")).count();
        assert_eq!(n, 1, "{lines:?}");
    }

    #[test]
    fn a_new_index_gets_new_sockets() {
        let mut r = rig("index");
        r.round(Family::V4, false, true);
        r.round(Family::V4, false, true);
        r.index = 8;
        r.round(Family::V4, false, true);
        let l = r.link.borrow();
        assert_eq!((l.opens, l.live, l.sent.len()), (2, 1, 2));
    }

    #[test]
    fn once_asks_in_its_one_round() {
        let mut r = rig("once");
        r.l2.probe_every_round();
        assert_eq!(r.round(Family::V4, true, false), L2::Alive);
        assert_eq!(r.link.borrow().sent.len(), 1);
    }
}
