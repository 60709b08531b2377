//! Checked configuration. Settings come in layers — built-in defaults, the file's global
//! part, the file's `[IFACE]` section, the command line — and every layer goes through the
//! same keyed setter, so the file and the command line share one parser and one set of error
//! messages. The result is all or nothing: an error anywhere means no configuration.
#![forbid(unsafe_code)]

pub mod file;
pub mod secure;
pub mod values;

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use values::{canonical, human, parse_duration};
use values::{
    canonical_or_zero, check_iface_name, parse_backoff, parse_bool, parse_count, parse_executable,
    parse_heal_step, parse_optional_path, parse_table, parse_target, parse_wait,
};

/// Longest interface name Linux accepts (IFNAMSIZ - 1).
pub const IFNAME_MAX: usize = 15;
pub const DEFAULT_FILE: &str = "/etc/netheal.conf";
pub const DEFAULT_STATUS_FILE: &str = "/run/netheal/status";
pub const DEFAULT_PIDFILE: &str = "/run/netheal.pid";
pub const DEFAULT_STATE_DIR: &str = "/var/lib/netheal";
pub const DEFAULT_INHIBIT_FILE: &str = "/run/netheal/inhibit";
pub const DEFAULT_REBOOT_COMMAND: &str = "/sbin/reboot";
/// Targets per interface (the round's address list is an array this long: see watch.rs).
pub const MAX_TARGETS: usize = 16;
const MAX_COUNT: u32 = 1000;
const MAX_ECHOES: u32 = 20;
const MAX_DURATION: Duration = Duration::from_secs(24 * 3600);

/// Settings of one watched interface; in the file, in a section or (as defaults) before one.
pub const IFACE_KEYS: &[&str] = &[
    "target",
    "count",
    "interval",
    "timeout",
    "fail-after",
    "quorum",
    "up-after",
    "heal",
    "backoff",
    "heal-timeout",
    "dry-run",
    "verbose",
    "on-change",
    "heal-before-up",
    "table",
    "carrier-wait",
    "arm-after",
    "on-absent",
    "on-admin-down",
    "on-no-carrier",
    "on-no-address",
    "on-no-route",
    "on-gateway-dead",
    "on-gateway-silent",
    "on-upstream",
];
/// Settings of the whole process; in the file only before the first section.
pub const GLOBAL_KEYS: &[&str] = &[
    "log",
    "status-file",
    "metrics-file",
    "pidfile",
    "reboot-command",
    "reboot-timeout",
    "reboot-budget",
    "reboot-spacing",
    "state-dir",
    "boot-grace",
    "inhibit-file",
];
/// Keys that take no value on the command line.
pub const SWITCHES: &[&str] = &["dry-run", "verbose", "heal-before-up"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// IFACE's default gateway, re-read from the routing table every round.
    Gateway,
    /// ICMP echo to an address.
    Addr(IpAddr),
    /// `tcp:ADDR:PORT`: a TCP connect; SYN-ACK or RST both answer.
    Tcp(SocketAddr),
    /// `dns:ADDR[:PORT]`: one UDP query to a resolver; any well-formed response answers.
    Dns(SocketAddr),
}

/// The port of a `dns:` target without one.
pub const DNS_PORT: u16 = 53;

impl Target {
    /// The address probed, if it is fixed (not `gateway`).
    pub fn addr(&self) -> Option<IpAddr> {
        match self {
            Target::Gateway => None,
            Target::Addr(a) => Some(*a),
            Target::Tcp(s) | Target::Dns(s) => Some(s.ip()),
        }
    }

