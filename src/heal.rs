//! Runs heal steps (and on-change hooks) without ever blocking the poll loop. A step is a
//! short sequence of commands (`ifdown` then `ifup`, or one executable), each started with
//! argv (no shell), stdin from /dev/null, stdout and stderr into one pipe whose lines are
//! logged, in its own process group, under one deadline for the whole step: at the deadline
//! the process and its group get SIGTERM, SIGKILL after a grace period, and a process that
//! still has not died a moment later is logged and no longer waited for. The built-in `link`
//! step runs in a forked child under the same supervision (its ioctls can hold rtnl for
//! seconds).
//!
//! Every deadline is one-shot (`Deadline`, pure and tested in virtual time): a fired timer is
//! disarmed before it is acted on and re-armed only for the next stage, so `poll_timeout` is
//! never in the past. Nothing here waits: ends are reaped by pid with WNOHANG on SIGCHLD
//! (`reap`, or the daemon's one reaper when it is PID 1, through `child_exited`). Output
//! pipes are read to EOF, also after the step's leader has ended, so that a helper it left
//! behind keeps somewhere to write (`Leftovers`). A watch that stops hands its processes and
//! pipes to the daemon's `Reaper`, which goes on terminating and reading them from the loop.
#![forbid(unsafe_code)]

use std::collections::VecDeque;
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::ExitStatus;
use std::time::Duration;

use nix::sys::signal::Signal;
use nix::unistd::Pid;

use crate::backend::{self, Plan};
use crate::config::{human, HealStep};
use crate::log::{Level, Log};
use crate::mono::Instant;
use crate::sys::process;

/// Where the back-end steps look for their tools (ifdown, nmcli, ...), in order.
pub const TOOL_PATH: &str = "/sbin:/usr/sbin:/bin:/usr/bin";
/// PATH for steps when netheal itself was started without one (bare init scripts).
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// SIGTERM to SIGKILL, for a step that overran its deadline.
pub const KILL_GRACE: Duration = Duration::from_secs(5);
/// SIGKILL to giving up: a process still there this long after SIGKILL is stuck in the
/// kernel (a wedged driver): it is logged, and reaped whenever it does end.
pub const KILL_WAIT: Duration = Duration::from_secs(1);
/// SIGTERM to SIGKILL when a watch stops (reload, or netheal stopping): for all of its
/// processes together, not per process.
pub const STOP_GRACE: Duration = Duration::from_millis(500);
/// Output lines logged per pipe, and bytes per line, before the rest is read and dropped.
const MAX_LINES: u32 = 100;
const MAX_LINE: usize = 512;
/// Bytes read from one pipe per turn (a pipe's default capacity): bounded work per turn.
const READ_PER_TURN: usize = 64 * 1024;
/// Pipes kept open for what ended steps left behind, per runner; beyond it the oldest closes.
const MAX_LINGERING: usize = 4;
/// Steps and hooks are not netheal: systemd's notification socket and watchdog settings are
/// meant for us alone.
const UNSET: [&str; 3] = ["NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// `timed_out`: it exited on its own terms, but only after the deadline's SIGTERM.
    Exited {
        code: i32,
        timed_out: bool,
    },
    Killed {
        signal: i32,
        timed_out: bool,
    },
    FailedToStart(String),
    /// The built-in step: Ok, or the error of the ioctl that failed.
    BuiltIn(Result<(), String>),
    /// Still there `KILL_WAIT` after SIGKILL (stuck in the kernel): no longer waited for.
    WouldNotDie,
}

impl Outcome {
    /// Exited 0 in time, or the built-in step worked.
    pub fn success(&self) -> bool {
        matches!(
            self,
            Outcome::Exited {
                code: 0,
                timed_out: false
            } | Outcome::BuiltIn(Ok(()))
        )
    }

    fn from_status(status: ExitStatus, timed_out: bool) -> Self {
        match status.code() {
            Some(code) => Outcome::Exited { code, timed_out },
            None => Outcome::Killed {
                signal: status.signal().unwrap_or(0),
                timed_out,
            },
        }
    }

    /// The `link` child exits 0 or with the errno of the ioctl that failed.
    fn from_link_status(status: ExitStatus, timed_out: bool) -> Self {
        match status.code() {
            Some(0) if !timed_out => Outcome::BuiltIn(Ok(())),
            Some(0) => Outcome::BuiltIn(Err("timed out".into())),
            Some(errno) => Outcome::BuiltIn(Err(io::Error::from_raw_os_error(errno).to_string())),
            None => Outcome::from_status(status, timed_out),
        }
    }
}

/// What the runner has to report to the loop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HealEvent {
    /// A line of a command's output; `prog` is the command's file name.
    Output { prog: String, line: String },
    /// The step's last command ended (or could not start, or would not die).
    Ended {
        attempt: u32,
        step: String,
        outcome: Outcome,
        elapsed: Duration,
    },
    /// Something to log as a warning about a process no step waits for any more.
    Notice(String),
}

/// The log line for an ended step, after `IFACE: heal attempt K: `.
pub fn describe(step: &str, outcome: &Outcome, elapsed: Duration) -> String {
    let after = human(elapsed);
    match outcome {
        Outcome::Exited { code, timed_out } => {
            format!(
                "{step} exited {code} after {after}{}",
                timed_out_note(*timed_out)
            )
        }
        Outcome::Killed { signal, timed_out } => {
            format!(
                "{step} killed by signal {signal} after {after}{}",
                timed_out_note(*timed_out)
            )
        }
        Outcome::FailedToStart(e) => format!("{step} failed to start: {e}"),
        Outcome::BuiltIn(Ok(())) => format!("{step} done after {after}"),
        Outcome::BuiltIn(Err(e)) => format!("{step} failed after {after}: {e}"),
        Outcome::WouldNotDie => format!(
            "{step} would not die after SIGKILL; not waiting for it after {after} (timed out)"
        ),
    }
}

fn timed_out_note(timed_out: bool) -> &'static str {
    if timed_out {
        " (timed out)"
    } else {
        ""
    }
}

/// The grace periods of a `Deadline`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// SIGTERM to SIGKILL.
    pub grace: Duration,
    /// SIGKILL to giving up.
    pub kill_wait: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            grace: KILL_GRACE,
            kill_wait: KILL_WAIT,
        }
    }
}

/// What a fired `Deadline` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Due {
    Term,
    Kill,
    /// Still there after SIGKILL: log it and stop waiting for it.
    GiveUp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Running,
    Terminating,
    Killed,
    GivenUp,
}

/// The one-shot timer of one process: deadline -> SIGTERM -> grace -> SIGKILL -> kill wait ->
/// give up. Pure: handed `now`, never reads a clock. Each firing disarms the timer first and
/// arms only the next stage, so after `handle_timeout(now)` the timer is never at or before
/// `now` (a loop that trusts `poll_timeout` cannot spin on it).
#[derive(Debug, Clone)]
pub struct Deadline {
    stage: Stage,
    at: Option<Instant>,
    timing: Timing,
}

