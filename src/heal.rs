//! Runs heal steps (and on-change hooks) without ever blocking the poll loop. A step is a short sequence of
//! commands (`ifdown` then `ifup`, or one executable), each started with argv (no shell),
//! stdin from /dev/null, stdout and stderr into one pipe whose lines are logged, in its own
//! process group, under one deadline for the whole step: at the deadline the group gets
//! SIGTERM, and SIGKILL after a grace period. Ends are noticed through SIGCHLD, reported as
//! events. The built-in `link` step is two ioctls and ends at once.
#![forbid(unsafe_code)]

use std::collections::VecDeque;
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::sys::signal::{killpg, Signal};
use nix::unistd::{pipe2, Pid};

use crate::config::{human, HealStep};
use crate::sys;

/// Where `ifupdown` looks for ifdown and ifup, in order.
pub const TOOL_PATH: &str = "/sbin:/usr/sbin:/bin:/usr/bin";
/// PATH for steps when netheal itself was started without one (bare init scripts).
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// SIGTERM to SIGKILL, for a step that overran its deadline.
pub const KILL_GRACE: Duration = Duration::from_secs(5);
/// Output lines logged per step, and bytes per line, before the rest is dropped.
const MAX_LINES: u32 = 100;
const MAX_LINE: usize = 512;

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
}

/// What the runner has to report to the loop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HealEvent {
    /// A line of a command's output; `prog` is the command's file name.
    Output { prog: String, line: String },
    /// The step's last command ended (or could not start).
    Ended {
        attempt: u32,
        step: String,
        outcome: Outcome,
        elapsed: Duration,
    },
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
    }
}

fn timed_out_note(timed_out: bool) -> &'static str {
    if timed_out {
        " (timed out)"
    } else {
        ""
    }
}

#[derive(Debug)]
struct Running {
    attempt: u32,
    step: String,
    /// Commands still to run after the current one.
    rest: VecDeque<Vec<String>>,
    env: Vec<(&'static str, String)>,
    child: Child,
    prog: String,
    output: Option<OwnedFd>,
    partial: Vec<u8>,
    lines: u32,
    started: Instant,
    deadline: Instant,
    term_sent: Option<Instant>,
}

#[derive(Debug, Default)]
pub struct HealRunner {
    running: Option<Running>,
    events: VecDeque<HealEvent>,
}

impl HealRunner {
    pub fn is_running(&self) -> bool {
        self.running.is_some()
    }

    pub fn poll_event(&mut self) -> Option<HealEvent> {
        self.events.pop_front()
    }

    /// Starts heal `step` for `iface`. Never blocks on the step; a step that cannot start, and
    /// the built-in one, report their end at once.
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
            HealStep::Link => {
                let r =
                    sys::iface::set_up(iface, false).and_then(|()| sys::iface::set_up(iface, true));
                let outcome = Outcome::BuiltIn(r.map_err(|e| e.to_string()));
                self.events.push_back(HealEvent::Ended {
                    attempt,
                    step: name,
                    outcome,
                    elapsed: now.elapsed(),
                });
                return;
            }
            HealStep::IfUpDown => {
                let mut cmds = Vec::new();
                for tool in ["ifdown", "ifup"] {
                    match find_tool(tool) {
                        Some(p) => cmds.push(vec![p.display().to_string(), iface.to_string()]),
                        None => {
                            let outcome =
                                Outcome::FailedToStart(format!("{tool} not found in {TOOL_PATH}"));
                            self.events.push_back(HealEvent::Ended {
                                attempt,
                                step: name,
                                outcome,
                                elapsed: Duration::ZERO,
                            });
                            return;
                        }
                    }
                }
                cmds
            }
            HealStep::Exec(path) => vec![vec![path.display().to_string(), iface.to_string()]],
            HealStep::Reboot => {
                // The watch runs this step itself (budget first): see Watch::reboot.
                let outcome = Outcome::FailedToStart("reboot is not a runner step".into());
                self.events.push_back(HealEvent::Ended {
                    attempt,
                    step: name,
                    outcome,
                    elapsed: Duration::ZERO,
                });
                return;
            }
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