    /// Probed over a socket of its own (TCP or UDP), not with ICMP echo.
    pub fn is_stream(&self) -> bool {
        matches!(self, Target::Tcp(_) | Target::Dns(_))
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Gateway => f.write_str("gateway"),
            Target::Addr(a) => a.fmt(f),
            Target::Tcp(s) => write!(f, "tcp:{s}"),
            Target::Dns(s) if s.port() == DNS_PORT => write!(f, "dns:{}", s.ip()),
            Target::Dns(s) => write!(f, "dns:{s}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HealStep {
    /// The default: whichever back-end below owns IFACE, found at start, on SIGHUP and
    /// before each heal (src/backend); the built-in `link` step when none does.
    Auto,
    /// NetworkManager: `nmcli device connect IFACE`.
    NetworkManager,
    /// systemd-networkd: `networkctl reconfigure IFACE`.
    Networkd,
    /// OpenWrt's netifd: the logical interface (`wan`) down and up through ubus; None: the
    /// logical name is looked up in netifd's state.
    Netifd(Option<String>),
    /// `ifdown IFACE` then `ifup IFACE`.
    IfUpDown,
    /// Renew the DHCP lease without a link bounce, through whichever client owns IFACE.
    Dhcp,
    /// Built in: IFACE administratively down, then up.
    Link,
    /// `PATH IFACE`, with NETHEAL_* in the environment.
    Exec(PathBuf),
    /// Built in, opt-in: the machine's graceful reboot command under the reboot budget, then
    /// sync(2) + reboot(2) if the box is still up after `reboot-timeout`.
    Reboot,
}

impl fmt::Display for HealStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HealStep::Auto => f.write_str("auto"),
            HealStep::NetworkManager => f.write_str("networkmanager"),
            HealStep::Networkd => f.write_str("networkd"),
            HealStep::Netifd(None) => f.write_str("netifd"),
            HealStep::Netifd(Some(l)) => write!(f, "netifd:{l}"),
            HealStep::IfUpDown => f.write_str("ifupdown"),
            HealStep::Dhcp => f.write_str("dhcp"),
            HealStep::Link => f.write_str("link"),
            HealStep::Exec(p) => p.display().fmt(f),
            HealStep::Reboot => f.write_str("reboot"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogDest {
    Auto,
    Syslog,
    Stderr,
}

/// Everything about one watched interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IfaceConfig {
    pub iface: String,
    pub targets: Vec<Target>,
    pub count: u32,
    pub interval: Duration,
    pub timeout: Duration,
    pub fail_after: u32,
    pub quorum: u32,
    pub up_after: u32,
    /// `gateway` takes the default route of this routing table only; None: every table.
    pub table: Option<u32>,
    pub heal: Vec<HealStep>,
    pub backoff_min: Duration,
    pub backoff_max: Duration,
    pub heal_timeout: Duration,
    pub dry_run: bool,
    pub verbose: bool,
    pub on_change: Option<PathBuf>,
    /// Heal also before the first good round since start (default: wait for one).
    pub heal_before_up: bool,
    /// What a failure of each layer may do (`on-LAYER` keys).
    pub layers: crate::diagnose::Policy,
    /// No carrier this long before the no-carrier layer heals (a cable may be out).
    pub carrier_wait: Duration,
    /// After this long since start every target counts as armed, answered or not; None:
    /// only a target that has answered once is evidence of an outage.
    pub arm_after: Option<Duration>,
    /// The machine-wide settings (global keys), the same in every watch.
    pub machine: MachineConfig,
}

/// Settings of the machine rather than of one interface: the reboot step, its budget, the
/// boot grace and the inhibit file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MachineConfig {
    /// argv of the graceful reboot command.
    pub reboot_command: Vec<String>,
    pub reboot_timeout: Duration,
    pub budget: crate::budget::Budget,
    pub state_dir: PathBuf,
    /// No heal while the kernel's uptime is below this (zero: none).
    pub boot_grace: Duration,
    pub inhibit_file: Option<PathBuf>,
}

impl Default for MachineConfig {
    fn default() -> Self {
        MachineConfig {
            reboot_command: vec![DEFAULT_REBOOT_COMMAND.into()],
            reboot_timeout: Duration::from_secs(180),
            budget: crate::budget::Budget {
                max: 3,
                window: Duration::from_secs(24 * 3600),
                spacing: Duration::from_secs(30 * 60),
            },
            state_dir: DEFAULT_STATE_DIR.into(),
            boot_grace: Duration::from_secs(300),
            inhibit_file: Some(DEFAULT_INHIBIT_FILE.into()),
        }
    }
}

impl MachineConfig {
    /// The reboot budget's state file.
    pub fn budget_file(&self) -> PathBuf {
        self.state_dir.join("reboots")
    }

    /// `key = value` lines for --check.
    pub fn describe(&self) -> String {
        format!(
            "reboot-command = {}\nreboot-timeout = {}\nreboot-budget = {}\nreboot-spacing = {}\nstate-dir = {}\nboot-grace = {}\ninhibit-file = {}\n",
            self.reboot_command.join(" "),
            canonical(self.reboot_timeout),
            self.budget,
            canonical(self.budget.spacing),
            self.state_dir.display(),
            canonical_or_zero(self.boot_grace),
            self.inhibit_file
                .as_ref()
                .map_or("none".into(), |p| p.display().to_string()),
        )
    }
}

impl IfaceConfig {
    pub(crate) fn defaults(iface: &str) -> Self {
        IfaceConfig {
            iface: iface.to_string(),
            targets: vec![Target::Gateway],
            // With 30% random loss a round fails when all its echoes are lost: 0.3^4 = 0.8%,
            // so three failed rounds in a row (a heal) come once in ~2 million rounds. With 3
            // echoes it was once in ~50 000 (measured by the 300-round loss test: 3% failed).
            count: 4,
            interval: Duration::from_secs(10),
            timeout: Duration::from_secs(2),
            fail_after: 3,
            quorum: 1,
            up_after: 1,
            table: None,
            heal: vec![HealStep::Auto],
            backoff_min: Duration::from_secs(30),
            backoff_max: Duration::from_secs(15 * 60),
            heal_timeout: Duration::from_secs(60),
            dry_run: false,
            verbose: false,
            on_change: None,
            heal_before_up: false,
            layers: crate::diagnose::Policy::default(),
            carrier_wait: Duration::from_secs(30),
            arm_after: None,
            machine: MachineConfig::default(),
        }
    }

    /// The effective settings as `key = value` lines, in the file's syntax (for --check).
    pub fn describe(&self) -> String {
        let list = |v: Vec<String>| v.join(" ");
        let yes = |b: bool| if b { "yes" } else { "no" };
        let mut s = format!("[{}]\n", self.iface);
        let rows = [
            (
                "target",
                list(self.targets.iter().map(ToString::to_string).collect()),
            ),
            ("count", self.count.to_string()),
            ("interval", canonical(self.interval)),
            ("timeout", canonical(self.timeout)),
            ("fail-after", self.fail_after.to_string()),
            ("quorum", self.quorum.to_string()),
            ("up-after", self.up_after.to_string()),
            (
                "table",
                self.table.map_or("any".to_string(), |t| t.to_string()),
            ),
            (
                "heal",
                list(self.heal.iter().map(ToString::to_string).collect()),
            ),
            (
                "backoff",
                format!(
                    "{}:{}",
                    canonical(self.backoff_min),
                    canonical(self.backoff_max)
                ),
            ),
            ("heal-timeout", canonical(self.heal_timeout)),
            ("dry-run", yes(self.dry_run).into()),
            ("verbose", yes(self.verbose).into()),
            ("heal-before-up", yes(self.heal_before_up).into()),
            ("carrier-wait", canonical_or_zero(self.carrier_wait)),
            (
                "arm-after",
                self.arm_after.map_or("off".into(), canonical_or_zero),
            ),
            (
                "on-change",
                self.on_change
                    .as_ref()
                    .map_or("none".into(), |p| p.display().to_string()),
            ),
        ];
        for (k, v) in rows {
            s += &format!("{k} = {v}\n");
        }
        for (k, act) in self.layers.rows() {
            s += &format!("{k} = {act}\n");
        }
        s
    }
}

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub watches: Vec<IfaceConfig>,
    pub log: LogDest,
    pub status_file: Option<PathBuf>,
    pub metrics_file: Option<PathBuf>,
    pub pidfile: Option<PathBuf>,
    /// The configuration file that was read, if any (SIGHUP reads it again).
    pub file: Option<PathBuf>,
    /// Every file read: the main file (if it exists), then its drop-ins in order.
    pub files: Vec<PathBuf>,
}

