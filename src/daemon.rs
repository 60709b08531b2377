//! The poll loop: the code that reads the clock (besides the send stamp right before each
//! sendto, in watch.rs), and the one place where the watched interfaces, signals, reloads,
//! the status and metrics files and the systemd notification socket meet.
//!
//! Each turn: wait in poll() until an fd is ready or the earliest deadline of any watch
//! (rounded up to a whole millisecond, so the loop never wakes early and spins); then signals;
//! then the kernel's netlink reports (`eyes`: a bounded amount, each change handed to its
//! watch); then every watch reads what is ready for it, runs its timers, acts and sends (and the
//! reaper, which holds what stopped watches left, reads and runs its timers). Nothing in a
//! turn blocks; only the final stop waits, at most `STOP_GRACE` for every child together.
#![forbid(unsafe_code)]

use std::io;
use std::os::fd::{AsFd, RawFd};
use std::time::Duration;

use crate::config::{self, Args, Config};
use crate::eyes::{self, Eyes};
use crate::heal::{Reaper, STOP_GRACE};
use crate::log::{Level, Log};
use crate::mono::Instant;
use crate::notify::{monotonic_usec, Notifier};
use crate::report;
use crate::sys::filewatch::FileWatch;
use crate::sys::lock::{self, Claim, LockFile};
use crate::sys::poll::PollSet;
use crate::sys::process;
use crate::sys::signals::{Sig, Signals};
use crate::watch::{earliest, Input, NoSocket, Ready, Uplink};

/// Receive buffer: an IPv4 header with options plus more ICMP than we ever send.
const RECV_BUF: usize = 2048;
/// Without a state change, the status and metrics files are rewritten at the first turn this
/// long after the last rewrite (each rewrite costs ~100 k instructions and five system calls;
/// the counters in them are at most this much, plus a round, behind).
const STATUS_EVERY: Duration = Duration::from_secs(60);
/// For netheal's own tests: `STATUS_EVERY` in milliseconds instead.
const STATUS_EVERY_ENV: &str = "NETHEAL_TEST_STATUS_EVERY_MS";
/// A timer this late means the loop is not making progress: stop feeding systemd's watchdog.
const OVERDUE: Duration = Duration::from_secs(1);
/// For netheal's own tests: after this many rounds the loop stops running its timers, as a
/// wedged loop would, but still answers signals.
const STALL_ENV: &str = "NETHEAL_TEST_STALL_AFTER";

/// What an entry of the poll set belongs to.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Owner {
    Signals,
    Kernel,
    Files,
    Watch(usize, Input),
    /// The reaper's pipes only need to wake the loop: it reads them every turn.
    Reaper,
}

/// What woke the loop, besides the watches' own inputs (`Daemon::ready`).
#[derive(Debug, Clone, Copy, Default)]
struct Woke {
    signals: bool,
    kernel: bool,
    files: bool,
}

/// A report file this process writes, and the lock (`PATH.lock`) that makes it ours.
struct Owned {
    path: std::path::PathBuf,
    _lock: LockFile,
}

impl Owned {
    /// Removes the file, then (on drop) its lock: in that order, so nobody can take the lock
    /// and then lose a fresh file to us.
    fn remove(self) {
        let _ = std::fs::remove_file(&self.path); // not fatal: it may never have been written
    }
}

#[derive(Debug)]
pub enum Error {
    /// Neither a raw nor a datagram ICMP socket could be opened; `errno` says why (only
    /// EPERM/EACCES is a matter of privilege).
    NoSocket {
        iface: String,
        why: String,
        errno: Option<i32>,
    },
    Io {
        what: &'static str,
        err: io::Error,
    },
}

impl Error {
    /// Whether the fix is privilege (CAP_NET_RAW, ping_group_range): exit status 3.
    pub fn is_privilege(&self) -> bool {
        use nix::errno::Errno;
        matches!(self, Error::NoSocket { errno: Some(e), .. }
            if matches!(Errno::from_raw(*e), Errno::EPERM | Errno::EACCES))
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::NoSocket { iface, why, errno } => {
                write!(f, "{iface}: no ICMP socket could be opened ({why})")?;
                match errno.map(nix::errno::Errno::from_raw) {
                    Some(nix::errno::Errno::EPERM | nix::errno::Errno::EACCES) => f.write_str(
                        ": run as root or with CAP_NET_RAW, or allow this user's group in \
                         net.ipv4.ping_group_range for the datagram socket",
                    ),
                    Some(nix::errno::Errno::EMFILE) => f.write_str(
                        ": netheal's open-file limit is reached (RLIMIT_NOFILE: ulimit -n, \
                         LimitNOFILE= under systemd): raise it",
                    ),
                    Some(nix::errno::Errno::ENFILE) => {
                        f.write_str(": the system-wide open-file limit is reached (fs.file-max)")
                    }
                    _ => Ok(()),
                }
            }
            Error::Io { what, err } => write!(f, "{what}: {err}"),
        }
    }
}

