//! Parsers for single setting values: durations, counts, targets, heal steps, interface
//! names. Each returns what was expected on failure; callers add which setting and where.
#![forbid(unsafe_code)]

use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use super::{HealStep, Target, DNS_PORT, IFNAME_MAX, MAX_DURATION};

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
    if let Some(rest) = s.strip_prefix("tcp:") {
        return Ok(Target::Tcp(parse_stream_addr(rest, None)?));
    }
    if let Some(rest) = s.strip_prefix("dns:") {
        return Ok(Target::Dns(parse_stream_addr(rest, Some(DNS_PORT))?));
    }
    let addr = s.parse::<IpAddr>().map_err(|_| {
        "expected an IPv4 or IPv6 address, 'gateway', tcp:ADDR:PORT or dns:ADDR[:PORT] (host names are refused: a watchdog must not depend on DNS)"
            .to_string()
    })?;
    check_remote(addr)?;
    Ok(Target::Addr(addr))
}

fn check_remote(addr: IpAddr) -> Result<(), String> {
    match answers_locally(addr) {
        Some(what) => Err(format!(
            "refused: {what} address; the host itself answers it whatever the link does, so the watchdog would never see an outage: expected an address beyond IFACE, or 'gateway'"
        )),
        None => Ok(()),
    }
}

/// What follows `tcp:` or `dns:`: `ADDR:PORT`, `[V6ADDR]:PORT`, or, with a `default` port,
/// `ADDR` alone (a bare IPv6 address too: `dns:2001:db8::53`). Addresses only, no zone.
fn parse_stream_addr(s: &str, default: Option<u16>) -> Result<SocketAddr, String> {
    let form = match default {
        None => "ADDR:PORT or [IPV6]:PORT",
        Some(_) => "ADDR, ADDR:PORT or [IPV6]:PORT",
    };
    let bracketed = s
        .strip_prefix('[')
        .and_then(|v| v.strip_suffix(']'))
        .and_then(|v| v.parse::<Ipv6Addr>().ok())
        .map(IpAddr::V6);
    let bare = s.parse::<IpAddr>().ok().or(bracketed);
    let sa = if let (Some(ip), Some(port)) = (bare, default) {
        SocketAddr::new(ip, port)
    } else if let Ok(sa) = s.parse::<SocketAddr>() {
        sa
    } else if bare.is_some() {
        return Err(format!("a port is needed: expected {form}"));
    } else {
        let host = match s.rsplit_once(':') {
            Some((h, p)) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => h,
            _ => s,
        };
        let name_like = !host.is_empty()
            && host.parse::<IpAddr>().is_err()
            && !host.starts_with('[')
            && host.bytes().any(|b| b.is_ascii_alphabetic())
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
        return Err(if name_like {
            format!("an address is needed, netheal does no DNS lookups: expected {form}")
        } else {
            format!("expected {form} with a port from 1 to 65535")
        });
    };
    if sa.port() == 0 {
        return Err(format!(
            "port 0 is not a port: expected {form} with a port from 1 to 65535"
        ));
    }
    if let SocketAddr::V6(v6) = sa {
        if v6.scope_id() != 0 || v6.flowinfo() != 0 {
            return Err(format!(
                "no zone or flow label: the interface is the zone; expected {form}"
            ));
        }
    }
    check_remote(sa.ip())?;
    Ok(sa)
}

/// Addresses that the host answers itself, dead link or not: loopback (127.0.0.0/8, ::1,
/// and 127.x mapped into IPv6 as ::ffff:127.x) and the unspecified address (Linux delivers
/// an echo to 0.0.0.0 or :: to the local host).
fn answers_locally(addr: IpAddr) -> Option<&'static str> {
    let v4 = match addr {
        IpAddr::V4(a) => Some(a),
        IpAddr::V6(a) if a.is_loopback() => return Some("a loopback"),
        IpAddr::V6(a) if a.is_unspecified() => return Some("the unspecified"),
        IpAddr::V6(a) => a.to_ipv4_mapped(),
    };
    match v4 {
        Some(a) if a.is_loopback() => Some("a loopback"),
        Some(a) if a.is_unspecified() => Some("the unspecified"),
        _ => None,
    }
}

