//! netheal: a self-healing network watchdog. This file wires the parts together and is the one
//! place where errors become exit codes.
//!
//! Data flows one way: sockets, the kernel's netlink reports and timers -> events -> decide
//! -> actions -> heal and log. `wire`, `probe`, `kernel`, `route`, `decide`, `report` and
//! `config` are pure (config also reads its file); `sys` holds every `unsafe` block; the poll
//! loop in `daemon` reads the clock, and so does the bounded start-up sync in `eyes`.

pub mod backend;
pub mod budget;
pub mod civil;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod decide;
pub mod diagnose;
pub mod explain;
pub mod eyes;
pub mod heal;
pub mod inhibit;
pub mod kernel;
pub mod l2;
pub mod log;
pub mod mono;
pub mod notify;
pub mod probe;
pub mod report;
pub mod route;
pub mod sys;
pub mod watch;
pub mod wire;

use std::fmt::Write as _;
use std::io::Write;
use std::process::ExitCode;

/// Exit statuses (documented in --help, the README and the man page).
pub mod exit {
    pub const OK: u8 = 0;
    /// `--once` found the link bad, or the loop failed at run time.
    pub const BAD: u8 = 1;
    pub const USAGE: u8 = 2;
    /// No ICMP socket for lack of privilege (EPERM/EACCES).
    pub const NO_SOCKET: u8 = 3;
}

pub fn run() -> ExitCode {
    let mut inv = match cli::parse(std::env::args_os().skip(1)) {
        Ok(cli::Command::Run(inv)) => inv,
        Ok(cli::Command::Help) => return print(cli::HELP),
        Ok(cli::Command::Version) => return print(&format!("{}\n", cli::version())),
        Err(e) => return usage(e),
    };
    // A reload reads `-c FILE` again, and `-d` has changed to / by then: keep the file the
    // admin named, not whatever that relative path means from the root.
    if let Some(c) = inv.args.config.as_mut().filter(|c| c.is_relative()) {
        if let Ok(cwd) = std::env::current_dir() {
            *c = cwd.join(&*c);
        }
    }
    if inv.status {
        return status(&inv.args);
    }
    if let Some(dur) = inv.inhibit {
        return inhibit(&inv.args, dur);
    }
    let cfg = match config::resolve(&inv.args) {
        Ok(cfg) => cfg,
        Err(e) => return usage(e),
    };
    let findings = backend::check_watches(&backend::root(), &cfg.watches);
    if inv.check {
        return check(&cfg, &findings);
    }
    // An explicitly named step that cannot run is refused before anything starts; what
    // `auto` finds (or does not) each watch logs when it starts.
    if let Some(code) = step_errors(&findings).filter(|_| !inv.once) {
        return code;
    }
    let pidfile_path = cfg
        .pidfile
        .clone()
        .or_else(|| inv.daemon.then(|| config::DEFAULT_PIDFILE.into()));
    let log_dest = cfg.log;
    let mut daemon = match daemon::Daemon::new(cfg, inv.args.clone(), inv.once) {
        Ok(d) => d,
        Err(e) => return fatal(log_dest, &e),
    };
    let detached = if inv.daemon {
        if let Some(why) = log::detach_warning(log_dest) {
            eprintln!("netheal: {why}");
        }
        match sys::daemonize::detach() {
            Ok(d) => Some(d),
            Err(e) => {
                return fatal(
                    log_dest,
                    &daemon::Error::Io {
                        what: "detach",
                        err: e,
                    },
                )
            }
        }
    } else {
        None
    };
    // Held until we return: the lock refuses a second instance, the file goes on drop.
    let _pidfile = match pidfile_path
        .as_deref()
        .filter(|_| !inv.once)
        .map(sys::daemonize::Pidfile::create)
    {
        Some(Err(why)) => {
            if let Some(d) = detached {
                d.failed(&why);
            }
            eprintln!("netheal: {why}");
            return ExitCode::from(exit::BAD);
        }
        Some(Ok(p)) => Some(p),
        None => None,
    };
    let log = log::Log::open(log_dest);
    install_panic_hook(log.wants_syslog());
    if let Some(d) = detached {
        d.ready();
    }
    let outcome = daemon.run(log);
    // Everything else goes before the pidfile does: an init script that waits for the pidfile
    // to disappear must find the process gone with it (the sockets, children, reports).
    drop(daemon);
    match outcome {
        Ok(daemon::Exit::Stopped) => ExitCode::from(exit::OK),
        Ok(daemon::Exit::Once(good, table)) => {
            print(&table);
            ExitCode::from(if good { exit::OK } else { exit::BAD })
        }
        Err(e) => fatal(log_dest, &e),
    }
}