/// How the loop ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Exit {
    Stopped,
    /// `--once`: whether every family of every watched interface was good (not an outage),
    /// and the diagnosis table (empty when a signal ended the round).
    Once(bool, String),
}

pub struct Daemon {
    cfg: Config,
    args: Args,
    once: bool,
    watches: Vec<Uplink>,
    /// The kernel's view (rtnetlink) for every watch.
    eyes: Eyes,
    /// What stopped watches left: terminated and read from the loop, never waited for.
    reaper: Reaper,
    signals: Signals,
    notify: Option<Notifier>,
    /// Why $NOTIFY_SOCKET was ignored, logged once the log is open.
    notify_trouble: Option<String>,
    /// When the reports are rewritten next without a change (None: at once).
    status_due: Option<Instant>,
    status_every: Duration,
    /// The status and metrics files this process owns, in that order.
    owned: [Option<Owned>; 2],
    /// Set by a reload: rewrite the reports at once, whatever the rounds say.
    report_now: bool,
    next_keepalive: Option<Instant>,
    stall_after: Option<u64>,
    /// The inhibit files of the watches, watched for changes (inotify); None when there is
    /// none, or inotify could not be had (each round looks at the file then).
    files: Option<FileWatch>,
    /// The poll set, its owners and what was ready: kept between turns, so that a turn
    /// allocates nothing.
    poll: PollSet,
    owners: Vec<Owner>,
    /// What the poll set was built from (`survey`).
    poll_key: PollKey,
    /// Per watch, what poll() found ready for it; `ready_set`: some entry may be set (the
    /// next wait clears them).
    ready: Vec<Ready>,
    ready_set: bool,
}

/// What the poll set was built from: whether it may be kept at all (no child output, every
/// watch plain, and nothing since that replaced the inhibit files' watch: `files_moved`),
/// and every watch's echo sockets.
#[derive(Default)]
struct PollKey {
    kept: bool,
    plain: Vec<[RawFd; 2]>,
}

fn open_watches(cfg: &Config, now: Instant) -> Result<Vec<Uplink>, Error> {
    cfg.watches
        .iter()
        .map(|w| {
            Uplink::open(w.clone(), now).map_err(|NoSocket(why, errno)| Error::NoSocket {
                iface: w.iface.clone(),
                why,
                errno,
            })
        })
        .collect()
}

impl Daemon {
    /// Opens every socket and the signal fd: everything that can fail for lack of privilege
    /// fails here, before a daemon detaches.
    pub fn new(cfg: Config, args: Args, once: bool) -> Result<Daemon, Error> {
        let signals = Signals::install().map_err(|err| Error::Io {
            what: "signalfd",
            err,
        })?;
        let watches = open_watches(&cfg, Instant::now())?;
        let eyes = Eyes::open(&watches).map_err(|err| Error::Io {
            what: "netlink",
            err,
        })?;
        // A malformed $NOTIFY_SOCKET is not fatal: libsystemd's sd_notify ignores it too, and
        // a watchdog that refuses to start over a stray variable protects nothing.
        let (notify, notify_trouble) = match Notifier::from_env() {
            Ok(n) => (n, None),
            Err(e) => (
                None,
                Some(format!("NOTIFY_SOCKET: {e}; going on without sd_notify")),
            ),
        };
        let stall_after = std::env::var(STALL_ENV).ok().and_then(|v| v.parse().ok());
        let status_every = std::env::var(STATUS_EVERY_ENV)
            .ok()
            .and_then(|v| v.parse().ok())
            .map_or(STATUS_EVERY, Duration::from_millis);
        Ok(Daemon {
            cfg,
            args,
            once,
            watches,
            eyes,
            reaper: Reaper::default(),
            signals,
            notify,
            notify_trouble,
            status_due: None,
            status_every,
            owned: [None, None],
            report_now: false,
            next_keepalive: None,
            stall_after,
            files: None,
            poll: PollSet::default(),
            owners: Vec::new(),
            poll_key: PollKey::default(),
            ready: Vec::new(),
            ready_set: false,
        })
    }