/// The files read, for messages: `/etc/netheal.conf`, or with drop-ins
/// `/etc/netheal.conf and 2 drop-ins (10-wan.conf, 20-lte.conf)`. None without any file.
pub fn describe_files(cfg: &Config) -> Option<String> {
    let dropins: Vec<String> = cfg
        .files
        .iter()
        .filter(|f| cfg.file.as_ref() != Some(*f))
        .map(|f| {
            f.file_name().map_or(f.display().to_string(), |n| {
                n.to_string_lossy().into_owned()
            })
        })
        .collect();
    let main = cfg.file.as_ref().map(|p| p.display().to_string());
    match (main, dropins.len()) {
        (None, 0) => None,
        (Some(m), 0) => Some(m),
        (m, n) => Some(format!(
            "{}{n} drop-in{} ({})",
            m.map_or(String::new(), |m| m + " and "),
            if n == 1 { "" } else { "s" },
            dropins.join(", ")
        )),
    }
}

/// Where a setting came from, for error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    Cli,
    File { path: PathBuf, line: usize },
}

/// A bad setting: where, which one, the value given, and what was expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// `FILE:LINE` (or `FILE` alone for line 0), empty for the command line.
    pub place: String,
    pub key: String,
    pub value: Option<String>,
    pub expected: String,
}

impl ConfigError {
    /// An error about a command-line option (`key` as typed: `--interval`, `IFACE`).
    pub fn new(key: &str, value: Option<&str>, expected: impl Into<String>) -> Self {
        ConfigError {
            place: String::new(),
            key: key.to_string(),
            value: value.map(str::to_string),
            expected: expected.into(),
        }
    }

    /// An error at `path:line` (line 0: the file as a whole).
    pub fn file(
        path: &Path,
        line: usize,
        key: &str,
        value: Option<&str>,
        expected: impl Into<String>,
    ) -> Self {
        let place = if line == 0 {
            path.display().to_string()
        } else {
            format!("{}:{line}", path.display())
        };
        ConfigError {
            place,
            ..ConfigError::new(key, value, expected)
        }
    }

    fn at(origin: &Origin, key: &str, value: Option<&str>, expected: String) -> Self {
        match origin {
            Origin::Cli => ConfigError::new(&format!("--{key}"), value, expected),
            Origin::File { path, line } => ConfigError::file(path, *line, key, value, expected),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts: Vec<String> = Vec::new();
        if !self.place.is_empty() {
            parts.push(self.place.clone());
        }
        if !self.key.is_empty() {
            // Escaped: an invisible character (a byte order mark, a no-break space) in a
            // key must show in "unknown key".
            parts.push(self.key.escape_debug().to_string());
        }
        if let Some(v) = &self.value {
            parts.push(format!("'{}'", v.escape_debug()));
        }
        parts.push(self.expected.clone());
        f.write_str(&parts.join(": "))
    }
}

/// One interface's settings as layers are applied to it.
#[derive(Debug, Clone)]
struct Builder {
    cfg: IfaceConfig,
    /// Lists (`target`, `heal`) are replaced by a later layer, but accumulate within one
    /// (repeated `-t` options): these say whether the current layer has touched them yet.
    targets_this_layer: bool,
    heal_this_layer: bool,
    quorum_origin: Origin,
}

impl Builder {
    fn new(iface: &str) -> Self {
        Builder {
            cfg: IfaceConfig::defaults(iface),
            targets_this_layer: false,
            heal_this_layer: false,
            quorum_origin: Origin::Cli,
        }
    }

    fn begin_layer(&mut self) {
        self.targets_this_layer = false;
        self.heal_this_layer = false;
    }

