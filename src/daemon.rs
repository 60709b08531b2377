//! The poll loop: the only code that reads the clock, and the one place where sockets,
//! signals, the heal runner and the two pure machines (prober, watchdog) meet.
//!
//! Each turn: wait in poll() until an fd is ready or the earliest deadline of the three
//! machines (rounded up to a whole millisecond, so the loop never wakes early and spins);
//! then signals, then received packets, then step output, then timers; then act on what the
//! machines asked for, and send what is due. Nothing in a turn blocks.
#![forbid(unsafe_code)]

use std::fmt::Write as _;
use std::io;
use std::net::IpAddr;
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use crate::config::{human, Config, Target};
use crate::heal::{describe, HealEvent, HealRunner};
use crate::log::{Level, Log};
use crate::probe::{Prober, COOKIE_LEN};
use crate::route;
use crate::sys::icmp::IcmpSocket;
use crate::sys::iface;
use crate::sys::signals::{Sig, Signals};
use crate::watchdog::{Action, Policy, State, Verdict, Watchdog};
use crate::wire::Family;

/// How long a stop may wait for a running step's group to leave after SIGTERM.
const STOP_GRACE: Duration = Duration::from_millis(500);
/// Receive buffer: an IPv4 header with options plus more ICMP than we ever send.
const RECV_BUF: usize = 2048;

#[derive(Debug)]
pub enum Error {
    /// Neither a raw nor a datagram ICMP socket could be opened.
    NoSocket(String),
    Io {
        what: &'static str,
        err: io::Error,
    },
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::NoSocket(why) => write!(
                f,
                "no ICMP socket could be opened ({why}): run as root or with CAP_NET_RAW, or allow \
                 this user's group in net.ipv4.ping_group_range for the datagram socket"
            ),
            Error::Io { what, err } => write!(f, "{what}: {err}"),
        }
    }
}

/// How the loop ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Exit {
    Stopped,
    /// `--once`: whether the round was good.
    Once(bool),
}

/// Which inputs poll() found ready.
#[derive(Debug, Clone, Copy, Default)]
struct Ready {
    signals: bool,
    socks: [bool; 2],
    heal_output: bool,
}

#[derive(Debug, Clone, Copy)]
enum Slot {
    Signals,
    Sock(usize),
    HealOutput,
}

pub struct Daemon {
    cfg: Config,
    log: Log,
    signals: Signals,
    socks: [Option<IcmpSocket>; 2],
    /// The interface index the sockets are bound to; None while it is missing.
    bound: Option<u32>,
    absent_logged: bool,
    last_gateway: Option<IpAddr>,
    prober: Prober,
    wd: Watchdog,
    heal: HealRunner,
    started: Instant,
}

fn family_of(addr: IpAddr) -> Family {
    match addr {
        IpAddr::V4(_) => Family::V4,
        IpAddr::V6(_) => Family::V6,
    }
}

/// Random bytes for the identifier, cookie and jitter seed. They only need to be hard to
/// guess for someone spoofing replies; the fallback (clock and pid) is weak but never fails.
fn random_bytes<const N: usize>() -> [u8; N] {
    use std::io::Read;
    let mut out = [0u8; N];
    let ok = std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut out))
        .is_ok();
    if !ok {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let mix = (t ^ u64::from(std::process::id()).rotate_left(32)).to_le_bytes();
        for (i, b) in out.iter_mut().enumerate() {
            *b = mix[i % 8].wrapping_add(i as u8);
        }
    }
    out
}

