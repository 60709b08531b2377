//! Where log lines go: syslog (facility daemon, ident netheal, with pid, RFC 3164 over
//! /dev/log) or stderr, one line per message. Identical repeated messages sent through
//! `limited` are rate-limited so a dead link cannot flood the log.
#![forbid(unsafe_code)]

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use syslog::{Facility, LogFormat, Logger, LoggerBackend, Severity};

use crate::config::LogDest;

/// An identical limited message is logged at most once per this window.
const REPEAT_WINDOW: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Error,
    Warning,
    Notice,
    Info,
}

enum Sink {
    Stderr,
    Syslog(Logger<LoggerBackend, Rfc3164>),
}

struct Repeated {
    msg: String,
    at: Instant,
    suppressed: u32,
}

pub struct Log {
    sink: Sink,
    last: Option<Repeated>,
}

/// `<PRI>netheal[PID]: MESSAGE`, the form syslog(3) sends to /dev/log, without the
/// timestamp: the local syslog daemon (rsyslog, syslog-ng, busybox syslogd, journald) stamps
/// messages that carry none, and leaving it out keeps a date formatter out of the binary.
#[derive(Clone, Copy, Debug)]
pub struct Rfc3164 {
    pid: u32,
}

impl<T: std::fmt::Display> LogFormat<T> for Rfc3164 {
    fn format<W: Write>(&self, w: &mut W, severity: Severity, message: T) -> syslog::Result<()> {
        let pri = Facility::LOG_DAEMON as u8 | severity as u8;
        write!(w, "<{pri}>netheal[{}]: {message}", self.pid).map_err(syslog::Error::Write)
    }
}

fn formatter() -> Rfc3164 {
    Rfc3164 {
        pid: std::process::id(),
    }
}

impl Log {
    /// `auto`: stderr when it is a terminal or there is no syslog socket, else syslog.
    pub fn open(dest: LogDest) -> Log {
        let want_syslog = match dest {
            LogDest::Stderr => false,
            LogDest::Syslog => true,
            LogDest::Auto => {
                !std::io::stderr().is_terminal() && std::path::Path::new("/dev/log").exists()
            }
        };
        let sink = if want_syslog {
            match syslog::unix(formatter()) {
                Ok(l) => Sink::Syslog(l),
                Err(e) => {
                    let msg = format!("netheal: syslog unavailable ({e}); logging to stderr");
                    let _ = writeln!(std::io::stderr(), "{msg}"); // not fatal: nowhere else to say it
                    Sink::Stderr
                }
            }
        } else {
            Sink::Stderr
        };
        Log { sink, last: None }
    }

    pub fn is_syslog(&self) -> bool {
        matches!(self.sink, Sink::Syslog(_))
    }

    pub fn log(&mut self, level: Level, msg: &str) {
        if let Sink::Syslog(logger) = &mut self.sink {
            if send(logger, level, msg).is_ok() {
                return;
            }
            // syslogd restarted, or its socket is gone: reconnect once, then use stderr.
            if let Ok(mut fresh) = syslog::unix(formatter()) {
                if send(&mut fresh, level, msg).is_ok() {
                    *logger = fresh;
                    return;
                }
            }
        }
        // One write per line so lines from several processes never interleave.
        let line = format!("netheal: {msg}\n");
        let _ = std::io::stderr().write_all(line.as_bytes()); // not fatal: nowhere else to log
    }

    /// Logs `msg` unless the same message was logged within the last minute; the count of
    /// what was held back is reported with the next one that gets through.
    pub fn limited(&mut self, now: Instant, level: Level, msg: String) {
        if let Some(last) = self.last.as_mut() {
            if last.msg == msg && now.saturating_duration_since(last.at) < REPEAT_WINDOW {
                last.suppressed += 1;
                return;
            }
        }
        let held = self.last.take().filter(|l| l.suppressed > 0);
        match held {
            Some(l) if l.msg == msg => {
                self.log(
                    level,
                    &format!("{msg} (and {} more times in the last minute)", l.suppressed),
                );
            }
            Some(l) => {
                self.log(
                    Level::Info,
                    &format!("last message repeated {} times: {}", l.suppressed, l.msg),
                );
                self.log(level, &msg);
            }
            None => self.log(level, &msg),
        }
        self.last = Some(Repeated {
            msg,
            at: now,
            suppressed: 0,
        });
    }
}

fn send(
    logger: &mut Logger<LoggerBackend, Rfc3164>,
    level: Level,
    msg: &str,
) -> Result<(), syslog::Error> {
    match level {
        Level::Error => logger.err(msg),
        Level::Warning => logger.warning(msg),
        Level::Notice => logger.notice(msg),
        Level::Info => logger.info(msg),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3164_line() {
        let mut out = Vec::new();
        Rfc3164 { pid: 42 }
            .format(&mut out, Severity::LOG_WARNING, "eth0: state up -> suspect")
            .unwrap();
        // daemon (3 << 3) | warning (4) = 28
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "<28>netheal[42]: eth0: state up -> suspect"
        );
    }
}
