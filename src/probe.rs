//! Probe rounds as pure bookkeeping: which echo to send to which target and when, and whether
//! a received ICMP message is a reply to one of them, or an error about one. No sockets and no
//! clock: the caller passes `now` (for a send: the instant right before `sendto`), sends what
//! `poll_transmit` builds, and feeds back what it receives.
//!
//! A round sends up to `count` echoes to every target, spread over the first half of the
//! timeout, and stops sending to a target once it answered, a send to it failed, or an ICMP
//! error quoting one of its echoes came back. It ends when every target with an address has
//! been decided that way, or at the timeout.
//!
//! Every echo carries a MAC as its data: SipHash-2-4 under a random per-process key over the
//! identifier, sequence number, destination and send time (as OpenBSD ping(8) does), so one
//! echo says nothing about the next one's data and a reply cannot be forged by someone who saw
//! earlier requests. A reply counts only if it is an echo reply with our identifier, the
//! sequence number of an echo of ours, from the address that echo went to, carrying exactly
//! that echo's MAC; everything else is counted as foreign and dropped.
//!
//! What the counters mean (the README says the same under "Log lines"):
//! - `lost`: an echo is lost when its target gave no answer in its round (counted at the
//!   round's end), or, for an echo to a target that answered another echo of the round, when
//!   no reply to it came within the timeout of sending it. A lossless path therefore counts no
//!   loss, however long its round-trip.
//! - `late`: a genuine reply (MAC checked) that decided nothing: it came after its round had
//!   ended, after its target had already answered (a second echo of the round), or it is a
//!   duplicate. A reply that comes more than a timeout after a silent round counts as both
//!   lost (at the round's end) and late.
//! - `icmp_errors`: unreachable and time-exceeded messages that quote an echo of ours in
//!   flight; each ends its target's part of the round at once, and the slot keeps who said it.
//!
//! Stream slots (`tcp:` and `dns:` targets, `mark_stream`) share the round, the quorum and
//! the counters, but make one attempt per round (a TCP connect or one DNS query: a second
//! SYN would be the kernel's retransmission anyway, and a resolver that drops one query of
//! two is not what an outage looks like). The caller opens the socket when `poll_stream`
//! says so and reports `stream_answered` or `stream_failed`; the prober keeps the time. An
//! attempt counts in `sent`; every attempt without an answer in its round in `lost` (at the
//! round's end, as an echo); one the kernel refused at once (`send_failed`) also in
//! `send_errors`; a DNS response that is not for our query in `foreign`.
#![forbid(unsafe_code)]

use std::net::IpAddr;
use std::time::Duration;

use crate::decide::Verdict;
use crate::mono::{self, Instant};
use crate::wire::{
    echo_request, Echo, EchoKind, ErrorKind, Family, QuotedEcho, SipKey, ECHO_HEADER_LEN,
};

/// The MAC carried as every echo's data.
pub const MAC_LEN: usize = 8;
/// The per-process SipHash key.
pub const KEY_LEN: usize = 16;
/// The largest echo request we build.
pub const REQUEST_LEN: usize = ECHO_HEADER_LEN + MAC_LEN;
/// Echoes of ended rounds remembered so that a late reply can still be checked (and counted
/// late, not foreign), and an unanswered one counted lost once its timeout has passed. 64 is
/// four rounds of the largest round (16 targets) at the default count.
const RETIRED_MAX: usize = 64;

/// A stream attempt that is due: connect to (or query) `dest` for `target` now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamStart {
    pub target: usize,
    pub dest: IpAddr,
}

/// An echo request built into the caller's buffer, to be sent to `dest`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transmit {
    pub target: usize,
    pub dest: IpAddr,
    pub len: usize,
}

/// Who said a target cannot be reached, and how: "198.51.100.1: host unreachable".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Report {
    pub from: IpAddr,
    pub kind: ErrorKind,
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} from {}", self.kind, self.from)
    }
}

/// What a received message turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Received {
    Reply {
        target: usize,
        rtt: Duration,
    },
    /// An ICMP error quoting an echo of this round: the target failed this round at once.
    Unreachable {
        target: usize,
        report: Report,
    },
    /// Not ours: another program's ping, a wrong MAC or source, not an echo reply at all.
    Foreign,
    /// Ours (MAC checked), but it decided nothing: see the module comment.
    Late,
}

/// Counters since start, for the status line. They saturate instead of wrapping.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    pub rounds: u64,
    pub good_rounds: u64,
    pub sent: u64,
    pub send_errors: u64,
    pub replies: u64,
    /// See the module comment.
    pub lost: u64,
    pub foreign: u64,
    pub late: u64,
    pub icmp_errors: u64,
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

/// A prober's counters as it keeps them (`Prober::stats`): `Stats`' counts, and the round
/// trips as nanoseconds, so that a reply's sum, minimum and maximum are one integer
/// operation each, where a `Duration` is two fields with a carry (issue 9). `Stats::from`
/// reads them as the reports do, the same values `Stats` kept itself: an RTT is a
/// difference of two instants (u64 nanoseconds), their sum a u128 that cannot reach
/// `Duration::MAX` before it saturates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counters {
    pub rounds: u64,
    pub good_rounds: u64,
    pub sent: u64,
    pub send_errors: u64,
    pub replies: u64,
    /// See the module comment.
    pub lost: u64,
    pub foreign: u64,
    pub late: u64,
    pub icmp_errors: u64,
    /// The shortest and the longest round trip (nanoseconds) and their sum, once `replies`
    /// is not 0 (the shortest starts at u64::MAX, the longest at 0).
    rtt_min_ns: u64,
    rtt_max_ns: u64,
    rtt_sum_ns: u128,
}

impl Default for Counters {
    fn default() -> Counters {
        Counters {
            rounds: 0,
            good_rounds: 0,
            sent: 0,
            send_errors: 0,
            replies: 0,
            lost: 0,
            foreign: 0,
            late: 0,
            icmp_errors: 0,
            rtt_min_ns: u64::MAX,
            rtt_max_ns: 0,
            rtt_sum_ns: 0,
        }
    }
}

impl Counters {
    /// Counts a reply with a round trip of `ns` nanoseconds.
    #[inline(always)]
    pub(crate) fn reply(&mut self, ns: u64) {
        bump(&mut self.replies);
        self.rtt_sum_ns = self.rtt_sum_ns.saturating_add(u128::from(ns));
        if ns < self.rtt_min_ns {
            self.rtt_min_ns = ns;
        }
        if ns > self.rtt_max_ns {
            self.rtt_max_ns = ns;
        }
    }

    pub fn rtt_min(&self) -> Option<Duration> {
        (self.replies > 0).then(|| Duration::from_nanos(self.rtt_min_ns))
    }

    pub fn rtt_max(&self) -> Option<Duration> {
        (self.replies > 0).then(|| Duration::from_nanos(self.rtt_max_ns))
    }

    /// The sum of the round trips (`Duration::MAX` past it, as `Duration::saturating_add`).
    pub fn rtt_sum(&self) -> Duration {
        const NANOS_PER_SEC: u128 = 1_000_000_000;
        match u64::try_from(self.rtt_sum_ns / NANOS_PER_SEC) {
            Ok(secs) => Duration::new(secs, (self.rtt_sum_ns % NANOS_PER_SEC) as u32),
            Err(_) => Duration::MAX,
        }
    }

    pub fn rtt_avg(&self) -> Option<Duration> {
        Stats::from(self).rtt_avg()
    }
}

impl From<&Counters> for Stats {
    fn from(c: &Counters) -> Stats {
        Stats {
            rounds: c.rounds,
            good_rounds: c.good_rounds,
            sent: c.sent,
            send_errors: c.send_errors,
            replies: c.replies,
            lost: c.lost,
            foreign: c.foreign,
            late: c.late,
            icmp_errors: c.icmp_errors,
            rtt_min: c.rtt_min(),
            rtt_max: c.rtt_max(),
            rtt_sum: c.rtt_sum(),
        }
    }
}

/// Where the oldest retired echo is, how many of the oldest have expired, when the first
/// after those expires, and how many are still unanswered and not yet counted lost: what
/// `push_retired` keeps right as it fills the ring.
#[derive(Debug)]
struct RingState {
    oldest: usize,
    expired: usize,
    quiet_until: Option<Instant>,
    /// Retired echoes whose fate is `Outstanding`. When there are none, `retire` has nothing
    /// to count lost and does not walk at all (a healthy round answers every echo, so this
    /// is most rounds; issue 9). `expired` then stays as it is, too low: it only says how
    /// many are known to be expired, and the next walk goes on from there.
    outstanding: usize,
}