impl Daemon {
    /// Opens the sockets and signal fd. Fails only when probing is impossible.
    pub fn new(cfg: Config, log: Log) -> Result<Daemon, Error> {
        let signals = Signals::install().map_err(|err| Error::Io {
            what: "signalfd",
            err,
        })?;
        let needs = |fam: Family| {
            cfg.targets.iter().any(|t| match t {
                Target::Gateway => true,
                Target::Addr(a) => family_of(*a) == fam,
            })
        };
        let explicit = |fam: Family| {
            cfg.targets
                .iter()
                .any(|t| matches!(t, Target::Addr(a) if family_of(*a) == fam))
        };
        let mut socks = [None, None];
        let mut why = Vec::new();
        for fam in [Family::V4, Family::V6] {
            if !needs(fam) {
                continue;
            }
            match IcmpSocket::open(fam) {
                Ok(s) => socks[fam as usize] = Some(s),
                Err(e) if explicit(fam) => {
                    let name = if fam == Family::V4 { "ICMP" } else { "ICMPv6" };
                    return Err(Error::NoSocket(format!("{name}: {e}")));
                }
                Err(e) => why.push(e.to_string()),
            }
        }
        if socks.iter().all(Option::is_none) {
            return Err(Error::NoSocket(why.join("; ")));
        }
        let [ident0, ident1, cookie @ ..]: [u8; 2 + COOKIE_LEN + 8] = random_bytes();
        let cookie: [u8; COOKIE_LEN] = cookie[..COOKIE_LEN].try_into().expect("sized above");
        let seed = u64::from_le_bytes(random_bytes());
        let now = Instant::now();
        let prober = Prober::new(
            cfg.count,
            cfg.timeout,
            cfg.quorum as usize,
            u16::from_be_bytes([ident0, ident1]),
            cookie,
        );
        let policy = Policy {
            interval: cfg.interval,
            timeout: cfg.timeout,
            fail_after: cfg.fail_after,
            up_after: cfg.up_after,
            steps: cfg.heal.len(),
            backoff_min: cfg.backoff_min,
            backoff_max: cfg.backoff_max,
        };
        Ok(Daemon {
            wd: Watchdog::new(policy, now, seed),
            cfg,
            log,
            signals,
            socks,
            bound: None,
            absent_logged: false,
            last_gateway: None,
            prober,
            heal: HealRunner::default(),
            started: now,
        })
    }

    fn say(&mut self, level: Level, msg: impl AsRef<str>) {
        let line = format!("{}: {}", self.cfg.iface, msg.as_ref());
        self.log.log(level, &line);
    }

    fn say_limited(&mut self, now: Instant, level: Level, msg: impl AsRef<str>) {
        let line = format!("{}: {}", self.cfg.iface, msg.as_ref());
        self.log.limited(now, level, line);
    }

    fn start_line(&self) -> String {
        let c = &self.cfg;
        let list = |v: Vec<String>| v.join(",");
        let mut s = format!(
            "watching targets {} (quorum {}), count {}, interval {}, timeout {}, fail-after {}, up-after {}, heal ladder {}, backoff {}..{}, heal timeout {}",
            list(c.targets.iter().map(Target::to_string).collect()),
            c.quorum,
            c.count,
            human(c.interval),
            human(c.timeout),
            c.fail_after,
            c.up_after,
            list(c.heal.iter().map(ToString::to_string).collect()),
            human(c.backoff_min),
            human(c.backoff_max),
            human(c.heal_timeout),
        );
        if c.dry_run {
            s.push_str(", dry run");
        }
        let mut socks: Vec<String> = self
            .socks
            .iter()
            .flatten()
            .map(|k| format!("{}, ident {:#06x}", k.kind(), self.prober.ident(k.family())))
            .collect();
        socks.dedup();
        let _ = write!(s, " ({})", socks.join("; "));
        s
    }

    /// Binds the sockets to the interface's current index, re-opening them when the index
    /// changed (a re-created interface is a new device to the kernel).
    fn check_interface(&mut self, now: Instant) -> bool {
        let Some(index) = iface::index(&self.cfg.iface) else {
            if !self.absent_logged {
                let msg = if self.cfg.once { "interface not found" } else { "interface not found; waiting for it" };
                self.say(Level::Warning, msg);
                self.absent_logged = true;
            }
            self.bound = None;
            return false;
        };
        if self.bound == Some(index) {
            return true;
        }
        if let Err(e) = self.bind_sockets(self.bound.is_some()) {
            self.say_limited(
                now,
                Level::Error,
                format!("binding sockets to the interface: {e}"),
            );
            self.bound = None;
            return false;
        }
        match (self.bound, self.absent_logged) {
            (Some(old), _) => self.say(
                Level::Notice,
                format!("interface index changed from {old} to {index}; sockets re-bound"),
            ),
            (None, true) => self.say(Level::Notice, format!("interface appeared (index {index})")),
            (None, false) => {}
        }
        self.absent_logged = false;
        self.bound = Some(index);
        true
    }

