//! Where log lines go: syslog (facility daemon, ident netheal, with pid, RFC 3164 over the
//! /dev/log datagram socket) or stderr, one line per message. Messages sent through `limited`
//! are rate-limited per message, so a dead link (or two) cannot flood the log.
//!
//! Sending never blocks the poll loop: the socket is non-blocking (OpenBSD's sendsyslog(2)
//! never blocks either). A line the log daemon does not take at once (its queue is full: it
//! is stalled) is dropped and counted, and the count is logged as soon as it accepts again.
//! While syslog is wanted but /dev/log is missing (busybox syslogd creates it only after it
//! forks) or refuses, lines go to stderr and the last `BACKLOG` of them are kept; the
//! connection is tried again every `RETRY` when there is something to log, and once it works
//! the switch is logged and the kept lines are sent. The log reads no clock: the poll loop
//! gives it the time (`tick`), and the tests give it virtual time.
//!
//! This replaces the `syslog` crate: its sending path blocks and flattens errno into strings,
//! and the message format was already our own.
#![forbid(unsafe_code)]

use std::collections::VecDeque;
use std::io::{self, IsTerminal, Write};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::config::LogDest;
use crate::mono::Instant;

/// The local syslog daemon's socket (rsyslog, syslog-ng, busybox syslogd, journald).
pub const SYSLOG_PATH: &str = "/dev/log";
/// An identical limited message is logged at most once per this window.
const REPEAT_WINDOW: Duration = Duration::from_secs(60);
/// How many distinct limited messages are remembered; the least recently seen goes first.
const LIMIT_KEYS: usize = 64;
/// While syslog is wanted and unreachable, try to connect again at most this often.
pub const RETRY: Duration = Duration::from_secs(5);
/// Lines kept while syslog is unreachable, sent once it is.
pub const BACKLOG: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Error,
    Warning,
    Notice,
    Info,
}

impl Level {
    /// syslog(3) severities.
    fn severity(self) -> u8 {
        match self {
            Level::Error => 3,
            Level::Warning => 4,
            Level::Notice => 5,
            Level::Info => 6,
        }
    }
}

/// `<PRI>netheal[PID]: MESSAGE`, the form syslog(3) sends to /dev/log, without the
/// timestamp: the local syslog daemon stamps messages that carry none, and leaving it out
/// keeps a date formatter out of the binary. PRI = facility daemon (3) * 8 + severity.
pub fn rfc3164(level: Level, pid: u32, msg: &str) -> String {
    format!("<{}>netheal[{pid}]: {msg}", (3 << 3) | level.severity())
}

/// Per-message rate limiting, in virtual time: `check` says whether a message may be logged
/// now. A bounded table: at most `cap` messages are remembered, the least recently seen is
/// forgotten first (and what it held back is reported then).
#[derive(Debug)]
pub struct Limiter {
    window: Duration,
    cap: usize,
    entries: Vec<Held>,
}

#[derive(Debug)]
struct Held {
    msg: String,
    /// When it was last logged: the window runs from here.
    at: Instant,
    /// When it was last seen, for the least-recently-used eviction.
    seen: Instant,
    suppressed: u32,
}

/// What `Limiter::check` decided.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Log it; `repeated` times it was held back in the window that just ended.
    Log {
        repeated: u32,
    },
    Hold,
}

impl Limiter {
    pub fn new(window: Duration, cap: usize) -> Limiter {
        Limiter {
            window,
            cap: cap.max(1),
            entries: Vec::new(),
        }
    }

    pub fn check(&mut self, now: Instant, msg: &str) -> Verdict {
        if let Some(e) = self.entries.iter_mut().find(|e| e.msg == msg) {
            e.seen = now;
            if now.saturating_duration_since(e.at) < self.window {
                e.suppressed = e.suppressed.saturating_add(1);
                return Verdict::Hold;
            }
            e.at = now;
            return Verdict::Log {
                repeated: std::mem::take(&mut e.suppressed),
            };
        }
        self.entries.push(Held {
            msg: msg.to_string(),
            at: now,
            seen: now,
            suppressed: 0,
        });
        Verdict::Log { repeated: 0 }
    }

