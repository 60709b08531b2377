//! The parts of a watch that are about the machine rather than the link: whether heals are
//! held back (maintenance inhibit, boot grace, no good round yet since start), and the
//! built-in `reboot` step with its budget. The decisions are in `inhibit` and `budget`
//! (pure); this file reads the files and clocks they need and acts.
#![forbid(unsafe_code)]

use std::time::Duration;

use super::{earliest, Uplink};
use crate::budget::{self, Assessment, Record, Verdict};
use crate::civil::{timestamp, unix_now};
use crate::config::{human, HealStep};
use crate::inhibit::{self, Hold};
use crate::log::{Level, Log};
use crate::mono::Instant;
use crate::report::{LastHeal, MachineStatus};
use crate::sys::boot;

/// How often the budget is read again for the reports while nothing else asks for it.
const BUDGET_REFRESH: Duration = Duration::from_secs(60);
/// While the daemon watches the inhibit file (inotify: it says when the file changes), how
/// often a round still looks at it anyway: a safety net for a change no event reported (a
/// file system without inotify, such as NFS). Without the watch, every round looks.
const INHIBIT_RECHECK: Duration = Duration::from_secs(60);

/// The build date (Unix seconds): a wall clock before it is certainly wrong.
fn built() -> i64 {
    env!("NETHEAL_BUILD_EPOCH").parse().unwrap_or(0)
}

/// The file's identity, to read it again only when it changed.
type Stamp = Option<(u64, u64, i64, i64, u64)>;

#[derive(Debug, Default)]
pub struct Gate {
    /// Set by the first `up` since start.
    pub seen_up: bool,
    grace_end: Option<Instant>,
    /// While inhibited: until when (monotonic), and the wall time it was meant to end.
    pub(super) inhibit: Option<(Instant, i64)>,
    inhibit_stamp: Stamp,
    /// When the inhibit file is looked at again while it is watched (None: at the next round).
    inhibit_recheck: Option<Instant>,
    /// The daemon watches the inhibit file and calls `inhibit_changed` when it changes.
    pub(crate) inhibit_watched: bool,
    held: Option<Hold>,
    /// The hold last reported in the log for a held attempt.
    held_logged: Option<Hold>,
    /// The graceful command is running or done; the fallback comes at this instant.
    rebooting: Option<Rebooting>,
    /// The reboot budget as last read, or why it could not be.
    pub budget: Option<Result<Assessment, String>>,
    budget_read: Option<Instant>,
    pub degraded: Option<String>,
}

#[derive(Debug, Clone, Copy)]
struct Rebooting {
    attempt: u32,
    deadline: Instant,
    /// The graceful command exited 0: only the deadline is left.
    command_done: bool,
}

impl Gate {
    /// What the status file and metrics say about the machine side of this watch.
    pub fn report(&self, now: Instant) -> MachineStatus {
        MachineStatus {
            inhibited_until: self.inhibited_until(now),
            held: self.held.map(Hold::as_str),
            reboot_budget: match &self.budget {
                Some(Ok(a)) => Some((a.remaining(), a.max)),
                _ => None,
            },
            budget_error: matches!(self.budget, Some(Err(_))),
            degraded: self.degraded.clone(),
        }
    }

    /// Unix time the inhibit ends, while one holds.
    pub fn inhibited_until(&self, now: Instant) -> Option<i64> {
        self.inhibit.filter(|(t, _)| *t > now).map(|(_, w)| w)
    }

    /// The next instant a hold ends or the reboot fallback is due (each is cleared by the
    /// turn that passes it, so none is ever in the past for long).
    pub fn poll_timeout(&self) -> Option<Instant> {
        let fallback = self
            .rebooting
            .filter(|r| r.command_done)
            .map(|r| r.deadline);
        earliest(
            earliest(self.grace_end, self.inhibit.map(|i| i.0)),
            fallback,
        )
    }
}

impl Uplink {
    #[inline]
    fn has_reboot_step(&self) -> bool {
        self.cfg.heal.iter().any(|s| matches!(s, HealStep::Reboot))
    }