/// A whole number from 1 to `max`, digits only: a sign (`+5`) is refused, as durations
/// refuse it.
pub fn parse_count(s: &str, max: u32) -> Result<u32, String> {
    let digits = !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    match s.parse::<u32>() {
        Ok(n) if digits && (1..=max).contains(&n) => Ok(n),
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

/// `250ms`, `10s`, `1.5s`, `5m`, `1h`; a bare number is seconds. The value is computed
/// exactly (decimal fixed point, any number of fractional digits) and must be a whole number
/// of milliseconds: `1.0005s` or `1.0000000001h` are refused rather than rounded.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let expected =
        || "expected a duration such as 250ms, 10s, 1.5s, 5m or 1h, from 1ms to 24h".to_string();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let unit_ms: u128 = match unit {
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
    let digits = |d: &str| d.bytes().all(|b| b.is_ascii_digit());
    if !digits(whole) || !digits(frac) || whole.len() > 9 {
        return Err(expected());
    }
    // value = (whole . frac) * unit_ms = (whole * 10^k + frac) * unit_ms / 10^k, in integers.
    // Trailing zeros change nothing; more than 30 significant decimals cannot be a whole
    // millisecond here (and would overflow), so they are refused like any finer precision.
    let frac = frac.trim_end_matches('0');
    if frac.len() > 30 {
        return Err(format!("{}; this is finer than 1ms", expected()));
    }
    let scale = 10u128.pow(frac.len() as u32);
    let joined = format!("{whole}{frac}");
    let joined = joined.trim_start_matches('0');
    let number: u128 = match joined {
        "" => 0,
        _ => joined.parse().map_err(|_| expected())?,
    };
    let total = number.checked_mul(unit_ms).ok_or_else(expected)?;
    if total % scale != 0 {
        return Err(format!("{}; this is finer than 1ms", expected()));
    }
    let ms = total / scale;
    if ms == 0 || ms > MAX_DURATION.as_millis() {
        return Err(expected());
    }
    Ok(Duration::from_millis(ms as u64))
}

/// A duration that may also be `0` (none): boot-grace, carrier-wait, arm-after.
pub fn parse_wait(s: &str) -> Result<Duration, String> {
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    parse_duration(s).map_err(|e| format!("{e}, or 0 for none"))
}

/// `canonical`, and `0` for none (what `parse_wait` reads back).
pub fn canonical_or_zero(d: Duration) -> String {
    if d.is_zero() {
        "0".into()
    } else {
        canonical(d)
    }
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

/// The step names of `heal = ...`, for messages.
pub const STEP_NAMES: &str =
    "auto, networkmanager, networkd, netifd, netifd:LOGICAL, ifupdown, dhcp, link, reboot";

pub fn parse_heal_step(s: &str) -> Result<HealStep, String> {
    match s {
        "auto" => return Ok(HealStep::Auto),
        "networkmanager" => return Ok(HealStep::NetworkManager),
        "networkd" => return Ok(HealStep::Networkd),
        "netifd" => return Ok(HealStep::Netifd(None)),
        "ifupdown" => return Ok(HealStep::IfUpDown),
        "dhcp" => return Ok(HealStep::Dhcp),
        "link" => return Ok(HealStep::Link),
        "reboot" => return Ok(HealStep::Reboot),
        _ => {}
    }
    if let Some(logical) = s.strip_prefix("netifd:") {
        return check_logical_name(logical).map(|()| HealStep::Netifd(Some(logical.to_string())));
    }
    parse_executable(s).map(HealStep::Exec).map_err(|e| {
        e.replacen(
            "expected the absolute path",
            &format!("expected {STEP_NAMES}, or the absolute path"),
            1,
        )
    })
}

/// A netifd logical interface name (a UCI section name: letters, digits and `_`, as LuCI
/// checks it), which becomes a ubus object path `network.interface.NAME`.
pub fn check_logical_name(s: &str) -> Result<(), String> {
    let ok =
        !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if ok {
        Ok(())
    } else {
        Err("expected netifd:LOGICAL with a UCI interface name of letters, digits and _ (like netifd:wan)".into())
    }
}

/// A command line for the graceful reboot: words separated by spaces, the first an absolute
/// path (checked for being executable only when a ladder names `reboot`).
pub fn parse_command(s: &str) -> Result<Vec<String>, String> {
    let words: Vec<String> = s.split_whitespace().map(str::to_string).collect();
    match words.first() {
        Some(w) if w.starts_with('/') => Ok(words),
        _ => Err("expected an absolute path, then its arguments, such as /sbin/reboot or /bin/systemctl reboot".into()),
    }
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

/// The absolute path of an executable file (heal steps and hooks run as root: no PATH
/// lookup), which only root could have changed: see `secure`.
pub fn parse_executable(s: &str) -> Result<PathBuf, String> {
    let expected = "expected the absolute path of an executable file";
    if !s.starts_with('/') {
        return Err(expected.to_string());
    }
    match super::secure::check_executable(std::path::Path::new(s)) {
        Ok(()) => Ok(PathBuf::from(s)),
        Err(e) if e.starts_with("refused") => Err(e),
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
            ("24h", ms(86_400_000)),
            ("1.5000000000000000000000000000000000000s", ms(1_500)),
            ("0.0001h", ms(360)),
            ("0.5m", ms(30_000)),
            ("00012s", ms(12_000)),
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
            "+5s",
        ] {
            assert!(parse_duration(s).is_err(), "{s:?} should fail");
        }
    }

    /// Fractions are scaled exactly: the old code cut them to nine digits before scaling, so
    /// `1.0000000001h` silently became 1h and 1/3600000 h written to 30 digits became 0.
    #[test]
    fn durations_finer_than_a_millisecond_are_refused_not_rounded() {
        for s in [
            "1.0005s",
            "1.0000000001h",
            "0.000001h",
            "1.0000000001m",
            "0.1ms",
            "0.0000002777777777h",
            "999999999.9999999999999999999999999999h",
        ] {
            let e = parse_duration(s).unwrap_err();
            assert!(e.contains("expected a duration"), "{s}: {e}");
        }
        assert!(parse_duration("1.0005s")
            .unwrap_err()
            .contains("finer than 1ms"));
    }

    /// Counts take digits only, like durations: `+5` is refused, as are signs and blanks.
    #[test]
    fn counts_refuse_a_sign() {
        assert_eq!(parse_count("5", 20), Ok(5));
        assert_eq!(parse_count("020", 20), Ok(20));
        for s in ["+5", "-5", "", " 5", "5 ", "21", "0", "0x5", "5.0"] {
            assert!(parse_count(s, 20).is_err(), "{s:?}");
        }
    }

    /// A loopback or unspecified target is always answered by the host itself.
    #[test]
    fn loopback_targets_are_refused() {
        for s in [
            "127.0.0.1",
            "127.255.255.254",
            "127.1.2.3",
            "::1",
            "::ffff:127.0.0.1",
            "::ffff:127.8.9.10",
            "0.0.0.0",
            "::",
            "::ffff:0.0.0.0",
        ] {
            let e = parse_target(s).unwrap_err();
            assert!(e.starts_with("refused: "), "{s}: {e}");
            assert!(
                e.contains("loopback") || e.contains("unspecified"),
                "{s}: {e}"
            );
        }
        assert!(parse_target("::1")
            .unwrap_err()
            .contains("a loopback address"));
        for s in [
            "128.0.0.1",
            "126.255.255.255",
            "::2",
            "::ffff:198.51.100.1",
            "2001:db8::1",
        ] {
            assert!(parse_target(s).is_ok(), "{s}");
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
    fn stream_targets() {
        let sa = |s: &str| s.parse::<std::net::SocketAddr>().unwrap();
        for (text, want, shown) in [
            (
                "tcp:198.51.100.1:80",
                Target::Tcp(sa("198.51.100.1:80")),
                None,
            ),
            (
                "tcp:[2001:db8::1]:443",
                Target::Tcp(sa("[2001:db8::1]:443")),
                None,
            ),
            (
                "dns:198.51.100.53",
                Target::Dns(sa("198.51.100.53:53")),
                None,
            ),
            (
                "dns:198.51.100.53:53",
                Target::Dns(sa("198.51.100.53:53")),
                Some("dns:198.51.100.53"),
            ),
            (
                "dns:203.0.113.5:5353",
                Target::Dns(sa("203.0.113.5:5353")),
                None,
            ),
            (
                "dns:2001:db8::53",
                Target::Dns(sa("[2001:db8::53]:53")),
                None,
            ),
            (
                "dns:[2001:db8::53]",
                Target::Dns(sa("[2001:db8::53]:53")),
                Some("dns:2001:db8::53"),
            ),
            (
                "dns:[2001:db8::53]:5353",
                Target::Dns(sa("[2001:db8::53]:5353")),
                None,
            ),
        ] {
            assert_eq!(parse_target(text), Ok(want), "{text}");
            assert_eq!(want.to_string(), shown.unwrap_or(text), "{text}");
            assert_eq!(
                parse_target(&want.to_string()),
                Ok(want),
                "{text} round trip"
            );
            assert!(want.is_stream());
        }
        let refused = [
            ("tcp:198.51.100.1", "a port is needed"),
            ("tcp:2001:db8::1", "a port is needed"),
            ("tcp:[2001:db8::1]", "a port is needed"),
            ("tcp:198.51.100.1:0", "port 0"),
            ("dns:198.51.100.1:0", "port 0"),
            ("tcp:198.51.100.1:65536", "from 1 to 65535"),
            ("tcp:198.51.100.1:", "from 1 to 65535"),
            ("tcp:198.51.100.1:http", "from 1 to 65535"),
            (
                "tcp:example.com:80",
                "an address is needed, netheal does no DNS lookups",
            ),
            (
                "tcp:example.com",
                "an address is needed, netheal does no DNS lookups",
            ),
            (
                "dns:resolver.lan",
                "an address is needed, netheal does no DNS lookups",
            ),
            ("tcp:127.0.0.1:80", "loopback"),
            ("tcp:[::1]:80", "loopback"),
            ("dns:0.0.0.0", "unspecified"),
            ("dns:[::]:53", "unspecified"),
            ("dns:::ffff:127.0.0.53", "loopback"),
            ("tcp:[fe80::1%2]:80", "zone"),
            ("tcp:", "expected"),
            ("udp:198.51.100.1:53", "expected an IPv4"),
        ];
        for (text, why) in refused {
            let e = parse_target(text).unwrap_err();
            assert!(e.contains(why), "{text}: {e}");
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
        assert_eq!(parse_heal_step("reboot"), Ok(HealStep::Reboot));
        assert_eq!(parse_heal_step("auto"), Ok(HealStep::Auto));
        assert_eq!(
            parse_heal_step("networkmanager"),
            Ok(HealStep::NetworkManager)
        );
        assert_eq!(parse_heal_step("networkd"), Ok(HealStep::Networkd));
        assert_eq!(parse_heal_step("dhcp"), Ok(HealStep::Dhcp));
        assert_eq!(parse_heal_step("netifd"), Ok(HealStep::Netifd(None)));
        assert_eq!(
            parse_heal_step("netifd:wan_6"),
            Ok(HealStep::Netifd(Some("wan_6".into())))
        );
        for bad in ["netifd:", "netifd:wan.2", "netifd:a b", "netifd:wan;reboot"] {
            assert!(parse_heal_step(bad).is_err(), "{bad}");
        }
        for s in [
            "auto",
            "networkmanager",
            "networkd",
            "netifd",
            "netifd:wan",
            "dhcp",
        ] {
            assert_eq!(parse_heal_step(s).unwrap().to_string(), s);
        }
        assert!(parse_heal_step("Reboot").is_err());
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