    fn notify(&self, log: &mut Log, msg: &str) {
        if let Some(n) = &self.notify {
            if let Err(e) = n.send(msg) {
                log.limited(Instant::now(), Level::Warning, format!("sd_notify: {e}"));
            }
        }
    }

    fn summary(&self) -> String {
        let parts: Vec<String> = self
            .watches
            .iter()
            .map(|w| format!("{} {}", w.cfg.iface, w.state()))
            .collect();
        parts.join(", ")
    }

    pub fn run(&mut self, mut log: Log) -> Result<Exit, Error> {
        // The kernel's view first: the first round knows the interface and its gateway.
        self.eyes
            .sync(&mut self.watches, &mut log, eyes::SYNC_TIMEOUT);
        let now = Instant::now();
        if let Some(why) = self.notify_trouble.take() {
            log.log(Level::Warning, &why);
        }
        if !self.once {
            self.claim_reports(&mut log);
            self.watch_files(&mut log);
        }
        for w in &mut self.watches {
            w.start(now, &mut log, self.once);
        }
        if !self.once {
            self.notify(&mut log, &format!("READY=1\nSTATUS={}", self.summary()));
            if let Some(period) = self.notify.as_ref().and_then(|n| n.watchdog) {
                self.next_keepalive = Some(now + period / 2);
            }
        }
        let mut buf = [0u8; RECV_BUF];
        self.ready.clear();
        self.ready.resize(self.watches.len(), Ready::default());
        let mut woke = Woke::default();
        loop {
            let now = Instant::now();
            if !self.reaper.is_empty() {
                self.reaper.turn(now, &mut log);
            }
            log.tick(now);
            let more = self
                .eyes
                .turn(now, &mut log, &mut self.watches, woke.kernel);
            if woke.files {
                self.files_changed(now, &mut log);
            }
            if !self.stalled() {
                for (w, r) in self.watches.iter_mut().zip(&self.ready) {
                    w.turn(now, &mut log, &mut buf, *r, self.once);
                }
            }
            if self.once {
                if self.watches.iter().all(|w| w.once_result.is_some()) {
                    let rows: Vec<_> = self.watches.iter().flat_map(Uplink::once_rows).collect();
                    return Ok(Exit::Once(
                        self.watches.iter().all(|w| w.once_result == Some(true)),
                        crate::explain::render(&rows),
                    ));
                }
            } else {
                self.report(now, &mut log);
                self.keepalive(now, &mut log);
            }
            woke = self.wait(now, more)?;
            if woke.signals {
                if let Some(exit) = self.handle_signals(&mut log)? {
                    return Ok(exit);
                }
                if self.ready.len() != self.watches.len() {
                    // a reload changed the set: what was ready belonged to the old one
                    self.ready.clear();
                    self.ready.resize(self.watches.len(), Ready::default());
                }
            }
        }
    }

    /// Watches the inhibit files of every watch (inotify), so that no round has to look at
    /// them; without the watch (inotify refused), every round does, as it did before.
    fn watch_files(&mut self, log: &mut Log) {
        self.files_moved();
        self.files = None;
        let paths: Vec<&std::path::Path> = self
            .watches
            .iter()
            .filter_map(|w| w.cfg.machine.inhibit_file.as_deref())
            .collect();
        if !paths.is_empty() {
            match FileWatch::open(paths) {
                Ok(fw) if fw.armed() => self.files = Some(fw),
                Ok(_) => log.log(
                    Level::Warning,
                    "inhibit file: no directory of its path can be watched; every round looks at it",
                ),
                Err(e) => log.log(
                    Level::Warning,
                    &format!("inhibit file: inotify: {e}; every round looks at it instead"),
                ),
            }
        }
        let watched = self.files.is_some();
        for w in &mut self.watches {
            w.set_inhibit_watched(watched);
        }
    }

    /// The inotify fd was readable: every watch reads its inhibit file again if it may have
    /// changed (a changed stamp is what makes it parse the file).
    fn files_changed(&mut self, now: Instant, log: &mut Log) {
        let Some(fw) = self.files.as_mut() else {
            return;
        };
        match fw.changed() {
            Ok(false) => {}
            Ok(true) => {
                for w in &mut self.watches {
                    w.inhibit_changed(now, log);
                }
            }
            Err(e) => {
                log.log(
                    Level::Warning,
                    &format!("inhibit file: inotify: {e}; every round looks at it instead"),
                );
                self.files_moved();
                self.files = None;
                for w in &mut self.watches {
                    w.set_inhibit_watched(false);
                    w.inhibit_changed(now, log);
                }
            }
        }
    }