    fn bind_sockets(&mut self, reopen: bool) -> io::Result<()> {
        for slot in self.socks.iter_mut() {
            let Some(sock) = slot.as_mut() else { continue };
            if reopen {
                *sock = IcmpSocket::open(sock.family())?;
            }
            sock.bind_to_device(&self.cfg.iface)?;
            if let Some(ident) = sock.bind_ident()? {
                self.prober.set_ident(sock.family(), ident);
            }
        }
        Ok(())
    }

    /// The addresses for this round, one per target.
    fn resolve_targets(&mut self, now: Instant) -> Vec<Option<IpAddr>> {
        let mut gateway = None;
        if self.cfg.targets.contains(&Target::Gateway) {
            let v4 = std::fs::read_to_string("/proc/net/route").unwrap_or_default();
            let v6 = std::fs::read_to_string("/proc/net/ipv6_route").unwrap_or_default();
            let found = route::default_gateway(&v4, &v6, &self.cfg.iface)
                .filter(|a| self.socks[family_of(*a) as usize].is_some());
            if found.is_some() {
                self.last_gateway = found;
            } else if self.last_gateway.is_none() {
                self.say_limited(
                    now,
                    Level::Warning,
                    "no default gateway through this interface yet",
                );
            }
            gateway = self.last_gateway;
        }
        self.cfg
            .targets
            .iter()
            .map(|t| match t {
                Target::Gateway => gateway,
                Target::Addr(a) => {
                    Some(*a).filter(|a| self.socks[family_of(*a) as usize].is_some())
                }
            })
            .collect()
    }

    pub fn run(&mut self) -> Result<Exit, Error> {
        // Bind first so the start line shows the datagram socket's identifier.
        let now = Instant::now();
        self.check_interface(now);
        let line = self.start_line();
        self.say(Level::Notice, line);
        let mut buf = [0u8; RECV_BUF];
        let mut ready = Ready::default();
        loop {
            let now = Instant::now();
            if let Some(exit) = self.turn(now, &mut buf, ready)? {
                return Ok(exit);
            }
            ready = self.wait()?;
            if ready.signals {
                if let Some(exit) = self.handle_signals()? {
                    return Ok(exit);
                }
            }
        }
    }

    /// Timers, machine actions and transmissions for one loop turn.
    fn turn(&mut self, now: Instant, buf: &mut [u8], ready: Ready) -> Result<Option<Exit>, Error> {
        for (i, readable) in ready.socks.into_iter().enumerate() {
            if readable {
                self.receive(now, i, buf);
            }
        }
        if ready.heal_output {
            self.heal.read_output();
        }
        self.heal.handle_timeout(now);
        if let Some(v) = self.prober.poll_round_end(now) {
            if self.cfg.once {
                self.log_round(v, true);
                return Ok(Some(Exit::Once(v.good)));
            }
            self.log_round(v, self.cfg.verbose);
            self.wd.round_ended(now, v);
        }
        self.wd.handle_timeout(now);
        loop {
            let mut progress = false;
            while let Some(a) = self.wd.poll_action() {
                progress = true;
                if let Some(exit) = self.act(now, a) {
                    return Ok(Some(exit));
                }
            }
            while let Some(e) = self.heal.poll_event() {
                progress = true;
                self.heal_event(now, e);
            }
            if !progress {
                break;
            }
        }
        self.transmit(now, buf);
        Ok(None)
    }

