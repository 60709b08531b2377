//! When heals are held back: a maintenance inhibit (`netheal --inhibit 2h [IFACE]`), the boot
//! grace, and a network not yet seen up since start. Pure: file text, uptimes and boot ids
//! in, decisions out.
//!
//! The inhibit file (default /run/netheal/inhibit) has one line per inhibit. Its expiry is
//! kept on the kernel's uptime of the boot that set it, not on the wall clock: a clock jump
//! (NTP's first sync on a board without a clock chip) neither stretches nor shortens it, a
//! netheal restart reads the same expiry again, and an inhibit of an earlier boot is void
//! (/run is wiped at boot anyway; this also covers a file kept elsewhere). The wall time in
//! the file is for people and `--status` only.
#![forbid(unsafe_code)]

use std::time::Duration;

use crate::budget::parse_secs;

pub const MAGIC: &str = "netheal-inhibit";
pub const VERSION: u32 = 1;
/// The longest inhibit `--inhibit` accepts.
pub const MAX: Duration = Duration::from_secs(7 * 24 * 3600);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// An interface, or `*` for all of them.
    pub iface: String,
    pub boot_id: String,
    /// Uptime at which it ends.
    pub until_uptime: Duration,
    /// Wall clock (Unix seconds) at which it was expected to end, for display.
    pub until_wall: i64,
}

/// How long heals of `iface` stay inhibited, if at all: the longest matching entry of this
/// boot that has not ended.
pub fn remaining(
    entries: &[Entry],
    iface: &str,
    boot_id: &str,
    uptime: Duration,
) -> Option<(Duration, i64)> {
    entries
        .iter()
        .filter(|e| (e.iface == "*" || e.iface == iface) && e.boot_id == boot_id)
        .filter(|e| e.until_uptime > uptime)
        .map(|e| (e.until_uptime - uptime, e.until_wall))
        .max()
}

/// Parses the inhibit file. Unreadable lines are skipped (an inhibit only ever holds heals
/// back; a damaged one must not hold them back forever, so they are dropped, not kept).
pub fn parse(text: &str) -> Vec<Entry> {
    let mut lines = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'));
    if lines.next() != Some(&format!("{MAGIC} {VERSION}")) {
        return Vec::new();
    }
    lines
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            if w.next() != Some("inhibit") {
                return None;
            }
            let (mut iface, mut boot, mut up, mut wall) = (None, None, None, None);
            for kv in w {
                match kv.split_once('=')? {
                    ("iface", v) if !v.is_empty() => iface = Some(v.to_string()),
                    ("boot", v) if !v.is_empty() => boot = Some(v.to_string()),
                    ("until_uptime", v) => up = parse_secs(v),
                    ("until", v) => wall = v.parse().ok(),
                    _ => {}
                }
            }
            Some(Entry {
                iface: iface?,
                boot_id: boot?,
                until_uptime: up?,
                until_wall: wall.unwrap_or(0),
            })
        })
        .collect()
}

pub fn serialize(entries: &[Entry]) -> String {
    let mut s =
        format!("# netheal --inhibit: heals held back until (netheal(8))\n{MAGIC} {VERSION}\n");
    for e in entries {
        s += &format!(
            "inhibit iface={} boot={} until_uptime={}.{:03} until={}\n",
            e.iface,
            e.boot_id,
            e.until_uptime.as_secs(),
            e.until_uptime.subsec_millis(),
            e.until_wall
        );
    }
    s
}

/// The file after `netheal --inhibit DUR [IFACE]` (`dur` None: `--inhibit off`). Entries of
/// other boots and ended ones are dropped; `off` without IFACE ends every inhibit.
pub fn update(
    old: &[Entry],
    iface: Option<&str>,
    dur: Option<Duration>,
    boot_id: &str,
    uptime: Duration,
    wall: i64,
) -> Vec<Entry> {
    let target = iface.unwrap_or("*");
    let mut out: Vec<Entry> = old
        .iter()
        .filter(|e| e.boot_id == boot_id && e.until_uptime > uptime)
        .filter(|e| match (dur, iface) {
            (None, None) => false,
            _ => e.iface != target,
        })
        .cloned()
        .collect();
    if let Some(d) = dur {
        out.push(Entry {
            iface: target.to_string(),
            boot_id: boot_id.to_string(),
            until_uptime: uptime + d,
            until_wall: wall + d.as_secs() as i64,
        });
    }
    out
}

/// Why heals are held back, in order of precedence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hold {
    Inhibit,
    BootGrace,
    NotYetUp,
}

impl Hold {
    pub fn as_str(self) -> &'static str {
        match self {
            Hold::Inhibit => "inhibit",
            Hold::BootGrace => "boot-grace",
            Hold::NotYetUp => "not-yet-up",
        }
    }
}

/// Whether heals are held back now: an inhibit in force, boot grace left, or no good round
/// since start while `heal_before_up` is off.
pub fn hold(
    inhibited: bool,
    grace_left: bool,
    seen_up: bool,
    heal_before_up: bool,
) -> Option<Hold> {
    if inhibited {
        Some(Hold::Inhibit)
    } else if grace_left {
        Some(Hold::BootGrace)
    } else if !seen_up && !heal_before_up {
        Some(Hold::NotYetUp)
    } else {
        None
    }
}

/// The boot grace left at `uptime`, if any (`grace` zero: none).
pub fn grace_left(grace: Duration, uptime: Duration) -> Option<Duration> {
    (uptime < grace).then(|| grace - uptime)
}