    /// Takes (or keeps) the lock of every report file the configuration names, and lets go of
    /// those it no longer names (removing them: nobody would update them). A file whose lock
    /// another netheal holds is left to it for as long as it lives: writing it too would make
    /// its counters go backwards and `--status` show a mix.
    fn claim_reports(&mut self, log: &mut Log) {
        let wanted = [
            ("status", self.cfg.status_file.clone(), "--status-file"),
            ("metrics", self.cfg.metrics_file.clone(), "--metrics-file"),
        ];
        for (i, (what, path, option)) in wanted.into_iter().enumerate() {
            let slot = &mut self.owned[i];
            if slot.as_ref().map(|o| &o.path) == path.as_ref() {
                continue;
            }
            if let Some(old) = slot.take() {
                old.remove();
            }
            let Some(path) = path else { continue };
            let lock_path = lock::beside(&path);
            match lock::try_lock(&lock_path) {
                Ok(Claim::Held(lock)) => *slot = Some(Owned { path, _lock: lock }),
                Ok(Claim::Busy(pid)) => log.log(
                    Level::Warning,
                    &format!(
                        "{}: kept by another netheal ({}, lock {}); not writing a {what} file (give each instance its own {option})",
                        path.display(),
                        lock::describe(pid),
                        lock_path.display()
                    ),
                ),
                Err(e) => log.log(
                    Level::Error,
                    &format!("{}: cannot lock: {e}; not writing a {what} file", path.display()),
                ),
            }
        }
    }

    /// On a clean stop: a status or metrics file left behind would report a watchdog that
    /// is no longer running. Only files this process owns (their lock held) are removed.
    fn remove_reports(&mut self) {
        for o in self.owned.iter_mut().filter_map(Option::take) {
            o.remove();
        }
    }

    fn stalled(&self) -> bool {
        self.stall_after
            .is_some_and(|n| self.watches.iter().map(Uplink::rounds).sum::<u64>() >= n)
    }

    /// Rewrites the status and metrics files (and systemd's STATUS=) after a state change or a
    /// reload, and otherwise at the first turn `status_every` after the last rewrite.
    #[inline(always)]
    fn report(&mut self, now: Instant, log: &mut Log) {
        let changed = self.watches.iter().any(|w| w.changed);
        if rewrite_due(changed || self.report_now, self.status_due, now) {
            self.rewrite(now, changed, log); // nearly every turn has nothing (issue 9)
        }
    }

    #[cold]
    fn rewrite(&mut self, now: Instant, changed: bool, log: &mut Log) {
        self.status_due = now.checked_add(self.status_every);
        self.report_now = false;
        for w in &mut self.watches {
            w.changed = false;
        }
        if changed {
            self.notify(log, &format!("STATUS={}", self.summary()));
        }
        if self.owned.iter().all(Option::is_none) {
            return;
        }
        let snaps: Vec<report::Snapshot> = self.watches.iter().map(|w| w.snapshot(now)).collect();
        let wall = crate::civil::unix_now();
        let texts = [
            report::status_text(&snaps, std::process::id(), wall),
            report::metrics_text(&snaps),
        ];
        for (owned, text) in self.owned.iter().zip(texts) {
            if let Some(o) = owned {
                if let Err(e) = report::write_atomic(&o.path, &text) {
                    log.limited(now, Level::Error, format!("{}: {e}", o.path.display()));
                }
            }
        }
    }

    /// WATCHDOG=1 every half period, but only while no timer is overdue: a loop that is not
    /// making progress must let systemd restart it. (`next_keepalive` is set only when
    /// systemd asked for the watchdog: without it, the one check is that it is None.)
    #[inline(always)]
    fn keepalive(&mut self, now: Instant, log: &mut Log) {
        if self.next_keepalive.is_some_and(|due| now >= due) {
            self.keep_alive(now, log);
        }
    }

    #[cold]
    fn keep_alive(&mut self, now: Instant, log: &mut Log) {
        let Some(period) = self.notify.as_ref().and_then(|n| n.watchdog) else {
            return;
        };
        let overdue = self
            .watches
            .iter()
            .filter_map(Uplink::poll_timeout)
            .any(|t| t + OVERDUE < now);
        if !overdue {
            self.notify(log, "WATCHDOG=1");
        }
        self.next_keepalive = Some(now + period / 2);
    }

