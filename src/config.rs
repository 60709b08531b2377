//! Checked configuration. Every setting is set through one function keyed by its long option
//! name, so the command line (and later a config file) share one parser and one set of
//! messages. No I/O here beyond checking that an exec heal step is an executable file.
#![forbid(unsafe_code)]

use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Longest interface name Linux accepts (IFNAMSIZ - 1).
pub const IFNAME_MAX: usize = 15;
const MAX_TARGETS: usize = 16;
const MAX_COUNT: u32 = 1000;
const MAX_ECHOES: u32 = 20;
const MAX_DURATION: Duration = Duration::from_secs(24 * 3600);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// IFACE's default gateway, re-read from the routing table every round.
    Gateway,
    Addr(IpAddr),
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Gateway => f.write_str("gateway"),
            Target::Addr(a) => a.fmt(f),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HealStep {
    /// `ifdown IFACE` then `ifup IFACE`.
    IfUpDown,
    /// Built in: IFACE administratively down, then up.
    Link,
    /// `PATH IFACE`, with NETHEAL_* in the environment.
    Exec(PathBuf),
}

impl fmt::Display for HealStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HealStep::IfUpDown => f.write_str("ifupdown"),
            HealStep::Link => f.write_str("link"),
            HealStep::Exec(p) => p.display().fmt(f),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogDest {
    Auto,
    Syslog,
    Stderr,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub iface: String,
    pub targets: Vec<Target>,
    pub count: u32,
    pub interval: Duration,
    pub timeout: Duration,
    pub fail_after: u32,
    pub quorum: u32,
    pub up_after: u32,
    pub heal: Vec<HealStep>,
    pub backoff_min: Duration,
    pub backoff_max: Duration,
    pub heal_timeout: Duration,
    pub once: bool,
    pub dry_run: bool,
    pub log: LogDest,
    pub verbose: bool,
}

/// A bad setting: which one, the value given, and what was expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub key: String,
    pub value: Option<String>,
    pub expected: String,
}

impl ConfigError {
    pub fn new(key: &str, value: Option<&str>, expected: impl Into<String>) -> Self {
        ConfigError {
            key: key.to_string(),
            value: value.map(str::to_string),
            expected: expected.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.value {
            Some(v) => write!(f, "{}: '{}': {}", self.key, v.escape_debug(), self.expected),
            None => write!(f, "{}: {}", self.key, self.expected),
        }
    }
}

/// Settings as they are being gathered; `finish` checks the whole and yields a `Config`.
#[derive(Debug, Clone)]
pub struct Builder {
    iface: Option<String>,
    /// Empty until the first `--target`/`--heal`: the defaults apply only when none is given.
    targets: Vec<Target>,
    heal: Vec<HealStep>,
    cfg: Config,
}

impl Default for Builder {
    fn default() -> Self {
        Builder {
            iface: None,
            targets: Vec::new(),
            heal: Vec::new(),
            cfg: Config {
                iface: String::new(),
                targets: vec![Target::Gateway],
                count: 3,
                interval: Duration::from_secs(10),
                timeout: Duration::from_secs(2),
                fail_after: 3,
                quorum: 1,
                up_after: 1,
                heal: vec![HealStep::IfUpDown],
                backoff_min: Duration::from_secs(30),
                backoff_max: Duration::from_secs(15 * 60),
                heal_timeout: Duration::from_secs(60),
                once: false,
                dry_run: false,
                log: LogDest::Auto,
                verbose: false,
            },
        }
    }
}

impl Builder {
    /// Applies one setting. `key` is the long option name with its dashes (`--interval`).
    /// Repeatable settings (`--target`, `--heal`) accumulate; the rest overwrite.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), ConfigError> {
        let err = |expected: &str| ConfigError::new(key, Some(value), expected);
        let c = &mut self.cfg;
        match key {
            "--target" => {
                let t = parse_target(value).map_err(|e| err(&e))?;
                if self.targets.contains(&t) {
                    return Err(err("this target is already given"));
                }
                if self.targets.len() == MAX_TARGETS {
                    return Err(err(&format!("at most {MAX_TARGETS} targets")));
                }
                self.targets.push(t);
            }
            "--count" => c.count = parse_count(value, MAX_ECHOES).map_err(|e| err(&e))?,
            "--interval" => c.interval = parse_duration(value).map_err(|e| err(&e))?,
            "--timeout" => c.timeout = parse_duration(value).map_err(|e| err(&e))?,
            "--fail-after" => c.fail_after = parse_count(value, MAX_COUNT).map_err(|e| err(&e))?,
            "--quorum" => c.quorum = parse_count(value, MAX_TARGETS as u32).map_err(|e| err(&e))?,
            "--up-after" => c.up_after = parse_count(value, MAX_COUNT).map_err(|e| err(&e))?,
            "--heal" => {
                let step = parse_heal_step(value).map_err(|e| err(&e))?;
                self.heal.push(step);
            }
            "--backoff" => {
                let (min, max) = parse_backoff(value).map_err(|e| err(&e))?;
                c.backoff_min = min;
                c.backoff_max = max;
            }
            "--heal-timeout" => c.heal_timeout = parse_duration(value).map_err(|e| err(&e))?,
            "--log" => {
                c.log = match value {
                    "auto" => LogDest::Auto,
                    "syslog" => LogDest::Syslog,
                    "stderr" => LogDest::Stderr,
                    _ => return Err(err("expected auto, syslog or stderr")),
                }
            }
            _ => return Err(ConfigError::new(key, None, "unknown setting")),
        }
        Ok(())
    }