/// Keeps a copy of `s` as the newest retired echo; when the ring is full it takes the
/// oldest's place, which is forgotten (counted lost if it never had an answer). A free
/// function over the fields, so that `s` can stay where it is in `Prober::sent`.
#[inline(always)]
fn push_retired(retired: &mut Vec<Sent>, ring: &mut RingState, s: &Sent, lost: &mut u64) {
    if retired.len() < RETIRED_MAX {
        retired.push(*s);
        if s.fate == Fate::Outstanding {
            ring.outstanding += 1;
        }
        return;
    }
    let Some(old) = retired.get_mut(ring.oldest) else {
        return;
    };
    if old.fate == Fate::Outstanding {
        bump(lost);
        ring.outstanding -= 1;
    }
    if s.fate == Fate::Outstanding {
        ring.outstanding += 1;
    }
    *old = *s;
    ring.oldest += 1;
    if ring.oldest == retired.len() {
        ring.oldest = 0;
    }
    if ring.expired == 0 {
        // The echo `retire` would look at first is gone: it has to look again.
        ring.quiet_until = None;
    }
    ring.expired = ring.expired.saturating_sub(1);
}

/// The address as the MAC has it: IPv6, an IPv4 one in its IPv4-mapped form (`mac` takes
/// it as `mapped_words`; this is what the tests check those against).
#[cfg(test)]
fn mapped(dest: IpAddr) -> std::net::Ipv6Addr {
    match dest {
        IpAddr::V4(a) => a.to_ipv6_mapped(),
        IpAddr::V6(a) => a,
    }
}

/// `mapped(dest)`'s 16 bytes read as little-endian numbers, as the MAC's words take them:
/// bytes 0..4, 4..12 and 12..16. An IPv4 address is only its last four (::ffff:a.b.c.d:
/// ten zero bytes, two 0xff), so it is not put in its mapped form first: the IpAddr's bytes
/// one at a time and the 128-bit shifts cost ~20 instructions an echo (issue 9).
#[inline(always)]
fn mapped_words(dest: IpAddr) -> (u32, u64, u32) {
    match dest {
        IpAddr::V4(a) => (0, 0xffff << 48, a.to_bits().swap_bytes()),
        IpAddr::V6(a) => {
            let d = a.to_bits().swap_bytes();
            (d as u32, (d >> 32) as u64, (d >> 96) as u32)
        }
    }
}

/// The index of the first of `list` that `f` picks: `iter().position`, as a plain loop (the
/// size-optimised build keeps the iterator's closure calls).
#[inline(always)]
fn position<T>(list: &[T], f: impl Fn(&T) -> bool) -> Option<usize> {
    let mut i = 0;
    while let Some(x) = list.get(i) {
        if f(x) {
            return Some(i);
        }
        i += 1;
    }
    None
}

/// `t.checked_add(d)` for the `d` whose nanoseconds are `ns` (`mono::nanos(d)`).
#[inline(always)]
fn add_nanos(t: Instant, ns: Option<u64>) -> Option<Instant> {
    t.checked_add_nanos(ns?)
}

fn bump(counter: &mut u64) {
    *counter = counter.saturating_add(1);
}

/// One target's part of the current round.
#[derive(Debug, Clone, Copy)]
pub struct Slot {
    pub addr: Option<IpAddr>,
    pub rtt: Option<Duration>,
    /// An ICMP error about one of its echoes this round, and who sent it.
    pub report: Option<Report>,
    /// The address is one of this host's own: it would always answer, so it is not probed
    /// and never counts as answering.
    pub own: bool,
    /// A send to it failed this round (interface down, filtered): the kernel said at once that
    /// nothing can get there, so no more echoes are sent to it this round.
    send_failed: bool,
    /// Probed by the caller over a socket of its own (`tcp:`, `dns:`), once per round.
    stream: bool,
    /// The stream attempt failed after it started (timed out in the kernel, host
    /// unreachable, a DNS port closed).
    stream_failed: bool,
    /// When the stream attempt started (connect or send).
    started: Option<Instant>,
    sent: u32,
    next_send: Instant,
}

impl Slot {
    /// A send to it failed this round.
    pub fn send_failed(&self) -> bool {
        self.send_failed
    }

    /// Probed over a socket of its own (`tcp:`, `dns:`), not with echo.
    pub fn is_stream(&self) -> bool {
        self.stream
    }

    /// A stream slot whose attempt failed after it started.
    pub fn stream_failed(&self) -> bool {
        self.stream_failed
    }

    /// Still owes an answer this round.
    #[inline(always)]
    pub fn pending(&self) -> bool {
        self.addr.is_some()
            && self.rtt.is_none()
            && !self.send_failed
            && !self.stream_failed
            && self.report.is_none()
            && !self.own
    }