impl Deadline {
    pub fn new(at: Instant, timing: Timing) -> Deadline {
        Deadline {
            stage: Stage::Running,
            at: Some(at),
            timing,
        }
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        self.at
    }

    /// Whether the process has had its SIGTERM (or more).
    pub fn timed_out(&self) -> bool {
        self.stage != Stage::Running
    }

    pub fn given_up(&self) -> bool {
        self.stage == Stage::GivenUp
    }

    /// Disarm, then say what is due, then arm the next stage (never at or before `now`).
    pub fn handle_timeout(&mut self, now: Instant) -> Option<Due> {
        if self.at.is_none_or(|at| now < at) {
            return None;
        }
        self.at = None;
        let (stage, due, wait) = match self.stage {
            Stage::Running => (Stage::Terminating, Due::Term, Some(self.timing.grace)),
            Stage::Terminating => (Stage::Killed, Due::Kill, Some(self.timing.kill_wait)),
            Stage::Killed | Stage::GivenUp => (Stage::GivenUp, Due::GiveUp, None),
        };
        self.stage = stage;
        self.at = wait.map(|w| later(now, w));
        Some(due)
    }

    /// Stop now: SIGTERM (unless it had it already) and SIGKILL `grace` later, whatever the
    /// deadline was. Returns Term when SIGTERM is due now.
    pub fn terminate(&mut self, now: Instant, grace: Duration) -> Option<Due> {
        match self.stage {
            Stage::Running => {
                self.stage = Stage::Terminating;
                self.at = Some(later(now, grace));
                Some(Due::Term)
            }
            Stage::Terminating => {
                let at = later(now, grace);
                self.at = Some(self.at.map_or(at, |t| t.min(at)));
                None
            }
            Stage::Killed | Stage::GivenUp => None,
        }
    }

    /// SIGKILL now (a bounded stop whose grace is over).
    pub fn kill(&mut self, now: Instant) -> Due {
        self.stage = Stage::Killed;
        self.at = Some(later(now, self.timing.kill_wait));
        Due::Kill
    }
}

/// `now + d`, or a second on from now should that overflow (never at or before `now`).
fn later(now: Instant, d: Duration) -> Instant {
    now.checked_add(d.max(Duration::from_nanos(1)))
        .or_else(|| now.checked_add(Duration::from_nanos(1)))
        .unwrap_or(now)
}

/// Carries out what a deadline asked for on process `pid` (and its group).
fn act(pid: Pid, due: Due) {
    match due {
        Due::Term => process::signal(pid, Signal::SIGTERM),
        Due::Kill => process::signal(pid, Signal::SIGKILL),
        Due::GiveUp => {}
    }
}

/// One output pipe of a step: read without blocking, logged line by line, until EOF.
#[derive(Debug)]
struct Output {
    fd: Option<OwnedFd>,
    prog: String,
    partial: Vec<u8>,
    lines: u32,
}

impl Output {
    fn new(fd: OwnedFd, prog: String) -> Output {
        Output {
            fd: Some(fd),
            prog,
            partial: Vec::new(),
            lines: 0,
        }
    }

    fn is_open(&self) -> bool {
        self.fd.is_some()
    }

    /// Moves complete lines into events (at most `READ_PER_TURN` bytes read); at EOF, the
    /// partial line too, and the pipe is closed.
    fn drain(&mut self, events: &mut VecDeque<HealEvent>) {
        let mut buf = [0u8; 4096];
        let mut read = 0;
        while let Some(fd) = self.fd.as_ref() {
            if read >= READ_PER_TURN {
                break;
            }
            match nix::unistd::read(fd, &mut buf) {
                Ok(0) => self.fd = None,
                Ok(n) => {
                    read += n;
                    self.partial.extend_from_slice(&buf[..n]);
                    self.split_lines(events);
                }
                Err(nix::errno::Errno::EINTR) => continue,
                Err(_) => break, // EAGAIN: nothing more for now
            }
        }
        self.split_lines(events);
        if self.fd.is_none() && !self.partial.is_empty() {
            let line = std::mem::take(&mut self.partial);
            self.emit_line(events, &line);
        }
    }

    fn split_lines(&mut self, events: &mut VecDeque<HealEvent>) {
        while let Some(pos) = self.partial.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.partial.drain(..=pos).collect();
            self.emit_line(events, &line[..line.len() - 1]);
        }
        if self.partial.len() > MAX_LINE {
            let line = std::mem::take(&mut self.partial);
            self.emit_line(events, &line);
        }
    }

    fn emit_line(&mut self, events: &mut VecDeque<HealEvent>, raw: &[u8]) {
        self.lines = self.lines.saturating_add(1);
        if self.lines > MAX_LINES {
            return;
        }
        let mut line = String::from_utf8_lossy(&raw[..raw.len().min(MAX_LINE)]).into_owned();
        if self.lines == MAX_LINES {
            line.push_str(" (further output not logged)");
        }
        let line = line.trim_end().to_string();
        if !line.is_empty() {
            events.push_back(HealEvent::Output {
                prog: self.prog.clone(),
                line,
            });
        }
    }
}

/// A process no step waits for any more: being stopped, or given up on.
#[derive(Debug)]
struct Stray {
    pid: Pid,
    prog: String,
    deadline: Deadline,
}

/// What ended or stopped steps left: processes still being terminated (or given up on), and
/// pipes still being read because something the step started holds them open (closing them
/// would kill it with SIGPIPE on its next write).
#[derive(Debug, Default)]
pub struct Leftovers {
    procs: Vec<Stray>,
    outputs: VecDeque<Output>,
    events: VecDeque<HealEvent>,
}

impl Leftovers {
    pub fn is_empty(&self) -> bool {
        self.procs.is_empty() && self.outputs.is_empty() && self.events.is_empty()
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.procs
            .iter()
            .filter_map(|p| p.deadline.poll_timeout())
            .min()
    }

    fn handle_timeout(&mut self, now: Instant) {
        for p in &mut self.procs {
            if let Some(due) = p.deadline.handle_timeout(now) {
                act(p.pid, due);
                if due == Due::GiveUp {
                    self.events.push_back(HealEvent::Notice(format!(
                        "{} (pid {}) would not die after SIGKILL; not waiting for it (it is reaped if it ever ends)",
                        p.prog, p.pid
                    )));
                }
            }
        }
    }

    /// A child of ours ended: true if it was one of these.
    fn child_exited(&mut self, pid: Pid) -> bool {
        let Some(i) = self.procs.iter().position(|p| p.pid == pid) else {
            return false;
        };
        let p = self.procs.swap_remove(i);
        // The group is condemned: whatever the process left behind in it goes too.
        process::signal_group(p.pid, Signal::SIGKILL);
        if p.deadline.given_up() {
            self.events.push_back(HealEvent::Notice(format!(
                "{} (pid {}) has ended after all",
                p.prog, p.pid
            )));
        }
        true
    }

