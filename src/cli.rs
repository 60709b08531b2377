//! The command line: a lexopt loop that turns options into `config::Args` (settings keyed by
//! their long names) and mode switches. No I/O; `-h` and `-V` return early so they work
//! whatever else is on the line.
#![forbid(unsafe_code)]

use std::ffi::OsString;

use crate::config::{Args, ConfigError, GLOBAL_KEYS, IFACE_KEYS, SWITCHES};

pub const HELP: &str = "\
netheal — self-healing network watchdog

Usage: netheal [OPTIONS] [IFACE]

Probes targets through IFACE with ICMP echo, TCP connects or DNS queries; after
--fail-after failed rounds in a row it
heals IFACE by climbing the --heal ladder, with exponential backoff between attempts.
Without IFACE, watches every [IFACE] section of the configuration file.

Options:
  -t, --target ADDR        IPv4 or IPv6 address (ICMP echo), or 'gateway' (the next hop
                           of IFACE's default route, any routing table), or
                           tcp:ADDR:PORT (a connect: SYN-ACK or RST answers; no data is
                           sent), or dns:ADDR[:PORT] (one query for '. NS' to a resolver,
                           port 53 by default: any response answers). IPv6 with a port
                           in brackets: tcp:[2001:db8::1]:443. One attempt per round
                           for tcp: and dns:. Addresses only, no host names. Repeatable,
                           up to 16. Loopback and unspecified addresses are refused.
                           Default: gateway
      --count N            echoes per target per round, spread over the first half of
                           the timeout; a target that answered gets no more (default 4)
  -i, --interval DUR       time between rounds while up (default 10s)
  -W, --timeout DUR        how long a round waits for replies (default 2s)
  -n, --fail-after N       failed rounds in a row before healing (default 3); from the
                           first failed round until the outage ends, rounds start a
                           timeout apart instead of an interval
  -k, --quorum N           targets that must answer for a round to be good (default 1)
  -u, --up-after N         good rounds in a row that end an outage (default 1)
      --table T            'gateway' from routing table T only: a number, main, or any
                           (every table, policy routing included; default any)
  -a, --heal STEP          escalation ladder, in order, repeatable; attempt k runs step
                           min(k, steps). STEP: auto (the back-end below that owns
                           IFACE, found at start, on SIGHUP and before each heal; link
                           when none does), networkmanager (nmcli device connect),
                           networkd (networkctl reconfigure), netifd or netifd:LOGICAL
                           (OpenWrt: ubus down/up of the logical interface), ifupdown
                           (ifdown IFACE; ifup IFACE), dhcp (renew the lease, no link
                           bounce), link (IFACE down then up, built in), or
                           /absolute/path run as 'PATH IFACE' with NETHEAL_IFACE,
                           NETHEAL_ATTEMPT and NETHEAL_REASON set, or reboot (opt-in,
                           budgeted: see --reboot-budget). Default: auto
  -b, --backoff MIN[:MAX]  wait after a heal attempt before the next, doubling up to MAX,
                           +/-10% jitter, reset when up (default 30s:15m)
      --heal-timeout DUR   SIGTERM a step and its group after DUR, SIGKILL 5s later
                           (default 60s)
      --on-change PATH     run 'PATH IFACE' on every state change, with NETHEAL_STATE,
                           NETHEAL_PREVIOUS, NETHEAL_REASON, NETHEAL_ATTEMPT, NETHEAL_IFACE,
                           NETHEAL_FAMILY (ipv4, ipv6) and NETHEAL_LAYER (see --on-LAYER)
      --heal-before-up     heal even before the first good round since start (default:
                           wait for one, so a box that boots without network does not
                           climb to a reboot)
      --carrier-wait DUR   no carrier this long before the no-carrier layer heals (a cable
                           may be out; default 30s; 0: at once)
      --arm-after DUR|off  after DUR since start every target counts as evidence; until
                           then only targets that answered once do (default off)
      --on-LAYER ACTION    what a failure of LAYER does: heal (the ladder), report (state,
                           log and hooks only) or ignore (not an outage); --on-admin-down
                           also link-up. Layers and defaults: --on-absent heal,
                           --on-admin-down link-up, --on-no-carrier heal, --on-no-address
                           heal, --on-no-route heal, --on-gateway-dead heal,
                           --on-gateway-silent ignore, --on-upstream report
      --boot-grace DUR     no heal while the kernel's uptime is below DUR (default 5m;
                           0: none); a netheal started later is not delayed
      --reboot-budget N/DUR  at most N reboots by netheal in DUR, counted across reboots
                           in the state dir (default 3/24h); then 'degraded'
      --reboot-spacing DUR before the k-th reboot in the window wait DUR*2^(k-2) since
                           the last (default 30m)
      --reboot-command CMD graceful reboot command line (default /sbin/reboot)
      --reboot-timeout DUR still up DUR after CMD: sync(2) and reboot(2) (default 3m)
      --state-dir DIR      keeps the reboot budget; must survive reboots (default
                           /var/lib/netheal)
      --inhibit DUR|off    tell the running netheal (through --inhibit-file) to heal
                           nothing for DUR (30m, 2h, 1d; at most 7d) on IFACE, or on
                           every interface without one; off ends it. Then exit
      --inhibit-file PATH  where inhibits are kept (default /run/netheal/inhibit; none)
      --once               run one round, print each layer's check as a table; exit 0
                           if no family has an outage, 1 if one has; never heals
      --dry-run            decide and log everything, run no heal step
  -c, --config FILE        configuration file (default /etc/netheal.conf, if it exists),
                           then the *.conf drop-ins of FILE with .conf replaced by .d
                           (/etc/netheal.d), in lexical order
      --check              check the configuration, print the effective settings and
                           what each heal step finds on this machine (what auto picks),
                           exit; 2 when a named step's tool is missing
      --status             print the status of the running netheal and exit
      --status-file PATH   where to keep the status (default /run/netheal/status; none)
      --metrics-file PATH  Prometheus textfile to keep up to date (default none)
  -d, --daemon             detach into the background and write a pidfile
      --pidfile PATH       pidfile, refusing a second instance (default with -d:
                           /run/netheal.pid)
      --log DEST           auto, syslog or stderr (default auto: stderr when it is a
                           terminal, else syslog; stderr while /dev/log is missing)
  -v, --verbose            also log every round with its round-trip times
  -h, --help               print this help
  -V, --version            print version, commit, target and build date