    /// Applies one setting; `key` without dashes. File values of list keys hold several
    /// space-separated items; a command-line value holds one.
    fn set(&mut self, key: &str, value: &str, origin: &Origin) -> Result<(), ConfigError> {
        let err = |expected: String| ConfigError::at(origin, key, Some(value), expected);
        let c = &mut self.cfg;
        match key {
            "target" => {
                if !self.targets_this_layer {
                    c.targets.clear();
                    self.targets_this_layer = true;
                }
                for item in value.split_whitespace() {
                    let t = parse_target(item)
                        .map_err(|e| ConfigError::at(origin, key, Some(item), e))?;
                    if c.targets.contains(&t) {
                        return Err(ConfigError::at(
                            origin,
                            key,
                            Some(item),
                            "this target is already given".into(),
                        ));
                    }
                    if c.targets.len() == MAX_TARGETS {
                        return Err(err(format!("at most {MAX_TARGETS} targets")));
                    }
                    c.targets.push(t);
                }
            }
            "heal" => {
                if !self.heal_this_layer {
                    c.heal.clear();
                    self.heal_this_layer = true;
                }
                for item in value.split_whitespace() {
                    c.heal.push(
                        parse_heal_step(item)
                            .map_err(|e| ConfigError::at(origin, key, Some(item), e))?,
                    );
                }
            }
            "count" => c.count = parse_count(value, MAX_ECHOES).map_err(err)?,
            "interval" => c.interval = parse_duration(value).map_err(err)?,
            "timeout" => c.timeout = parse_duration(value).map_err(err)?,
            "fail-after" => c.fail_after = parse_count(value, MAX_COUNT).map_err(err)?,
            "quorum" => {
                c.quorum = parse_count(value, MAX_TARGETS as u32).map_err(err)?;
                self.quorum_origin = origin.clone();
            }
            "up-after" => c.up_after = parse_count(value, MAX_COUNT).map_err(err)?,
            "table" => c.table = parse_table(value).map_err(err)?,
            "backoff" => (c.backoff_min, c.backoff_max) = parse_backoff(value).map_err(err)?,
            "heal-timeout" => c.heal_timeout = parse_duration(value).map_err(err)?,
            "dry-run" => c.dry_run = parse_bool(value).map_err(err)?,
            "verbose" => c.verbose = parse_bool(value).map_err(err)?,
            "heal-before-up" => c.heal_before_up = parse_bool(value).map_err(err)?,
            "carrier-wait" => c.carrier_wait = parse_wait(value).map_err(err)?,
            "arm-after" if value == "off" => c.arm_after = None,
            "arm-after" => c.arm_after = Some(parse_wait(value).map_err(err)?),
            k if k.starts_with("on-") && k != "on-change" => {
                let layer = crate::diagnose::Layer::from_name(&k[3..])
                    .ok_or_else(|| ConfigError::at(origin, key, None, "unknown setting".into()))?;
                c.layers.set(layer, value).map_err(err)?;
            }
            "on-change" if value == "none" => c.on_change = None,
            "on-change" => c.on_change = Some(parse_executable(value).map_err(err)?),
            _ => return Err(ConfigError::at(origin, key, None, "unknown setting".into())),
        }
        Ok(())
    }

    fn finish(self) -> Result<IfaceConfig, ConfigError> {
        let c = self.cfg;
        if c.targets.is_empty() {
            return Err(ConfigError::new(&c.iface, None, "no target to probe"));
        }
        if c.heal.is_empty() {
            return Err(ConfigError::new(&c.iface, None, "no heal step"));
        }
        if c.quorum as usize > c.targets.len() {
            let expected = format!(
                "at most the number of targets ({}); add targets or lower the quorum",
                c.targets.len()
            );
            return Err(ConfigError::at(
                &self.quorum_origin,
                "quorum",
                Some(&c.quorum.to_string()),
                expected,
            ));
        }
        Ok(c)
    }
}

/// What the command line asked for, before the file is read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Args {
    pub iface: Option<String>,
    /// `-c FILE`; without it the default file is read if it exists.
    pub config: Option<PathBuf>,
    /// Settings in command-line order, keys without dashes; switches carry "yes".
    pub settings: Vec<(String, String)>,
}

impl Args {
    /// Records the interface to watch; a second one is an error.
    pub fn set_iface(&mut self, name: &str) -> Result<(), ConfigError> {
        if let Some(first) = &self.iface {
            let expected = format!("one interface only on the command line ('{first}' was already given); watch several with a configuration file");
            return Err(ConfigError::new("IFACE", Some(name), expected));
        }
        check_iface_name(name).map_err(|e| ConfigError::new("IFACE", Some(name), e))?;
        self.iface = Some(name.to_string());
        Ok(())
    }

    /// Checks a command-line setting on its own, so a bad value is reported even when no
    /// interface is known yet.
    pub fn add(&mut self, key: &str, value: &str) -> Result<(), ConfigError> {
        if GLOBAL_KEYS.contains(&key) {
            Globals::default().set(key, value, &Origin::Cli)?;
        } else {
            Builder::new("x").set(key, value, &Origin::Cli)?;
        }
        self.settings.push((key.to_string(), value.to_string()));
        Ok(())
    }
}

#[derive(Debug, Clone)]
struct Globals {
    log: LogDest,
    status_file: Option<PathBuf>,
    metrics_file: Option<PathBuf>,
    pidfile: Option<PathBuf>,
    machine: MachineConfig,
    /// Where reboot-command was set, for the error when the ladder needs it and it is wrong.
    reboot_command_origin: Origin,
}

impl Default for Globals {
    fn default() -> Self {
        Globals {
            log: LogDest::Auto,
            status_file: Some(DEFAULT_STATUS_FILE.into()),
            metrics_file: None,
            pidfile: None,
            machine: MachineConfig::default(),
            reboot_command_origin: Origin::Cli,
        }
    }
}