    fn act(&mut self, now: Instant, action: Action) -> Option<Exit> {
        match action {
            Action::StartRound => {
                if !self.check_interface(now) {
                    if self.cfg.once {
                        return Some(Exit::Once(false));
                    }
                    self.wd.round_skipped(now);
                    return None;
                }
                let addrs = self.resolve_targets(now);
                self.prober.start_round(now, addrs);
            }
            Action::Transition { from, to, reason } => {
                let level = match to {
                    State::Down | State::Healing => Level::Warning,
                    State::Up => Level::Notice,
                    _ => Level::Info,
                };
                self.say(level, format!("state {from} -> {to}: {reason}"));
            }
            Action::RunHeal {
                attempt,
                step,
                reason,
            } => {
                let step = self.cfg.heal[step].clone();
                if self.cfg.dry_run {
                    self.say(
                        Level::Warning,
                        format!("heal attempt {attempt}: dry run, not running {step}"),
                    );
                    self.wd.heal_ended(now);
                } else {
                    self.say(
                        Level::Warning,
                        format!("heal attempt {attempt}: running {step}"),
                    );
                    self.heal.start(
                        now,
                        attempt,
                        &step,
                        &self.cfg.iface,
                        &reason,
                        self.cfg.heal_timeout,
                    );
                }
            }
        }
        None
    }

    fn heal_event(&mut self, now: Instant, e: HealEvent) {
        match e {
            HealEvent::Output { prog, line } => self.say(Level::Info, format!("{prog}: {line}")),
            HealEvent::Ended {
                attempt,
                step,
                outcome,
                elapsed,
            } => {
                self.say(
                    Level::Notice,
                    format!(
                        "heal attempt {attempt}: {}",
                        describe(&step, &outcome, elapsed)
                    ),
                );
                self.wd.heal_ended(now);
            }
        }
    }

    fn log_round(&mut self, v: Verdict, verbose: bool) {
        if !verbose {
            return;
        }
        let mut line = format!(
            "round {} {}: ",
            self.prober.stats().rounds,
            if v.good { "good" } else { "failed" }
        );
        for (i, (slot, target)) in self
            .prober
            .slots()
            .iter()
            .zip(&self.cfg.targets)
            .enumerate()
        {
            if i > 0 {
                line.push_str(", ");
            }
            match (slot.addr, slot.rtt) {
                (Some(a), Some(rtt)) => write!(line, "{a} {:.3}ms", rtt.as_secs_f64() * 1e3),
                (Some(a), None) => write!(line, "{a} lost"),
                (None, _) => write!(line, "{target} unknown"),
            }
            .expect("writing to a String cannot fail");
        }
        self.say(Level::Info, line);
    }

    /// Reads everything waiting on socket `i`.
    fn receive(&mut self, now: Instant, i: usize, buf: &mut [u8]) {
        loop {
            let Some(sock) = self.socks[i].as_ref() else {
                return;
            };
            match sock.recv_from(buf) {
                Ok(Some((n, src))) => {
                    let family = sock.family();
                    // An unreadable IP header is counted with the other foreign packets.
                    let icmp = sock.icmp_part(&buf[..n]).unwrap_or(&[]);
                    self.prober.handle_packet(now, family, src, icmp);
                }
                Ok(None) => return,
                Err(e) => {
                    self.say_limited(now, Level::Error, format!("receive: {e}"));
                    return;
                }
            }
        }
    }

    fn transmit(&mut self, now: Instant, buf: &mut [u8]) {
        let scope = self.bound.unwrap_or(0);
        while let Some(tx) = self.prober.poll_transmit(now, buf) {
            let sock = self.socks[family_of(tx.dest) as usize].as_ref();
            let sent = match sock {
                Some(s) if self.bound.is_some() => s.send_to(&buf[..tx.len], tx.dest, scope),
                _ => Err(io::Error::new(
                    io::ErrorKind::NotConnected,
                    "socket not bound to the interface",
                )),
            };
            if let Err(e) = sent {
                // Expected while the link is broken (ENETUNREACH, EPERM from a firewall...):
                // the echo counts as lost; say so once a minute.
                self.prober.send_failed();
                self.say_limited(now, Level::Info, format!("send to {}: {e}", tx.dest));
            }
        }
    }

