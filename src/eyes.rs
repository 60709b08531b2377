//! The daemon's eyes on the kernel: the one rtnetlink socket, the cache of what it reports
//! (`kernel`), and the dispatch of each change to the watch it concerns (cache slot i is
//! watch i). Between two turns nothing here costs a system call: the socket is read only
//! when poll() says it is readable, or when the cache has a dump request to send.
#![forbid(unsafe_code)]

use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::time::Duration;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use crate::kernel::{Kernel, Snapshot};
use crate::log::{Level, Log};
use crate::mono::Instant;
use crate::sys::netlink::{Netlink, RCVBUF};
use crate::watch::Uplink;
use crate::wire::netlink::Change;

/// For netheal's own tests: the netlink receive buffer in bytes, so a flood overflows it.
const RCVBUF_ENV: &str = "NETHEAL_TEST_NETLINK_RCVBUF";
/// How long the start waits for the first full dump before watching without it.
pub const SYNC_TIMEOUT: Duration = Duration::from_secs(3);
/// After a `link` step: how long the kernel gets to bring back what it restores itself,
/// and when netheal checks that what it put back is there.
const RESTORE_AFTER: Duration = Duration::from_millis(200);
const VERIFY_AFTER: Duration = Duration::from_secs(1);

/// Where the restore after a `link` step stands, per watch.
#[derive(Debug, Default)]
enum Restore {
    #[default]
    Idle,
    /// The step runs: the snapshot from before it is kept.
    Frozen(Snapshot),
    Due(Instant, Snapshot),
    Verify(Instant, Snapshot),
}

pub struct Eyes {
    pub kernel: Kernel,
    nl: Netlink,
    /// Overflows already logged.
    lost_seen: u64,
    /// Per watch with a `link` step: its configured addresses and routes as of the last
    /// change, and the restore after a bounce.
    snapshots: Vec<Option<Snapshot>>,
    restore: Vec<Restore>,
    /// Some restore is not idle (as of the end of the last `restore`).
    restoring: bool,
    seq: u32,
}

fn cache_for(watches: &[Uplink]) -> Kernel {
    Kernel::new(watches.iter().map(|w| (w.cfg.iface.as_str(), w.cfg.table)))
}

impl Eyes {
    pub fn open(watches: &[Uplink]) -> io::Result<Eyes> {
        let rcvbuf = std::env::var(RCVBUF_ENV)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(RCVBUF);
        Ok(Eyes {
            kernel: cache_for(watches),
            nl: Netlink::open(rcvbuf)?,
            lost_seen: 0,
            snapshots: Vec::new(),
            restore: Vec::new(),
            restoring: false,
            seq: 0,
        })
    }

    /// After a reload changed the set of watches: a new cache for them, filled by new dumps.
    pub fn rewatch(&mut self, watches: &mut [Uplink], log: &mut Log) {
        self.kernel = cache_for(watches);
        self.restore.clear();
        self.sync(watches, log, SYNC_TIMEOUT);
    }

    /// Start-up (before the loop runs, and after a reload): reads until every dump has
    /// ended once, or `timeout`; then every watch gets its facts.
    pub fn sync(&mut self, watches: &mut [Uplink], log: &mut Log, timeout: Duration) {
        let start = Instant::now();
        while !self.kernel.synced() {
            let now = Instant::now();
            let left = timeout.saturating_sub(now - start);
            if left.is_zero() {
                log.log(
                    Level::Warning,
                    "netlink: no complete view of the kernel's interfaces and routes yet; going on without it",
                );
                break;
            }
            if let Err(e) = self.nl.pump(&mut self.kernel, now) {
                log.limited(now, Level::Error, format!("netlink: {e}"));
            }
            let ms = left.as_millis().clamp(1, 100) as u16;
            let mut fds = [PollFd::new(self.nl.as_fd(), PollFlags::POLLIN)];
            let _ = poll(&mut fds, PollTimeout::from(ms)); // not fatal: EINTR, then read again
        }
        // Start-up changes (every interface "appearing") are facts, not news.
        while self.kernel.poll_event().is_some() {}
        self.refresh(watches);
    }

    fn refresh(&mut self, watches: &mut [Uplink]) {
        let synced = self.kernel.synced();
        self.snapshots.resize(watches.len(), None);
        self.restore.resize_with(watches.len(), Restore::default);
        for (slot, w) in watches.iter_mut().enumerate().take(self.kernel.slots()) {
            w.kernel_facts(self.kernel.iface(slot), synced);
            if w.bounces() && matches!(self.restore[slot], Restore::Idle) {
                self.snapshots[slot] = self.kernel.snapshot(slot);
            }
        }
    }