DUR: 250ms, 10s, 1.5s, 5m, 1h; a bare number is seconds.
Limits: 16 targets per interface; --count 1-20; --fail-after, --up-after 1-1000;
DUR 1ms to 24h in whole milliseconds.
Exit: 0 stopped by SIGTERM/SIGINT, good --once or valid --check; 1 bad --once or a
fatal error (also no ICMP socket for want of file descriptors); 2 usage or
configuration error; 3 no ICMP socket for lack of privilege (needs CAP_NET_RAW or
net.ipv4.ping_group_range).
Signals: SIGHUP reloads the configuration file and drop-ins; SIGUSR1 logs a status line;
SIGTERM/SIGINT stop (a running step is killed).
";

pub fn version() -> String {
    format!(
        "netheal {} (commit {}, target {}, built {})",
        env!("CARGO_PKG_VERSION"),
        env!("NETHEAL_COMMIT"),
        env!("NETHEAL_TARGET"),
        env!("NETHEAL_BUILD_DATE"),
    )
}

/// What to do, as the command line says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Invocation {
    pub args: Args,
    pub once: bool,
    pub check: bool,
    pub status: bool,
    pub daemon: bool,
    /// `--inhibit DUR` (Some(Some)) or `--inhibit off` (Some(None)).
    pub inhibit: Option<Option<std::time::Duration>>,
}

#[derive(Debug)]
pub enum Command {
    Run(Invocation),
    Help,
    Version,
}