    /// Keeps reading `out` until EOF, if anything still holds it open.
    fn linger(&mut self, out: Output) {
        if !out.is_open() {
            return;
        }
        self.outputs.push_back(out);
        while self.outputs.len() > MAX_LINGERING {
            if let Some(old) = self.outputs.pop_front() {
                self.events.push_back(HealEvent::Notice(format!(
                    "closing the output of what {} left running (more than {MAX_LINGERING} such pipes open)",
                    old.prog
                )));
            }
        }
    }

    fn read_output(&mut self) {
        for o in &mut self.outputs {
            o.drain(&mut self.events);
        }
        self.outputs.retain(Output::is_open);
    }

    fn fds(&self) -> impl Iterator<Item = &OwnedFd> {
        self.outputs.iter().filter_map(|o| o.fd.as_ref())
    }

    fn pids(&self) -> impl Iterator<Item = Pid> + '_ {
        self.procs.iter().map(|p| p.pid)
    }

    fn append(&mut self, mut other: Leftovers) {
        self.procs.append(&mut other.procs);
        self.events.append(&mut other.events);
        for o in other.outputs {
            self.linger(o); // the bound holds across reloads too
        }
    }
}

#[derive(Debug)]
struct Job {
    attempt: u32,
    step: String,
    /// The built-in `link` step: its child's exit code is an errno.
    builtin: bool,
    /// Commands still to run after the current one.
    rest: VecDeque<Vec<String>>,
    env: Vec<(&'static str, String)>,
    pid: Pid,
    prog: String,
    output: Option<Output>,
    started: Instant,
    deadline: Deadline,
}

/// Runs one step (or hook) at a time, and keeps what earlier ones left behind.
#[derive(Debug, Default)]
pub struct Supervisor {
    job: Option<Job>,
    left: Leftovers,
    events: VecDeque<HealEvent>,
    timing: Timing,
    /// Tests only: the `link` child waits this long before its ioctls.
    link_hold: Duration,
}

impl Supervisor {
    /// A runner with other grace periods than KILL_GRACE and KILL_WAIT (tests).
    pub fn with_timing(timing: Timing) -> Supervisor {
        Supervisor {
            timing,
            ..Supervisor::default()
        }
    }

    pub fn is_running(&self) -> bool {
        self.job.is_some()
    }

    /// Whether `poll_event` has something.
    pub fn has_events(&self) -> bool {
        !self.events.is_empty() || !self.left.events.is_empty()
    }

    pub fn poll_event(&mut self) -> Option<HealEvent> {
        if !self.has_events() {
            return None; // every turn of every watch asks, twice: keep the answer cheap
        }
        self.events
            .pop_front()
            .or_else(|| self.left.events.pop_front())
    }

    /// Starts heal `step` for `iface`. Never blocks on the step; a step that cannot start
    /// reports its end at once.
    pub fn start_heal(
        &mut self,
        now: Instant,
        attempt: u32,
        step: &HealStep,
        iface: &str,
        reason: &str,
        timeout: Duration,
    ) {
        let name = step.to_string();
        let commands: Vec<Vec<String>> = match step {
            HealStep::Reboot => {
                // The watch runs this step itself (budget first): see Uplink::reboot.
                let outcome = Outcome::FailedToStart("reboot is not a runner step".into());
                self.failed(attempt, name, outcome);
                return;
            }
            HealStep::Exec(path) => vec![vec![path.display().to_string(), iface.to_string()]],
            _ => match plan(step, iface, timeout) {
                Ok(Plan::Commands(cmds)) => cmds,
                Ok(Plan::Link) => {
                    match process::spawn_link(iface, self.link_hold) {
                        Ok((pid, fd)) => self.supervise(Job {
                            attempt,
                            prog: name.clone(),
                            output: Some(Output::new(fd, name.clone())),
                            step: name,
                            builtin: true,
                            rest: VecDeque::new(),
                            env: Vec::new(),
                            pid,
                            started: now,
                            deadline: Deadline::new(later(now, timeout), self.timing),
                        }),
                        Err(e) => self.failed(attempt, name, Outcome::BuiltIn(Err(e.to_string()))),
                    }
                    return;
                }
                Err(why) => {
                    self.failed(attempt, name, Outcome::FailedToStart(why));
                    return;
                }
            },
        };
        let env = vec![
            ("NETHEAL_IFACE", iface.to_string()),
            ("NETHEAL_ATTEMPT", attempt.to_string()),
            ("NETHEAL_REASON", reason.to_string()),
        ];
        self.start_job(now, attempt, name, commands, env, timeout);
    }