    /// Sleeps in poll() until a socket, the signal fd or step output is readable, or the
    /// earliest deadline.
    fn wait(&mut self) -> Result<Ready, Error> {
        let deadline = [
            self.prober.poll_timeout(),
            self.wd.poll_timeout(),
            self.heal.poll_timeout(),
        ]
        .into_iter()
        .flatten()
        .min();
        let timeout = match deadline {
            None => PollTimeout::NONE,
            Some(t) => {
                let d = t.saturating_duration_since(Instant::now());
                // Round up: waking a fraction of a millisecond early would find nothing due
                // and spin until it is.
                let ms = d.as_nanos().div_ceil(1_000_000);
                PollTimeout::try_from(ms.min(i32::MAX as u128) as i32).unwrap_or(PollTimeout::MAX)
            }
        };
        let mut slots: Vec<Slot> = Vec::with_capacity(4);
        let mut fds: Vec<PollFd> = Vec::with_capacity(4);
        slots.push(Slot::Signals);
        fds.push(PollFd::new(self.signals.as_fd(), PollFlags::POLLIN));
        for (i, s) in self.socks.iter().enumerate() {
            if let Some(s) = s {
                slots.push(Slot::Sock(i));
                fds.push(PollFd::new(s.as_fd(), PollFlags::POLLIN));
            }
        }
        if let Some(fd) = self.heal.output_fd() {
            slots.push(Slot::HealOutput);
            fds.push(PollFd::new(fd.as_fd(), PollFlags::POLLIN));
        }
        match poll(&mut fds, timeout) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(e) => {
                return Err(Error::Io {
                    what: "poll",
                    err: e.into(),
                })
            }
        }
        let mut ready = Ready::default();
        for (slot, p) in slots.iter().zip(&fds) {
            if p.revents().is_some_and(|r| !r.is_empty()) {
                match slot {
                    Slot::Signals => ready.signals = true,
                    Slot::Sock(i) => ready.socks[*i] = true,
                    Slot::HealOutput => ready.heal_output = true,
                }
            }
        }
        Ok(ready)
    }

    fn handle_signals(&mut self) -> Result<Option<Exit>, Error> {
        while let Some(sig) = self.signals.read().map_err(|err| Error::Io {
            what: "signalfd",
            err,
        })? {
            match sig {
                Sig::SIGTERM | Sig::SIGINT => {
                    self.say(Level::Notice, format!("stopping on {}", sig.as_str()));
                    if self.heal.is_running() {
                        self.heal.kill_now(STOP_GRACE);
                    }
                    return Ok(Some(Exit::Stopped));
                }
                Sig::SIGUSR1 => {
                    let line = self.status_line(Instant::now());
                    self.say(Level::Notice, line);
                }
                Sig::SIGCHLD => self.heal.handle_child_exit(Instant::now()),
                Sig::SIGHUP => self.say(
                    Level::Notice,
                    "SIGHUP: nothing to reload (no configuration file); ignored",
                ),
                _ => {}
            }
        }
        Ok(None)
    }

    fn status_line(&self, now: Instant) -> String {
        let st = self.prober.stats();
        let ms = |d: Option<Duration>| {
            d.map_or("-".to_string(), |d| format!("{:.3}", d.as_secs_f64() * 1e3))
        };
        format!(
            "status: state {} for {}, rounds {}, replies {}, lost {}, foreign {}, late {}, send errors {}, rtt min/avg/max {}/{}/{} ms, heals {}, up {}",
            self.wd.state(),
            human(now.saturating_duration_since(self.wd.since())),
            st.rounds,
            st.replies,
            st.lost,
            st.foreign,
            st.late,
            st.send_errors,
            ms(st.rtt_min),
            ms(st.rtt_avg()),
            ms(st.rtt_max),
            self.wd.heals(),
            human(now.saturating_duration_since(self.started)),
        )
    }
}