/// Parses the arguments after the program name.
pub fn parse<I>(args: I) -> Result<Command, ConfigError>
where
    I: IntoIterator,
    I::Item: Into<OsString>,
{
    use lexopt::prelude::*;
    let mut parser = lexopt::Parser::from_args(args);
    let mut inv = Invocation::default();
    loop {
        let arg = match parser.next() {
            Ok(Some(arg)) => arg,
            Ok(None) => break,
            Err(e) => return Err(lexopt_error(e)),
        };
        let key = match arg {
            Short('h') | Long("help") => return Ok(Command::Help),
            Short('V') | Long("version") => return Ok(Command::Version),
            Long("once") => {
                inv.once = true;
                continue;
            }
            Long("check") => {
                inv.check = true;
                continue;
            }
            Long("status") => {
                inv.status = true;
                continue;
            }
            Long("inhibit") => {
                let v = parser
                    .value()
                    .map_err(|_| ConfigError::new("--inhibit", None, "missing value"))?;
                let v = v.to_str().ok_or_else(|| not_utf8("--inhibit"))?;
                let d = crate::inhibit::parse_inhibit(v)
                    .map_err(|e| ConfigError::new("--inhibit", Some(v), e))?;
                inv.inhibit = Some(d);
                continue;
            }
            Short('d') | Long("daemon") => {
                inv.daemon = true;
                continue;
            }
            Short('c') | Long("config") => {
                let v = parser
                    .value()
                    .map_err(|_| ConfigError::new("--config", None, "missing value"))?;
                inv.args.config = Some(v.into());
                continue;
            }
            Value(v) => {
                let name = v.to_str().ok_or_else(|| not_utf8("IFACE"))?;
                inv.args.set_iface(name)?;
                continue;
            }
            Short('v') => "verbose",
            Short('t') => "target",
            Short('i') => "interval",
            Short('W') => "timeout",
            Short('n') => "fail-after",
            Short('k') => "quorum",
            Short('u') => "up-after",
            Short('a') => "heal",
            Short('b') => "backoff",
            Long(name) => match IFACE_KEYS.iter().chain(GLOBAL_KEYS).find(|k| **k == name) {
                Some(k) => k,
                None => return Err(lexopt_error(arg.unexpected())),
            },
            _ => return Err(lexopt_error(arg.unexpected())),
        };
        if SWITCHES.contains(&key) {
            inv.args.add(key, "yes")?;
            continue;
        }
        let flag = format!("--{key}");
        let value = parser
            .value()
            .map_err(|_| ConfigError::new(&flag, None, "missing value"))?;
        let value = value.to_str().ok_or_else(|| not_utf8(&flag))?;
        inv.args.add(key, value)?;
    }
    Ok(Command::Run(inv))
}

fn not_utf8(key: &str) -> ConfigError {
    ConfigError::new(key, None, "value is not valid UTF-8")
}