    /// Attempts it gets per round.
    #[inline(always)]
    fn budget(&self, count: u32) -> u32 {
        if self.stream {
            1
        } else {
            count
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    /// No reply yet, not counted lost yet.
    Outstanding,
    Answered,
    /// Counted lost; a reply may still come (then it is late as well).
    Lost,
}

/// An echo we sent, with what its reply must carry.
#[derive(Debug, Clone, Copy)]
struct Sent {
    seq: u16,
    /// The slot's index (u32, so that the record stays 40 bytes: copied with three moves).
    target: u32,
    dest: IpAddr,
    /// A timeout after it (`expires`), an unanswered echo counts as lost.
    sent_at: Instant,
    mac: [u8; MAC_LEN],
    fate: Fate,
}

impl Sent {
    /// When an unanswered echo counts as lost; None: past the clock's range, so at once.
    /// Worked out by `retire_walk`, which a healthy round no longer runs, rather than kept
    /// with every echo sent (issue 9).
    #[inline(always)]
    fn expires(&self, timeout: Duration) -> Option<Instant> {
        self.sent_at.checked_add(timeout)
    }
}

#[derive(Debug, Clone, Copy)]
struct Round {
    start: Instant,
    deadline: Instant,
}

#[derive(Debug)]
pub struct Prober {
    idents: [u16; 2],
    /// The per-process key, as the state SipHash starts from.
    key: SipKey,
    /// Send times enter the MAC as nanoseconds since this instant (the first round's start).
    epoch: Option<Instant>,
    count: u32,
    timeout: Duration,
    /// `timeout` and the gap between a target's echoes in nanoseconds (`mono::nanos`;
    /// None: past u64), worked out once: every round adds the one to its start, every echo
    /// the other to its send time (issue 9).
    timeout_ns: Option<u64>,
    gap_ns: Option<u64>,
    quorum: usize,
    next_seq: u16,
    slots: Vec<Slot>,
    /// How many slots are `pending`, how many have an RTT, how many have no address, and
    /// whether any is a stream slot: kept as the slots change, so that the questions every
    /// turn asks (is the round decided, has every target answered) are not a walk over the
    /// slots (issue 9).
    open: usize,
    answered: usize,
    unaddressed: usize,
    streams: bool,
    /// This round's echoes.
    sent: Vec<Sent>,
    /// Earlier rounds' echoes, at most RETIRED_MAX, in the order they were sent: a ring
    /// whose oldest is at `ring.oldest` (0 until it is full). A plain vector indexed by hand:
    /// the size-optimised build makes every VecDeque access a call (issue 9).
    retired: Vec<Sent>,
    /// `ring.expired`: how many of the oldest retired echoes are known to be a timeout old
    /// (and, if they were unanswered, counted lost): `retire` looks only at those after
    /// them. `ring.quiet_until`: when the first retired echo after those expires (None: not
    /// known, or none).
    ring: RingState,
    round: Option<Round>,
    stats: Counters,
}

/// Is `target` one of `own` (this host's addresses)? Such a target answers from the host
/// itself whatever state the link is in, so it proves nothing about the network. An IPv4
/// target also matches its IPv4-mapped IPv6 form, and the reverse.
///
/// Asked for every target every round, over all of the host's addresses: the target is
/// put in one form first, and each address compared as plain numbers (the iterator and
/// `to_ipv4_mapped` calls it replaces cost ~150 instructions a round, issue 9).
pub fn own_address(target: IpAddr, own: &[IpAddr]) -> bool {
    // An IPv4-mapped address (::ffff:a.b.c.d) has these 96 bits above its IPv4 address.
    const MAPPED: u128 = 0xffff << 32;
    let (v4, bits) = match target {
        IpAddr::V4(a) => (true, u128::from(a.to_bits())),
        IpAddr::V6(a) => {
            let b = a.to_bits();
            (b >> 32 == MAPPED >> 32, b)
        }
    };
    let mut i = 0;
    while let Some(a) = own.get(i) {
        let same = match *a {
            IpAddr::V4(a) => v4 && u128::from(a.to_bits()) == bits & 0xffff_ffff,
            IpAddr::V6(a) if v4 => a.to_bits() == MAPPED | bits & 0xffff_ffff,
            IpAddr::V6(a) => a.to_bits() == bits,
        };
        if same {
            return true;
        }
        i += 1;
    }
    false
}

impl Prober {
    /// `key` must be secret and random (it keys the MAC in every echo).
    pub fn new(
        count: u32,
        timeout: Duration,
        quorum: usize,
        ident: u16,
        key: [u8; KEY_LEN],
    ) -> Self {
        let count = count.max(1);
        Prober {
            idents: [ident; 2],
            key: SipKey::new(&key),
            epoch: None,
            count,
            timeout,
            timeout_ns: mono::nanos(timeout),
            // Echo k (0-based) leaves at start + k * gap, so the last one has at least half
            // the timeout to come back.
            gap_ns: mono::nanos(if count > 1 {
                timeout / (2 * count)
            } else {
                timeout
            }),
            quorum,
            next_seq: 0,
            slots: Vec::new(),
            open: 0,
            answered: 0,
            unaddressed: 0,
            streams: false,
            sent: Vec::new(),
            // Full after 64 echoes anyway: allocated once, not grown during the first rounds.
            retired: Vec::with_capacity(RETIRED_MAX),
            ring: RingState {
                oldest: 0,
                expired: 0,
                quiet_until: None,
                outstanding: 0,
            },
            round: None,
            stats: Counters::default(),
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

    pub fn stats(&self) -> &Counters {
        &self.stats
    }

    /// The targets of the current or last round, with their round-trip times.
    pub fn slots(&self) -> &[Slot] {
        &self.slots
    }

    /// How many targets must answer for a good round (a lane caps it at how many targets it
    /// has this round).
    pub fn set_quorum(&mut self, quorum: usize) {
        self.quorum = quorum;
    }

    pub fn round_running(&self) -> bool {
        self.round.is_some()
    }

    /// Starts a round to `addrs` (one per target; `None` for a target whose address is not
    /// known this round, such as a missing default gateway: it counts as not answering).
    pub fn start_round(&mut self, now: Instant, addrs: impl IntoIterator<Item = Option<IpAddr>>) {
        self.epoch.get_or_insert(now);
        self.retire(now);
        self.slots.clear();
        self.open = 0;
        self.answered = 0;
        self.unaddressed = 0;
        self.streams = false;
        for addr in addrs {
            if addr.is_some() {
                self.open += 1;
            } else {
                self.unaddressed += 1;
            }
            self.slots.push(Slot {
                addr,
                rtt: None,
                report: None,
                own: false,
                send_failed: false,
                stream: false,
                stream_failed: false,
                started: None,
                sent: 0,
                next_send: now,
            });
        }
        let deadline = add_nanos(now, self.timeout_ns).unwrap_or(now);
        self.round = Some(Round {
            start: now,
            deadline,
        });
    }

    /// Marks `target` of the round just started as one of this host's own addresses (see
    /// `own_address`): it is not probed this round and does not count toward the quorum.
    pub fn exclude_own(&mut self, target: usize) {
        self.update_slot(target, |slot| slot.own = true);
    }

    /// Marks `target` of the round just started as a stream target: `poll_stream`, not
    /// `poll_transmit`, starts it, once.
    pub fn mark_stream(&mut self, target: usize) {
        if let Some(slot) = self.slots.get_mut(target) {
            slot.stream = true;
            self.streams = true;
        }
    }

    /// Runs `f` on slot `target` (if there is one), keeping the slot counts right. A slot only
    /// ever stops being pending and gains an RTT within a round, never the reverse.
    #[inline]
    fn update_slot<R>(&mut self, target: usize, f: impl FnOnce(&mut Slot) -> R) -> Option<R> {
        let slot = self.slots.get_mut(target)?;
        let (was_pending, had_rtt) = (slot.pending(), slot.rtt.is_some());
        let r = f(slot);
        debug_assert!(was_pending || !slot.pending());
        debug_assert!(!had_rtt || slot.rtt.is_some());
        if was_pending && !slot.pending() {
            self.open -= 1;
        }
        if !had_rtt && slot.rtt.is_some() {
            self.answered += 1;
        }
        Some(r)
    }

    /// Whether a stream attempt of this round may still fall due: when not, `poll_stream`
    /// has nothing whatever the time (and the caller need not read the clock for it).
    #[inline(always)]
    pub fn may_stream(&self) -> bool {
        if self.round.is_none() || !self.streams {
            return false;
        }
        for s in &self.slots {
            if s.stream && s.pending() && s.sent == 0 {
                return true;
            }
        }
        false
    }

    /// The next stream attempt that is due; `now` is taken right before the caller's
    /// connect or send, and the RTT runs from it. The caller reports `send_failed` if it
    /// could not start it at all.
    pub fn poll_stream(&mut self, now: Instant) -> Option<StreamStart> {
        self.round?;
        let target = self
            .slots
            .iter()
            .position(|s| s.stream && s.pending() && s.sent == 0 && s.next_send <= now)?;
        let slot = &mut self.slots[target];
        let dest = slot.addr?;
        slot.sent = 1;
        slot.started = Some(now);
        bump(&mut self.stats.sent);
        Some(StreamStart { target, dest })
    }

    /// The stream attempt of `target` got its answer (TCP: SYN-ACK or RST; DNS: a response
    /// to our query) at `now`.
    pub fn stream_answered(&mut self, now: Instant, target: usize) -> Received {
        let running = self.round.is_some();
        let r = self.update_slot(target, |slot| match slot.started {
            Some(at) if running && slot.stream && slot.pending() => {
                let rtt = now.saturating_duration_since(at);
                slot.rtt = Some(rtt);
                Received::Reply { target, rtt }
            }
            None if running && slot.stream && slot.pending() => Received::Foreign,
            _ => Received::Late,
        });
        let r = r.unwrap_or(Received::Late);
        self.count(r);
        r
    }

    /// The stream attempt of `target` failed after it started: the target has failed
    /// this round (its attempt is counted lost at the round's end).
    pub fn stream_failed(&mut self, target: usize) {
        self.update_slot(target, |slot| {
            if slot.stream && slot.started.is_some() {
                slot.stream_failed = true;
            }
        });
    }

    /// Something came on a stream target's socket that is not the answer (a DNS response
    /// with another id or question).
    pub fn stream_foreign(&mut self) {
        self.count(Received::Foreign);
    }

    /// SipHash-2-4 over ident, sequence number, destination (IPv4 as IPv4-mapped IPv6) and
    /// the send time in nanoseconds since `epoch`, all big-endian: 28 bytes (`mac_message`),
    /// handed to SipHash as the four words it reads them as, put together from the fields
    /// (no bytes laid out, no slice copies: the size-optimised build makes each a call).
    ///
    /// Inlined into its one caller, `poll_transmit` (the call passed the address through
    /// memory).
    #[inline(always)]
    fn mac(&self, ident: u16, seq: u16, dest: IpAddr, at: Instant) -> [u8; MAC_LEN] {
        let t = self.mac_time(at);
        // The bytes read as little-endian words: a big-endian field read so is its value
        // with the bytes swapped.
        let (d0, d1, d2) = mapped_words(dest);
        let t = t.swap_bytes();
        let words = [
            u64::from(ident.swap_bytes()) | u64::from(seq.swap_bytes()) << 16 | u64::from(d0) << 32,
            d1,
            u64::from(d2) | t << 32,
        ];
        let last = t >> 32 | 28 << 56;
        self.key.hash_words(&words, last).to_be_bytes()
    }

    /// The send time as it enters the MAC: nanoseconds since `epoch`, modulo 2^64.
    fn mac_time(&self, at: Instant) -> u64 {
        // `as_nanos() as u64`, without the 128-bit product: the same low 64 bits.
        match self.epoch {
            Some(e) => {
                let since = at.saturating_duration_since(e);
                since
                    .as_secs()
                    .wrapping_mul(1_000_000_000)
                    .wrapping_add(u64::from(since.subsec_nanos()))
            }
            None => 0,
        }
    }

    /// The 28 bytes the MAC is over, as `mac` reads them (for the tests).
    #[cfg(test)]
    fn mac_message(&self, ident: u16, seq: u16, dest: IpAddr, at: Instant) -> [u8; 28] {
        let mut msg = [0u8; 28];
        msg[0..2].copy_from_slice(&ident.to_be_bytes());
        msg[2..4].copy_from_slice(&seq.to_be_bytes());
        msg[4..20].copy_from_slice(&mapped(dest).octets());
        msg[20..28].copy_from_slice(&self.mac_time(at).to_be_bytes());
        msg
    }

    /// Whether an echo of this round may still fall due (some target owes an answer and has
    /// echoes left): when not, `poll_transmit` has nothing whatever the time.
    /// Whether `poll_transmit(now)` has an echo to send: the caller reads the clock for its
    /// stamp only then.
    #[inline(always)]
    pub fn transmit_due(&self, now: Instant) -> bool {
        if self.round.is_none() || self.open == 0 {
            return false;
        }
        let count = self.count;
        // The time first: after a send, the slot's next echo is later, and that one
        // comparison says so (the order of the tests does not change the answer).
        self.slots.iter().any(|s| {
            s.next_send <= now && s.sent < count && !s.stream && s.pending() && s.addr.is_some()
        })
    }

    /// Builds the next echo that is due into `buf` (at least `REQUEST_LEN` bytes). `now` is
    /// taken right before the caller's `sendto`: it is the echo's send time for its RTT.
    pub fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<Transmit> {
        let round = self.round?;
        if self.open == 0 {
            return None;
        }
        let count = self.count;
        let mut target = 0;
        let dest = loop {
            let s = self.slots.get(target)?;
            if !s.stream && s.pending() && s.sent < count && s.next_send <= now {
                break s.addr?;
            }
            target += 1;
        };
        let out = buf.first_chunk_mut::<REQUEST_LEN>()?;
        let seq = self.next_seq;
        let family = Family::of(dest);
        let ident = self.idents[family as usize];
        let mac = self.mac(ident, seq, dest, now);
        *out = echo_request(family, ident, seq, mac);
        let len = REQUEST_LEN;
        self.next_seq = seq.wrapping_add(1);
        let slot = &mut self.slots[target];
        slot.sent = slot.sent.saturating_add(1);
        // start + sent * gap, one gap at a time (a Duration product is dear in the z build):
        // next_send began at the round's start, and never comes near the clock's end.
        slot.next_send = add_nanos(slot.next_send, self.gap_ns).unwrap_or(round.deadline);
        self.sent.push(Sent {
            seq,
            target: target as u32,
            dest,
            sent_at: now,
            mac,
            fate: Fate::Outstanding,
        });
        bump(&mut self.stats.sent);
        Some(Transmit { target, dest, len })
    }

    /// The echo just built for `target` could not be sent (interface down, filtered): the
    /// target counts as not answering this round, and the echo as lost at the round's end.
    pub fn send_failed(&mut self, target: usize) {
        bump(&mut self.stats.send_errors);
        self.update_slot(target, |slot| slot.send_failed = true);
    }

    /// Classifies one received ICMP message (`icmp` starts at the ICMP header) from `src`.
    pub fn handle_packet(
        &mut self,
        now: Instant,
        family: Family,
        src: IpAddr,
        icmp: &[u8],
    ) -> Received {
        match Echo::parse(family, icmp) {
            Ok(echo) => self.classify_reply(now, family, src, echo),
            Err(_) => {
                let r = match QuotedEcho::parse(family, icmp) {
                    Ok(q) => self.classify_error(family, src, q),
                    Err(_) => Received::Foreign,
                };
                self.count(r);
                r
            }
        }
    }

    /// An ICMP error about one of our echoes that a datagram socket's error queue gave
    /// (already parsed by the kernel; `src` is the reporter).
    pub fn handle_error(&mut self, family: Family, src: IpAddr, q: QuotedEcho) -> Received {
        let r = self.classify_error(family, src, q);
        self.count(r);
        r
    }

    fn count(&mut self, r: Received) {
        match r {
            // an RTT is made from u64 nanoseconds (`saturating_duration_since`)
            Received::Reply { rtt, .. } => self.stats.reply(mono::nanos(rtt).unwrap_or(u64::MAX)),
            Received::Unreachable { .. } => bump(&mut self.stats.icmp_errors),
            Received::Foreign => bump(&mut self.stats.foreign),
            Received::Late => bump(&mut self.stats.late),
        }
    }

    /// `Received::Foreign`, counted.
    #[inline(always)]
    fn foreign(&mut self) -> Received {
        bump(&mut self.stats.foreign);
        Received::Foreign
    }

    /// `Received::Late`, counted.
    #[inline(always)]
    fn late(&mut self) -> Received {
        bump(&mut self.stats.late);
        Received::Late
    }

    /// Classifies an echo message, and counts what it was (as `count` would): inlined into
    /// `handle_packet`, each outcome bumps its counter where it is decided, so that the reply
    /// of a healthy round is not built, returned and matched again by `count` (issue 9).
    #[inline(always)]
    fn classify_reply(
        &mut self,
        now: Instant,
        family: Family,
        src: IpAddr,
        echo: Echo,
    ) -> Received {
        if echo.kind != EchoKind::Reply || echo.ident != self.idents[family as usize] {
            return self.foreign();
        }
        // Only exactly MAC_LEN bytes of data can be one of our MACs.
        let Ok(&mac) = <&[u8; MAC_LEN]>::try_from(echo.payload) else {
            return self.foreign();
        };
        // The MAC first: one comparison of eight bytes rules out nearly every echo that is
        // not the one (the order of the tests does not change what matches).
        let genuine = |s: &Sent| s.mac == mac && s.seq == echo.seq && s.dest == src;
        let Some(i) = position(&self.sent, genuine) else {
            return match self.find_retired(genuine) {
                Some(s) => {
                    let was = s.fate;
                    s.fate = Fate::Answered;
                    if was == Fate::Outstanding {
                        self.ring.outstanding -= 1;
                    }
                    self.late()
                }
                None => self.foreign(),
            };
        };
        let Some(s) = self.sent.get_mut(i) else {
            return self.foreign();
        };
        let was = s.fate;
        s.fate = Fate::Answered;
        let (target, sent_at) = (s.target as usize, s.sent_at);
        let slot = &mut self.slots[target];
        if was == Fate::Answered || slot.rtt.is_some() {
            return self.late();
        }
        let ns = now.saturating_nanos_since(sent_at);
        let rtt = Duration::from_nanos(ns); // `saturating_duration_since`
                                            // `update_slot`, spelled out for this one change: the slot gains its RTT (it had
                                            // none), so it stops being pending if it was.
        let was_pending = slot.pending();
        slot.rtt = Some(rtt);
        if was_pending {
            self.open -= 1;
        }
        self.answered += 1;
        self.stats.reply(ns);
        Received::Reply { target, rtt }
    }

    /// The oldest retired echo that `ours` picks.
    fn find_retired(&mut self, ours: impl Fn(&Sent) -> bool) -> Option<&mut Sent> {
        let (newer, older) = self.retired.split_at_mut(self.ring.oldest);
        let i = position(older, &ours);
        match i {
            Some(i) => older.get_mut(i),
            None => position(newer, ours).and_then(|i| newer.get_mut(i)),
        }
    }

    /// The retired echo `k` places after the oldest.
    #[inline]
    fn retired_mut(&mut self, k: usize) -> Option<&mut Sent> {
        let n = self.retired.len();
        if k >= n {
            return None;
        }
        let i = self.ring.oldest + k;
        self.retired.get_mut(if i >= n { i - n } else { i })
    }

    /// An ICMP error quoting one of our echoes. Reporters usually quote all of it (Linux
    /// does), but RFC 792 asks only for 8 bytes of data, so the MAC is checked as far as it
    /// was quoted; identifier, sequence number and destination must match in any case.
    fn classify_error(&mut self, family: Family, src: IpAddr, q: QuotedEcho) -> Received {
        if q.ident != self.idents[family as usize] || q.payload.len() > MAC_LEN {
            return Received::Foreign;
        }
        let ours = |s: &Sent| s.seq == q.seq && s.dest == q.dest && s.mac.starts_with(q.payload);
        let Some(target) = position(&self.sent, ours).map(|i| self.sent[i].target as usize) else {
            return match self.find_retired(ours) {
                Some(_) => Received::Late,
                None => Received::Foreign,
            };
        };
        let slot = &self.slots[target];
        if slot.rtt.is_some() || slot.report.is_some() {
            return Received::Late;
        }
        let report = Report {
            from: src,
            kind: q.kind,
        };
        self.update_slot(target, |slot| slot.report = Some(report));
        Received::Unreachable { target, report }
    }

    /// When the round needs attention next: an echo falls due, or the timeout; at once when
    /// every target has been decided (answered, failed to send, reported unreachable).
    #[inline(always)]
    pub fn poll_timeout(&self) -> Option<Instant> {
        let round = self.round?;
        if self.decided() {
            return Some(round.start);
        }
        let mut next = round.deadline;
        for s in &self.slots {
            if s.pending() && s.sent < s.budget(self.count) && s.next_send < next {
                next = s.next_send;
            }
        }
        Some(next)
    }

    /// Over early once every target with an address has been decided. A round with no
    /// address at all waits for the timeout, like a silent one. Either way the watchdog
    /// spaces rounds, so an early failed round does not make the loop spin.
    fn decided(&self) -> bool {
        debug_assert_eq!(self.open, self.slots.iter().filter(|s| s.pending()).count());
        debug_assert_eq!(
            self.unaddressed,
            self.slots.iter().filter(|s| s.addr.is_none()).count()
        );
        self.unaddressed < self.slots.len() && self.open == 0
    }

    /// A round runs and every target with an address has answered it: nothing still queued
    /// on the socket can decide anything this round.
    pub fn all_answered(&self) -> bool {
        debug_assert_eq!(
            self.answered,
            self.slots.iter().filter(|s| s.rtt.is_some()).count()
        );
        self.round.is_some()
            && !self.slots.is_empty()
            && self.answered + self.unaddressed == self.slots.len()
    }

    /// Ends the round if it is over, and returns its verdict. The loop asks every turn: the
    /// answer "not yet" is inlined into it, the end of a round is not.
    #[inline(always)]
    pub fn poll_round_end(&mut self, now: Instant) -> Option<Verdict> {
        let round = self.round?;
        if now < round.deadline && !self.decided() {
            return None;
        }
        Some(self.end_round(now))
    }

    #[inline(never)]
    fn end_round(&mut self, now: Instant) -> Verdict {
        self.round = None;
        // Echoes to a target that gave no answer are lost now; those to a target that did
        // (sent before or after the echo that answered) get their full timeout: `retire`.
        // Then each is retired, in the same walk.
        let mut i = 0;
        while let Some(s) = self.sent.get_mut(i) {
            if s.fate == Fate::Outstanding && self.slots[s.target as usize].rtt.is_none() {
                s.fate = Fate::Lost;
                bump(&mut self.stats.lost);
            }
            push_retired(&mut self.retired, &mut self.ring, s, &mut self.stats.lost);
            i += 1;
        }
        self.sent.clear();
        self.retire(now);
        if self.streams {
            for s in &self.slots {
                if s.stream && s.started.is_some() && s.rtt.is_none() {
                    bump(&mut self.stats.lost);
                }
            }
        }
        debug_assert_eq!(
            self.answered,
            self.slots.iter().filter(|s| s.rtt.is_some()).count()
        );
        let answered = self.answered;
        let good = answered >= self.quorum;
        bump(&mut self.stats.rounds);
        if good {
            bump(&mut self.stats.good_rounds);
        }
        Verdict {
            good,
            answered,
            targets: self.slots.len(),
        }
    }

    /// Counts as lost the retired echoes still unanswered a timeout after they were sent.
    /// They were sent in order, so they expire in order: only those not yet known to be
    /// expired are looked at, and the walk stops at the first that is not (in a steady
    /// round: one comparison, where it used to be a deadline computed for all 64).
    ///
    /// The walk also remembers when the first echo it stopped at expires (`quiet_until`),
    /// so that the next call before then returns at once, inlined: two calls a round, and
    /// most find nothing to do.
    #[inline(always)]
    fn retire(&mut self, now: Instant) {
        debug_assert_eq!(
            self.ring.outstanding,
            self.retired
                .iter()
                .filter(|s| s.fate == Fate::Outstanding)
                .count()
        );
        if self.ring.outstanding == 0 || self.ring.quiet_until.is_some_and(|t| now < t) {
            return;
        }
        self.retire_walk(now);
    }

    #[inline(never)]
    fn retire_walk(&mut self, now: Instant) {
        self.ring.quiet_until = None;
        let timeout = self.timeout;
        while let Some(s) = self.retired_mut(self.ring.expired) {
            if let Some(t) = s.expires(timeout) {
                if t > now {
                    self.ring.quiet_until = Some(t);
                    break;
                }
            }
            if s.fate == Fate::Outstanding {
                s.fate = Fate::Lost;
                bump(&mut self.stats.lost);
                self.ring.outstanding -= 1;
            }
            self.ring.expired += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: [u8; KEY_LEN] = *b"netheal-test-key";
    const T1: &str = "198.51.100.1";
    const T2: &str = "2001:db8::1";
    const ROUTER: &str = "198.51.100.254";

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn prober(count: u32, quorum: usize) -> Prober {
        Prober::new(count, ms(2000), quorum, 0x1a2b, KEY)
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

    /// The ICMP part of the "host unreachable" a router's kernel sends about `req` (an IPv4
    /// echo request from 198.51.100.2 to `dest`), quoting `quote_data` bytes of its data.
    fn unreachable_about(req: &[u8], dest: &str, quote_data: usize) -> Vec<u8> {
        let IpAddr::V4(d) = ip(dest) else {
            panic!("v4 only")
        };
        let mut m = vec![3u8, 1, 0, 0, 0, 0, 0, 0];
        m.extend_from_slice(&[0x45, 0, 0, 20 + req.len() as u8, 0, 1, 0x40, 0, 1, 1, 0, 0]);
        m.extend_from_slice(&[198, 51, 100, 2]);
        m.extend_from_slice(&d.octets());
        m.extend_from_slice(&req[..ECHO_HEADER_LEN + quote_data]);
        let sum = crate::wire::checksum(&m);
        m[2..4].copy_from_slice(&sum.to_be_bytes());
        m
    }

    fn sends(p: &mut Prober, now: Instant) -> Vec<(Transmit, Vec<u8>)> {
        let mut out = Vec::new();
        let mut buf = [0u8; 64];
        while let Some(t) = p.poll_transmit(now, &mut buf) {
            out.push((t, buf[..t.len].to_vec()));
        }
        out
    }

    /// The counters in nanoseconds read as the `Duration` sum, minimum and maximum that
    /// `Stats` kept itself reply by reply (saturating at `Duration::MAX`).
    #[test]
    fn counters_read_as_the_durations_they_replace() {
        let mut c = Counters::default();
        assert_eq!(Stats::from(&c), Stats::default());
        let mut want = Stats::default();
        for ns in [
            5_000_123,
            1_999_999_999,
            0,
            7,
            3_000_000_001,
            u64::MAX / 2,
            250,
        ] {
            c.reply(ns);
            let rtt = Duration::from_nanos(ns);
            want.replies += 1;
            want.rtt_sum = want.rtt_sum.saturating_add(rtt);
            want.rtt_min = Some(want.rtt_min.map_or(rtt, |m| m.min(rtt)));
            want.rtt_max = Some(want.rtt_max.map_or(rtt, |m| m.max(rtt)));
            assert_eq!(Stats::from(&c), want, "after {ns}");
            assert_eq!(c.rtt_avg(), want.rtt_avg());
        }
        c.rtt_sum_ns = u128::MAX;
        assert_eq!(c.rtt_sum(), Duration::MAX);
        c.rtt_sum_ns = u128::from(u64::MAX) * 1_000_000_000 + 999_999_999;
        assert_eq!(c.rtt_sum(), Duration::MAX);
        c.rtt_sum_ns += 1;
        assert_eq!(c.rtt_sum(), Duration::MAX);
    }

    #[test]
    fn the_mac_words_of_an_address_are_its_mapped_bytes() {
        for a in [
            T1,
            T2,
            ROUTER,
            "0.0.0.0",
            "255.255.255.255",
            "::",
            "::ffff:198.51.100.1",
        ] {
            let d = mapped(ip(a)).to_bits().swap_bytes();
            let want = (d as u32, (d >> 32) as u64, (d >> 96) as u32);
            assert_eq!(mapped_words(ip(a)), want, "{a}");
        }
        let all = ip("2001:db8:ffff:eeee:dddd:cccc:bbbb:aaaa");
        let d = mapped(all).to_bits().swap_bytes();
        assert_eq!(
            mapped_words(all),
            (d as u32, (d >> 32) as u64, (d >> 96) as u32)
        );
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
        assert_eq!(p.poll_timeout(), Some(t0), "decided: end it at once");
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
            (st.rtt_min(), st.rtt_max(), st.rtt_avg()),
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
        let wrong_mac = other(Echo {
            payload: b"notours!",
            ..echo
        });
        let short_mac = other(Echo {
            payload: &echo.payload[..4],
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
        let cases: [(&[u8], IpAddr, Received); 8] = [
            (&wrong_mac, ip(T1), Received::Foreign),
            (&short_mac, ip(T1), Received::Foreign),
            (&wrong_ident, ip(T1), Received::Foreign),
            (&not_reply, ip(T1), Received::Foreign),
            (&corrupt, ip(T1), Received::Foreign),
            (&good[..5], ip(T1), Received::Foreign),
            (&good, ip("198.51.100.9"), Received::Foreign),
            // Right MAC, but not for this sequence number: cannot be checked, so foreign.
            (&other_seq, ip(T1), Received::Foreign),
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
        assert_eq!((st.foreign, st.late, st.replies), (8, 2, 1));
    }

    /// Defect 17: the cookie was fixed per process and sequence numbers count up by one, so
    /// whoever saw one request could answer every later one.
    #[test]
    fn a_reply_forged_from_an_earlier_request_is_foreign() {
        let t0 = Instant::now();
        let mut p = prober(1, 1);
        p.start_round(t0, [Some(ip(T1))]);
        let seen = sends(&mut p, t0).remove(0).1;
        p.handle_packet(t0, Family::V4, ip(T1), &reply_to(Family::V4, &seen));
        p.poll_round_end(t0);
        // The attacker's guess for the next round: same data, sequence number + 1.
        let e = Echo::parse(Family::V4, &seen).unwrap();
        let mut forged = [0u8; REQUEST_LEN];
        Echo {
            kind: EchoKind::Reply,
            seq: e.seq + 1,
            ..e
        }
        .emit(Family::V4, &mut forged)
        .unwrap();
        let t1 = t0 + ms(10_000);
        p.start_round(t1, [Some(ip(T1))]);
        let next = sends(&mut p, t1).remove(0).1;
        let n = Echo::parse(Family::V4, &next).unwrap();
        assert_eq!(n.seq, e.seq + 1);
        assert_ne!(n.payload, e.payload, "the data changes with every echo");
        assert_eq!(
            p.handle_packet(t1 + ms(1), Family::V4, ip(T1), &forged),
            Received::Foreign
        );
        assert_eq!(
            p.poll_round_end(t1 + ms(1)),
            None,
            "the forgery decided nothing"
        );
        // The genuine reply still counts.
        assert!(matches!(
            p.handle_packet(t1 + ms(2), Family::V4, ip(T1), &reply_to(Family::V4, &next)),
            Received::Reply { .. }
        ));
    }

    #[test]
    fn the_mac_is_siphash_of_the_fields_in_network_order() {
        let t0 = Instant::now();
        let mut p = prober(1, 1);
        p.epoch = Some(t0);
        for (ident, seq, dest, at) in [
            (0x1a2b, 7, ip(T1), t0 + ms(5)),
            (0, 0, ip(T2), t0),
            (
                0xffff,
                0xfffe,
                ip("fe80::1:2:3:4"),
                t0 + Duration::new(86_400 * 400, 999),
            ),
            (
                1,
                65535,
                ip("255.255.255.255"),
                t0 + Duration::from_nanos(1),
            ),
        ] {
            let msg = p.mac_message(ident, seq, dest, at);
            // The layout, written out: ident, seq, the address as IPv6, the nanoseconds.
            assert_eq!(msg[..2], ident.to_be_bytes());
            assert_eq!(msg[2..4], seq.to_be_bytes());
            assert_eq!(msg[4..20], mapped(dest).octets());
            let nanos = at.saturating_duration_since(t0).as_nanos() as u64;
            assert_eq!(msg[20..], nanos.to_be_bytes());
            let want = crate::wire::siphash24(&KEY, &msg).to_be_bytes();
            assert_eq!(p.mac(ident, seq, dest, at), want, "{ident} {seq} {dest}");
        }
    }

    #[test]
    fn the_mac_covers_ident_seq_dest_time_and_key() {
        let t0 = Instant::now();
        let p = prober(1, 1);
        let mut p = p;
        p.epoch = Some(t0);
        let base = p.mac(1, 2, ip(T1), t0 + ms(5));
        assert_eq!(base, p.mac(1, 2, ip(T1), t0 + ms(5)), "deterministic");
        for other in [
            p.mac(3, 2, ip(T1), t0 + ms(5)),
            p.mac(1, 3, ip(T1), t0 + ms(5)),
            p.mac(1, 2, ip("198.51.100.3"), t0 + ms(5)),
            p.mac(1, 2, ip(T1), t0 + ms(6)),
            Prober::new(1, ms(2000), 1, 0x1a2b, [9; KEY_LEN]).mac(1, 2, ip(T1), t0 + ms(5)),
        ] {
            assert_ne!(other, base);
        }
    }

    /// Defect 18: with an RTT above TIMEOUT / (2 * COUNT) the second echo is out when the
    /// first reply ends the round; it was counted lost although it comes back.
    #[test]
    fn a_lossless_path_slower_than_the_echo_gap_loses_nothing() {
        let t0 = Instant::now();
        let mut p = prober(4, 1); // gap 250 ms
        let rtt = ms(300);
        let mut now = t0;
        for _ in 0..5 {
            p.start_round(now, [Some(ip(T1))]);
            let first = sends(&mut p, now).remove(0).1;
            let second = sends(&mut p, now + ms(250)).remove(0).1;
            let r = p.handle_packet(now + rtt, Family::V4, ip(T1), &reply_to(Family::V4, &first));
            assert!(matches!(r, Received::Reply { .. }));
            assert!(p.poll_round_end(now + rtt).unwrap().good);
            // The second echo's reply comes after its round ended: late, not lost.
            let r = p.handle_packet(
                now + ms(250) + rtt,
                Family::V4,
                ip(T1),
                &reply_to(Family::V4, &second),
            );
            assert_eq!(r, Received::Late);
            now += ms(10_000);
        }
        let st = p.stats();
        assert_eq!((st.lost, st.late, st.replies), (0, 5, 5));
    }

    #[test]
    fn an_unanswered_echo_of_an_answered_target_is_lost_after_its_timeout() {
        let t0 = Instant::now();
        let mut p = prober(4, 1);
        p.start_round(t0, [Some(ip(T1))]);
        let _dropped = sends(&mut p, t0);
        let second = sends(&mut p, t0 + ms(250)).remove(0).1;
        p.handle_packet(
            t0 + ms(260),
            Family::V4,
            ip(T1),
            &reply_to(Family::V4, &second),
        );
        assert!(p.poll_round_end(t0 + ms(260)).unwrap().good);
        assert_eq!(p.stats().lost, 0, "the first echo may still come back");
        p.start_round(t0 + ms(1999), [Some(ip(T1))]);
        assert_eq!(p.stats().lost, 0, "not yet a timeout after it was sent");
        assert_eq!(sends(&mut p, t0 + ms(1999)).len(), 1);
        assert!(!p.poll_round_end(t0 + ms(3999)).unwrap().good);
        // Round 1's first echo (now 4 s old) and round 2's one silent echo.
        assert_eq!(p.stats().lost, 1 + 1);
    }

    /// `retire` looks only at the retired echoes not yet known to be expired: each unanswered
    /// one is still counted lost exactly once, whether it expires in the ring or is pushed
    /// out of it first (8 targets, rounds 260 ms apart: the 64 echoes the ring holds are 2 s
    /// of rounds, the timeout), and the lost count never runs ahead of the timeout.
    #[test]
    fn every_unanswered_retired_echo_is_lost_once_however_fast_the_rounds() {
        let targets: Vec<IpAddr> = (1..=8).map(|i| ip(&format!("198.51.100.{i}"))).collect();
        for spacing in [ms(260), ms(1000), ms(2100)] {
            let t0 = Instant::now();
            let mut p = prober(4, 1);
            let n = 40u32;
            for k in 0..n {
                let t = t0 + spacing * k;
                p.start_round(t, targets.iter().map(|&a| Some(a)));
                // Every first echo is lost; every second one is answered at once.
                let _dropped = sends(&mut p, t);
                for (tx, req) in sends(&mut p, t + ms(250)) {
                    p.handle_packet(
                        t + ms(251),
                        Family::V4,
                        tx.dest,
                        &reply_to(Family::V4, &req),
                    );
                }
                assert!(p.poll_round_end(t + ms(251)).unwrap().good);
                // Lost so far: at most the first echoes sent a timeout ago or pushed out.
                assert!(
                    p.stats().lost <= 8 * u64::from(k + 1),
                    "spacing {spacing:?}"
                );
            }
            let end = t0 + spacing * n + ms(5000);
            p.start_round(end, [Some(ip(T1))]);
            assert_eq!(p.stats().lost, 8 * u64::from(n), "spacing {spacing:?}");
            assert_eq!(p.stats().replies, 8 * u64::from(n));
        }
    }

    /// Issue 9: `retire` does not walk while no retired echo is unanswered. The walks skipped
    /// over a long healthy stretch change nothing: an unanswered echo to a target that
    /// answered another is lost once, at the first retire a timeout after it was sent, and a
    /// reply to it is late (and takes the loss back from nothing) whenever it comes.
    #[test]
    fn an_unanswered_echo_after_a_healthy_stretch_is_lost_once_at_its_timeout() {
        fn healthy(p: &mut Prober, t: Instant) {
            p.start_round(t, [Some(ip(T1))]);
            let tx = sends(p, t);
            assert_eq!(tx.len(), 1);
            let r = p.handle_packet(
                t + ms(1),
                Family::V4,
                ip(T1),
                &reply_to(Family::V4, &tx[0].1),
            );
            assert!(matches!(r, Received::Reply { .. }));
            assert!(p.poll_round_end(t + ms(1)).unwrap().good);
        }
        for answer_before_timeout in [false, true] {
            // Timeout 2 s, echoes 500 ms apart.
            let mut p = prober(2, 1);
            let mut t = Instant::now();
            for _ in 0..100 {
                healthy(&mut p, t);
                t += ms(100);
            }
            // This round's first echo goes unanswered, its second is answered.
            let sent_at = t;
            p.start_round(t, [Some(ip(T1))]);
            let first = sends(&mut p, t);
            let second = sends(&mut p, t + ms(500));
            assert_eq!((first.len(), second.len()), (1, 1));
            let r = p.handle_packet(
                t + ms(501),
                Family::V4,
                ip(T1),
                &reply_to(Family::V4, &second[0].1),
            );
            assert!(matches!(r, Received::Reply { .. }));
            assert!(p.poll_round_end(t + ms(501)).unwrap().good);
            t += ms(600);
            while t + ms(100) < sent_at + ms(2000) {
                healthy(&mut p, t);
                t += ms(100);
            }
            assert_eq!(p.stats().lost, 0);
            let reply = reply_to(Family::V4, &first[0].1);
            if answer_before_timeout {
                let r = p.handle_packet(t, Family::V4, ip(T1), &reply);
                assert_eq!(r, Received::Late);
            }
            assert_eq!(t + ms(100), sent_at + ms(2000));
            healthy(&mut p, t);
            t += ms(100);
            assert_eq!(p.stats().lost, 0, "not before its timeout");
            // The round at the timeout itself counts it, at its start.
            p.start_round(t, [Some(ip(T1))]);
            let lost = u64::from(!answer_before_timeout);
            assert_eq!(p.stats().lost, lost);
            if !answer_before_timeout {
                // Lost and late, as the module comment says.
                let r = p.handle_packet(t, Family::V4, ip(T1), &reply);
                assert_eq!(r, Received::Late);
                assert_eq!(p.stats().lost, 1);
            }
            let _ = sends(&mut p, t);
            assert!(p.poll_round_end(t + ms(2000)).is_some());
            for _ in 0..100 {
                t += ms(2100);
                healthy(&mut p, t);
            }
            let r = p.handle_packet(t, Family::V4, ip(T1), &reply);
            assert_eq!(r, Received::Foreign, "pushed out of the ring by now");
            assert_eq!(p.stats().lost, lost + 1, "and the silent round's echo");
        }
    }

    /// Defect 19: ICMP errors quoting our echo were ignored; the probe waited for the timeout.
    #[test]
    fn an_icmp_error_quoting_our_echo_fails_its_target_at_once() {
        let t0 = Instant::now();
        let far = "203.0.113.77";
        let mut p = prober(4, 1);
        p.start_round(t0, [Some(ip(far)), Some(ip(T1))]);
        let tx = sends(&mut p, t0);
        let err = unreachable_about(&tx[0].1, far, MAC_LEN);
        let want = Report {
            from: ip(ROUTER),
            kind: ErrorKind {
                family: Family::V4,
                icmp_type: 3,
                code: 1,
            },
        };
        assert_eq!(
            p.handle_packet(t0 + ms(1), Family::V4, ip(ROUTER), &err),
            Received::Unreachable {
                target: 0,
                report: want
            }
        );
        assert_eq!(p.slots()[0].report, Some(want));
        assert_eq!(
            want.to_string(),
            "host unreachable (type 3 code 1) from 198.51.100.254"
        );
        assert!(
            sends(&mut p, t0 + ms(250)).iter().all(|t| t.0.target == 1),
            "no more echoes to the unreachable target"
        );
        p.handle_packet(
            t0 + ms(2),
            Family::V4,
            ip(T1),
            &reply_to(Family::V4, &tx[1].1),
        );
        assert_eq!(p.poll_timeout(), Some(t0), "both decided: end now");
        assert_eq!(
            p.poll_round_end(t0 + ms(2)),
            Some(Verdict {
                good: true,
                answered: 1,
                targets: 2
            })
        );
        let st = p.stats();
        assert_eq!((st.icmp_errors, st.lost, st.foreign), (1, 1, 0));
    }

    #[test]
    fn icmp_errors_are_matched_on_what_they_quote() {
        let t0 = Instant::now();
        let far = "203.0.113.77";
        let new = |t| {
            let mut p = prober(1, 1);
            p.start_round(t, [Some(ip(far))]);
            let req = sends(&mut p, t).remove(0).1;
            (p, req)
        };
        // RFC 792's minimum quote (no data at all) is enough.
        let (mut p, req) = new(t0);
        let r = p.handle_packet(t0, Family::V4, ip(ROUTER), &unreachable_about(&req, far, 0));
        assert!(matches!(r, Received::Unreachable { target: 0, .. }));
        assert!(!p.poll_round_end(t0).unwrap().good);
        // Whatever is quoted of the MAC must match; so must the destination and the ident.
        let (mut p, req) = new(t0);
        let mut bad = req.clone();
        bad[ECHO_HEADER_LEN] ^= 0xff;
        let cases = [
            unreachable_about(&bad, far, 4),
            unreachable_about(&req, "203.0.113.78", MAC_LEN),
        ];
        for m in cases {
            assert_eq!(
                p.handle_packet(t0, Family::V4, ip(ROUTER), &m),
                Received::Foreign
            );
        }
        let mut other_ident = req.clone();
        other_ident[4] ^= 1;
        let m = unreachable_about(&other_ident, far, MAC_LEN);
        assert_eq!(
            p.handle_packet(t0, Family::V4, ip(ROUTER), &m),
            Received::Foreign
        );
        assert_eq!(p.poll_round_end(t0), None, "still waiting");
        // After the target answered, an error about it decides nothing.
        p.handle_packet(t0, Family::V4, ip(far), &reply_to(Family::V4, &req));
        let m = unreachable_about(&req, far, MAC_LEN);
        assert_eq!(
            p.handle_packet(t0, Family::V4, ip(ROUTER), &m),
            Received::Late
        );
        assert!(p.poll_round_end(t0).unwrap().good);
        assert_eq!(p.stats().icmp_errors, 0);
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
        assert_eq!(e4.payload.len(), MAC_LEN);
    }

    /// Defect 15: the round was decided, but poll_timeout still named the deadline, so the
    /// loop slept the whole timeout before ending it (`--once` on a down interface: 2 s).
    #[test]
    fn a_target_that_cannot_be_sent_to_fails_the_round_at_once() {
        let t0 = Instant::now();
        let mut p = prober(1, 1);
        p.start_round(t0, [Some(ip(T1))]);
        let _ = sends(&mut p, t0);
        p.send_failed(0);
        assert!(
            p.poll_timeout().is_some_and(|t| t <= t0),
            "the loop must come back at once, not at the timeout"
        );
        assert!(
            sends(&mut p, t0 + ms(1000)).is_empty(),
            "no more echoes to an unreachable target"
        );
        assert!(!p.poll_round_end(t0 + ms(1)).unwrap().good);
        assert_eq!((p.stats().send_errors, p.stats().lost), (1, 1));
    }

    #[test]
    fn own_addresses_are_recognised_in_either_form() {
        let own = [ip("198.51.100.2"), ip("2001:db8::2"), ip("fe80::1")];
        assert!(own_address(ip("198.51.100.2"), &own));
        assert!(own_address(ip("::ffff:198.51.100.2"), &own));
        assert!(own_address(ip("2001:db8::2"), &own));
        assert!(!own_address(ip("198.51.100.1"), &own));
        assert!(!own_address(ip("2001:db8::1"), &own));
        assert!(!own_address(ip("198.51.100.2"), &[]));
        assert!(own_address(
            ip("198.51.100.2"),
            &[ip("::ffff:198.51.100.2")]
        ));
    }

    #[test]
    fn own_address_agrees_with_comparing_canonical_forms() {
        // The definition: both sides as IPv4 when they are IPv4-mapped, then equal.
        let canon = |a: IpAddr| match a {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(a, IpAddr::V4),
            v4 => v4,
        };
        let all: Vec<IpAddr> = [
            "198.51.100.2",
            "::ffff:198.51.100.2",
            "198.51.100.3",
            "::ffff:198.51.100.3",
            "0.0.0.0",
            "::",
            "::ffff:0.0.0.0",
            "::198.51.100.2",
            "::fffe:198.51.100.2",
            "1::ffff:198.51.100.2",
            "2001:db8::2",
            "2001:db8::c633:6402",
            "255.255.255.255",
            "::ffff:255.255.255.255",
            "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
        ]
        .iter()
        .map(|a| ip(a))
        .collect();
        for &t in &all {
            for &a in &all {
                let want = canon(t) == canon(a);
                assert_eq!(own_address(t, &[a]), want, "{t} against {a}");
                assert_eq!(own_address(t, &[ip("fe80::1"), a]), want, "{t} against {a}");
            }
        }
    }

    #[test]
    fn an_own_address_target_is_not_probed_and_never_answers() {
        let t0 = Instant::now();
        let mut p = prober(3, 1);
        p.start_round(t0, [Some(ip("198.51.100.2")), Some(ip(T1))]);
        p.exclude_own(0);
        let tx = sends(&mut p, t0);
        assert_eq!(tx.len(), 1);
        assert_eq!(tx[0].0.target, 1);
        assert_eq!(p.poll_round_end(t0), None, "the real target is pending");
        p.handle_packet(t0, Family::V4, ip(T1), &reply_to(Family::V4, &tx[0].1));
        assert_eq!(
            p.poll_round_end(t0),
            Some(Verdict {
                good: true,
                answered: 1,
                targets: 2
            })
        );
        // Alone, it fails the round at once: it proves nothing about the link.
        p.start_round(t0 + ms(10), [Some(ip("198.51.100.2"))]);
        p.exclude_own(0);
        assert!(sends(&mut p, t0 + ms(10)).is_empty());
        assert!(!p.poll_round_end(t0 + ms(10)).unwrap().good);
        assert!(p.slots()[0].own);
    }

    #[test]
    fn counters_saturate() {
        let t0 = Instant::now();
        let mut p = prober(1, 1);
        p.stats.sent = u64::MAX;
        p.stats.lost = u64::MAX;
        p.stats.rounds = u64::MAX;
        p.start_round(t0, [Some(ip(T1))]);
        let _ = sends(&mut p, t0);
        let _ = p.poll_round_end(t0 + ms(2000));
        let st = p.stats();
        assert_eq!(
            (st.sent, st.lost, st.rounds),
            (u64::MAX, u64::MAX, u64::MAX)
        );
    }

    // ---- Stream slots (tcp:, dns:) ----

    fn stream_round(p: &mut Prober, t: Instant, addrs: &[&str], streams: &[usize]) {
        p.start_round(t, addrs.iter().map(|a| Some(ip(a))));
        for &i in streams {
            p.mark_stream(i);
        }
    }

    #[test]
    fn a_stream_slot_gets_one_attempt_and_no_echo() {
        let t0 = Instant::now();
        let mut p = prober(4, 1);
        stream_round(&mut p, t0, &[T1], &[0]);
        assert!(sends(&mut p, t0).is_empty(), "no echo to a stream target");
        assert_eq!(p.poll_timeout(), Some(t0), "its attempt is due at once");
        assert_eq!(
            p.poll_stream(t0),
            Some(StreamStart {
                target: 0,
                dest: ip(T1)
            })
        );
        assert_eq!(p.poll_stream(t0 + ms(500)), None, "one attempt per round");
        assert_eq!(p.poll_timeout(), Some(t0 + ms(2000)), "then the deadline");
        assert_eq!(
            p.stream_answered(t0 + ms(7), 0),
            Received::Reply {
                target: 0,
                rtt: ms(7)
            }
        );
        assert_eq!(p.poll_timeout(), Some(t0), "decided: end at once");
        assert_eq!(
            p.poll_round_end(t0 + ms(7)),
            Some(Verdict {
                good: true,
                answered: 1,
                targets: 1
            })
        );
        let st = p.stats();
        assert_eq!((st.sent, st.replies, st.lost, st.good_rounds), (1, 1, 0, 1));
        assert_eq!(st.rtt_avg(), Some(ms(7)));
    }

    #[test]
    fn may_stream_says_whether_poll_stream_can_start_anything() {
        let t0 = Instant::now();
        let mut p = prober(2, 1);
        assert!(!p.may_stream(), "no round");
        p.start_round(t0, [Some(ip(T1))]);
        assert!(!p.may_stream(), "an echo target only");
        assert_eq!(p.poll_stream(t0 + ms(5000)), None);
        stream_round(&mut p, t0, &[T1, T2], &[1]);
        assert!(p.may_stream());
        assert_eq!(p.poll_stream(t0).map(|s| s.target), Some(1));
        assert!(!p.may_stream(), "its one attempt started");
        assert_eq!(p.poll_stream(t0 + ms(5000)), None);
        stream_round(&mut p, t0, &["198.51.100.2"], &[0]);
        p.exclude_own(0);
        assert!(!p.may_stream(), "an own address is not started");
        stream_round(&mut p, t0, &[T1], &[0]);
        p.send_failed(0);
        assert!(!p.may_stream(), "failed before it started");
        assert_eq!(p.poll_stream(t0), None);
    }

    #[test]
    fn a_silent_stream_attempt_is_lost_at_the_timeout() {
        let t0 = Instant::now();
        let mut p = prober(3, 1);
        stream_round(&mut p, t0, &[T1], &[0]);
        assert!(p.poll_stream(t0).is_some());
        assert_eq!(p.poll_round_end(t0 + ms(1999)), None);
        assert!(!p.poll_round_end(t0 + ms(2000)).unwrap().good);
        // An answer after the round is late, not a reply.
        assert_eq!(p.stream_answered(t0 + ms(2100), 0), Received::Late);
        let st = p.stats();
        assert_eq!((st.sent, st.lost, st.late, st.replies), (1, 1, 1, 0));
    }

    #[test]
    fn a_failed_stream_attempt_fails_its_target_at_once() {
        let t0 = Instant::now();
        let mut p = prober(1, 1);
        stream_round(&mut p, t0, &[T1, "198.51.100.9"], &[0, 1]);
        assert_eq!(p.poll_stream(t0).map(|s| s.target), Some(0));
        assert_eq!(p.poll_stream(t0).map(|s| s.target), Some(1));
        p.send_failed(0); // the connect was refused by the kernel at once
        p.stream_failed(1); // EHOSTUNREACH later
        assert!(p.slots()[0].send_failed() && p.slots()[1].stream_failed());
        assert_eq!(p.stream_answered(t0 + ms(1), 1), Received::Late);
        assert!(p.poll_timeout().is_some_and(|t| t <= t0));
        assert_eq!(
            p.poll_round_end(t0 + ms(1)),
            Some(Verdict {
                good: false,
                answered: 0,
                targets: 2
            })
        );
        let st = p.stats();
        assert_eq!((st.sent, st.send_errors, st.lost), (2, 1, 2));
    }

    #[test]
    fn stream_and_echo_targets_share_the_quorum() {
        let t0 = Instant::now();
        let mut p = prober(1, 2);
        stream_round(&mut p, t0, &[T1, T2, "203.0.113.5"], &[1, 2]);
        let tx = sends(&mut p, t0);
        assert_eq!(tx.len(), 1, "one echo, to the echo target");
        assert_eq!(tx[0].0.target, 0);
        let starts: Vec<usize> = std::iter::from_fn(|| p.poll_stream(t0))
            .map(|s| s.target)
            .collect();
        assert_eq!(starts, [1, 2]);
        p.stream_answered(t0 + ms(2), 2);
        assert_eq!(p.poll_round_end(t0 + ms(2)), None, "1 of quorum 2");
        p.handle_packet(
            t0 + ms(3),
            Family::V4,
            ip(T1),
            &reply_to(Family::V4, &tx[0].1),
        );
        // Target 1 still owes an answer: the round goes on to the timeout, good then.
        assert_eq!(p.poll_round_end(t0 + ms(3)), None);
        assert_eq!(
            p.poll_round_end(t0 + ms(2000)),
            Some(Verdict {
                good: true,
                answered: 2,
                targets: 3
            })
        );
        assert_eq!(p.stats().lost, 1, "the silent stream attempt");
    }

    #[test]
    fn stream_reports_for_other_slots_decide_nothing() {
        let t0 = Instant::now();
        let mut p = prober(1, 1);
        stream_round(&mut p, t0, &[T1], &[]);
        // An echo slot, or a stream slot not started, cannot be answered by a stream.
        assert_eq!(p.stream_answered(t0, 0), Received::Late);
        assert_eq!(p.stream_answered(t0, 5), Received::Late);
        p.stream_failed(0);
        assert!(!p.slots()[0].stream_failed());
        stream_round(&mut p, t0, &[T1], &[0]);
        assert_eq!(p.stream_answered(t0, 0), Received::Foreign, "not started");
        p.stream_failed(0);
        assert!(!p.slots()[0].stream_failed(), "not started");
        p.stream_foreign();
        assert_eq!(p.stats().foreign, 2);
        assert_eq!(p.stats().late, 2);
    }

    #[test]
    fn an_own_address_stream_target_is_not_started() {
        let t0 = Instant::now();
        let mut p = prober(1, 1);
        stream_round(&mut p, t0, &["198.51.100.2"], &[0]);
        p.exclude_own(0);
        assert_eq!(p.poll_stream(t0), None);
        assert!(!p.poll_round_end(t0).unwrap().good);
    }
}