    /// What a wait needs to know, in one pass over the watches (every turn, issue 9): the
    /// earliest deadline of the keepalive, the kernel's cache, the reaper and (unless
    /// stalled) every watch; and whether the poll set built last holds what it would hold
    /// now: every watch has only its echo sockets, the same as then, and the daemon's own
    /// inputs are the same (no child output, the same inhibit files' watch). The steady
    /// state: a turn then builds nothing.
    fn survey(&self) -> (Option<Instant>, bool) {
        let mut t = earliest(self.next_keepalive, self.eyes.poll_timeout());
        let key = &self.poll_key;
        let mut kept = key.kept && key.plain.len() == self.watches.len();
        if !self.reaper.is_empty() {
            t = earliest(t, self.reaper.poll_timeout()); // nearly always it is empty
            kept = false;
        }
        let stalled = self.stalled();
        for (k, w) in self.watches.iter().enumerate() {
            if !stalled {
                t = earliest(t, w.poll_timeout());
            }
            kept = kept && w.plain_inputs() == Some(key.plain[k]);
        }
        (t, kept)
    }

    /// Sleeps in poll() until an input is ready or the earliest deadline (not at all when
    /// `more` netlink input waits); says which inputs: signals, netlink, the inhibit files,
    /// and (in `self.ready`) each watch's. `now` is the turn's: a deadline not after it is
    /// due without another look at the clock.
    fn wait(&mut self, now: Instant, more: bool) -> Result<Woke, Error> {
        let (deadline, kept) = self.survey();
        let timeout: i32 = match deadline {
            _ if more => 0,
            None => -1,
            Some(t) if t <= now => 0,
            Some(t) => poll_ms(t.saturating_nanos_since(Instant::now())),
        };
        if !kept {
            self.build_poll_set();
        } else if cfg!(debug_assertions) {
            // The tests run this build: a kept set must be what a new one would be.
            let kept = self.poll_entries();
            self.build_poll_set();
            assert_eq!(kept, self.poll_entries(), "a kept poll set went stale");
        }
        let left = self
            .poll
            .wait(timeout)
            .map_err(|err| Error::Io { what: "poll", err })?;
        if self.ready_set {
            self.ready.fill(Ready::default()); // as many as watches (run keeps them so)
            self.ready_set = false;
        }
        let mut woke = Woke::default();
        if left > 0 {
            // else the deadline (half of a healthy round's turns), or EINTR
            self.ready_set = dispatch(
                &self.owners,
                self.poll.events(),
                left,
                &mut self.ready,
                &mut woke,
            );
        }
        Ok(woke)
    }

    /// The inhibit files' watch is replaced or dropped: the next wait builds its poll set
    /// anew.
    fn files_moved(&mut self) {
        self.poll_key.kept = false;
    }

    /// The poll set's fds and what each is (the debug build's check of `survey`).
    fn poll_entries(&self) -> Vec<((RawFd, i16), Owner)> {
        (0..self.owners.len())
            .map(|k| (self.poll.entry(k), self.owners[k]))
            .collect()
    }

    /// Builds the poll set: the signals, the kernel's socket, the inhibit files' watch,
    /// every watch's inputs, the reaper's pipes; and remembers whether it may be kept.
    fn build_poll_set(&mut self) {
        self.poll.clear();
        self.owners.clear();
        self.poll.push(self.signals.as_fd());
        self.owners.push(Owner::Signals);
        self.poll.push(self.eyes.fd());
        self.owners.push(Owner::Kernel);
        if let Some(fw) = &self.files {
            self.poll.push(fw.fd());
            self.owners.push(Owner::Files);
        }
        for (i, w) in self.watches.iter().enumerate() {
            let (poll, owners) = (&mut self.poll, &mut self.owners);
            w.poll_inputs(|input, fd| {
                // A connecting TCP socket says it is done with POLLOUT (connect(2)).
                match input {
                    Input::Stream { write: true, .. } => poll.push_writable(fd),
                    _ => poll.push(fd),
                };
                owners.push(Owner::Watch(i, input));
            });
        }
        if !self.reaper.is_empty() {
            for fd in self.reaper.output_fds() {
                self.poll.push(fd.as_fd());
                self.owners.push(Owner::Reaper);
            }
        }
        let key = &mut self.poll_key;
        key.plain.clear();
        key.kept = self.reaper.is_empty();
        for w in &self.watches {
            match w.plain_inputs() {
                Some(p) => key.plain.push(p),
                None => key.kept = false,
            }
        }
    }