fn lexopt_error(e: lexopt::Error) -> ConfigError {
    match e {
        lexopt::Error::UnexpectedOption(opt) => {
            ConfigError::new(&opt, None, "unknown option (see netheal --help)")
        }
        lexopt::Error::UnexpectedValue { option, value } => ConfigError::new(
            &option,
            Some(&value.to_string_lossy()),
            "this option takes no value",
        ),
        other => ConfigError::new("arguments", None, other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{build, Config, HealStep, IfaceConfig, LogDest, Target};
    use std::time::Duration;

    fn invocation(args: &[&str]) -> Result<Invocation, String> {
        match parse(args.iter().copied()) {
            Ok(Command::Run(inv)) => Ok(inv),
            Ok(other) => panic!("{args:?}: unexpected {other:?}"),
            Err(e) => Err(e.to_string()),
        }
    }

    /// Parses and builds without any configuration file.
    fn run(args: &[&str]) -> Result<(Invocation, Config), String> {
        let inv = invocation(args)?;
        let cfg = build(&inv.args, None).map_err(|e| e.to_string())?;
        Ok((inv, cfg))
    }

    fn watch(args: &[&str]) -> IfaceConfig {
        run(args).unwrap().1.watches.remove(0)
    }

    #[test]
    fn every_option_long_and_short() {
        let long = watch(&[
            "--target",
            "198.51.100.1",
            "--target=2001:db8::1",
            "--count",
            "5",
            "--interval",
            "1s",
            "--timeout",
            "500ms",
            "--fail-after",
            "4",
            "--quorum",
            "2",
            "--up-after",
            "2",
            "--heal",
            "link",
            "--heal",
            "ifupdown",
            "--backoff",
            "1s:8s",
            "--heal-timeout",
            "3s",
            "--dry-run",
            "--verbose",
            "--on-change",
            "/bin/true",
            "eth0",
        ]);
        let short = watch(&[
            "-t",
            "198.51.100.1",
            "-t2001:db8::1",
            "--count",
            "5",
            "-i",
            "1s",
            "-W",
            "500ms",
            "-n",
            "4",
            "-k",
            "2",
            "-u",
            "2",
            "-a",
            "link",
            "-a",
            "ifupdown",
            "-b",
            "1s:8s",
            "--heal-timeout",
            "3s",
            "--dry-run",
            "-v",
            "--on-change=/bin/true",
            "eth0",
        ]);
        assert_eq!(long, short);
        let c = long;
        assert_eq!(c.iface, "eth0");
        assert_eq!(
            c.targets,
            vec![
                Target::Addr("198.51.100.1".parse().unwrap()),
                Target::Addr("2001:db8::1".parse().unwrap())
            ]
        );
        assert_eq!((c.count, c.fail_after, c.quorum, c.up_after), (5, 4, 2, 2));
        assert_eq!(c.interval, Duration::from_secs(1));
        assert_eq!(c.timeout, Duration::from_millis(500));
        assert_eq!(c.heal, vec![HealStep::Link, HealStep::IfUpDown]);
        assert_eq!(
            (c.backoff_min, c.backoff_max),
            (Duration::from_secs(1), Duration::from_secs(8))
        );
        assert_eq!(c.heal_timeout, Duration::from_secs(3));
        assert!(c.dry_run && c.verbose);
        assert_eq!(c.on_change, Some("/bin/true".into()));
    }

    #[test]
    fn modes_and_globals() {
        let (inv, cfg) = run(&[
            "--once",
            "--check",
            "--status",
            "-d",
            "-c",
            "/etc/x.conf",
            "--log",
            "stderr",
            "--status-file",
            "none",
            "--metrics-file",
            "/run/m.prom",
            "--pidfile",
            "/run/p.pid",
            "eth0",
        ])
        .unwrap();
        assert!(inv.once && inv.check && inv.status && inv.daemon);
        assert_eq!(inv.args.config, Some("/etc/x.conf".into()));
        assert_eq!(cfg.log, LogDest::Stderr);
        assert_eq!(cfg.status_file, None);
        assert_eq!(cfg.metrics_file, Some("/run/m.prom".into()));
        assert_eq!(cfg.pidfile, Some("/run/p.pid".into()));
    }

    #[test]
    fn inhibit_takes_a_duration_or_off_and_an_optional_interface() {
        let inv = invocation(&["--inhibit", "2h", "wan"]).unwrap();
        assert_eq!(inv.inhibit, Some(Some(Duration::from_secs(7200))));
        assert_eq!(inv.args.iface.as_deref(), Some("wan"));
        let inv = invocation(&["--inhibit=off"]).unwrap();
        assert_eq!((inv.inhibit, inv.args.iface), (Some(None), None));
        assert_eq!(invocation(&["eth0"]).unwrap().inhibit, None);
    }

    #[test]
    fn help_and_version_win() {
        assert!(parse(["--interval", "bad", "-h"]).is_err());
        assert!(matches!(
            parse(["-h", "--interval", "bad"]),
            Ok(Command::Help)
        ));
        assert!(matches!(parse(["eth0", "--help"]), Ok(Command::Help)));
        assert!(matches!(parse(["-V"]), Ok(Command::Version)));
        assert!(version().starts_with(&format!("netheal {} (commit ", env!("CARGO_PKG_VERSION"))));
    }

    #[test]
    fn every_error_names_option_value_and_expectation() {
        let cases: &[(&[&str], &str)] = &[
            (&["--bogus", "eth0"], "--bogus: unknown option"),
            (&["-x", "eth0"], "-x: unknown option"),
            (
                &["--once=yes", "eth0"],
                "--once: 'yes': this option takes no value",
            ),
            (&["eth0", "--interval"], "--interval: missing value"),
            (
                &["--interval", "10x", "eth0"],
                "--interval: '10x': expected a duration",
            ),
            (
                &["--interval", "10x"],
                "--interval: '10x': expected a duration",
            ),
            (&["-W", "0", "eth0"], "--timeout: '0': expected a duration"),
            (
                &["--count", "0", "eth0"],
                "--count: '0': expected a whole number from 1 to 20",
            ),
            (
                &["-n", "-1", "eth0"],
                "--fail-after: '-1': expected a whole number",
            ),
            (
                &["-u", "x", "eth0"],
                "--up-after: 'x': expected a whole number",
            ),
            (
                &["-k", "2", "eth0"],
                "--quorum: '2': at most the number of targets (1)",
            ),
            (
                &["-t", "example.com", "eth0"],
                "--target: 'example.com': expected an IPv4 or IPv6 address",
            ),
            (
                &["-t", "tcp:198.51.100.1", "eth0"],
                "--target: 'tcp:198.51.100.1': a port is needed",
            ),
            (
                &["-t", "tcp:example.com:443", "eth0"],
                "--target: 'tcp:example.com:443': an address is needed, netheal does no DNS lookups",
            ),
            (
                &["-t", "dns:[2001:db8::53]:0", "eth0"],
                "--target: 'dns:[2001:db8::53]:0': port 0 is not a port",
            ),
            (
                &["-t", "1.1.1.1", "-t", "1.1.1.1", "eth0"],
                "--target: '1.1.1.1': this target is already given",
            ),
            (
                &["-a", "restart", "eth0"],
                "--heal: 'restart': expected auto, networkmanager, networkd, netifd, netifd:LOGICAL, ifupdown, dhcp, link, reboot, or the absolute path",
            ),
            (
                &["-b", "5m:1m", "eth0"],
                "--backoff: '5m:1m': expected MIN or MIN:MAX",
            ),
            (
                &["--heal-timeout", "1d", "eth0"],
                "--heal-timeout: '1d': expected a duration",
            ),
            (
                &["--log", "file", "eth0"],
                "--log: 'file': expected auto, syslog or stderr",
            ),
            (
                &["--on-change", "hook", "eth0"],
                "--on-change: 'hook': expected the absolute path",
            ),
            (
                &["--status-file", "run/x", "eth0"],
                "--status-file: 'run/x': expected an absolute path, or none",
            ),
            (&["-c"], "--config: missing value"),
            (&["--inhibit", "8d"], "--inhibit: '8d': expected a duration"),
            (&["--inhibit"], "--inhibit: missing value"),
            (&[], "IFACE: missing"),
            (&["eth0", "eth1"], "IFACE: 'eth1': one interface only"),
            (
                &["averyveryverylongname"],
                "IFACE: 'averyveryverylongname': expected an interface name",
            ),
        ];
        for (args, want) in cases {
            let got = run(args).unwrap_err();
            assert!(
                got.starts_with(want),
                "{args:?}: got {got:?}, want prefix {want:?}"
            );
        }
    }

    #[test]
    fn readme_carries_the_help_text() {
        let readme = include_str!("../README.md");
        let options = HELP
            .lines()
            .skip_while(|l| !l.starts_with("Options:"))
            .skip(1);
        for line in options.take_while(|l| !l.is_empty()) {
            assert!(
                readme.contains(line),
                "README.md lacks this --help line: {line}"
            );
        }
    }

    #[test]
    fn help_mentions_every_option() {
        for key in IFACE_KEYS.iter().chain(GLOBAL_KEYS) {
            assert!(HELP.contains(&format!("--{key}")), "{key}");
        }
        for opt in [
            "--once",
            "--config",
            "--check",
            "--status ",
            "--daemon",
            "--inhibit ",
            "--help",
            "--version",
        ] {
            assert!(HELP.contains(opt), "{opt}");
        }
        assert!(
            HELP.lines().all(|l| l.chars().count() <= 92),
            "help lines fit a terminal"
        );
    }
}