    /// At start: the boot grace left, the inhibit file, the budget and where it is kept.
    pub(super) fn gate_start(&mut self, now: Instant, log: &mut Log) {
        let grace = self.cfg.machine.boot_grace;
        if !grace.is_zero() {
            match boot::uptime() {
                Ok(up) => {
                    if let Some(left) = inhibit::grace_left(grace, up) {
                        self.gate.grace_end = now.checked_add(left);
                        self.say(
                            log,
                            Level::Notice,
                            format!(
                                "boot grace: no heal for {} (uptime {})",
                                human(left),
                                human(up)
                            ),
                        );
                    }
                }
                // not fatal: without an uptime there is no grace to keep
                Err(e) => self.say(log, Level::Warning, format!("boot grace: uptime: {e}")),
            }
        }
        self.check_inhibit(now, log);
        if self.has_reboot_step() {
            let dir = &self.cfg.machine.state_dir;
            match boot::on_ram_fs(dir) {
                Ok(true) => self.say(
                    log,
                    Level::Warning,
                    format!(
                        "state-dir {} is on a RAM file system (tmpfs): the reboot budget will not survive a reboot, so it cannot stop a reboot loop; point state-dir at flash or disk",
                        dir.display()
                    ),
                ),
                Ok(false) => {}
                Err(e) => self.say(log, Level::Warning, format!("state-dir {}: {e}", dir.display())),
            }
            self.refresh_budget(now, log);
        }
    }

    /// Every turn, before the watchdog runs: hold heals back or let them go.
    pub(super) fn update_hold(&mut self, now: Instant, log: &mut Log) {
        let hold = inhibit::hold(
            self.gate.inhibited_until(now).is_some(),
            self.gate.grace_end.is_some_and(|t| t > now),
            self.gate.seen_up,
            self.cfg.heal_before_up,
        );
        if self.gate.inhibit.is_some() && self.gate.inhibited_until(now).is_none() {
            self.gate.inhibit = None;
            self.say(log, Level::Notice, "inhibit expired: heals allowed again");
            self.changed = true;
        }
        if self.gate.grace_end.is_some_and(|t| t <= now) {
            self.gate.grace_end = None;
            self.say(log, Level::Notice, "boot grace over");
        }
        if hold != self.gate.held {
            self.gate.held = hold;
            self.changed = true;
        }
        self.sync_holds(now);
    }

    /// Whether the gate holds heals back now (as of the last `update_hold`).
    pub(super) fn gate_holds(&self) -> bool {
        self.gate.held.is_some()
    }

    /// After the watchdog ran: say once why a due attempt waits.
    pub(super) fn report_hold(&mut self, now: Instant, log: &mut Log) {
        // Every turn asks: the usual answer without collecting the names (issue 9).
        if !self.lanes.iter().any(|l| l.decider.heal_held()) {
            self.gate.held_logged = None;
            self.wait_logged = false;
            return;
        }
        let waiting: Vec<&'static str> = self
            .lanes
            .iter()
            .filter(|l| l.decider.heal_held())
            .map(|l| l.name())
            .collect();
        if self.gate.held.is_none() {
            // Not the gate: another lane's step runs, and this lane's attempt waits for it.
            if !self.wait_logged {
                self.wait_logged = true;
                let owner = self.heal_owner.map_or("another", super::lane::family_name);
                self.say(
                    log,
                    Level::Notice,
                    format!(
                        "{} heal attempt waits: the {owner} heal step is running",
                        waiting.join(", ")
                    ),
                );
            }
            return;
        }
        if self.gate.held_logged == self.gate.held {
            return;
        }
        self.gate.held_logged = self.gate.held;
        let why = match self.gate.held {
            Some(Hold::Inhibit) => {
                let (t, wall) = self.gate.inhibit.unwrap_or((now, 0));
                format!(
                    "inhibited until {} ({} left; netheal --inhibit off ends it)",
                    timestamp(wall),
                    human(t.saturating_duration_since(now))
                )
            }
            Some(Hold::BootGrace) => format!(
                "boot grace ({} left)",
                human(
                    self.gate
                        .grace_end
                        .map_or(Duration::ZERO, |t| t.saturating_duration_since(now))
                )
            ),
            Some(Hold::NotYetUp) => {
                "no good round yet since start (heal-before-up = no)".to_string()
            }
            None => return,
        };
        self.say(log, Level::Warning, format!("heal held back: {why}"));
    }