    /// Forgets messages whose window has ended and the least recently seen beyond the cap;
    /// returns those that held something back, with the count, to be reported.
    pub fn expire(&mut self, now: Instant) -> Vec<(String, u32)> {
        let mut out = Vec::new();
        let window = self.window;
        self.entries.retain_mut(|e| {
            let over = now.saturating_duration_since(e.at) >= window;
            if over && e.suppressed > 0 {
                out.push((std::mem::take(&mut e.msg), e.suppressed));
            }
            !over
        });
        while self.entries.len() > self.cap {
            let oldest = (0..self.entries.len())
                .min_by_key(|&i| self.entries[i].seen)
                .expect("more than cap >= 1 entries");
            let e = self.entries.swap_remove(oldest);
            if e.suppressed > 0 {
                out.push((e.msg, e.suppressed));
            }
        }
        out
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// Syslog, while it is wanted.
#[derive(Debug)]
struct Syslog {
    path: PathBuf,
    sock: Option<UnixDatagram>,
    /// When to try connecting again while `sock` is None.
    next_try: Option<Instant>,
    /// Lines the daemon did not accept (its queue was full), not yet reported.
    dropped: u64,
    /// Lines logged to stderr while it was unreachable, and how many did not fit.
    backlog: VecDeque<String>,
    backlog_lost: u64,
    /// Whether it ever worked: the first connection is not a "switch".
    unreachable_since: Option<Instant>,
}

pub struct Log {
    /// The loop's latest reading of the clock (`tick`): the log reads none itself.
    now: Instant,
    syslog: Option<Syslog>,
    limiter: Limiter,
    pid: u32,
}

/// Whether `dest` wants syslog when stderr is (or is not) a terminal.
pub fn wants_syslog(dest: LogDest, stderr_is_terminal: bool) -> bool {
    match dest {
        LogDest::Stderr => false,
        LogDest::Syslog => true,
        LogDest::Auto => !stderr_is_terminal,
    }
}

/// `-d` puts stderr on /dev/null: what to tell the admin, before detaching, about where the
/// log will go (None: syslog is reachable, all is well).
pub fn detach_warning(dest: LogDest) -> Option<String> {
    if !wants_syslog(dest, false) {
        return Some(
            "warning: --log stderr with -d: stderr is /dev/null once detached, so nothing will be logged".into(),
        );
    }
    let e = connect(Path::new(SYSLOG_PATH)).err()?;
    Some(format!(
        "warning: {SYSLOG_PATH}: syslog unavailable ({e}); once detached, log lines are lost until a syslog daemon listens there (tried every {}s), except the last {BACKLOG}, which are sent to it then",
        RETRY.as_secs()
    ))
}

/// A datagram socket connected to `path`, non-blocking. connect(2) on a unix datagram socket
/// does not wait for anything.
fn connect(path: &Path) -> io::Result<UnixDatagram> {
    let sock = UnixDatagram::unbound()?;
    sock.set_nonblocking(true)?;
    sock.connect(path)?;
    Ok(sock)
}

/// The log daemon is there but not taking this line now: drop it (counted), do not wait.
/// EMSGSIZE (a line longer than the socket buffer) is a drop too, not a reason to give up
/// on syslog.
fn is_stall(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::WouldBlock
        || matches!(e.raw_os_error(), Some(libc::ENOBUFS | libc::EMSGSIZE))
}

fn stderr(msg: &str) {
    // One write per line so lines from several processes never interleave.
    let line = format!("netheal: {msg}\n");
    let _ = io::stderr().write_all(line.as_bytes()); // not fatal: nowhere else to log
}

impl Log {
    /// `auto`: stderr when it is a terminal, else syslog.
    pub fn open(dest: LogDest) -> Log {
        let want = wants_syslog(dest, io::stderr().is_terminal());
        Log::with_syslog(want.then(|| PathBuf::from(SYSLOG_PATH)), Instant::now())
    }

    /// Syslog at `path` (None: stderr only). For tests, a socket of their own.
    pub fn with_syslog(path: Option<PathBuf>, now: Instant) -> Log {
        let mut log = Log {
            now,
            syslog: path.map(|path| Syslog {
                path,
                sock: None,
                next_try: None,
                dropped: 0,
                backlog: VecDeque::new(),
                backlog_lost: 0,
                unreachable_since: None,
            }),
            limiter: Limiter::new(REPEAT_WINDOW, LIMIT_KEYS),
            pid: std::process::id(),
        };
        if let Some(s) = &mut log.syslog {
            match connect(&s.path) {
                Ok(sock) => s.sock = Some(sock),
                Err(e) => {
                    stderr(&format!(
                        "{}: syslog unavailable ({e}); logging to stderr, trying again every {}s",
                        s.path.display(),
                        RETRY.as_secs()
                    ));
                    s.next_try = Some(now + RETRY);
                    s.unreachable_since = Some(now);
                }
            }
        }
        log
    }

    /// Whether lines go to syslog now.
    pub fn is_syslog(&self) -> bool {
        self.syslog.as_ref().is_some_and(|s| s.sock.is_some())
    }

    /// Whether syslog is the destination, reachable now or not.
    pub fn wants_syslog(&self) -> bool {
        self.syslog.is_some()
    }

    /// Lines the log daemon did not take and that are not reported yet.
    pub fn dropped(&self) -> u64 {
        self.syslog.as_ref().map_or(0, |s| s.dropped)
    }

    /// The loop tells the log the time at every turn: it decides when to try syslog again.
    pub fn tick(&mut self, now: Instant) {
        self.now = self.now.max(now);
    }

    pub fn log(&mut self, level: Level, msg: &str) {
        self.log_at(self.now, level, msg);
    }

    /// `log` at `now` (the latest of `now` and the last tick).
    pub fn log_at(&mut self, now: Instant, level: Level, msg: &str) {
        self.tick(now);
        let now = self.now;
        let pid = self.pid;
        let Some(s) = &mut self.syslog else {
            return stderr(msg);
        };
        if s.sock.is_none() && s.next_try.is_none_or(|t| now >= t) {
            s.reconnect(now, pid);
        }
        if s.send(now, level, pid, msg) {
            return;
        }
        stderr(msg);
        if s.backlog.len() == BACKLOG {
            s.backlog.pop_front();
            s.backlog_lost += 1;
        }
        s.backlog
            .push_back(rfc3164(level, pid, &format!("earlier: {msg}")));
    }

    /// Logs `msg` unless the same message was logged within the last minute; the count of
    /// what was held back is reported with the next one that gets through, or on its own
    /// once its minute is over and another limited message comes.
    pub fn limited(&mut self, now: Instant, level: Level, msg: String) {
        let verdict = self.limiter.check(now, &msg);
        for (old, n) in self.limiter.expire(now) {
            self.log_at(
                now,
                Level::Info,
                &format!("last message repeated {n} times: {old}"),
            );
        }
        match verdict {
            Verdict::Hold => {}
            Verdict::Log { repeated: 0 } => self.log_at(now, level, &msg),
            Verdict::Log { repeated } => self.log_at(
                now,
                level,
                &format!("{msg} (and {repeated} more times in the last minute)"),
            ),
        }
    }
}

impl Syslog {
    /// Tries to connect; on success says so (if it had been unreachable) and sends what was
    /// kept meanwhile.
    fn reconnect(&mut self, now: Instant, pid: u32) {
        match connect(&self.path) {
            Ok(sock) => {
                self.sock = Some(sock);
                self.next_try = None;
                let Some(since) = self.unreachable_since.take() else {
                    return;
                };
                let kept = std::mem::take(&mut self.backlog);
                let lost = std::mem::take(&mut self.backlog_lost);
                let msg = format!(
                    "{}: syslog reachable again after {}s, logging to it instead of stderr; {} earlier lines follow{}",
                    self.path.display(),
                    now.saturating_duration_since(since).as_secs(),
                    kept.len(),
                    if lost > 0 {
                        format!(" ({lost} more did not fit and went to stderr only)")
                    } else {
                        String::new()
                    }
                );
                stderr(&msg);
                let _ = self.raw(&rfc3164(Level::Notice, pid, &msg)); // not fatal: counted there
                for line in kept {
                    let _ = self.raw(&line); // not fatal: counted there
                }
            }
            Err(_) => {
                self.next_try = Some(now + RETRY);
                self.unreachable_since.get_or_insert(now);
            }
        }
    }

    /// One datagram. Err only when the socket is gone (not for a stall: that is counted).
    fn raw(&mut self, line: &str) -> io::Result<()> {
        let Some(sock) = &self.sock else {
            return Err(io::ErrorKind::NotConnected.into());
        };
        match sock.send(line.as_bytes()) {
            Ok(_) => Ok(()),
            Err(e) if is_stall(&e) => {
                self.dropped = self.dropped.saturating_add(1);
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Sends one line; false when syslog is not reachable (the caller uses stderr).
    fn send(&mut self, now: Instant, level: Level, pid: u32, msg: &str) -> bool {
        if self.sock.is_none() {
            return false;
        }
        let line = rfc3164(level, pid, msg);
        for second in [false, true] {
            if self.dropped > 0 {
                let n = self.dropped;
                let note = format!("{n} log lines dropped while syslog was not accepting");
                let note = rfc3164(Level::Warning, pid, &note);
                match self.sock.as_ref().map(|s| s.send(note.as_bytes())) {
                    Some(Ok(_)) => self.dropped -= n,
                    Some(Err(e)) if is_stall(&e) => {
                        self.dropped = self.dropped.saturating_add(1); // this line too
                        return true;
                    }
                    _ => {}
                }
            }
            match self.raw(&line) {
                Ok(()) => return true,
                // syslogd restarted (its old socket is gone): reconnect once, at once.
                Err(_) if !second => {
                    self.sock = None;
                    if connect(&self.path).map(|s| self.sock = Some(s)).is_err() {
                        break;
                    }
                }
                Err(_) => break,
            }
        }
        self.sock = None;
        self.next_try = Some(now + RETRY);
        self.unreachable_since = Some(now);
        stderr(&format!(
            "{}: syslog stopped accepting; logging to stderr, trying again every {}s",
            self.path.display(),
            RETRY.as_secs()
        ));
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3164_line() {
        // daemon (3 << 3) | warning (4) = 28
        assert_eq!(
            rfc3164(Level::Warning, 42, "eth0: state up -> suspect"),
            "<28>netheal[42]: eth0: state up -> suspect"
        );
        assert_eq!(rfc3164(Level::Info, 1, "x"), "<30>netheal[1]: x");
    }

    #[test]
    fn two_alternating_messages_are_limited_each() {
        // Two dead targets, each failing every 250 ms for 10 s: 80 lines offered. With one
        // slot, every one passed (each evicted the other); per message, one each.
        let t0 = Instant::now();
        let mut l = Limiter::new(REPEAT_WINDOW, LIMIT_KEYS);
        let mut logged = Vec::new();
        for i in 0..40u64 {
            let now = t0 + Duration::from_millis(250 * i);
            for msg in [
                "eth0: send to 198.51.100.1: EPERM",
                "eth0: send to 198.51.100.9: EPERM",
            ] {
                if l.check(now, msg) != Verdict::Hold {
                    logged.push(msg);
                }
                assert!(l.expire(now).is_empty());
            }
        }
        assert_eq!(logged.len(), 2, "{logged:?}");
        // After the window each passes again, with its count.
        let later = t0 + REPEAT_WINDOW + Duration::from_secs(1);
        assert_eq!(
            l.check(later, "eth0: send to 198.51.100.1: EPERM"),
            Verdict::Log { repeated: 39 }
        );
        // The other one's held count is reported on its own once its window is over.
        assert_eq!(
            l.expire(later),
            vec![("eth0: send to 198.51.100.9: EPERM".to_string(), 39)]
        );
    }

    #[test]
    fn the_table_is_bounded_and_forgets_the_least_recently_seen() {
        let t0 = Instant::now();
        let t = |s| t0 + Duration::from_secs(s);
        let mut l = Limiter::new(REPEAT_WINDOW, 4);
        for k in 0..4 {
            assert_eq!(l.check(t0, &format!("m{k}")), Verdict::Log { repeated: 0 });
        }
        assert_eq!(
            l.check(t(1), "m0"),
            Verdict::Hold,
            "m0 seen again, one held"
        );
        assert_eq!(l.check(t(2), "m4"), Verdict::Log { repeated: 0 });
        assert_eq!(
            l.expire(t(2)),
            vec![],
            "m1 (least recently seen) goes, held nothing"
        );
        assert_eq!(l.len(), 4);
        assert_eq!(
            l.check(t(3), "m1"),
            Verdict::Log { repeated: 0 },
            "m1 was forgotten"
        );
        assert_eq!(l.expire(t(3)), vec![], "m2 goes");
        l.check(t(4), "m5");
        assert_eq!(l.expire(t(4)), vec![], "m3 goes");
        l.check(t(5), "m6");
        assert_eq!(
            l.expire(t(5)),
            vec![("m0".to_string(), 1)],
            "m0 goes, and what it held back is reported"
        );
        assert_eq!(l.len(), 4);
    }

    fn temp(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("netheal-log-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn drain(server: &UnixDatagram) -> Vec<String> {
        server.set_nonblocking(true).unwrap();
        let mut buf = [0u8; 4096];
        let mut out = Vec::new();
        while let Ok(n) = server.recv(&mut buf) {
            out.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
        out
    }

    #[test]
    fn a_stalled_log_daemon_never_blocks_and_drops_are_reported() {
        let d = temp("stall");
        let path = d.join("log");
        let server = UnixDatagram::bind(&path).unwrap();
        let t0 = Instant::now();
        let mut log = Log::with_syslog(Some(path.clone()), t0);
        assert!(log.is_syslog());
        // Nobody reads: the queue fills, and a blocking send would hang here for good.
        let started = Instant::now();
        for i in 0..5_000 {
            log.log_at(t0, Level::Info, &format!("eth0: round {i} ok"));
        }
        let took = started.elapsed();
        let dropped = log.dropped();
        // A blocking send would hang here for good; the bound only turns that into a failure
        // (generous: qemu on a loaded machine took 3.7 s).
        assert!(took < Duration::from_secs(20), "took {took:?}");
        assert!(dropped > 0, "the queue never filled?");
        let first = drain(&server);
        assert_eq!(first.len() as u64 + dropped, 5_000);
        log.log_at(t0, Level::Notice, "eth0: state up -> suspect");
        let after = drain(&server);
        std::fs::remove_dir_all(&d).unwrap();
        assert_eq!(
            after,
            vec![
                rfc3164(
                    Level::Warning,
                    std::process::id(),
                    &format!("{dropped} log lines dropped while syslog was not accepting")
                ),
                rfc3164(
                    Level::Notice,
                    std::process::id(),
                    "eth0: state up -> suspect"
                ),
            ]
        );
        assert_eq!(log.dropped(), 0);
    }

    #[test]
    fn syslog_that_appears_later_is_used_and_gets_the_backlog() {
        let d = temp("late");
        let path = d.join("log");
        let t0 = Instant::now();
        let mut log = Log::with_syslog(Some(path.clone()), t0);
        assert!(!log.is_syslog());
        log.log_at(t0, Level::Notice, "eth0: watching");
        let server = UnixDatagram::bind(&path).unwrap();
        // Not before the retry interval: no connect attempt per line.
        log.log_at(t0 + RETRY / 2, Level::Info, "eth0: round 1 ok");
        assert!(!log.is_syslog());
        assert!(drain(&server).is_empty());
        log.log_at(t0 + RETRY, Level::Info, "eth0: round 2 ok");
        assert!(log.is_syslog(), "switched after {RETRY:?}");
        let got = drain(&server);
        // syslogd restarts: a new socket at the same path.
        drop(server);
        std::fs::remove_file(&path).unwrap();
        let server = UnixDatagram::bind(&path).unwrap();
        log.log_at(t0 + RETRY, Level::Info, "eth0: round 3 ok");
        let again = drain(&server);
        std::fs::remove_dir_all(&d).unwrap();
        let pid = std::process::id();
        assert_eq!(got.len(), 4, "{got:?}");
        assert!(
            got[0].contains("syslog reachable again after 5s"),
            "{got:?}"
        );
        assert!(got[0].contains("2 earlier lines follow"), "{got:?}");
        assert_eq!(
            got[1],
            rfc3164(Level::Notice, pid, "earlier: eth0: watching")
        );
        assert_eq!(
            got[2],
            rfc3164(Level::Info, pid, "earlier: eth0: round 1 ok")
        );
        assert_eq!(got[3], rfc3164(Level::Info, pid, "eth0: round 2 ok"));
        assert_eq!(again, vec![rfc3164(Level::Info, pid, "eth0: round 3 ok")]);
    }
}