    fn handle_signals(&mut self, log: &mut Log) -> Result<Option<Exit>, Error> {
        while let Some(sig) = self.signals.read().map_err(|err| Error::Io {
            what: "signalfd",
            err,
        })? {
            let now = Instant::now();
            log.tick(now);
            match sig {
                Sig::SIGTERM | Sig::SIGINT => {
                    for w in &self.watches {
                        log.log(
                            Level::Notice,
                            &format!("{}: stopping on {}", w.cfg.iface, sig.as_str()),
                        );
                    }
                    self.notify(log, "STOPPING=1");
                    for w in &mut self.watches {
                        w.stop(now, &mut self.reaper);
                    }
                    // One grace for all of them together, not one per process.
                    self.reaper.stop_all(STOP_GRACE, log);
                    if !self.once {
                        self.remove_reports();
                    }
                    return Ok(Some(if self.once {
                        Exit::Once(false, String::new())
                    } else {
                        Exit::Stopped
                    }));
                }
                Sig::SIGUSR1 => {
                    for w in &self.watches {
                        w.say_status(now, log);
                    }
                }
                Sig::SIGCHLD => self.reap_children(now),
                Sig::SIGHUP if !self.once => self.reload(now, log),
                _ => {}
            }
        }
        Ok(None)
    }

    /// On SIGCHLD: one reaper for every child, dispatching by pid. As PID 1 (a container's,
    /// an initramfs') every orphan of the namespace is our child too: reap all that ended
    /// (waitpid(-1)) and hand ours their status, so that no zombie piles up and none of our
    /// own statuses is taken by a second waitpid. Otherwise only our own pids are waited for.
    fn reap_children(&mut self, now: Instant) {
        if !process::is_init() {
            for w in &mut self.watches {
                w.reap(now);
            }
            self.reaper.reap();
            return;
        }
        for (pid, status) in process::reap(&[], true) {
            let Ok(status) = status else { continue };
            let ours = self
                .watches
                .iter_mut()
                .any(|w| w.child_exited(now, pid, status));
            if !ours {
                // not fatal: either a stopped watch's (the reaper forgets it) or an orphan
                // of the namespace, whose reaping was all it needed
                self.reaper.child_exited(pid);
            }
        }
    }

    /// SIGHUP: read the configuration again; swap it in only if all of it is valid and every
    /// new interface's sockets opened. Unchanged interfaces keep their state.
    fn reload(&mut self, now: Instant, log: &mut Log) {
        self.notify(
            log,
            &format!("RELOADING=1\nMONOTONIC_USEC={}", monotonic_usec()),
        );
        match self.try_reload(now, log) {
            Ok(msg) => {
                log.log(Level::Notice, &msg);
                // The files may have moved, and a removed interface must leave them now, not
                // when the remaining watches have run enough rounds.
                self.claim_reports(log);
                self.watch_files(log);
                self.report_now = true;
            }
            Err(e) => log.log(
                Level::Error,
                &format!("reload failed, keeping the running configuration: {e}"),
            ),
        }
        self.notify(log, &format!("READY=1\nSTATUS={}", self.summary()));
    }

    fn try_reload(&mut self, now: Instant, log: &mut Log) -> Result<String, String> {
        let new = config::resolve(&self.args).map_err(|e| e.to_string())?;
        // An explicitly named heal step whose tool is gone is refused like a bad file.
        if let Some(crate::backend::Finding::Error(e)) =
            crate::backend::check_watches(&crate::backend::root(), &new.watches)
                .into_iter()
                .find(|f| matches!(f, crate::backend::Finding::Error(_)))
        {
            return Err(e);
        }
        let keep = |w: &config::IfaceConfig| self.watches.iter().position(|old| old.cfg == *w);
        // Open everything new first: a failure leaves the running set untouched.
        let mut fresh = Vec::new();
        for wc in new.watches.iter().filter(|w| keep(w).is_none()) {
            let w = Uplink::open(wc.clone(), now).map_err(|NoSocket(why, errno)| {
                let iface = wc.iface.clone();
                Error::NoSocket { iface, why, errno }.to_string()
            })?;
            fresh.push(w);
        }
        let (mut added, mut changed, mut unchanged) = (0, 0, 0);
        let mut old: Vec<Option<Uplink>> = self.watches.drain(..).map(Some).collect();
        let mut fresh = fresh.into_iter();
        let mut next = Vec::new();
        for wc in &new.watches {
            let same = old
                .iter()
                .position(|o| o.as_ref().is_some_and(|o| o.cfg == *wc));
            match same.and_then(|i| old[i].take()) {
                Some(mut w) => {
                    unchanged += 1;
                    w.review_backends(log); // SIGHUP looks at the back-ends again
                    next.push(w);
                }
                None => {
                    let mut w = fresh
                        .next()
                        .expect("one fresh watch per new or changed interface");
                    if old
                        .iter()
                        .any(|o| o.as_ref().is_some_and(|o| o.cfg.iface == wc.iface))
                    {
                        changed += 1;
                    } else {
                        added += 1;
                    }
                    w.start(now, log, false);
                    next.push(w);
                }
            }
        }
        let mut removed = 0;
        for mut w in old.into_iter().flatten() {
            w.stop(now, &mut self.reaper);
            if !new.watches.iter().any(|n| n.iface == w.cfg.iface) {
                removed += 1;
                log.log(
                    Level::Notice,
                    &format!("{}: no longer watched", w.cfg.iface),
                );
            }
        }
        if new.log != self.cfg.log {
            *log = Log::open(new.log);
        }
        self.watches = next;
        self.eyes.rewatch(&mut self.watches, log);
        self.cfg = new;
        let file = config::describe_files(&self.cfg).unwrap_or("the command line".into());
        Ok(format!(
            "reloaded {file}: {} interfaces (added {added}, removed {removed}, changed {changed}, unchanged {unchanged})",
            self.watches.len()
        ))
    }
}