impl Globals {
    fn set(&mut self, key: &str, value: &str, origin: &Origin) -> Result<(), ConfigError> {
        let err = |expected: String| ConfigError::at(origin, key, Some(value), expected);
        match key {
            "log" => {
                self.log = match value {
                    "auto" => LogDest::Auto,
                    "syslog" => LogDest::Syslog,
                    "stderr" => LogDest::Stderr,
                    _ => return Err(err("expected auto, syslog or stderr".into())),
                }
            }
            "status-file" => self.status_file = parse_optional_path(value).map_err(err)?,
            "metrics-file" => self.metrics_file = parse_optional_path(value).map_err(err)?,
            "pidfile" => self.pidfile = parse_optional_path(value).map_err(err)?,
            "reboot-command" => {
                self.machine.reboot_command = values::parse_command(value).map_err(err)?;
                self.reboot_command_origin = origin.clone();
            }
            "reboot-timeout" => self.machine.reboot_timeout = parse_duration(value).map_err(err)?,
            "reboot-budget" => {
                (self.machine.budget.max, self.machine.budget.window) =
                    crate::budget::parse_budget(value).map_err(err)?
            }
            "reboot-spacing" => self.machine.budget.spacing = parse_duration(value).map_err(err)?,
            "state-dir" => match parse_optional_path(value).map_err(err)? {
                Some(p) => self.machine.state_dir = p,
                None => return Err(err("expected an absolute path".into())),
            },
            "boot-grace" => self.machine.boot_grace = parse_wait(value).map_err(err)?,
            "inhibit-file" => {
                self.machine.inhibit_file = parse_optional_path(value).map_err(err)?
            }
            _ => return Err(ConfigError::at(origin, key, None, "unknown setting".into())),
        }
        Ok(())
    }
}

/// Reads the configuration file (if any) and applies the command line over it.
pub fn resolve(args: &Args) -> Result<Config, ConfigError> {
    build(args, load_file(args)?.as_ref())
}

/// The main file (`-c FILE`, which must exist, or /etc/netheal.conf if it exists) and the
/// drop-ins of its directory (see `file::load_all`).
fn load_file(args: &Args) -> Result<Option<file::Document>, ConfigError> {
    match &args.config {
        Some(path) => file::load_all(path, true),
        None => file::load_all(Path::new(DEFAULT_FILE), false),
    }
}

/// The status file a running netheal with these arguments writes (for --status), without
/// requiring an interface to be named.
pub fn status_file(args: &Args) -> Result<Option<PathBuf>, ConfigError> {
    let doc = load_file(args)?;
    let mut g = Globals::default();
    if let Some(d) = &doc {
        for e in d.globals.iter().filter(|e| e.key == "status-file") {
            g.set(
                &e.key,
                &e.value,
                &Origin::File {
                    path: d.path.clone(),
                    line: e.line,
                },
            )?;
        }
    }
    for (k, v) in args.settings.iter().filter(|(k, _)| k == "status-file") {
        g.set(k, v, &Origin::Cli)?;
    }
    Ok(g.status_file)
}

/// The inhibit file of a running netheal with these arguments (for --inhibit), without
/// requiring an interface to be named.
pub fn inhibit_file(args: &Args) -> Result<Option<PathBuf>, ConfigError> {
    let doc = load_file(args)?;
    let mut g = Globals::default();
    if let Some(d) = &doc {
        for e in d.globals.iter().filter(|e| e.key == "inhibit-file") {
            let origin = Origin::File {
                path: d.path.clone(),
                line: e.line,
            };
            g.set(&e.key, &e.value, &origin)?;
        }
    }
    for (k, v) in args.settings.iter().filter(|(k, _)| k == "inhibit-file") {
        g.set(k, v, &Origin::Cli)?;
    }
    Ok(g.machine.inhibit_file)
}