    /// Called at the start of every round: looks at the inhibit file when nobody watches it
    /// for us, and otherwise only every `INHIBIT_RECHECK` (no system call in between).
    pub(super) fn check_inhibit(&mut self, now: Instant, log: &mut Log) {
        let recent = self.gate.inhibit_recheck.is_some_and(|t| now < t);
        if self.gate.inhibit_watched && recent {
            return;
        }
        self.read_inhibit(now, log);
    }

    /// Whether the daemon watches the inhibit file for this uplink (see `inhibit_changed`).
    pub fn set_inhibit_watched(&mut self, watched: bool) {
        self.gate.inhibit_watched = watched;
    }

    /// The daemon saw the inhibit file change (or may have: lost events): read it at once,
    /// not at the next round, so a heal about to start is held.
    pub fn inhibit_changed(&mut self, now: Instant, log: &mut Log) {
        self.stir();
        self.read_inhibit(now, log);
    }

    /// Reads the inhibit file again if it changed.
    fn read_inhibit(&mut self, now: Instant, log: &mut Log) {
        use std::os::unix::fs::MetadataExt;
        let Some(path) = self.cfg.machine.inhibit_file.clone() else {
            return;
        };
        self.gate.inhibit_recheck = now.checked_add(INHIBIT_RECHECK);
        let meta = std::fs::symlink_metadata(&path).ok();
        let stamp = meta
            .as_ref()
            .map(|m| (m.dev(), m.ino(), m.mtime(), m.mtime_nsec(), m.size()));
        if stamp == self.gate.inhibit_stamp {
            return; // unchanged: so is the hold (a round's start reads it when unwatched)
        }
        self.stir(); // the hold follows the file
        self.gate.inhibit_stamp = stamp;
        let entries = match meta.filter(|m| m.file_type().is_file()) {
            // not fatal: unreadable means no inhibit; heals are never held by a broken file
            Some(_) => inhibit::parse(&std::fs::read_to_string(&path).unwrap_or_default()),
            None => Vec::new(),
        };
        let found = match (boot::boot_id(), boot::uptime()) {
            (Ok(id), Ok(up)) => inhibit::remaining(&entries, &self.cfg.iface, &id, up),
            _ => None,
        };
        let before = self.gate.inhibited_until(now);
        self.gate.inhibit = found.and_then(|(left, wall)| Some((now.checked_add(left)?, wall)));
        match (before, self.gate.inhibited_until(now)) {
            (_, Some(wall)) if before != Some(wall) => {
                let left = found.map_or(Duration::ZERO, |f| f.0);
                self.say(
                    log,
                    Level::Notice,
                    format!(
                        "inhibited until {} ({} left): probing and reporting go on, no heal runs",
                        timestamp(wall),
                        human(left)
                    ),
                );
                self.changed = true;
            }
            (Some(_), None) => {
                self.say(log, Level::Notice, "inhibit removed: heals allowed again");
                self.changed = true;
            }
            _ => {}
        }
    }

    fn budget_now() -> Result<budget::Now, String> {
        Ok(budget::Now {
            boot_id: boot::boot_id().map_err(|e| format!("boot id: {e}"))?,
            wall: unix_now(),
            uptime: boot::uptime().map_err(|e| format!("uptime: {e}"))?,
            not_before: built(),
        })
    }