/// Hands what poll(2) found ready (`events`, entry by entry) to the owners of the entries:
/// the daemon's own inputs to `woke`, each watch's to `ready` (cleared before). `left` is
/// poll(2)'s count of the entries with something to report: the look ends at the last of
/// them. Returns whether some watch's input was ready.
fn dispatch(
    owners: &[Owner],
    events: impl DoubleEndedIterator<Item = bool> + ExactSizeIterator,
    mut left: usize,
    ready: &mut [Ready],
    woke: &mut Woke,
) -> bool {
    let mut set = false;
    // From the end: the watches' inputs, what nearly every wake is for, come last.
    for (&owner, readable) in owners.iter().zip(events).rev() {
        if !readable {
            continue;
        }
        match owner {
            Owner::Signals => woke.signals = true,
            Owner::Kernel => woke.kernel = true,
            Owner::Files => woke.files = true,
            Owner::Reaper => {}
            Owner::Watch(i, input) => {
                let r = &mut ready[i];
                match input {
                    Input::Sock(s) => r.socks[s] = true,
                    Input::Stream { target, .. } => {
                        r.streams |= 1u32.checked_shl(target as u32).unwrap_or(0)
                    }
                    Input::HealOutput => r.heal_output = true,
                    Input::HookOutput => r.hook_output = true,
                    Input::L2 => r.l2 = true,
                }
                set = true;
            }
        }
        left -= 1;
        if left == 0 {
            break;
        }
    }
    set
}

/// Whether the reports are rewritten this turn: at once after a change (`now_wanted`: a state
/// change, a reload) and the first time, and otherwise once `due` (the last rewrite plus
/// `STATUS_EVERY`) has come. A steady round does not rewrite them: that was 96–136 k
/// instructions every 6 rounds.
fn rewrite_due(now_wanted: bool, due: Option<Instant>, now: Instant) -> bool {
    now_wanted || due.is_none_or(|t| now >= t)
}

