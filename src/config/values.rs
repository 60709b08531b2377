//! Parsers for single setting values: durations, counts, targets, heal steps, interface
//! names. Each returns what was expected on failure; callers add which setting and where.
#![forbid(unsafe_code)]

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::{HealStep, Target, IFNAME_MAX, MAX_DURATION};

pub fn check_iface_name(name: &str) -> Result<(), String> {
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

pub fn parse_target(s: &str) -> Result<Target, String> {
    if s == "gateway" {
        return Ok(Target::Gateway);
    }
    s.parse::<IpAddr>().map(Target::Addr).map_err(|_| {
        "expected an IPv4 or IPv6 address or the word 'gateway' (host names are refused: a watchdog must not depend on DNS)"
            .to_string()
    })
}

pub fn parse_count(s: &str, max: u32) -> Result<u32, String> {
    match s.parse::<u32>() {
        Ok(n) if (1..=max).contains(&n) => Ok(n),
        _ => Err(format!("expected a whole number from 1 to {max}")),
    }
}

/// A routing table for `gateway`: `any` (every table), `main` (254) or a number from 1.
pub fn parse_table(s: &str) -> Result<Option<u32>, String> {
    match s {
        "any" => Ok(None),
        "main" => Ok(Some(254)),
        _ => match s.parse::<u32>() {
            Ok(n) if n >= 1 => Ok(Some(n)),
            _ => Err("expected any, main or a table number from 1".to_string()),
        },
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

/// A duration in the exact form `parse_duration` reads back: the largest whole unit.
pub fn canonical(d: Duration) -> String {
    let ms = d.as_millis();
    match ms {
        _ if ms % 3_600_000 == 0 => format!("{}h", ms / 3_600_000),
        _ if ms % 60_000 == 0 => format!("{}m", ms / 60_000),
        _ if ms % 1_000 == 0 => format!("{}s", ms / 1_000),
        _ => format!("{ms}ms"),
    }
}

pub fn parse_backoff(s: &str) -> Result<(Duration, Duration), String> {
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

pub fn parse_heal_step(s: &str) -> Result<HealStep, String> {
    match s {
        "ifupdown" => return Ok(HealStep::IfUpDown),
        "link" => return Ok(HealStep::Link),
        _ => {}
    }
    parse_executable(s).map(HealStep::Exec).map_err(|e| {
        e.replacen(
            "expected the absolute path",
            "expected ifupdown, link, or the absolute path",
            1,
        )
    })
}

/// yes/no, true/false, on/off, 1/0.
pub fn parse_bool(s: &str) -> Result<bool, String> {
    match s.to_ascii_lowercase().as_str() {
        "yes" | "true" | "on" | "1" => Ok(true),
        "no" | "false" | "off" | "0" => Ok(false),
        _ => Err("expected yes or no".to_string()),
    }
}

/// An absolute path, or `none` for "off".
pub fn parse_optional_path(s: &str) -> Result<Option<PathBuf>, String> {
    match s {
        "none" => Ok(None),
        _ if s.starts_with('/') => Ok(Some(PathBuf::from(s))),
        _ => Err("expected an absolute path, or none".to_string()),
    }
}

/// The absolute path of an executable file (heal steps and hooks run as root: no PATH lookup).
pub fn parse_executable(s: &str) -> Result<PathBuf, String> {
    let expected = "expected the absolute path of an executable file";
    if !s.starts_with('/') {
        return Err(expected.to_string());
    }
    use std::os::unix::fs::PermissionsExt;
    match std::fs::metadata(s) {
        Ok(m) if m.is_file() && m.permissions().mode() & 0o111 != 0 => Ok(PathBuf::from(s)),
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
    fn tables() {
        assert_eq!(parse_table("any"), Ok(None));
        assert_eq!(parse_table("main"), Ok(Some(254)));
        assert_eq!(parse_table("100"), Ok(Some(100)));
        assert!(parse_table("0").is_err() && parse_table("x").is_err());
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
    fn canonical_durations_parse_back() {
        for n in [1, 250, 1_000, 1_500, 60_000, 90_000, 3_600_000, 5_400_000] {
            let text = canonical(ms(n));
            assert_eq!(parse_duration(&text), Ok(ms(n)), "{text}");
        }
        assert_eq!(canonical(ms(90_000)), "90s");
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
    fn booleans_and_paths() {
        for (s, b) in [
            ("yes", true),
            ("On", true),
            ("1", true),
            ("no", false),
            ("FALSE", false),
            ("0", false),
        ] {
            assert_eq!(parse_bool(s), Ok(b), "{s}");
        }
        assert!(parse_bool("maybe").is_err());
        assert_eq!(parse_optional_path("none"), Ok(None));
        assert_eq!(parse_optional_path("/run/x"), Ok(Some("/run/x".into())));
        assert!(parse_optional_path("run/x").is_err());
        assert!(parse_executable("/bin/sh").is_ok());
        assert!(parse_executable("sh").is_err());
    }
}