    /// Starts `PATH IFACE` with `env`, supervised like a heal step.
    pub fn start_hook(
        &mut self,
        now: Instant,
        path: &Path,
        iface: &str,
        env: Vec<(&'static str, String)>,
        timeout: Duration,
    ) {
        let argv = vec![path.display().to_string(), iface.to_string()];
        self.start_job(now, 0, path.display().to_string(), vec![argv], env, timeout);
    }

    /// Starts `argv` as step `name` of attempt `attempt`, supervised like a heal step.
    pub fn start_command(
        &mut self,
        now: Instant,
        attempt: u32,
        name: &str,
        argv: Vec<String>,
        env: Vec<(&'static str, String)>,
        timeout: Duration,
    ) {
        self.start_job(now, attempt, name.to_string(), vec![argv], env, timeout);
    }

    fn failed(&mut self, attempt: u32, step: String, outcome: Outcome) {
        self.events.push_back(HealEvent::Ended {
            attempt,
            step,
            outcome,
            elapsed: Duration::ZERO,
        });
    }

    /// Takes charge of a started job.
    fn supervise(&mut self, job: Job) {
        assert!(self.job.is_none(), "jobs of one runner never overlap");
        self.job = Some(job);
    }

    fn start_job(
        &mut self,
        now: Instant,
        attempt: u32,
        name: String,
        commands: Vec<Vec<String>>,
        env: Vec<(&'static str, String)>,
        timeout: Duration,
    ) {
        let mut rest: VecDeque<Vec<String>> = commands.into();
        let first = rest.pop_front().unwrap_or_default();
        match process::spawn(&first, &env, &UNSET, DEFAULT_PATH) {
            Ok((pid, fd)) => {
                let prog = prog_name(&first);
                self.supervise(Job {
                    attempt,
                    step: name,
                    builtin: false,
                    rest,
                    env,
                    pid,
                    output: Some(Output::new(fd, prog.clone())),
                    prog,
                    started: now,
                    deadline: Deadline::new(later(now, timeout), self.timing),
                });
            }
            Err(e) => {
                let why = format!("{}: {e}", first.first().map_or("", String::as_str));
                self.failed(attempt, name, Outcome::FailedToStart(why));
            }
        }
    }

    /// The pipes to watch for output: the running step's, and those of what ended steps
    /// left running.
    /// Whether `output_fds` may have one (a step runs, or a pipe lingers).
    pub fn has_outputs(&self) -> bool {
        self.job.is_some() || !self.left.outputs.is_empty()
    }

    pub fn output_fds(&self) -> impl Iterator<Item = &OwnedFd> {
        let job = self
            .job
            .as_ref()
            .and_then(|j| j.output.as_ref())
            .and_then(|o| o.fd.as_ref());
        // Asked for every turn: without lingering pipes (nearly always), no deque iterator.
        let left = (!self.left.outputs.is_empty()).then(|| self.left.fds());
        job.into_iter().chain(left.into_iter().flatten())
    }

    /// The next instant at which `handle_timeout` has work; never in the past after it ran.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let job = self.job.as_ref().and_then(|j| j.deadline.poll_timeout());
        if self.left.procs.is_empty() {
            return job;
        }
        job.into_iter().chain(self.left.poll_timeout()).min()
    }

    /// Enforces the deadlines: SIGTERM to the process and its group, SIGKILL after the grace
    /// period, and gives up on (logs, and stops waiting for) what SIGKILL did not end.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.left.handle_timeout(now);
        let Some(j) = self.job.as_mut() else {
            return;
        };
        let Some(due) = j.deadline.handle_timeout(now) else {
            return;
        };
        act(j.pid, due);
        if due == Due::GiveUp {
            let Some(mut j) = self.job.take() else {
                return;
            };
            self.events.push_back(HealEvent::Notice(format!(
                "{} (pid {}) would not die after SIGKILL; not waiting for it (it is reaped if it ever ends)",
                j.prog, j.pid
            )));
            if let Some(mut o) = j.output.take() {
                o.drain(&mut self.events);
                self.left.linger(o);
            }
            self.left.procs.push(Stray {
                pid: j.pid,
                prog: j.prog,
                deadline: j.deadline,
            });
            self.events.push_back(HealEvent::Ended {
                attempt: j.attempt,
                step: j.step,
                outcome: Outcome::WouldNotDie,
                elapsed: now.saturating_duration_since(j.started),
            });
        }
    }

    /// Reads what the step (and what earlier steps left running) has written so far.
    pub fn read_output(&mut self) {
        if let Some(o) = self.job.as_mut().and_then(|j| j.output.as_mut()) {
            o.drain(&mut self.events);
        }
        self.left.read_output();
    }

    /// The children this runner waits for.
    pub fn pids(&self) -> Vec<Pid> {
        let job = self.job.as_ref().map(|j| j.pid);
        job.into_iter().chain(self.left.pids()).collect()
    }

    /// On SIGCHLD: reaps (without blocking) whichever of our children ended.
    pub fn reap(&mut self, now: Instant) {
        for (pid, status) in process::reap(&self.pids(), false) {
            self.child_exited(now, pid, status);
        }
    }

    /// Child `pid` ended with `status` (reaped by the caller): true if it was one of ours.
    /// The current command's end starts the next one or reports the step's end.
    pub fn child_exited(&mut self, now: Instant, pid: Pid, status: io::Result<ExitStatus>) -> bool {
        if self.job.as_ref().is_none_or(|j| j.pid != pid) {
            return self.left.child_exited(pid);
        }
        let Some(j) = self.job.as_mut() else {
            return false;
        };
        if let Some(mut o) = j.output.take() {
            // Its output so far; the pipe stays open (and read) for anything it left behind.
            o.drain(&mut self.events);
            self.left.linger(o);
        }
        let timed_out = j.deadline.timed_out();
        if timed_out {
            // The group is condemned: whatever the leader left behind goes too.
            process::signal_group(j.pid, Signal::SIGKILL);
        }
        let status = match status {
            Ok(s) => s,
            Err(e) => {
                // not fatal: the child is gone from our view; report the step as failed
                self.finish(now, Outcome::FailedToStart(format!("wait: {e}")));
                return true;
            }
        };
        if !timed_out {
            if let Some(next) = j.rest.pop_front() {
                // ifup runs whatever ifdown's exit status was: a half-configured interface is
                // exactly when ifdown complains.
                match process::spawn(&next, &j.env, &UNSET, DEFAULT_PATH) {
                    Ok((pid, fd)) => {
                        j.pid = pid;
                        j.prog = prog_name(&next);
                        j.output = Some(Output::new(fd, j.prog.clone()));
                    }
                    Err(e) => {
                        let why = format!("{}: {e}", next[0]);
                        self.finish(now, Outcome::FailedToStart(why));
                    }
                }
                return true;
            }
        }
        let outcome = if j.builtin {
            Outcome::from_link_status(status, timed_out)
        } else {
            Outcome::from_status(status, timed_out)
        };
        self.finish(now, outcome);
        true
    }

    fn finish(&mut self, now: Instant, outcome: Outcome) {
        if let Some(j) = self.job.take() {
            self.events.push_back(HealEvent::Ended {
                attempt: j.attempt,
                step: j.step,
                outcome,
                elapsed: now.saturating_duration_since(j.started),
            });
        }
    }

    /// The watch stops: SIGTERM now to the running step (SIGKILL `grace` later, by whoever
    /// takes the result), and everything this runner still waits for or reads, handed over.
    /// Never waits. The step's end is not reported.
    pub fn hand_off(&mut self, now: Instant, grace: Duration) -> Leftovers {
        if let Some(mut j) = self.job.take() {
            if let Some(due) = j.deadline.terminate(now, grace) {
                act(j.pid, due);
            }
            if let Some(mut o) = j.output.take() {
                o.drain(&mut self.events);
                self.left.linger(o);
            }
            self.left.procs.push(Stray {
                pid: j.pid,
                prog: j.prog,
                deadline: j.deadline,
            });
        }
        for p in &mut self.left.procs {
            if let Some(due) = p.deadline.terminate(now, grace) {
                act(p.pid, due);
            }
        }
        let mut left = std::mem::take(&mut self.left);
        // Lines not yet handed to the loop go with the rest, in order.
        let mut events = std::mem::take(&mut self.events);
        events.append(&mut left.events);
        left.events = events;
        left
    }
}

/// The daemon's list of what stopped watches left: processes being terminated and pipes
/// being read, each under the name of the interface it belonged to. The loop polls it like a
/// watch, so stopping one watch never blocks the others.
#[derive(Debug, Default)]
pub struct Reaper {
    sets: Vec<(String, Leftovers)>,
}

impl Reaper {
    pub fn adopt(&mut self, owner: &str, left: Leftovers) {
        if left.is_empty() {
            return;
        }
        match self.sets.iter_mut().find(|(o, _)| o == owner) {
            Some((_, l)) => l.append(left),
            None => self.sets.push((owner.to_string(), left)),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.sets.is_empty()
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        self.sets.iter().filter_map(|(_, l)| l.poll_timeout()).min()
    }

    pub fn output_fds(&self) -> impl Iterator<Item = &OwnedFd> {
        self.sets.iter().flat_map(|(_, l)| l.fds())
    }

    pub fn pids(&self) -> Vec<Pid> {
        self.sets.iter().flat_map(|(_, l)| l.pids()).collect()
    }

    /// Reads the pipes, runs the timers, logs what there is to say. Never blocks.
    pub fn turn(&mut self, now: Instant, log: &mut Log) {
        for (_, l) in &mut self.sets {
            l.read_output();
            l.handle_timeout(now);
        }
        self.flush(log);
    }

    /// Child `pid` (reaped by the caller) ended: true if it was one of ours.
    pub fn child_exited(&mut self, pid: Pid) -> bool {
        self.sets.iter_mut().any(|(_, l)| l.child_exited(pid))
    }

    fn flush(&mut self, log: &mut Log) {
        for (owner, l) in &mut self.sets {
            while let Some(e) = l.events.pop_front() {
                match e {
                    HealEvent::Output { prog, line } => {
                        log.log(Level::Info, &format!("{owner}: {prog}: {line}"))
                    }
                    HealEvent::Notice(msg) => log.log(Level::Warning, &format!("{owner}: {msg}")),
                    HealEvent::Ended { .. } => {}
                }
            }
        }
        self.sets.retain(|(_, l)| !l.is_empty());
    }

    /// On SIGCHLD (when not PID 1): reaps, without blocking, whichever of ours ended.
    pub fn reap(&mut self) {
        for (pid, _) in process::reap(&self.pids(), false) {
            self.child_exited(pid); // not fatal: ECHILD means it was reaped already
        }
    }

    /// Reaps, without blocking, whichever of ours ended (every ended child when we are PID 1).
    fn reap_now(&mut self) {
        for (pid, _) in process::reap(&self.pids(), process::is_init()) {
            // not fatal: an orphan that is not ours (PID 1) or a status lost (ECHILD) needs no more
            self.child_exited(pid);
        }
    }

    /// netheal is stopping: everything adopted (already sent SIGTERM by `hand_off`) gets at
    /// most `within` in total to end, then SIGKILL and a short wait; what still will not die
    /// is logged. Blocks for at most `within` + `KILL_WAIT` / 5: the loop is over anyway.
    pub fn stop_all(&mut self, within: Duration, log: &mut Log) {
        let wait = |r: &mut Reaper, until: Instant| loop {
            r.reap_now();
            if r.sets.iter().all(|(_, l)| l.procs.is_empty()) || Instant::now() >= until {
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        wait(self, Instant::now() + within);
        let now = Instant::now();
        for (_, l) in &mut self.sets {
            for p in &mut l.procs {
                if !p.deadline.given_up() {
                    act(p.pid, p.deadline.kill(now));
                }
            }
        }
        wait(self, Instant::now() + KILL_WAIT / 5);
        for (owner, l) in &mut self.sets {
            l.read_output();
            for p in l.procs.drain(..) {
                log.log(
                    Level::Warning,
                    &format!(
                        "{owner}: {} (pid {}) would not die after SIGKILL; leaving it behind",
                        p.prog, p.pid
                    ),
                );
            }
        }
        self.flush(log);
    }
}

fn prog_name(argv: &[String]) -> String {
    argv.first()
        .map(|p| {
            Path::new(p)
                .file_name()
                .map_or(p.clone(), |f| f.to_string_lossy().into_owned())
        })
        .unwrap_or_default()
}

/// The commands of a back-end step (or the built-in link step) for `iface`, with the
/// tools and state files under `backend::root()`. Reads a few state files when the step
/// needs them (`dhcp`, `netifd` without a logical name, `auto`): no process, no wait.
fn plan(step: &HealStep, iface: &str, timeout: Duration) -> Result<Plan, String> {
    let root = backend::root();
    let facts = match step {
        HealStep::Dhcp | HealStep::Netifd(None) | HealStep::Auto => backend::gather(&root, iface),
        _ => backend::Facts {
            iface: iface.to_string(),
            ..backend::Facts::default()
        },
    };
    let find = |t: &str| backend::find_tool(&root, t);
    backend::commands(step, iface, &facts, &find, timeout)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::LogDest;
    use std::io::Write;
    use std::path::PathBuf;

    /// A throw-away executable script.
    struct Script(PathBuf);

    impl Script {
        fn new(tag: &str, body: &str) -> Script {
            use std::os::unix::fs::PermissionsExt;
            let p = tmp(tag);
            let mut f = std::fs::File::create(&p).unwrap();
            writeln!(f, "#!/bin/sh\n{body}").unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
            Script(p)
        }

        /// Starts this script as heal attempt 1 on eth9, with `timeout` for the step.
        fn start(&self, r: &mut Supervisor, now: Instant, timeout: Duration) {
            r.start_heal(now, 1, &HealStep::Exec(self.0.clone()), "eth9", "", timeout);
        }
    }

    impl Drop for Script {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    /// A per-test temp path, removed on creation (a leftover of a crashed run).
    fn tmp(tag: &str) -> PathBuf {
        let p = std::env::temp_dir().join(format!("netheal-heal-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_file(&p);
        p
    }

    /// Waits for a readiness file the script writes once it is set up (trap installed,
    /// group left, child started), and returns its content.
    fn ready(p: &Path) -> String {
        let until = Instant::now() + Duration::from_secs(5);
        loop {
            if let Ok(t) = std::fs::read_to_string(p) {
                if t.ends_with('\n') {
                    let _ = std::fs::remove_file(p);
                    return t;
                }
            }
            assert!(Instant::now() < until, "{} never written", p.display());
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// `R` (or another live state), `Z`, or `gone`.
    fn state(pid: &str) -> String {
        let stat =
            std::fs::read_to_string(format!("/proc/{}/stat", pid.trim())).unwrap_or_default();
        let st = stat.rsplit(')').next().unwrap_or("");
        st.split_whitespace().next().unwrap_or("gone").to_string()
    }

    /// Whether `pid` is dead (gone, or a zombie until its parent reaps it) within 2 s.
    fn dies(pid: &str) -> bool {
        let until = Instant::now() + Duration::from_secs(2);
        while !matches!(state(pid).as_str(), "gone" | "Z") {
            if Instant::now() >= until {
                return false;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        true
    }

    const QUICK: Timing = Timing {
        grace: Duration::from_millis(200),
        kill_wait: Duration::from_millis(300),
    };

    /// Drives the runner as the loop would, with real time, until the step ends. Checks on
    /// every turn what the loop relies on: after `handle_timeout(now)`, `poll_timeout` is
    /// never at or before `now` (a loop sleeping until it would spin).
    fn run_to_end(r: &mut Supervisor, limit: Duration) -> Vec<HealEvent> {
        let until = Instant::now() + limit;
        let mut events = Vec::new();
        loop {
            let now = Instant::now();
            assert!(now < until, "step did not end; events so far: {events:?}");
            r.read_output();
            r.handle_timeout(now);
            if let Some(t) = r.poll_timeout() {
                assert!(t > now, "poll_timeout {:?} in the past", now - t);
            }
            r.reap(now);
            while let Some(e) = r.poll_event() {
                let end = matches!(e, HealEvent::Ended { .. });
                events.push(e);
                if end {
                    return events;
                }
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn outcome(ev: &[HealEvent]) -> Outcome {
        match ev.last() {
            Some(HealEvent::Ended { outcome, .. }) => outcome.clone(),
            other => panic!("{other:?}"),
        }
    }

    // ---- the deadline, in virtual time ----

    #[test]
    fn deadline_fires_each_stage_once_and_is_never_left_in_the_past() {
        let t0 = Instant::now();
        let timing = Timing {
            grace: Duration::from_secs(5),
            kill_wait: Duration::from_secs(1),
        };
        let mut d = Deadline::new(t0 + Duration::from_secs(60), timing);
        let mut fired = Vec::new();
        // A loop that wakes every 100 ms of virtual time, for 2 minutes.
        for i in 0..1200u64 {
            let now = t0 + Duration::from_millis(100 * i);
            if let Some(due) = d.handle_timeout(now) {
                fired.push((now - t0, due));
            }
            assert!(
                d.poll_timeout().is_none_or(|t| t > now),
                "armed in the past at {:?}",
                now - t0
            );
        }
        assert_eq!(
            fired,
            [
                (Duration::from_secs(60), Due::Term),
                (Duration::from_secs(65), Due::Kill),
                (Duration::from_secs(66), Due::GiveUp),
            ]
        );
        assert!(d.given_up() && d.timed_out());
        assert_eq!(d.poll_timeout(), None, "nothing armed once given up");
    }

    #[test]
    fn a_late_wakeup_fires_one_stage_per_call() {
        let t0 = Instant::now();
        let mut d = Deadline::new(t0, QUICK);
        let late = t0 + Duration::from_secs(10);
        assert_eq!(d.handle_timeout(late), Some(Due::Term));
        assert_eq!(d.poll_timeout(), Some(late + QUICK.grace));
        assert_eq!(d.handle_timeout(late), None, "disarmed before acting");
    }

    #[test]
    fn terminate_shortens_but_never_restarts_the_kill_timer() {
        let t0 = Instant::now();
        let mut d = Deadline::new(t0 + Duration::from_secs(60), Timing::default());
        assert_eq!(d.terminate(t0, STOP_GRACE), Some(Due::Term));
        assert_eq!(d.poll_timeout(), Some(t0 + STOP_GRACE));
        // A second stop (reload, then SIGTERM) does not send SIGTERM again nor delay SIGKILL.
        assert_eq!(
            d.terminate(t0 + Duration::from_millis(100), STOP_GRACE),
            None
        );
        assert_eq!(d.poll_timeout(), Some(t0 + STOP_GRACE));
        assert_eq!(d.handle_timeout(t0 + STOP_GRACE), Some(Due::Kill));
        assert_eq!(d.kill(t0 + STOP_GRACE), Due::Kill);
        assert!(d.poll_timeout().unwrap() > t0 + STOP_GRACE);
    }

    // ---- real child processes ----

    #[test]
    fn exec_step_gets_argv_env_and_its_output_is_logged() {
        let s = Script::new("env", "echo \"args=$* iface=$NETHEAL_IFACE attempt=$NETHEAL_ATTEMPT\"\necho \"reason=$NETHEAL_REASON\" >&2\nread x && echo stdin-not-null\nprintf 'no newline'\nexit 3");
        let mut r = Supervisor::default();
        r.start_heal(
            Instant::now(),
            2,
            &HealStep::Exec(s.0.clone()),
            "eth9",
            "3 failed rounds",
            Duration::from_secs(10),
        );
        assert!(r.is_running());
        let ev = run_to_end(&mut r, Duration::from_secs(10));
        let prog = s.0.file_name().unwrap().to_string_lossy().into_owned();
        let lines: Vec<&str> = ev
            .iter()
            .filter_map(|e| match e {
                HealEvent::Output { prog: p, line } => {
                    assert_eq!(*p, prog);
                    Some(line.as_str())
                }
                _ => None,
            })
            .collect();
        assert_eq!(
            lines,
            [
                "args=eth9 iface=eth9 attempt=2",
                "reason=3 failed rounds",
                "no newline"
            ]
        );
        match ev.last().unwrap() {
            HealEvent::Ended {
                attempt: 2,
                outcome:
                    Outcome::Exited {
                        code: 3,
                        timed_out: false,
                    },
                step,
                ..
            } => {
                assert_eq!(*step, s.0.display().to_string())
            }
            other => panic!("{other:?}"),
        }
        assert!(!r.is_running());
        assert_eq!(r.output_fds().count(), 0, "nothing holds the pipe: closed");
    }

    #[test]
    fn a_hung_step_is_terminated_with_its_process_group() {
        let pidfile = tmp("pids");
        let body = format!("sleep 30 &\necho $! > {}\nwait", pidfile.display());
        let s = Script::new("hang", &body);
        let mut r = Supervisor::default();
        let t0 = Instant::now();
        s.start(&mut r, t0, Duration::from_millis(300));
        let grandchild = ready(&pidfile);
        let ev = run_to_end(&mut r, Duration::from_secs(10));
        let took = t0.elapsed();
        assert_eq!(
            outcome(&ev),
            Outcome::Killed {
                signal: 15,
                timed_out: true
            }
        );
        assert!(took >= Duration::from_millis(300), "{took:?}");
        // The background sleep was in the step's group: killed too (a zombie at most, until
        // its new parent collects it).
        assert!(dies(&grandchild), "grandchild state {}", state(&grandchild));
    }

    #[test]
    fn a_step_that_ignores_sigterm_is_killed_after_the_grace() {
        let rf = tmp("stubborn-ready");
        let s = Script::new(
            "stubborn",
            &format!(
                "trap '' TERM\necho > {}\nwhile :; do sleep 0.05; done",
                rf.display()
            ),
        );
        let mut r = Supervisor::with_timing(QUICK);
        let t0 = Instant::now();
        s.start(&mut r, t0, Duration::from_millis(100));
        // The deadline is only enforced once the trap is in place (the runner is handed the
        // time, so nothing fires before the first handle_timeout).
        ready(&rf);
        let ev = run_to_end(&mut r, Duration::from_secs(10));
        assert_eq!(
            outcome(&ev),
            Outcome::Killed {
                signal: 9,
                timed_out: true
            }
        );
        assert!(t0.elapsed() >= Duration::from_millis(100) + QUICK.grace);
    }

    /// Defect: a step that left its process group was never killed (the signals went to its
    /// old, empty group), and the kill timer stayed in the past: the loop spun at 80-94 % of
    /// a core. Now the pid itself is signalled too, and `run_to_end` checks the timer.
    #[test]
    fn a_step_that_leaves_its_group_is_still_killed_and_the_timer_is_never_in_the_past() {
        let rf = tmp("away-ready");
        let s = Script::new(
            "away",
            &format!(
                "exec perl -e 'setpgrp(0, getpgrp(getppid())) or die \"setpgrp: $!\"; \
                 $SIG{{TERM}} = \"IGNORE\"; open F, \">\", \"{}\"; print F \"\\n\"; close F; sleep 8'",
                rf.display()
            ),
        );
        let mut r = Supervisor::with_timing(QUICK);
        let t0 = Instant::now();
        s.start(&mut r, t0, Duration::from_millis(100));
        ready(&rf);
        let leader = r.pids()[0];
        assert_ne!(
            nix::unistd::getpgid(Some(leader)).unwrap(),
            leader,
            "the step left its group"
        );
        let ev = run_to_end(&mut r, Duration::from_secs(5));
        assert_eq!(
            outcome(&ev),
            Outcome::Killed {
                signal: 9,
                timed_out: true
            }
        );
        assert!(t0.elapsed() < Duration::from_secs(3), "{:?}", t0.elapsed());
    }

    /// What SIGKILL does not end (here: a step whose end we do not reap, as for one stuck in
    /// the kernel) ends the attempt as `WouldNotDie`, is logged, and is still reaped later.
    #[test]
    fn what_will_not_die_is_logged_and_given_up_then_reaped_later() {
        let s = Script::new("wedged", "sleep 30");
        let mut r = Supervisor::with_timing(QUICK);
        let t0 = Instant::now();
        s.start(&mut r, t0, Duration::from_millis(50));
        let pid = r.pids()[0];
        let mut events = Vec::new();
        // The loop without SIGCHLD: timers only.
        while r.is_running() {
            let now = Instant::now();
            assert!(
                now < t0 + Duration::from_secs(10),
                "never gave up: {events:?}"
            );
            r.handle_timeout(now);
            if let Some(t) = r.poll_timeout() {
                assert!(t > now, "timer in the past");
            }
            events.extend(std::iter::from_fn(|| r.poll_event()));
            std::thread::sleep(Duration::from_millis(5));
        }
        events.extend(std::iter::from_fn(|| r.poll_event()));
        let took = t0.elapsed();
        assert!(
            took >= Duration::from_millis(50) + QUICK.grace + QUICK.kill_wait,
            "{took:?}"
        );
        assert!(
            events.iter().any(|e| matches!(e, HealEvent::Notice(m)
                if m.contains(&format!("(pid {pid}) would not die after SIGKILL")))),
            "{events:?}"
        );
        assert_eq!(outcome(&events), Outcome::WouldNotDie);
        assert_eq!(r.poll_timeout(), None, "nothing left armed");
        assert_eq!(r.pids(), [pid], "still reaped if it ever ends");
        r.reap(Instant::now());
        assert!(r.pids().is_empty());
        assert!(
            matches!(r.poll_event(), Some(HealEvent::Notice(m)) if m.contains("has ended after all"))
        );
    }

    #[test]
    fn missing_executable_fails_to_start() {
        let mut r = Supervisor::default();
        r.start_heal(
            Instant::now(),
            1,
            &HealStep::Exec("/nonexistent/heal".into()),
            "eth9",
            "",
            Duration::from_secs(1),
        );
        assert!(!r.is_running());
        match r.poll_event().unwrap() {
            HealEvent::Ended {
                outcome: Outcome::FailedToStart(e),
                ..
            } => assert!(e.contains("/nonexistent/heal"), "{e}"),
            other => panic!("{other:?}"),
        }
    }

    /// netheal stopping: a TERM-ignoring step and the child it started in its group are both
    /// gone, within the stop's bound.
    #[test]
    fn stop_ends_the_whole_group_quickly() {
        let rf = tmp("killnow-ready");
        let s = Script::new(
            "killnow",
            &format!("trap '' TERM\nsleep 30 &\necho $! > {}\nwait", rf.display()),
        );
        let mut r = Supervisor::default();
        s.start(&mut r, Instant::now(), Duration::from_secs(60));
        let grandchild = ready(&rf);
        let leader = r.pids()[0].to_string();
        let t0 = Instant::now();
        let mut reaper = Reaper::default();
        reaper.adopt("eth9", r.hand_off(t0, Duration::from_millis(300)));
        assert!(!r.is_running());
        reaper.stop_all(Duration::from_millis(300), &mut Log::open(LogDest::Stderr));
        let took = t0.elapsed();
        assert!(took < Duration::from_secs(1), "{took:?}");
        assert_eq!(state(&leader), "gone", "the leader is reaped");
        assert!(dies(&grandchild), "grandchild state {}", state(&grandchild));
        assert!(reaper.pids().is_empty());
    }

    /// Defect: stopping a step that had left its process group blocked in wait() (47 s in
    /// the field: until the step ended by itself). The pid is signalled too, and nothing waits.
    #[test]
    fn stop_kills_a_step_that_left_its_group() {
        let rf = tmp("away-stop-ready");
        let s = Script::new(
            "awaystop",
            &format!(
                "exec perl -e 'setpgrp(0, getpgrp(getppid())) or die \"setpgrp: $!\"; \
                 $SIG{{TERM}} = \"IGNORE\"; open F, \">\", \"{}\"; print F \"\\n\"; close F; sleep 8'",
                rf.display()
            ),
        );
        let mut r = Supervisor::default();
        s.start(&mut r, Instant::now(), Duration::from_secs(60));
        ready(&rf);
        let leader = r.pids()[0].to_string();
        let t0 = Instant::now();
        let mut reaper = Reaper::default();
        reaper.adopt("eth9", r.hand_off(t0, Duration::from_millis(200)));
        reaper.stop_all(Duration::from_millis(200), &mut Log::open(LogDest::Stderr));
        let took = t0.elapsed();
        assert!(took < Duration::from_secs(1), "{took:?}");
        assert_eq!(state(&leader), "gone");
    }

    /// Defect: stopping 8 TERM-ignoring steps slept 0.5 s per step inside the loop (4 s). The
    /// hand-off is immediate, and a final stop has one bound for all of them.
    #[test]
    fn stopping_eight_stubborn_steps_takes_one_grace_not_eight() {
        let mut runners = Vec::new();
        let mut scripts = Vec::new();
        for i in 0..8 {
            let rf = tmp(&format!("eight-{i}"));
            let s = Script::new(
                &format!("eight{i}"),
                &format!(
                    "trap '' TERM\necho > {}\nwhile :; do sleep 0.05; done",
                    rf.display()
                ),
            );
            let mut r = Supervisor::default();
            s.start(&mut r, Instant::now(), Duration::from_secs(60));
            ready(&rf);
            runners.push(r);
            scripts.push(s);
        }
        let t0 = Instant::now();
        let mut reaper = Reaper::default();
        for (i, r) in runners.iter_mut().enumerate() {
            reaper.adopt(&format!("eth{i}"), r.hand_off(Instant::now(), STOP_GRACE));
        }
        let handed = t0.elapsed();
        assert!(
            // Waiting for them (the old way) took 0.5 s each, 4 s in all; the bound leaves
            // room for a loaded or emulated (qemu) machine.
            handed < Duration::from_secs(1),
            "hand-off took {handed:?}"
        );
        assert_eq!(reaper.pids().len(), 8);
        reaper.stop_all(STOP_GRACE, &mut Log::open(LogDest::Stderr));
        let took = t0.elapsed();
        assert!(
            took < STOP_GRACE + Duration::from_secs(2),
            "stop took {took:?}"
        );
        assert!(reaper.pids().is_empty(), "{:?}", reaper.pids());
    }

    /// A reload hands a running step to the daemon's reaper, which the loop drives: SIGTERM
    /// at once, SIGKILL after the grace, never a timer in the past, never a blocking wait.
    #[test]
    fn the_reaper_kills_a_handed_off_step_from_the_loop() {
        let rf = tmp("reload-ready");
        let s = Script::new(
            "reload",
            &format!(
                "trap '' TERM\necho $$ > {}\nwhile :; do sleep 0.05; done",
                rf.display()
            ),
        );
        let mut r = Supervisor::default();
        s.start(&mut r, Instant::now(), Duration::from_secs(60));
        let pid = ready(&rf);
        let mut reaper = Reaper::default();
        let mut log = Log::open(LogDest::Stderr);
        let t0 = Instant::now();
        reaper.adopt("eth9", r.hand_off(t0, Duration::from_millis(200)));
        let mut turns = 0;
        while !reaper.is_empty() {
            let now = Instant::now();
            assert!(now < t0 + Duration::from_secs(3), "not killed");
            reaper.turn(now, &mut log);
            if let Some(t) = reaper.poll_timeout() {
                assert!(t > now, "timer in the past");
            }
            reaper.reap();
            turns += 1;
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(
            t0.elapsed() >= Duration::from_millis(200),
            "{:?}",
            t0.elapsed()
        );
        assert_eq!(state(&pid), "gone");
        assert!(turns > 1);
    }

    /// Defect: what a step left running died of SIGPIPE (exit 141) when netheal closed the
    /// pipe at the leader's exit. The pipe is read to EOF, and the late line is logged.
    #[test]
    fn what_a_step_leaves_running_can_still_write_and_is_logged() {
        let st = tmp("leftover-status");
        let s = Script::new(
            "leftover",
            &format!(
                "( sh -c 'sleep 0.3; echo late'; echo $? > {0}.tmp; mv {0}.tmp {0} ) &\necho first",
                st.display()
            ),
        );
        let mut r = Supervisor::default();
        s.start(&mut r, Instant::now(), Duration::from_secs(5));
        let ev = run_to_end(&mut r, Duration::from_secs(5));
        assert!(outcome(&ev).success());
        assert_eq!(
            r.output_fds().count(),
            1,
            "the pipe stays open for the helper"
        );
        let until = Instant::now() + Duration::from_secs(3);
        let mut late = Vec::new();
        while !st.exists() || r.output_fds().count() > 0 {
            assert!(Instant::now() < until, "the helper did not finish");
            r.read_output();
            while let Some(e) = r.poll_event() {
                late.push(e);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let code = std::fs::read_to_string(&st).unwrap_or_default();
        let _ = std::fs::remove_file(&st);
        assert_eq!(code.trim(), "0", "the helper's exit status (141: SIGPIPE)");
        assert!(
            late.contains(&HealEvent::Output {
                prog: s.0.file_name().unwrap().to_string_lossy().into_owned(),
                line: "late".into()
            }),
            "{late:?}"
        );
    }

    #[test]
    fn lingering_pipes_are_bounded() {
        let s = Script::new("linger", "sleep 3 &\necho started");
        let mut r = Supervisor::default();
        for _ in 0..MAX_LINGERING + 1 {
            s.start(&mut r, Instant::now(), Duration::from_secs(5));
            run_to_end(&mut r, Duration::from_secs(5));
        }
        assert_eq!(r.output_fds().count(), MAX_LINGERING);
        let mut notices = 0;
        while let Some(e) = r.poll_event() {
            notices +=
                usize::from(matches!(e, HealEvent::Notice(m) if m.contains("closing the output")));
        }
        assert_eq!(notices, 1);
    }

    /// Defect: the `link` step's ioctls ran in the loop itself. Now they run in a child, so
    /// the step is running after start and ends through SIGCHLD like any other.
    #[test]
    fn the_link_step_runs_in_a_supervised_child() {
        let mut r = Supervisor::default();
        r.start_heal(
            Instant::now(),
            1,
            &HealStep::Link,
            "nh-nosuch0",
            "",
            Duration::from_secs(5),
        );
        assert!(r.is_running(), "the ioctls ran synchronously");
        assert_eq!(r.pids().len(), 1);
        match outcome(&run_to_end(&mut r, Duration::from_secs(5))) {
            Outcome::BuiltIn(Err(e)) => assert!(e.contains("No such device"), "{e}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_link_step_that_overruns_its_deadline_is_killed() {
        let mut r = Supervisor::with_timing(QUICK);
        r.link_hold = Duration::from_secs(30);
        let t0 = Instant::now();
        r.start_heal(
            t0,
            1,
            &HealStep::Link,
            "nh-nosuch1",
            "",
            Duration::from_millis(100),
        );
        let o = outcome(&run_to_end(&mut r, Duration::from_secs(5)));
        assert_eq!(
            o,
            Outcome::Killed {
                signal: 15,
                timed_out: true
            }
        );
        assert!(t0.elapsed() < Duration::from_secs(2));
        assert_eq!(
            describe("link", &o, Duration::from_millis(100)),
            "link killed by signal 15 after 100ms (timed out)"
        );
    }

    #[test]
    fn descriptions() {
        let d = Duration::from_millis(1234);
        assert_eq!(
            describe(
                "ifupdown",
                &Outcome::Exited {
                    code: 0,
                    timed_out: false
                },
                d
            ),
            "ifupdown exited 0 after 1.2s"
        );
        assert_eq!(
            describe(
                "/x",
                &Outcome::Killed {
                    signal: 9,
                    timed_out: true
                },
                d
            ),
            "/x killed by signal 9 after 1.2s (timed out)"
        );
        assert_eq!(
            describe("link", &Outcome::BuiltIn(Ok(())), d),
            "link done after 1.2s"
        );
        assert_eq!(
            describe("/x", &Outcome::FailedToStart("nope".into()), d),
            "/x failed to start: nope"
        );
        assert_eq!(
            describe("/x", &Outcome::WouldNotDie, d),
            "/x would not die after SIGKILL; not waiting for it after 1.2s (timed out)"
        );
    }
}
