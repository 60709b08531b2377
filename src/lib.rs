//! netheal: a self-healing network watchdog. This file wires the parts together and is the one
//! place where errors become exit codes.
//!
//! Data flows one way: sockets and timers -> events -> watchdog -> actions -> heal and log.
//! `wire`, `probe`, `route` and `watchdog` are pure; `sys` holds every `unsafe` block; the
//! poll loop in `daemon` is the only code that reads the clock.

pub mod cli;
pub mod config;
pub mod daemon;
pub mod heal;
pub mod log;
pub mod probe;
pub mod route;
pub mod sys;
pub mod watchdog;
pub mod wire;

use std::io::Write;
use std::process::ExitCode;

/// Exit statuses (documented in --help, the README and the man page).
pub mod exit {
    pub const OK: u8 = 0;
    /// `--once` found the link bad, or the loop failed at run time.
    pub const BAD: u8 = 1;
    pub const USAGE: u8 = 2;
    pub const NO_SOCKET: u8 = 3;
}

pub fn run() -> ExitCode {
    let cfg = match cli::parse(std::env::args_os().skip(1)) {
        Ok(cli::Command::Run(cfg)) => cfg,
        Ok(cli::Command::Help) => return print(cli::HELP),
        Ok(cli::Command::Version) => return print(&format!("{}\n", cli::version())),
        Err(e) => {
            eprintln!("netheal: {e}");
            return ExitCode::from(exit::USAGE);
        }
    };
    let log = log::Log::open(cfg.log);
    install_panic_hook(log.is_syslog());
    let iface = cfg.iface.clone();
    let result = daemon::Daemon::new(cfg, log).and_then(|mut d| d.run());
    match result {
        Ok(daemon::Exit::Stopped) => ExitCode::from(exit::OK),
        Ok(daemon::Exit::Once(good)) => ExitCode::from(if good { exit::OK } else { exit::BAD }),
        Err(e) => {
            // Fatal errors go to stderr always (an init system shows it), and to syslog too.
            let msg = format!("{iface}: {e}");
            let mut log = log::Log::open(config::LogDest::Auto);
            if log.is_syslog() {
                log.log(log::Level::Error, &msg);
            }
            eprintln!("netheal: {msg}");
            ExitCode::from(match e {
                daemon::Error::NoSocket(_) => exit::NO_SOCKET,
                daemon::Error::Io { .. } => exit::BAD,
            })
        }
    }
}

fn print(text: &str) -> ExitCode {
    // not fatal: a closed stdout (netheal -h | head -1) is not worth an error
    let _ = std::io::stdout().write_all(text.as_bytes());
    ExitCode::from(exit::OK)
}

/// With panic = "abort" nothing unwinds: say what happened where the admin will look, then
/// let the default hook print the location and abort.
fn install_panic_hook(to_syslog: bool) {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if to_syslog {
            let mut log = log::Log::open(config::LogDest::Syslog);
            log.log(log::Level::Error, &format!("panic: {info}"));
        }
        default(info);
    }));
}