    fn start_job(
        &mut self,
        now: Instant,
        attempt: u32,
        name: String,
        commands: Vec<Vec<String>>,
        env: Vec<(&'static str, String)>,
        timeout: Duration,
    ) {
        assert!(self.running.is_none(), "jobs of one runner never overlap");
        let mut rest: VecDeque<Vec<String>> = commands.into();
        let first = rest.pop_front().unwrap_or_default();
        match spawn(&first, &env) {
            Ok((child, output)) => {
                self.running = Some(Running {
                    attempt,
                    step: name,
                    rest,
                    env,
                    child,
                    prog: prog_name(&first),
                    output: Some(output),
                    partial: Vec::new(),
                    lines: 0,
                    started: now,
                    deadline: now.checked_add(timeout).unwrap_or(now),
                    term_sent: None,
                });
            }
            Err(e) => {
                let outcome = Outcome::FailedToStart(format!(
                    "{}: {e}",
                    first.first().map_or("", String::as_str)
                ));
                self.events.push_back(HealEvent::Ended {
                    attempt,
                    step: name,
                    outcome,
                    elapsed: Duration::ZERO,
                });
            }
        }
    }

    /// The pipe to watch for output, while a step runs.
    pub fn output_fd(&self) -> Option<&OwnedFd> {
        self.running.as_ref()?.output.as_ref()
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        let r = self.running.as_ref()?;
        Some(match r.term_sent {
            None => r.deadline,
            Some(t) => t + KILL_GRACE,
        })
    }

    /// Enforces the deadline: SIGTERM to the group, then SIGKILL after the grace period.
    pub fn handle_timeout(&mut self, now: Instant) {
        let Some(r) = self.running.as_mut() else {
            return;
        };
        match r.term_sent {
            None if now >= r.deadline => {
                signal_group(&r.child, Signal::SIGTERM);
                r.term_sent = Some(now);
            }
            Some(t) if now >= t + KILL_GRACE => signal_group(&r.child, Signal::SIGKILL),
            _ => {}
        }
    }

    /// Reads what the step has written so far.
    pub fn read_output(&mut self) {
        if let Some(r) = self.running.as_mut() {
            r.drain(&mut self.events, false);
        }
    }

    /// On SIGCHLD: reaps the current command if it ended, then starts the next one or
    /// reports the step's end.
    pub fn handle_child_exit(&mut self, now: Instant) {
        let Some(r) = self.running.as_mut() else {
            return;
        };
        let status = match r.child.try_wait() {
            Ok(Some(status)) => status,
            Ok(None) => return,
            Err(e) => {
                // not fatal: the child is gone from our view; report the step as failed
                let outcome = Outcome::FailedToStart(format!("wait: {e}"));
                self.finish(now, outcome);
                return;
            }
        };
        r.drain(&mut self.events, true);
        let timed_out = r.term_sent.is_some();
        if timed_out {
            // The group is condemned: whatever the leader left behind goes too.
            signal_group(&r.child, Signal::SIGKILL);
        }
        if !timed_out {
            if let Some(next) = r.rest.pop_front() {
                // ifup runs whatever ifdown's exit status was: a half-configured interface is
                // exactly when ifdown complains.
                match spawn(&next, &r.env) {
                    Ok((child, output)) => {
                        r.child = child;
                        r.prog = prog_name(&next);
                        r.output = Some(output);
                        return;
                    }
                    Err(e) => {
                        let outcome = Outcome::FailedToStart(format!("{}: {e}", next[0]));
                        self.finish(now, outcome);
                        return;
                    }
                }
            }
        }
        self.finish(now, Outcome::from_status(status, timed_out));
    }

    fn finish(&mut self, now: Instant, outcome: Outcome) {
        if let Some(r) = self.running.take() {
            let elapsed = now.saturating_duration_since(r.started);
            self.events.push_back(HealEvent::Ended {
                attempt: r.attempt,
                step: r.step,
                outcome,
                elapsed,
            });
        }
    }

    /// On shutdown: ends the running step's whole process group within `within`, reaping it.
    /// Blocks for at most that long (the loop is stopping anyway).
    pub fn kill_now(&mut self, within: Duration) {
        let Some(mut r) = self.running.take() else {
            return;
        };
        signal_group(&r.child, Signal::SIGTERM);
        let until = Instant::now() + within;
        while Instant::now() < until {
            if let Ok(Some(_)) = r.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        // Whether the leader went or not, nothing of the group may outlive us.
        signal_group(&r.child, Signal::SIGKILL);
        let _ = r.child.wait(); // not fatal: SIGKILL cannot be refused, this returns at once
    }
}

impl Running {
    /// Moves complete lines from the pipe into events; at `end`, the partial line too.
    fn drain(&mut self, events: &mut VecDeque<HealEvent>, end: bool) {
        let mut buf = [0u8; 4096];
        while let Some(fd) = self.output.as_ref() {
            match nix::unistd::read(fd, &mut buf) {
                Ok(0) => self.output = None,
                Ok(n) => self.partial.extend_from_slice(&buf[..n]),
                Err(nix::errno::Errno::EINTR) => continue,
                Err(_) => break, // EAGAIN: nothing more for now
            }
            if self.partial.len() > 64 * 1024 {
                break;
            }
        }
        while let Some(pos) = self.partial.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.partial.drain(..=pos).collect();
            self.emit_line(events, &line[..line.len() - 1]);
        }
        if end {
            if !self.partial.is_empty() {
                let line = std::mem::take(&mut self.partial);
                self.emit_line(events, &line);
            }
            // The command is done; a daemon it started may keep the pipe open forever.
            self.output = None;
        } else if self.partial.len() > MAX_LINE {
            let line = std::mem::take(&mut self.partial);
            self.emit_line(events, &line);
        }
    }

    fn emit_line(&mut self, events: &mut VecDeque<HealEvent>, raw: &[u8]) {
        self.lines += 1;
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

fn spawn(argv: &[String], env: &[(&'static str, String)]) -> io::Result<(Child, OwnedFd)> {
    let (read, write) = pipe2(OFlag::O_CLOEXEC)?;
    let flags = OFlag::from_bits_truncate(fcntl(&read, FcntlArg::F_GETFL)?);
    fcntl(&read, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))?;
    let mut cmd = Command::new(&argv[0]);
    cmd.args(&argv[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::from(write.try_clone()?))
        .stderr(Stdio::from(write))
        .current_dir("/")
        .process_group(0);
    sys::signals::reset_in_child(&mut cmd);
    // Steps and hooks are not netheal: systemd's notification socket and watchdog settings
    // are meant for us alone.
    for var in ["NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"] {
        cmd.env_remove(var);
    }
    if std::env::var_os("PATH").is_none() {
        cmd.env("PATH", DEFAULT_PATH);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let child = cmd.spawn()?;
    Ok((child, read))
}

fn signal_group(child: &Child, sig: Signal) {
    // The child is its group's leader (process_group(0)), so its pid is the group id.
    // not fatal: ESRCH means the whole group is already gone
    let _ = killpg(Pid::from_raw(child.id() as i32), sig);
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

fn find_tool(name: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    TOOL_PATH
        .split(':')
        .map(|dir| Path::new(dir).join(name))
        .find(|p| {
            std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// A throw-away executable script.
    struct Script(PathBuf);

    impl Script {
        fn new(tag: &str, body: &str) -> Script {
            use std::os::unix::fs::PermissionsExt;
            let p = std::env::temp_dir().join(format!("netheal-heal-{}-{tag}", std::process::id()));
            let mut f = std::fs::File::create(&p).unwrap();
            writeln!(f, "#!/bin/sh\n{body}").unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
            Script(p)
        }
    }

    impl Drop for Script {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    /// Drives the runner as the loop would, with real time, until the step ends.
    fn run_to_end(r: &mut HealRunner, limit: Duration) -> Vec<HealEvent> {
        let until = Instant::now() + limit;
        let mut events = Vec::new();
        loop {
            let now = Instant::now();
            assert!(now < until, "step did not end; events so far: {events:?}");
            r.read_output();
            r.handle_timeout(now);
            r.handle_child_exit(now);
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

    #[test]
    fn exec_step_gets_argv_env_and_its_output_is_logged() {
        let s = Script::new("env", "echo \"args=$* iface=$NETHEAL_IFACE attempt=$NETHEAL_ATTEMPT\"\necho \"reason=$NETHEAL_REASON\" >&2\nread x && echo stdin-not-null\nprintf 'no newline'\nexit 3");
        let mut r = HealRunner::default();
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
    }

    #[test]
    fn a_hung_step_is_terminated_with_its_process_group() {
        let pidfile =
            std::env::temp_dir().join(format!("netheal-heal-{}-pids", std::process::id()));
        let body = format!("sleep 30 &\necho $! > {}\nwait", pidfile.display());
        let s = Script::new("hang", &body);
        let mut r = HealRunner::default();
        let t0 = Instant::now();
        r.start_heal(
            t0,
            1,
            &HealStep::Exec(s.0.clone()),
            "eth9",
            "",
            Duration::from_millis(300),
        );
        let ev = run_to_end(&mut r, Duration::from_secs(10));
        let took = t0.elapsed();
        match ev.last().unwrap() {
            HealEvent::Ended {
                outcome:
                    Outcome::Killed {
                        signal: 15,
                        timed_out: true,
                    },
                ..
            } => {}
            other => panic!("{other:?}"),
        }
        assert!(took >= Duration::from_millis(300), "{took:?}");
        let grandchild = std::fs::read_to_string(&pidfile).unwrap();
        let _ = std::fs::remove_file(&pidfile);
        // The background sleep was in the step's group: killed too (a zombie at most, until
        // its reaper collects it). SIGKILL is delivered asynchronously: allow it a moment.
        let state = || {
            let stat = std::fs::read_to_string(format!("/proc/{}/stat", grandchild.trim()))
                .unwrap_or_default();
            let st = stat
                .rsplit(')')
                .next()
                .unwrap_or("")
                .split_whitespace()
                .next()
                .unwrap_or("gone");
            st.to_string()
        };
        let until = Instant::now() + Duration::from_secs(2);
        while !matches!(state().as_str(), "gone" | "Z") && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(10));
        }
        let state = state();
        assert!(state == "gone" || state == "Z", "grandchild state {state}");
    }

    #[test]
    fn a_step_that_ignores_sigterm_is_killed_after_the_grace() {
        let s = Script::new("stubborn", "trap '' TERM\nwhile :; do sleep 0.05; done");
        let mut r = HealRunner::default();
        let t0 = Instant::now();
        r.start_heal(
            t0,
            1,
            &HealStep::Exec(s.0.clone()),
            "eth9",
            "",
            Duration::from_millis(100),
        );
        let ev = run_to_end(&mut r, KILL_GRACE + Duration::from_secs(10));
        match ev.last().unwrap() {
            HealEvent::Ended {
                outcome:
                    Outcome::Killed {
                        signal: 9,
                        timed_out: true,
                    },
                ..
            } => {}
            other => panic!("{other:?}"),
        }
        assert!(t0.elapsed() >= KILL_GRACE);
    }

    #[test]
    fn missing_executable_fails_to_start() {
        let mut r = HealRunner::default();
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

    #[test]
    fn kill_now_ends_the_group_quickly() {
        let s = Script::new("killnow", "trap '' TERM\nsleep 30");
        let mut r = HealRunner::default();
        r.start_heal(
            Instant::now(),
            1,
            &HealStep::Exec(s.0.clone()),
            "eth9",
            "",
            Duration::from_secs(60),
        );
        std::thread::sleep(Duration::from_millis(100));
        let t0 = Instant::now();
        r.kill_now(Duration::from_millis(300));
        assert!(t0.elapsed() < Duration::from_secs(2));
        assert!(!r.is_running());
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
    }
}