    /// Sets a boolean switch (`--once`, `--dry-run`, `--verbose`).
    pub fn switch(&mut self, key: &str) -> Result<(), ConfigError> {
        match key {
            "--once" => self.cfg.once = true,
            "--dry-run" => self.cfg.dry_run = true,
            "--verbose" => self.cfg.verbose = true,
            _ => return Err(ConfigError::new(key, None, "unknown switch")),
        }
        Ok(())
    }

    /// Sets the interface to watch; a second one is an error.
    pub fn iface(&mut self, name: &str) -> Result<(), ConfigError> {
        if let Some(first) = &self.iface {
            let expected = format!("one interface only ('{first}' was already given)");
            return Err(ConfigError::new("IFACE", Some(name), expected));
        }
        check_iface_name(name).map_err(|e| ConfigError::new("IFACE", Some(name), e))?;
        self.iface = Some(name.to_string());
        Ok(())
    }

    /// Checks the settings as a whole.
    pub fn finish(self) -> Result<Config, ConfigError> {
        let mut c = self.cfg;
        c.iface = self.iface.ok_or_else(|| {
            ConfigError::new(
                "IFACE",
                None,
                "missing: name the interface to watch, e.g. eth0",
            )
        })?;
        if !self.targets.is_empty() {
            c.targets = self.targets;
        }
        if !self.heal.is_empty() {
            c.heal = self.heal;
        }
        if c.quorum as usize > c.targets.len() {
            let expected = format!(
                "at most the number of targets ({}); add --target or lower --quorum",
                c.targets.len()
            );
            return Err(ConfigError::new(
                "--quorum",
                Some(&c.quorum.to_string()),
                expected,
            ));
        }
        Ok(c)
    }
}

fn check_iface_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= IFNAME_MAX
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b'/' && b != b':');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "expected an interface name of 1 to {IFNAME_MAX} printable characters without '/' or ':'"
        ))
    }
}

fn parse_target(s: &str) -> Result<Target, String> {
    if s == "gateway" {
        return Ok(Target::Gateway);
    }
    s.parse::<IpAddr>().map(Target::Addr).map_err(|_| {
        "expected an IPv4 or IPv6 address or the word 'gateway' (host names are refused: a watchdog must not depend on DNS)"
            .to_string()
    })
}

fn parse_count(s: &str, max: u32) -> Result<u32, String> {
    match s.parse::<u32>() {
        Ok(n) if (1..=max).contains(&n) => Ok(n),
        _ => Err(format!("expected a whole number from 1 to {max}")),
    }
}