fn usage(e: config::ConfigError) -> ExitCode {
    eprintln!("netheal: {e}");
    ExitCode::from(exit::USAGE)
}

/// Fatal errors go to stderr always (an init system shows it), and to syslog when that is
/// where the log goes.
fn fatal(dest: config::LogDest, e: &daemon::Error) -> ExitCode {
    let mut log = log::Log::open(dest);
    if log.is_syslog() {
        log.log(log::Level::Error, &e.to_string());
    }
    eprintln!("netheal: {e}");
    // Only a matter of privilege gets 3; the open-file limit (EMFILE) and the rest are
    // fatal run-time errors.
    ExitCode::from(if e.is_privilege() {
        exit::NO_SOCKET
    } else {
        exit::BAD
    })
}

/// Prints each explicitly named heal step that cannot run (a tool missing): exit 2.
fn step_errors(findings: &[backend::Finding]) -> Option<ExitCode> {
    let mut failed = false;
    for f in findings {
        if let backend::Finding::Error(e) = f {
            eprintln!("netheal: {e}");
            failed = true;
        }
    }
    failed.then(|| ExitCode::from(exit::USAGE))
}

/// --check: the effective settings, in the configuration file's own syntax, then what each
/// ladder's back-end steps find on this machine (`# auto: ...`, `# WARNING: ...`); exit 2
/// when an explicitly named step cannot run.
fn check(cfg: &config::Config, findings: &[backend::Finding]) -> ExitCode {
    let path = |p: &Option<std::path::PathBuf>| {
        p.as_ref()
            .map_or("none".to_string(), |p| p.display().to_string())
    };
    let log = match cfg.log {
        config::LogDest::Auto => "auto",
        config::LogDest::Syslog => "syslog",
        config::LogDest::Stderr => "stderr",
    };
    let mut out = format!(
        "# netheal --check: configuration is valid ({})\nlog = {log}\nstatus-file = {}\nmetrics-file = {}\npidfile = {}\n",
        config::describe_files(cfg).unwrap_or("no configuration file".into()),
        path(&cfg.status_file),
        path(&cfg.metrics_file),
        path(&cfg.pidfile),
    );
    if let Some(w) = cfg.watches.first() {
        out.push_str(&w.machine.describe());
    }
    // not fatal: without the list no target is flagged, as before
    let host = sys::addrs::host_addresses().unwrap_or_default();
    for w in &cfg.watches {
        out.push('\n');
        out.push_str(&w.describe());
        for t in &w.targets {
            if let Some(a) = t.addr() {
                if probe::own_address(a, &host) {
                    let _ = writeln!(
                        out,
                        "# WARNING: {}: target {a} is one of this host's own addresses: it always answers, so it is not probed and does not count toward the quorum",
                        w.iface
                    );
                }
            }
        }
        if w.heal.iter().any(|s| {
            matches!(
                s,
                config::HealStep::Auto | config::HealStep::Netifd(None) | config::HealStep::Dhcp
            )
        }) {
            if let Some(hint) = backend::ubus_hint(&backend::root(), &w.iface) {
                let _ = writeln!(out, "# {hint}");
            }
        }
        for f in findings.iter().filter(|f| finding_of(f, &w.iface)) {
            match f {
                backend::Finding::Note(n) => {
                    let _ = writeln!(out, "# {n}");
                }
                backend::Finding::Warning(n) => {
                    let _ = writeln!(out, "# WARNING: {n}");
                }
                backend::Finding::Error(n) => {
                    let _ = writeln!(out, "# ERROR: {n}");
                }
            }
        }
    }
    let code = print(&out);
    step_errors(findings).unwrap_or(code)
}