    /// The `link` step's bounce removes static routes, the default route and IPv6 global
    /// addresses, and brings back only the connected route: put back what was configured
    /// before it and is missing now, then check it is there.
    fn restore(&mut self, now: Instant, log: &mut Log, watches: &mut [Uplink]) {
        // Every turn asks: nearly always no watch bounces and none restores (issue 9).
        if self.restore_idle(watches) {
            return;
        }
        self.restore.resize_with(watches.len(), Restore::default);
        for (slot, w) in watches.iter_mut().enumerate().take(self.kernel.slots()) {
            let (bouncing, bounced) = w.take_bounce();
            let state = std::mem::take(&mut self.restore[slot]);
            self.restore[slot] = match state {
                Restore::Idle if bouncing || bounced => {
                    let snap = self.snapshots[slot].take().unwrap_or_default();
                    if bounced {
                        Restore::Due(now + RESTORE_AFTER, snap)
                    } else {
                        Restore::Frozen(snap)
                    }
                }
                Restore::Frozen(snap) if bounced => Restore::Due(now + RESTORE_AFTER, snap),
                Restore::Due(t, snap) if t <= now => {
                    let missing = self.kernel.missing(slot, &snap);
                    if !missing.is_empty() {
                        let what: Vec<String> = missing.iter().map(describe).collect();
                        log.log(
                            Level::Notice,
                            &format!(
                                "{}: link: putting back what the bounce removed: {}",
                                w.cfg.iface,
                                what.join(", ")
                            ),
                        );
                        for c in &missing {
                            self.seq = self.seq.wrapping_add(1);
                            // Our own range, apart from the cache's dump numbers.
                            if let Err(e) = self.nl.change(c, 0x8000_0000 | self.seq) {
                                log.limited(now, Level::Error, format!("netlink: {e}"));
                            }
                        }
                    }
                    Restore::Verify(now + VERIFY_AFTER, snap)
                }
                Restore::Verify(t, snap) if t <= now => {
                    let missing = self.kernel.missing(slot, &snap);
                    if !missing.is_empty() {
                        let what: Vec<String> = missing.iter().map(describe).collect();
                        log.log(
                            Level::Warning,
                            &format!(
                                "{}: link: could not put back {}",
                                w.cfg.iface,
                                what.join(", ")
                            ),
                        );
                    }
                    Restore::Idle
                }
                other => other,
            };
        }
        self.restoring = self.restore.iter().any(|r| !matches!(r, Restore::Idle));
    }

    /// Nothing to do without a message: no dump to ask for or due again, no restore under
    /// way, no watch bouncing.
    fn quiet(&self, now: Instant, watches: &[Uplink]) -> bool {
        !self.kernel.wants_request()
            && self.kernel.poll_timeout().is_none_or(|t| now < t)
            && self.restore_idle(watches)
    }

    /// No restore under way and no watch bouncing: `restore` has nothing to do.
    fn restore_idle(&self, watches: &[Uplink]) -> bool {
        !self.restoring
            && self.restore.len() == watches.len()
            && !watches.iter().any(Uplink::bounce_news)
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.nl.as_fd()
    }

    /// When a dump must be asked for again, or a restore is due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let mut t = self.kernel.poll_timeout();
        // Every turn asks; nearly always no restore is under way (issue 9). `restoring` is
        // what `restore` found at its end, and nothing else makes a restore due.
        debug_assert!(
            self.restoring || self.restore.iter().all(|r| matches!(r, Restore::Idle)),
            "a restore is under way unannounced"
        );
        if !self.restoring {
            return t;
        }
        for r in &self.restore {
            if let Restore::Due(at, _) | Restore::Verify(at, _) = r {
                t = crate::watch::earliest(t, Some(*at));
            }
        }
        t
    }

    /// Reads what is waiting (a bounded amount; returns whether more may be waiting) and
    /// hands every change to its watch.
    pub fn turn(
        &mut self,
        now: Instant,
        log: &mut Log,
        watches: &mut [Uplink],
        readable: bool,
    ) -> bool {
        if !readable && self.quiet(now, watches) {
            return false; // every turn asks; nearly always there is nothing (issue 9)
        }
        self.kernel.handle_timeout(now);
        self.restore(now, log, watches);
        if !readable && !self.kernel.wants_request() {
            return false;
        }
        let more = match self.nl.pump(&mut self.kernel, now) {
            Ok(more) => more,
            Err(e) => {
                log.limited(now, Level::Error, format!("netlink: {e}"));
                false
            }
        };
        let lost = self.nl.counters.overflows + self.nl.counters.truncated;
        if lost > self.lost_seen {
            self.lost_seen = lost;
            log.limited(
                now,
                Level::Warning,
                "netlink: lost events (receive buffer overflow); re-reading the kernel's state"
                    .to_string(),
            );
        }
        let synced = self.kernel.synced();
        while let Some((slot, ev)) = self.kernel.poll_event() {
            if let Some(w) = watches.get_mut(slot) {
                w.kernel_event(now, log, &ev, self.kernel.iface(slot), synced);
            }
        }
        // Facts that change without an event (a neighbour's state) and the end of a resync.
        self.refresh(watches);
        more
    }
}

/// A restore request as the log shows it.
fn describe(c: &Change) -> String {
    match *c {
        Change::AddAddr {
            addr, prefix_len, ..
        } => format!("address {addr}/{prefix_len}"),
        Change::AddRoute {
            dst,
            dst_len,
            table,
            metric,
            gateway,
            ..
        } => {
            let mut s = match dst.filter(|_| dst_len > 0) {
                Some(d) => format!("route {d}/{dst_len}"),
                None => "default route".to_string(),
            };
            if let Some(g) = gateway {
                s += &format!(" via {g}");
            }
            if table != crate::kernel::TABLE_MAIN {
                s += &format!(" table {table}");
            }
            if metric != 0 {
                s += &format!(" metric {metric}");
            }
            s
        }
    }
}