/// `250ms`, `10s`, `1.5s`, `5m`, `1h`; a bare number is seconds. Resolution is 1 ms.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let expected =
        || "expected a duration such as 250ms, 10s, 1.5s, 5m or 1h, from 1ms to 24h".to_string();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let unit_ms: u64 = match unit {
        "ms" => 1,
        "" | "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        _ => return Err(expected()),
    };
    let (whole, frac) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() && frac.is_empty() || frac.contains('.') {
        return Err(expected());
    }
    let digits = |d: &str| d.is_empty() || d.bytes().all(|b| b.is_ascii_digit());
    if !digits(whole) || !digits(frac) || whole.len() > 9 {
        return Err(expected());
    }
    // Fixed point with nine fractional digits avoids float rounding: "0.1" is exactly 100ms.
    let whole: u64 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| expected())?
    };
    let mut nano_frac: u64 = 0;
    for (i, b) in frac.bytes().take(9).enumerate() {
        nano_frac += u64::from(b - b'0') * 10u64.pow(8 - i as u32);
    }
    let ms = whole
        .checked_mul(unit_ms)
        .and_then(|w| w.checked_add(nano_frac * unit_ms / 1_000_000_000))
        .ok_or_else(expected)?;
    let d = Duration::from_millis(ms);
    if d.is_zero() || d > MAX_DURATION {
        return Err(expected());
    }
    Ok(d)
}

/// A duration for people: `250ms`, `1.5s`, `2m05s`, `1h02m`.
pub fn human(d: Duration) -> String {
    let ms = d.as_millis();
    match ms {
        0..=999 => format!("{ms}ms"),
        1_000..=59_999 => {
            let tenths = (ms + 50) / 100;
            match tenths % 10 {
                0 => format!("{}s", tenths / 10),
                t => format!("{}.{t}s", tenths / 10),
            }
        }
        60_000..=3_599_999 => format!("{}m{:02}s", ms / 60_000, ms / 1_000 % 60),
        _ => format!("{}h{:02}m", ms / 3_600_000, ms / 60_000 % 60),
    }
}

fn parse_backoff(s: &str) -> Result<(Duration, Duration), String> {
    let expected = "expected MIN or MIN:MAX durations with MIN <= MAX, such as 30s:15m";
    let (min, max) = match s.split_once(':') {
        Some((a, b)) => (
            parse_duration(a).map_err(|_| expected.to_string())?,
            parse_duration(b).map_err(|_| expected.to_string())?,
        ),
        None => {
            let min = parse_duration(s).map_err(|_| expected.to_string())?;
            (min, min.max(Duration::from_secs(15 * 60)))
        }
    };
    if min > max {
        return Err(expected.to_string());
    }
    Ok((min, max))
}