fn finding_of(f: &backend::Finding, iface: &str) -> bool {
    let (backend::Finding::Note(l) | backend::Finding::Warning(l) | backend::Finding::Error(l)) = f;
    l.strip_prefix(iface).is_some_and(|r| r.starts_with(": "))
}

/// --status: the running netheal's status file, as a table.
fn status(args: &config::Args) -> ExitCode {
    let path = match config::status_file(args) {
        Ok(Some(p)) => p,
        Ok(None) => {
            eprintln!("netheal: --status: no status file is configured (status-file = none)");
            return ExitCode::from(exit::BAD);
        }
        Err(e) => return usage(e),
    };
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let code = print(&report::pretty_status(&text, civil::unix_now()));
            // The writer holds `PATH.lock` for as long as it runs; the kernel drops the lock when
            // it dies, so (unlike /proc/PID) a reused pid cannot make a stale file look live.
            match sys::lock::holder(&sys::lock::beside(&path)) {
                Ok(None) => {
                    let pid =
                        report::status_pid(&text).map_or(String::new(), |p| format!(" (pid {p})"));
                    eprintln!(
                        "netheal: {}: its writer{pid} is not running: this status is stale",
                        path.display()
                    );
                    ExitCode::from(exit::BAD)
                }
                Ok(Some(_)) => code,
                Err(e) => {
                    eprintln!(
                        "netheal: {}: cannot tell whether its writer runs: {e}",
                        sys::lock::beside(&path).display()
                    );
                    code
                }
            }
        }
        Err(e) => {
            eprintln!("netheal: {}: {e} (is netheal running?)", path.display());
            ExitCode::from(exit::BAD)
        }
    }
}

/// --inhibit DUR|off [IFACE]: rewrites the inhibit file, which the running netheal watches.
fn inhibit(args: &config::Args, dur: Option<std::time::Duration>) -> ExitCode {
    let path = match config::inhibit_file(args) {
        Ok(Some(p)) => p,
        Ok(None) => {
            eprintln!("netheal: --inhibit: no inhibit file is configured (inhibit-file = none)");
            return ExitCode::from(exit::BAD);
        }
        Err(e) => return usage(e),
    };
    let (boot_id, uptime) = match (sys::boot::boot_id(), sys::boot::uptime()) {
        (Ok(b), Ok(u)) => (b, u),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("netheal: --inhibit: {e}");
            return ExitCode::from(exit::BAD);
        }
    };
    let old = match std::fs::read_to_string(&path) {
        Ok(text) => inhibit::parse(&text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => {
            eprintln!("netheal: {}: {e}", path.display());
            return ExitCode::from(exit::BAD);
        }
    };
    let wall = civil::unix_now();
    let iface = args.iface.as_deref();
    let new = inhibit::update(&old, iface, dur, &boot_id, uptime, wall);
    let written = if new.is_empty() {
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    } else {
        report::write_atomic(&path, &inhibit::serialize(&new))
    };
    if let Err(e) = written {
        eprintln!("netheal: {}: {e}", path.display());
        return ExitCode::from(exit::BAD);
    }
    let which = iface.map_or("every interface".to_string(), str::to_string);
    print(&match dur {
        Some(d) => format!(
            "netheal: no heal on {which} until {} ({}); the running netheal sees it at once
",
            civil::timestamp(wall + d.as_secs() as i64),
            config::human(d)
        ),
        None => format!(
            "netheal: inhibit on {which} ended
"
        ),
    })
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