    fn read_records(&self) -> Result<Vec<Record>, String> {
        let path = self.cfg.machine.budget_file();
        // Bytes, not text: a file that is not UTF-8 is corrupt like any other, with the hint.
        match std::fs::read(&path) {
            Ok(bytes) => budget::parse(&String::from_utf8_lossy(&bytes)).map_err(|why| {
                format!(
                    "{}: {why}; remove the file to reset the reboot budget",
                    path.display()
                )
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(format!("{}: {e}", path.display())),
        }
    }

    fn assess_budget(&self) -> Result<(Assessment, Vec<Record>, budget::Now), String> {
        let records = self.read_records()?;
        let now = Self::budget_now()?;
        Ok((
            budget::assess(&self.cfg.machine.budget, &records, &now),
            records,
            now,
        ))
    }

    /// Reads the budget for the reports (at most once a minute), and says when the
    /// degraded state begins or ends.
    #[inline]
    pub(super) fn refresh_budget(&mut self, now: Instant, log: &mut Log) {
        if !self.has_reboot_step()
            || self
                .gate
                .budget_read
                .is_some_and(|t| now.saturating_duration_since(t) < BUDGET_REFRESH)
        {
            return;
        }
        self.gate.budget_read = Some(now);
        let a = self.assess_budget().map(|x| x.0);
        self.set_budget(log, a);
    }

    fn set_budget(&mut self, log: &mut Log, a: Result<Assessment, String>) {
        let degraded = a.as_ref().ok().and_then(Assessment::degraded);
        if let Err(why) = &a {
            if self
                .gate
                .budget
                .as_ref()
                .is_none_or(|b| b.as_ref().err() != Some(why))
            {
                self.say(
                    log,
                    Level::Error,
                    format!("reboot budget unreadable, the reboot step is refused: {why}"),
                );
            }
        }
        if degraded != self.gate.degraded {
            match &degraded {
                Some(text) => self.say(
                    log,
                    Level::Warning,
                    format!("degraded: {text}; probing and the other heal steps go on"),
                ),
                None => {
                    let left = a.as_ref().map_or(0, Assessment::remaining);
                    self.say(
                        log,
                        Level::Notice,
                        format!("no longer degraded: reboot budget has {left} left"),
                    );
                }
            }
            let state = self.state().to_string();
            let reason = degraded
                .clone()
                .unwrap_or_else(|| "reboot budget recovered".into());
            self.gate.degraded = degraded;
            self.queue_hook(log, state.clone(), state, reason, 0);
            self.changed = true;
        }
        self.gate.budget = Some(a);
    }

    /// The `reboot` step of attempt `attempt`: the budget first, then the record on disk,
    /// then the graceful command. A refusal runs the ladder's last other step instead, or
    /// ends the attempt.
    pub(super) fn reboot(&mut self, now: Instant, log: &mut Log, attempt: u32, reason: &str) {
        let assessed = self.assess_budget();
        self.gate.budget_read = Some(now);
        let refusal = match &assessed {
            Err(why) => Some(format!("the reboot budget cannot be read: {why}")),
            Ok((a, ..)) => match a.verdict {
                Verdict::Allowed => None,
                Verdict::Spent => a.degraded(),
                Verdict::TooSoon { wait } => Some(format!(
                    "the last netheal reboot was too recent (growing spacing: {} reboots in {}); allowed in {}",
                    a.used,
                    crate::config::canonical(a.window),
                    human(wait)
                )),
            },
        };
        self.set_budget(log, assessed.as_ref().map(|x| x.0).map_err(Clone::clone));
        if self.cfg.dry_run {
            let msg = match &refusal {
                None => format!(
                    "heal attempt {attempt}: dry run: would reboot ({})",
                    self.budget_note()
                ),
                Some(why) => format!("heal attempt {attempt}: dry run: would not reboot: {why}"),
            };
            self.say(log, Level::Warning, msg);
            self.heal_done(now);
            return;
        }
        if let Some(why) = refusal {
            return self.reboot_refused(now, log, attempt, reason, &why);
        }
        let Ok((_, mut records, bnow)) = assessed else {
            return;
        };
        records = budget::prune(&self.cfg.machine.budget, &records, &bnow);
        records.push(Record {
            boot_id: bnow.boot_id.clone(),
            wall: bnow.wall,
            uptime: bnow.uptime,
        });
        let path = self.cfg.machine.budget_file();
        if let Err(e) = boot::write_durable(&path, &budget::serialize(&records)) {
            let why = format!(
                "the reboot could not be recorded in {}: {e}",
                path.display()
            );
            return self.reboot_refused(now, log, attempt, reason, &why);
        }
        let a = budget::assess(&self.cfg.machine.budget, &records, &bnow);
        let cmd = self.cfg.machine.reboot_command.clone();
        let timeout = self.cfg.machine.reboot_timeout;
        self.say(
            log,
            Level::Error,
            format!(
                "heal attempt {attempt}: rebooting ({reason}); reboot {} of {} in {} recorded in {}; running {}, sync(2) and reboot(2) if still up after {}",
                a.used,
                a.max,
                crate::config::canonical(a.window),
                path.display(),
                cmd.join(" "),
                human(timeout)
            ),
        );
        self.gate.budget = Some(Ok(a));
        self.changed = true;
        self.gate.rebooting = Some(Rebooting {
            attempt,
            deadline: now.checked_add(timeout).unwrap_or(now),
            command_done: false,
        });
        let env = vec![
            ("NETHEAL_IFACE", self.cfg.iface.clone()),
            ("NETHEAL_ATTEMPT", attempt.to_string()),
            ("NETHEAL_REASON", reason.to_string()),
        ];
        self.heal
            .start_command(now, attempt, "reboot", cmd, env, timeout);
    }

    fn budget_note(&self) -> String {
        match &self.gate.budget {
            Some(Ok(a)) => format!(
                "reboot budget: {} of {} in {} left",
                a.remaining(),
                a.max,
                crate::config::canonical(a.window)
            ),
            _ => "reboot budget unknown".into(),
        }
    }

    fn reboot_refused(
        &mut self,
        now: Instant,
        log: &mut Log,
        attempt: u32,
        reason: &str,
        why: &str,
    ) {
        let instead = self
            .cfg
            .heal
            .iter()
            .rev()
            .find(|s| **s != HealStep::Reboot)
            .cloned();
        match instead {
            Some(step) => {
                self.say(
                    log,
                    Level::Warning,
                    format!(
                        "heal attempt {attempt}: reboot refused: {why}; running {step} instead"
                    ),
                );
                // Like any other step: not while another healer holds the interface's lock.
                if !self.take_heal_lock(log, attempt, &step) {
                    self.heal_done(now);
                    return;
                }
                self.heal.start_heal(
                    now,
                    attempt,
                    &step,
                    &self.cfg.iface,
                    reason,
                    self.cfg.heal_timeout,
                );
            }
            None => {
                self.say(
                    log,
                    Level::Warning,
                    format!("heal attempt {attempt}: reboot refused: {why}"),
                );
                self.last_heal = Some(LastHeal {
                    ok: false,
                    at: unix_now(),
                });
                self.changed = true;
                let state = self.state().to_string();
                self.queue_hook(
                    log,
                    "step-failed".into(),
                    state,
                    format!("heal attempt {attempt}: reboot refused: {why}"),
                    attempt,
                );
                self.heal_done(now);
            }
        }
    }

    /// Whether the graceful reboot command runs (or ran): a stop must not kill it.
    pub(super) fn rebooting(&self) -> bool {
        self.gate.rebooting.is_some()
    }

    /// The graceful command ended. Returns false if the step was not a reboot.
    pub(super) fn reboot_command_ended(
        &mut self,
        now: Instant,
        log: &mut Log,
        step: &str,
        ok: bool,
    ) -> bool {
        let Some(r) = self.gate.rebooting.as_mut() else {
            return false;
        };
        if step != "reboot" {
            return false;
        }
        if ok && now < r.deadline {
            r.command_done = true;
            let left = r.deadline.saturating_duration_since(now);
            self.say(
                log,
                Level::Notice,
                format!(
                    "reboot: waiting up to {} for the system to go down",
                    human(left)
                ),
            );
        } else {
            self.reboot_fallback(now, log);
        }
        true
    }

    /// At the reboot deadline.
    pub(super) fn reboot_due(&mut self, now: Instant, log: &mut Log) {
        if self
            .gate
            .rebooting
            .is_some_and(|r| r.command_done && r.deadline <= now)
        {
            self.reboot_fallback(now, log);
        }
    }

    fn reboot_fallback(&mut self, now: Instant, log: &mut Log) {
        let Some(r) = self.gate.rebooting.take() else {
            return;
        };
        self.say(
            log,
            Level::Error,
            format!(
                "heal attempt {}: the system is still up: sync(2) and reboot(2)",
                r.attempt
            ),
        );
        let e = boot::sync_and_reboot();
        self.say(
            log,
            Level::Error,
            format!("heal attempt {}: reboot(2): {e}", r.attempt),
        );
        self.last_heal = Some(LastHeal {
            ok: false,
            at: unix_now(),
        });
        self.changed = true;
        self.heal_done(now);
    }
}