fn parse_heal_step(s: &str) -> Result<HealStep, String> {
    match s {
        "ifupdown" => return Ok(HealStep::IfUpDown),
        "link" => return Ok(HealStep::Link),
        _ => {}
    }
    let expected = "expected ifupdown, link, or the absolute path of an executable file";
    if !s.starts_with('/') {
        return Err(expected.to_string());
    }
    use std::os::unix::fs::PermissionsExt;
    match std::fs::metadata(s) {
        Ok(m) if m.is_file() && m.permissions().mode() & 0o111 != 0 => {
            Ok(HealStep::Exec(PathBuf::from(s)))
        }
        Ok(_) => Err(format!("{expected} (this is not an executable file)")),
        Err(e) => Err(format!("{expected} ({e})")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn durations() {
        let good = [
            ("250ms", ms(250)),
            ("10s", ms(10_000)),
            ("1.5s", ms(1_500)),
            ("5m", ms(300_000)),
            ("1h", ms(3_600_000)),
            ("7", ms(7_000)),
            ("0.1", ms(100)),
            (".5s", ms(500)),
            ("2.", ms(2_000)),
            ("1.0005s", ms(1_000)),
            ("24h", ms(86_400_000)),
        ];
        for (s, d) in good {
            assert_eq!(parse_duration(s), Ok(d), "{s}");
        }
        for s in [
            "",
            "s",
            "10x",
            "-1s",
            "1.2.3s",
            "0",
            "0ms",
            "0.0001s",
            "25h",
            "1e3",
            "10 s",
            ".",
            "99999999999s",
            "1,5s",
        ] {
            assert!(parse_duration(s).is_err(), "{s:?} should fail");
        }
    }

    #[test]
    fn human_durations() {
        let cases = [
            (0, "0ms"),
            (250, "250ms"),
            (1_000, "1s"),
            (1_249, "1.2s"),
            (59_960, "60s"),
            (60_000, "1m00s"),
            (125_000, "2m05s"),
            (3_720_000, "1h02m"),
        ];
        for (n, want) in cases {
            assert_eq!(human(ms(n)), want);
        }
    }

    #[test]
    fn backoff() {
        assert_eq!(parse_backoff("1s:4s"), Ok((ms(1000), ms(4000))));
        assert_eq!(parse_backoff("1m"), Ok((ms(60_000), ms(900_000))));
        assert_eq!(parse_backoff("20m"), Ok((ms(1_200_000), ms(1_200_000))));
        for s in ["4s:1s", "1s:", ":1s", "x:y", "1s:2s:3s"] {
            assert!(parse_backoff(s).is_err(), "{s}");
        }
    }

    #[test]
    fn targets_and_names() {
        assert_eq!(parse_target("gateway"), Ok(Target::Gateway));
        assert!(matches!(
            parse_target("2001:db8::1"),
            Ok(Target::Addr(IpAddr::V6(_)))
        ));
        assert!(parse_target("example.com").unwrap_err().contains("DNS"));
        assert!(parse_target("198.51.100.256").is_err());
        for ok in [
            "eth0",
            "enp0s31f6",
            "wlan0",
            "a",
            "vlan.100",
            "123456789012345",
        ] {
            assert!(check_iface_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            ".",
            "..",
            "1234567890123456",
            "a/b",
            "eth0:1",
            "a b",
            "é",
        ] {
            assert!(check_iface_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn heal_steps() {
        assert_eq!(parse_heal_step("ifupdown"), Ok(HealStep::IfUpDown));
        assert_eq!(parse_heal_step("link"), Ok(HealStep::Link));
        assert_eq!(
            parse_heal_step("/bin/sh"),
            Ok(HealStep::Exec("/bin/sh".into()))
        );
        assert!(parse_heal_step("reboot").is_err());
        assert!(parse_heal_step("bin/sh").is_err());
        assert!(parse_heal_step("/")
            .unwrap_err()
            .contains("not an executable"));
        assert!(parse_heal_step("/nonexistent/x").is_err());
        let plain = std::env::temp_dir().join(format!("netheal-cfg-{}", std::process::id()));
        std::fs::write(&plain, "#!/bin/sh\n").unwrap();
        let refused = parse_heal_step(plain.to_str().unwrap());
        std::fs::remove_file(&plain).unwrap();
        assert!(refused.unwrap_err().contains("not an executable"));
    }

    #[test]
    fn defaults_and_finish() {
        let mut b = Builder::default();
        b.iface("eth0").unwrap();
        let c = b.finish().unwrap();
        assert_eq!(c.targets, vec![Target::Gateway]);
        assert_eq!(c.heal, vec![HealStep::IfUpDown]);
        assert_eq!((c.count, c.fail_after, c.quorum, c.up_after), (3, 3, 1, 1));
        assert_eq!((c.interval, c.timeout), (ms(10_000), ms(2_000)));
        assert_eq!(
            (c.backoff_min, c.backoff_max, c.heal_timeout),
            (ms(30_000), ms(900_000), ms(60_000))
        );
        assert_eq!(c.log, LogDest::Auto);
    }

    #[test]
    fn repeatable_settings_replace_defaults() {
        let mut b = Builder::default();
        b.iface("eth0").unwrap();
        b.set("--target", "198.51.100.1").unwrap();
        b.set("--target", "gateway").unwrap();
        b.set("--heal", "link").unwrap();
        b.set("--heal", "ifupdown").unwrap();
        let c = b.finish().unwrap();
        assert_eq!(c.targets.len(), 2);
        assert_eq!(c.heal, vec![HealStep::Link, HealStep::IfUpDown]);
    }

    #[test]
    fn whole_config_errors() {
        let mut b = Builder::default();
        assert_eq!(b.clone().finish().unwrap_err().key, "IFACE");
        b.iface("eth0").unwrap();
        assert!(b
            .iface("eth1")
            .unwrap_err()
            .to_string()
            .contains("one interface only"));
        b.set("--quorum", "2").unwrap();
        let e = b.clone().finish().unwrap_err();
        assert_eq!(
            e.to_string(),
            "--quorum: '2': at most the number of targets (1); add --target or lower --quorum"
        );
        b.set("--target", "198.51.100.1").unwrap();
        let e = b.set("--target", "198.51.100.1").unwrap_err();
        assert!(e.to_string().contains("already given"));
        b.set("--target", "198.51.100.2").unwrap();
        assert_eq!(b.finish().unwrap().quorum, 2);
    }
}