/// poll(2)'s timeout for `ns` nanoseconds, in milliseconds rounded up: waking a fraction of a
/// millisecond early would find nothing due and spin until it is. From the nanoseconds
/// themselves: making a `Duration` of them and taking it apart costs more every turn, and a
/// u128 division a call (issue 9).
fn poll_ms(ns: u64) -> i32 {
    // Saturating: within 999_999 of u64::MAX, it is i32::MAX either way.
    (ns.saturating_add(999_999) / 1_000_000).min(i32::MAX as u64) as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_poll_timeout_is_rounded_up_to_the_millisecond_and_capped() {
        assert_eq!(poll_ms(0), 0);
        assert_eq!(poll_ms(1), 1, "never early: 1 ns waits 1 ms");
        assert_eq!(poll_ms(999_999), 1);
        assert_eq!(poll_ms(1_000_000), 1);
        assert_eq!(poll_ms(1_000_001), 2);
        assert_eq!(poll_ms(2_000_000_001), 2001);
        assert_eq!(poll_ms(86_400_000_000_000), 86_400_000);
        assert_eq!(poll_ms(u64::MAX), i32::MAX);
        assert_eq!(poll_ms(i32::MAX as u64 * 1_000_000), i32::MAX);
        assert_eq!(poll_ms(i32::MAX as u64 * 1_000_000 + 1), i32::MAX);
    }

    #[test]
    fn the_poll_timeout_from_nanoseconds_is_the_one_from_the_duration() {
        // What the loop computed before it took the nanoseconds: from the Duration between
        // the deadline and now, whole seconds and the rest rounded up apart.
        let by_duration = |d: Duration| -> i32 {
            let ms = d
                .as_secs()
                .saturating_mul(1000)
                .saturating_add(u64::from(d.subsec_nanos()).div_ceil(1_000_000));
            ms.min(i32::MAX as u64) as i32
        };
        let now = Instant::now();
        let ns = [
            0,
            1,
            999_999,
            1_000_000,
            1_000_001,
            999_999_999,
            1_000_000_000,
            1_000_000_001,
            1_999_000_001,
            20_000_000,
            19_999_999,
            86_400_000_000_000,
            i32::MAX as u64 * 1_000_000,
            i32::MAX as u64 * 1_000_000 + 1,
            u64::MAX / 2,
        ];
        for n in ns {
            let t = now + Duration::from_nanos(n);
            assert_eq!(
                poll_ms(t.saturating_nanos_since(now)),
                by_duration(t.saturating_duration_since(now)),
                "{n} ns"
            );
            // A deadline passed: zero either way, never negative.
            assert_eq!(poll_ms(now.saturating_nanos_since(t)), 0, "{n} ns ago");
        }
    }

    #[test]
    fn every_ready_entry_reaches_its_owner_whatever_the_count_stops_the_look_at() {
        // What the loop did before it counted: every entry looked at, in order.
        fn every_entry(owners: &[Owner], events: &[bool], ready: &mut [Ready], woke: &mut Woke) {
            for (owner, _) in owners.iter().zip(events).filter(|(_, &e)| e) {
                match *owner {
                    Owner::Signals => woke.signals = true,
                    Owner::Kernel => woke.kernel = true,
                    Owner::Files => woke.files = true,
                    Owner::Reaper => {}
                    Owner::Watch(i, Input::Sock(s)) => ready[i].socks[s] = true,
                    Owner::Watch(i, Input::Stream { target, .. }) => {
                        ready[i].streams |= 1u32.checked_shl(target as u32).unwrap_or(0)
                    }
                    Owner::Watch(i, Input::HealOutput) => ready[i].heal_output = true,
                    Owner::Watch(i, Input::HookOutput) => ready[i].hook_output = true,
                    Owner::Watch(i, Input::L2) => ready[i].l2 = true,
                }
            }
        }
        let owners = [
            Owner::Signals,
            Owner::Kernel,
            Owner::Files,
            Owner::Watch(0, Input::Sock(0)),
            Owner::Watch(0, Input::Sock(1)),
            Owner::Watch(1, Input::Sock(1)),
            Owner::Watch(
                1,
                Input::Stream {
                    target: 3,
                    write: true,
                },
            ),
            Owner::Watch(
                1,
                Input::Stream {
                    target: 40,
                    write: false,
                },
            ),
            Owner::Watch(1, Input::HealOutput),
            Owner::Watch(0, Input::HookOutput),
            Owner::Watch(1, Input::L2),
            Owner::Reaper,
        ];
        let show = |r: &[Ready], w: &Woke| format!("{r:?} {w:?}");
        for bits in 0u32..1 << owners.len() {
            let events: Vec<bool> = (0..owners.len()).map(|k| bits >> k & 1 == 1).collect();
            let (mut want, mut want_woke) = ([Ready::default(); 2], Woke::default());
            every_entry(&owners, &events, &mut want, &mut want_woke);
            let left = events.iter().filter(|&&e| e).count();
            if left == 0 {
                continue; // the loop does not look then
            }
            let (mut got, mut got_woke) = ([Ready::default(); 2], Woke::default());
            let set = dispatch(
                &owners,
                events.iter().copied(),
                left,
                &mut got,
                &mut got_woke,
            );
            assert_eq!(show(&got, &got_woke), show(&want, &want_woke), "{bits:#b}");
            let watch_entry = events[3..11].iter().any(|&e| e);
            assert_eq!(set, watch_entry, "{bits:#b}");
        }
    }

    #[test]
    fn reports_are_rewritten_on_a_change_and_otherwise_once_a_minute() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let due = t0.checked_add(STATUS_EVERY);
        assert!(rewrite_due(false, None, t0), "the first time");
        // Steady rounds every 10 s (the default interval), or every 10 ms: no rewrite until
        // a minute has passed since the last.
        for k in 1..6 {
            assert!(!rewrite_due(false, due, t0 + s(10 * k)));
        }
        assert!(!rewrite_due(false, due, t0 + Duration::from_millis(59_990)));
        assert!(rewrite_due(false, due, t0 + s(60)));
        assert!(rewrite_due(true, due, t0 + s(1)), "a state change");
        assert!(rewrite_due(true, due, t0), "two changes in one second");
    }
}