/// `2h`, `90m`, `1.5h`, `2d` up to 7 days, or `off`.
pub fn parse_inhibit(s: &str) -> Result<Option<Duration>, String> {
    let expected = || "expected a duration such as 30m, 2h or 1d (up to 7d), or off".to_string();
    if s == "off" {
        return Ok(None);
    }
    let d = match s.strip_suffix('d') {
        // Digits only, like every other count: `parse` alone would take `+1d`.
        Some(days) if !days.is_empty() && days.bytes().all(|b| b.is_ascii_digit()) => {
            let n: u64 = days.parse().map_err(|_| expected())?;
            Duration::from_secs(n.checked_mul(86_400).ok_or_else(expected)?)
        }
        Some(_) => return Err(expected()),
        None => crate::config::parse_duration(s).map_err(|_| expected())?,
    };
    if d.is_zero() || d > MAX {
        return Err(expected());
    }
    Ok(Some(d))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn inhibit_durations_take_digits_only() {
        assert_eq!(parse_inhibit("2d"), Ok(Some(secs(2 * 86_400))));
        assert_eq!(parse_inhibit("2h"), Ok(Some(secs(7_200))));
        for bad in ["+1d", "-1d", "d", " 1d", "1.5d", "+2h", "0d", "8d"] {
            assert!(parse_inhibit(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn set_expire_off_and_other_boots() {
        let e = update(&[], None, Some(secs(7200)), "b1", secs(100), 1_000);
        assert_eq!(
            remaining(&e, "eth0", "b1", secs(100)),
            Some((secs(7200), 8_200))
        );
        assert_eq!(
            remaining(&e, "eth0", "b1", secs(7299)),
            Some((secs(1), 8_200))
        );
        assert_eq!(remaining(&e, "eth0", "b1", secs(7300)), None, "expired");
        assert_eq!(remaining(&e, "eth0", "b2", secs(200)), None, "another boot");
        // One interface only, then all off.
        let e = update(&e, Some("wan"), Some(secs(60)), "b1", secs(200), 1_100);
        assert_eq!(e.len(), 2);
        assert_eq!(
            remaining(&e, "wan", "b1", secs(200)).unwrap().0,
            secs(7100),
            "longest wins"
        );
        let e = update(&e, None, Some(secs(60)), "b1", secs(200), 1_100);
        assert_eq!(
            remaining(&e, "lan", "b1", secs(200)).unwrap().0,
            secs(60),
            "* replaced"
        );
        assert_eq!(remaining(&e, "wan", "b1", secs(200)).unwrap().0, secs(60));
        let e2 = update(&e, Some("wan"), None, "b1", secs(200), 1_100);
        assert_eq!(
            remaining(&e2, "wan", "b1", secs(200)).unwrap().0,
            secs(60),
            "* still holds"
        );
        let e = update(&e, None, None, "b1", secs(200), 1_100);
        assert!(e.is_empty());
        // Ended and foreign entries are dropped on rewrite.
        let old = update(&[], Some("x"), Some(secs(10)), "b0", secs(5), 0);
        assert!(update(&old, Some("y"), None, "b1", secs(1), 0).is_empty());
    }

    #[test]
    fn file_round_trips_and_damage_drops_entries() {
        let e = update(
            &[],
            Some("eth0"),
            Some(Duration::from_millis(1500)),
            "b-1",
            secs(3),
            50,
        );
        let text = serialize(&e);
        assert_eq!(parse(&text), e);
        assert!(parse("").is_empty());
        assert!(parse("netheal-inhibit 9\ninhibit iface=* boot=b until_uptime=9\n").is_empty());
        let damaged = format!("{text}inhibit iface=* boot=b-1\ninhibit junk\nother line\n");
        assert_eq!(parse(&damaged), e);
    }

    #[test]
    fn holds_in_order_of_precedence() {
        assert_eq!(hold(true, true, false, false), Some(Hold::Inhibit));
        assert_eq!(hold(false, true, false, false), Some(Hold::BootGrace));
        assert_eq!(hold(false, true, true, true), Some(Hold::BootGrace));
        assert_eq!(hold(false, false, false, false), Some(Hold::NotYetUp));
        assert_eq!(hold(false, false, false, true), None, "heal-before-up");
        assert_eq!(hold(false, false, true, false), None, "seen up once");
    }

    #[test]
    fn boot_grace_by_uptime() {
        assert_eq!(grace_left(secs(300), secs(20)), Some(secs(280)));
        assert_eq!(grace_left(secs(300), secs(300)), None);
        assert_eq!(
            grace_left(secs(300), secs(86_400)),
            None,
            "started well after boot"
        );
        assert_eq!(
            grace_left(Duration::ZERO, Duration::ZERO),
            None,
            "0 disables"
        );
    }

    #[test]
    fn inhibit_durations() {
        assert_eq!(parse_inhibit("2h"), Ok(Some(secs(7200))));
        assert_eq!(parse_inhibit("1d"), Ok(Some(secs(86_400))));
        assert_eq!(parse_inhibit("7d"), Ok(Some(secs(7 * 86_400))));
        assert_eq!(parse_inhibit("off"), Ok(None));
        for bad in [
            "8d",
            "0",
            "0d",
            "",
            "forever",
            "-1h",
            "99999999999999999999d",
        ] {
            assert!(parse_inhibit(bad).is_err(), "{bad}");
        }
    }
}