/// The pure part of `resolve`.
pub fn build(args: &Args, doc: Option<&file::Document>) -> Result<Config, ConfigError> {
    let origin = |line: usize| Origin::File {
        path: doc.map(|d| d.path.clone()).unwrap_or_default(),
        line,
    };
    // One section at a time, found by the caller: no search per section (20 000 sections
    // were quadratic).
    let watch =
        |iface: &str, section: Option<&file::Section>| -> Result<IfaceConfig, ConfigError> {
            let mut b = Builder::new(iface);
            if let Some(d) = doc {
                b.begin_layer();
                for e in d
                    .globals
                    .iter()
                    .filter(|e| IFACE_KEYS.contains(&e.key.as_str()))
                {
                    b.set(&e.key, &e.value, &origin(e.line))?;
                }
            }
            if let Some(s) = section {
                b.begin_layer();
                for e in s
                    .entries
                    .iter()
                    .filter(|e| IFACE_KEYS.contains(&e.key.as_str()))
                {
                    let at = Origin::File {
                        path: s.path.clone(),
                        line: e.line,
                    };
                    b.set(&e.key, &e.value, &at)?;
                }
            }
            b.begin_layer();
            for (k, v) in args
                .settings
                .iter()
                .filter(|(k, _)| IFACE_KEYS.contains(&k.as_str()))
            {
                b.set(k, v, &Origin::Cli)?;
            }
            b.finish()
        };
    // Every section is checked, also those not watched now: nothing is half applied.
    let mut all = Vec::new();
    for s in doc.map(|d| d.sections.as_slice()).unwrap_or_default() {
        all.push(watch(&s.iface, Some(s))?);
    }
    let watches = match &args.iface {
        Some(iface) => vec![match all.iter().find(|w| w.iface == *iface) {
            Some(w) => w.clone(),
            None => watch(iface, None)?,
        }],
        None if all.is_empty() => {
            let expected = match doc {
                Some(d) => format!(
                    "missing: name the interface to watch, or add an [IFACE] section to {}",
                    d.path.display()
                ),
                None => "missing: name the interface to watch, e.g. eth0".to_string(),
            };
            return Err(ConfigError::new("IFACE", None, expected));
        }
        None => all,
    };
    let mut g = Globals::default();
    if let Some(d) = doc {
        for e in d
            .globals
            .iter()
            .filter(|e| GLOBAL_KEYS.contains(&e.key.as_str()))
        {
            g.set(&e.key, &e.value, &origin(e.line))?;
        }
    }
    for (k, v) in args
        .settings
        .iter()
        .filter(|(k, _)| GLOBAL_KEYS.contains(&k.as_str()))
    {
        g.set(k, v, &Origin::Cli)?;
    }
    let mut watches = watches;
    if watches.iter().any(|w| w.heal.contains(&HealStep::Reboot)) {
        let cmd = &g.machine.reboot_command[0];
        parse_executable(cmd).map_err(|e| {
            ConfigError::at(&g.reboot_command_origin, "reboot-command", Some(cmd), e)
        })?;
    }
    for w in &mut watches {
        w.machine = g.machine.clone();
    }
    Ok(Config {
        watches,
        log: g.log,
        status_file: g.status_file,
        metrics_file: g.metrics_file,
        pidfile: g.pidfile,
        file: doc
            .filter(|d| d.files.first() == Some(&d.path))
            .map(|d| d.path.clone()),
        files: doc.map(|d| d.files.clone()).unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn args(iface: Option<&str>, settings: &[(&str, &str)]) -> Args {
        let mut a = Args::default();
        if let Some(i) = iface {
            a.set_iface(i).unwrap();
        }
        for (k, v) in settings {
            a.add(k, v).unwrap();
        }
        a
    }

    fn doc(text: &str) -> file::Document {
        file::parse(text, Path::new("/etc/netheal.conf")).unwrap()
    }

    #[test]
    fn defaults() {
        let c = build(&args(Some("eth0"), &[]), None).unwrap();
        assert_eq!(c.watches.len(), 1);
        let w = &c.watches[0];
        assert_eq!(w.targets, vec![Target::Gateway]);
        assert_eq!(w.heal, vec![HealStep::Auto]);
        assert_eq!((w.count, w.fail_after, w.quorum, w.up_after), (4, 3, 1, 1));
        assert_eq!((w.interval, w.timeout), (ms(10_000), ms(2_000)));
        assert_eq!(
            (w.backoff_min, w.backoff_max, w.heal_timeout),
            (ms(30_000), ms(900_000), ms(60_000))
        );
        assert_eq!(
            (w.dry_run, w.verbose, w.on_change.clone()),
            (false, false, None)
        );
        assert_eq!(c.log, LogDest::Auto);
        assert_eq!(c.status_file, Some(PathBuf::from(DEFAULT_STATUS_FILE)));
        assert_eq!(
            (c.metrics_file.clone(), c.pidfile.clone(), c.file.clone()),
            (None, None, None)
        );
    }

    #[test]
    fn every_key_in_a_file() {
        let d = doc("log = stderr\nstatus-file = none\nmetrics-file = /var/lib/prom/netheal.prom\npidfile = /run/nh.pid\n\
            [eth0]\ntarget = 198.51.100.1 2001:db8::1\ncount = 5\ninterval = 1s\ntimeout = 500ms\nfail-after = 4\n\
            quorum = 2\nup-after = 2\nheal = link ifupdown /bin/true\nbackoff = 1s:8s\nheal-timeout = 3s\n\
            dry-run = yes\nverbose = on\non-change = /bin/true\n");
        let c = build(&args(None, &[]), Some(&d)).unwrap();
        let w = &c.watches[0];
        assert_eq!(w.iface, "eth0");
        assert_eq!(w.targets.len(), 2);
        assert_eq!((w.count, w.fail_after, w.quorum, w.up_after), (5, 4, 2, 2));
        assert_eq!(
            (w.interval, w.timeout, w.heal_timeout),
            (ms(1000), ms(500), ms(3000))
        );
        assert_eq!(
            w.heal,
            vec![
                HealStep::Link,
                HealStep::IfUpDown,
                HealStep::Exec("/bin/true".into())
            ]
        );
        assert_eq!((w.backoff_min, w.backoff_max), (ms(1000), ms(8000)));
        assert!(w.dry_run && w.verbose);
        assert_eq!(w.on_change, Some(PathBuf::from("/bin/true")));
        assert_eq!(c.log, LogDest::Stderr);
        assert_eq!(c.status_file, None);
        assert_eq!(
            c.metrics_file,
            Some(PathBuf::from("/var/lib/prom/netheal.prom"))
        );
        assert_eq!(c.pidfile, Some(PathBuf::from("/run/nh.pid")));
        assert_eq!(c.file, Some(PathBuf::from("/etc/netheal.conf")));
    }

    #[test]
    fn layers_defaults_globals_section_command_line() {
        let d = doc("interval = 5s\ntimeout = 1s\ntarget = 198.51.100.1\n[eth0]\ninterval = 7s\ntarget = 203.0.113.1 203.0.113.2\n[eth1]\n");
        let c = build(&args(None, &[("timeout", "300ms")]), Some(&d)).unwrap();
        let (e0, e1) = (&c.watches[0], &c.watches[1]);
        assert_eq!(
            (e0.interval, e1.interval),
            (ms(7000), ms(5000)),
            "section over globals"
        );
        assert_eq!(
            (e0.timeout, e1.timeout),
            (ms(300), ms(300)),
            "command line over everything"
        );
        assert_eq!(
            e0.targets.len(),
            2,
            "a section's list replaces the global one"
        );
        assert_eq!(
            e1.targets,
            vec![Target::Addr("198.51.100.1".parse().unwrap())]
        );
        // Repeated command-line targets accumulate, and replace the file's list.
        let c = build(
            &args(
                Some("eth0"),
                &[("target", "198.51.100.7"), ("target", "gateway")],
            ),
            Some(&d),
        )
        .unwrap();
        assert_eq!(c.watches.len(), 1, "IFACE on the command line selects one");
        assert_eq!(
            c.watches[0].targets,
            vec![
                Target::Addr("198.51.100.7".parse().unwrap()),
                Target::Gateway
            ]
        );
        assert_eq!(c.watches[0].interval, ms(7000));
        // An interface without a section gets the globals.
        let c = build(&args(Some("wlan0"), &[]), Some(&d)).unwrap();
        assert_eq!(c.watches[0].interval, ms(5000));
    }

    #[test]
    fn errors_carry_their_origin() {
        let d = doc("[eth0]\nquorum = 2\n");
        let e = build(&args(None, &[]), Some(&d)).unwrap_err().to_string();
        assert_eq!(e, "/etc/netheal.conf:2: quorum: '2': at most the number of targets (1); add targets or lower the quorum");
        let e = build(&args(None, &[("quorum", "2")]), None);
        assert!(e.unwrap_err().to_string().starts_with("IFACE: missing"));
        let e = build(&args(Some("eth0"), &[("quorum", "2")]), None)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("--quorum: '2': at most the number of targets (1)"),
            "{e}"
        );
        let d = doc("[eth0]\ninterval = 10x\n[eth1]\n");
        let e = build(&args(Some("eth1"), &[]), Some(&d))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("/etc/netheal.conf:2: interval: '10x': expected a duration"),
            "unwatched sections are checked too: {e}"
        );
        let d = doc("target = 198.51.100.1 example.com\n");
        let e = build(&args(Some("eth0"), &[]), Some(&d))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("/etc/netheal.conf:1: target: 'example.com': expected an IPv4"),
            "{e}"
        );
        for (text, want) in [
            (
                "[eth0]\ntarget = gateway tcp:198.51.100.1\n",
                "/etc/netheal.conf:2: target: 'tcp:198.51.100.1': a port is needed",
            ),
            (
                "target = tcp:198.51.100.1:0\n",
                "/etc/netheal.conf:1: target: 'tcp:198.51.100.1:0': port 0 is not a port",
            ),
            (
                "target = tcp:example.com:80\n",
                "/etc/netheal.conf:1: target: 'tcp:example.com:80': an address is needed, netheal does no DNS lookups",
            ),
            (
                "\ntarget = dns:127.0.0.53\n",
                "/etc/netheal.conf:2: target: 'dns:127.0.0.53': refused: a loopback address",
            ),
        ] {
            let e = build(&args(Some("eth0"), &[]), Some(&doc(text)))
                .unwrap_err()
                .to_string();
            assert!(e.starts_with(want), "{text:?}: {e}");
        }
        let d = doc("target = tcp:[2001:db8::1]:443 dns:198.51.100.53 gateway\n");
        let c = build(&args(Some("eth0"), &[]), Some(&d)).unwrap();
        let shown: Vec<String> = c.watches[0].targets.iter().map(|t| t.to_string()).collect();
        assert_eq!(
            shown,
            ["tcp:[2001:db8::1]:443", "dns:198.51.100.53", "gateway"]
        );
        let d = doc("heal = link restart\n");
        let e = build(&args(Some("eth0"), &[]), Some(&d))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("/etc/netheal.conf:1: heal: 'restart'"), "{e}");
        let d = doc("reboot-command = /nonexistent/reboot now\n[eth0]\nheal = link reboot\n");
        let e = build(&args(None, &[]), Some(&d)).unwrap_err().to_string();
        assert!(
            e.starts_with("/etc/netheal.conf:1: reboot-command: '/nonexistent/reboot': expected the absolute path of an executable"),
            "checked when a ladder names reboot: {e}"
        );
        let d = doc("reboot-command = /nonexistent/reboot\n[eth0]\nheal = link\n");
        assert!(
            build(&args(None, &[]), Some(&d)).is_ok(),
            "not checked otherwise"
        );
        for (text, want) in [
            (
                "reboot-budget = 3\n",
                "reboot-budget: '3': expected COUNT/WINDOW",
            ),
            ("boot-grace = -1\n", "boot-grace: '-1': expected a duration"),
            (
                "reboot-command = reboot\n",
                "reboot-command: 'reboot': expected an absolute path",
            ),
            (
                "state-dir = none\n",
                "state-dir: 'none': expected an absolute path",
            ),
            (
                "heal-before-up = perhaps\n",
                "heal-before-up: 'perhaps': expected yes or no",
            ),
        ] {
            let e = build(&args(Some("eth0"), &[]), Some(&doc(text)))
                .unwrap_err()
                .to_string();
            assert!(
                e.starts_with(&format!("/etc/netheal.conf:1: {want}")),
                "{e}"
            );
        }
        let d = doc("dry-run = maybe\n");
        let e = build(&args(Some("eth0"), &[]), Some(&d))
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "/etc/netheal.conf:1: dry-run: 'maybe': expected yes or no"
        );
        let d = doc("log = file\n");
        let e = build(&args(Some("eth0"), &[]), Some(&d))
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "/etc/netheal.conf:1: log: 'file': expected auto, syslog or stderr"
        );
        let d = doc("");
        let e = build(&args(None, &[]), Some(&d)).unwrap_err().to_string();
        assert!(
            e.contains("add an [IFACE] section to /etc/netheal.conf"),
            "{e}"
        );
    }

    #[test]
    fn layer_policies_carrier_wait_and_arming() {
        let c = build(&args(Some("eth0"), &[]), None).unwrap();
        let w = &c.watches[0];
        assert_eq!(w.layers, crate::diagnose::Policy::default());
        assert_eq!((w.carrier_wait, w.arm_after), (ms(30_000), None));
        let d = doc(
            "on-upstream = heal\ncarrier-wait = 0\n[wan]\non-gateway-silent = report\n\
            arm-after = 5m\non-admin-down = ignore\n[lan]\n",
        );
        let c = build(&args(None, &[("carrier-wait", "10s")]), Some(&d)).unwrap();
        let (wan, lan) = (&c.watches[0], &c.watches[1]);
        use crate::diagnose::{Act, Layer};
        assert_eq!(
            wan.layers.act(Layer::Upstream),
            Act::Heal,
            "top level, inherited"
        );
        assert_eq!(wan.layers.act(Layer::GatewaySilent), Act::Report);
        assert_eq!(wan.layers.act(Layer::AdminDown), Act::Ignore);
        assert_eq!(lan.layers.act(Layer::AdminDown), Act::LinkUp);
        assert_eq!(
            wan.carrier_wait,
            ms(10_000),
            "the command line over the file"
        );
        assert_eq!((wan.arm_after, lan.arm_after), (Some(ms(300_000)), None));
        let text = wan.describe();
        for row in [
            "carrier-wait = 10s\n",
            "arm-after = 5m\n",
            "on-upstream = heal\n",
            "on-admin-down = ignore\n",
            "on-gateway-silent = report\n",
        ] {
            assert!(text.contains(row), "{row} in {text}");
        }
        for (text, want) in [
            (
                "[eth0]\non-upstream = bounce\n",
                "/etc/netheal.conf:2: on-upstream: 'bounce': expected heal, report or ignore",
            ),
            (
                "[eth0]\non-no-route = link-up\n",
                "/etc/netheal.conf:2: on-no-route: 'link-up': link-up is only for on-admin-down",
            ),
            (
                "[eth0]\narm-after = soon\n",
                "/etc/netheal.conf:2: arm-after: 'soon': expected a duration",
            ),
        ] {
            let d = doc(text);
            let e = build(&args(None, &[]), Some(&d)).unwrap_err().to_string();
            assert!(e.starts_with(want), "{e}");
        }
        let e = file::parse("on-sunday = heal\n[eth0]\n", Path::new("/etc/netheal.conf"))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("/etc/netheal.conf:1: on-sunday"), "{e}");
    }

    #[test]
    fn reboot_boot_grace_and_inhibit_settings() {
        let c = build(&args(Some("eth0"), &[]), None).unwrap();
        let m = &c.watches[0].machine;
        assert_eq!(m.reboot_command, vec!["/sbin/reboot".to_string()]);
        assert_eq!(m.budget.to_string(), "3/24h");
        assert_eq!(
            (m.reboot_timeout, m.budget.spacing, m.boot_grace),
            (ms(180_000), ms(1_800_000), ms(300_000))
        );
        assert_eq!(m.budget_file(), PathBuf::from("/var/lib/netheal/reboots"));
        assert_eq!(m.inhibit_file, Some(PathBuf::from(DEFAULT_INHIBIT_FILE)));
        assert!(
            !c.watches[0].heal_before_up,
            "default: wait for a good round"
        );
        let d = doc(
            "reboot-command = /bin/sh -c true\nreboot-timeout = 30s\nreboot-budget = 2/12h\n\
            reboot-spacing = 1h\nstate-dir = /data/netheal\nboot-grace = 0\ninhibit-file = none\n\
            [wan]\nheal = ifupdown reboot\nheal-before-up = yes\n[lan]\n",
        );
        let c = build(&args(None, &[("boot-grace", "90s")]), Some(&d)).unwrap();
        let (wan, lan) = (&c.watches[0], &c.watches[1]);
        assert_eq!(wan.heal, vec![HealStep::IfUpDown, HealStep::Reboot]);
        assert!(wan.heal_before_up && !lan.heal_before_up);
        assert_eq!(wan.machine, lan.machine, "one machine");
        let m = &wan.machine;
        assert_eq!(m.reboot_command, ["/bin/sh", "-c", "true"]);
        assert_eq!((m.budget.max, m.budget.window), (2, ms(12 * 3_600_000)));
        assert_eq!(
            (m.reboot_timeout, m.budget.spacing, m.boot_grace),
            (ms(30_000), ms(3_600_000), ms(90_000)),
            "the command line's boot-grace over the file's"
        );
        assert_eq!(m.state_dir, PathBuf::from("/data/netheal"));
        assert_eq!(m.inhibit_file, None);
        let text = m.describe();
        assert!(
            text.contains("reboot-budget = 2/12h\nreboot-spacing = 1h\n"),
            "{text}"
        );
        assert!(
            text.contains("boot-grace = 1m30s") || text.contains("boot-grace = 90s"),
            "{text}"
        );
        let e = file::parse(
            "heal = reboot\n[eth0]\nreboot-budget = 1/1h\n",
            Path::new("/etc/netheal.conf"),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.starts_with("/etc/netheal.conf:3: reboot-budget"),
            "a global key in a section: {e}"
        );
    }

    #[test]
    fn describe_round_trips_through_the_file_syntax() {
        let d = doc("[eth0]\ntarget = gateway 2001:db8::1\nbackoff = 2s:1m\nheal = link ifupdown\non-change = /bin/true\nverbose = yes\n");
        let c = build(&args(None, &[]), Some(&d)).unwrap();
        let text = c.watches[0].describe();
        let again = build(&args(None, &[]), Some(&doc(&text))).unwrap();
        assert_eq!(again.watches, c.watches, "{text}");
    }
}
