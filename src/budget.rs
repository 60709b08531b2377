//! The reboot budget: "at most N netheal reboots in WINDOW, with growing spacing", kept in a
//! state file that survives the reboots it counts. Pure: the records, the budget and what the
//! clocks say go in, a verdict comes out; no I/O, no clock (src/sys/boot.rs reads those).
//!
//! A record is written before each reboot: the kernel's boot_id of the boot that is about to
//! end, the wall clock and the uptime at that moment. Boards without a clock chip boot with a
//! wrong date, so the wall clock alone cannot be trusted to age records out: a record counts
//! until its age is *proven* to exceed the window by either clock.
//! - Same boot: the uptime difference is exact (CLOCK_BOOTTIME does not jump).
//! - An earlier boot: the record is at least as old as the current uptime (it was written
//!   before this boot began); the wall clock may prove more, but only when it is plausible:
//!   not before the build time and not before the newest record (a clock that went backwards
//!   says nothing). A clock set wrongly *forward* can still age records early; the default
//!   `heal-before-up = no` is the second barrier against a reboot loop (see netheal.conf(5)).
//!
//! Records of one boot count once: a boot ends at most once.
#![forbid(unsafe_code)]

use std::fmt;
use std::time::Duration;

use crate::config::canonical;

/// The first line of the state file, with its version.
pub const MAGIC: &str = "netheal-reboots";
pub const VERSION: u32 = 1;
/// Records kept when the file is rewritten (the newest ones).
const KEEP: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// /proc/sys/kernel/random/boot_id of the boot that was ended.
    pub boot_id: String,
    /// Wall clock, Unix seconds, as the box believed it.
    pub wall: i64,
    /// Uptime at the moment, millisecond resolution.
    pub uptime: Duration,
}

/// `reboot-budget = N/WINDOW` and `reboot-spacing`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    pub max: u32,
    pub window: Duration,
    /// Before the k-th reboot within the window (k >= 2): spacing * 2^(k-2) since the last.
    pub spacing: Duration,
}

impl fmt::Display for Budget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.max, canonical(self.window))
    }
}

/// What the clocks say now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Now {
    pub boot_id: String,
    pub wall: i64,
    pub uptime: Duration,
    /// A wall clock before this (the build time) is certainly wrong.
    pub not_before: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allowed,
    /// The budget is spent: the degraded state.
    Spent,
    /// Allowed later: the spacing since the last reboot is not over.
    TooSoon {
        wait: Duration,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Assessment {
    /// Boots ended by a netheal reboot that count against the window.
    pub used: u32,
    pub max: u32,
    pub window: Duration,
    pub verdict: Verdict,
    /// Whether the wall clock was used to age records of earlier boots.
    pub wall_trusted: bool,
}

impl Assessment {
    pub fn remaining(&self) -> u32 {
        self.max.saturating_sub(self.used)
    }

    /// `reboot budget spent (3 in 24h)` while spent.
    pub fn degraded(&self) -> Option<String> {
        (self.verdict == Verdict::Spent).then(|| {
            format!(
                "reboot budget spent ({} in {})",
                self.used,
                canonical(self.window)
            )
        })
    }
}

/// Whether the wall clock can be believed at all.
fn wall_plausible(records: &[Record], now: &Now) -> bool {
    now.wall >= now.not_before && records.iter().all(|r| r.wall <= now.wall)
}

/// The least age of `r` that either clock proves.
fn proven_age(r: &Record, now: &Now, wall_ok: bool) -> Duration {
    if r.boot_id == now.boot_id {
        return now.uptime.saturating_sub(r.uptime);
    }
    let by_wall = if wall_ok {
        Duration::from_secs(now.wall.saturating_sub(r.wall).max(0) as u64)
    } else {
        Duration::ZERO
    };
    now.uptime.max(by_wall)
}

/// The proven age of the newest record of each boot that is not proven older than the window.
fn recent(b: &Budget, records: &[Record], now: &Now, wall_ok: bool) -> Vec<(String, Duration)> {
    let mut boots: Vec<(String, Duration)> = Vec::new();
    for r in records {
        let age = proven_age(r, now, wall_ok);
        if age >= b.window {
            continue;
        }
        match boots.iter_mut().find(|(id, _)| *id == r.boot_id) {
            Some((_, a)) => *a = (*a).min(age),
            None => boots.push((r.boot_id.clone(), age)),
        }
    }
    boots
}

/// May netheal reboot now?
pub fn assess(b: &Budget, records: &[Record], now: &Now) -> Assessment {
    let wall_ok = wall_plausible(records, now);
    let boots = recent(b, records, now, wall_ok);
    let used = boots.len() as u32;
    let verdict = if used >= b.max {
        Verdict::Spent
    } else if used == 0 {
        Verdict::Allowed
    } else {
        let since_last = boots.iter().map(|(_, a)| *a).min().unwrap_or_default();
        let need = b.spacing.saturating_mul(1 << (used - 1).min(20));
        if since_last >= need {
            Verdict::Allowed
        } else {
            Verdict::TooSoon {
                wait: need - since_last,
            }
        }
    };
    Assessment {
        used,
        max: b.max,
        window: b.window,
        verdict,
        wall_trusted: wall_ok,
    }
}

/// The records worth keeping: those not proven older than the window, the newest `KEEP`.
pub fn prune(b: &Budget, records: &[Record], now: &Now) -> Vec<Record> {
    let wall_ok = wall_plausible(records, now);
    let mut keep: Vec<Record> = records
        .iter()
        .filter(|r| proven_age(r, now, wall_ok) < b.window)
        .cloned()
        .collect();
    if keep.len() > KEEP {
        keep.drain(..keep.len() - KEEP);
    }
    keep
}

/// The state file: a version line, then one `reboot` line per record. Comments and blank
/// lines are allowed; unknown line kinds and unknown keys are skipped (a newer netheal may
/// add them); anything else malformed is an error, because a budget that cannot be read must
/// refuse the reboot, never allow it.
pub fn parse(text: &str) -> Result<Vec<Record>, String> {
    let mut lines = text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim()))
        .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'));
    let Some((n, head)) = lines.next() else {
        return Err("empty (no version line)".into());
    };
    let version = head
        .strip_prefix(MAGIC)
        .map(str::trim)
        .and_then(|v| v.parse::<u32>().ok())
        .ok_or_else(|| format!("line {n}: expected '{MAGIC} {VERSION}'"))?;
    if version != VERSION {
        return Err(format!(
            "line {n}: version {version}, this netheal reads version {VERSION}"
        ));
    }
    let mut out = Vec::new();
    for (n, line) in lines {
        let mut words = line.split_whitespace();
        if words.next() != Some("reboot") {
            continue;
        }
        let (mut boot, mut wall, mut uptime) = (None, None, None);
        for kv in words {
            let Some((k, v)) = kv.split_once('=') else {
                return Err(format!("line {n}: '{kv}' is not key=value"));
            };
            match k {
                "boot" if !v.is_empty() => boot = Some(v.to_string()),
                "wall" => wall = v.parse::<i64>().ok(),
                "uptime" => uptime = parse_secs(v),
                _ => {}
            }
        }
        match (boot, wall, uptime) {
            (Some(boot_id), Some(wall), Some(uptime)) => out.push(Record {
                boot_id,
                wall,
                uptime,
            }),
            _ => {
                return Err(format!(
                    "line {n}: a reboot record needs boot=, wall= and uptime="
                ))
            }
        }
    }
    Ok(out)
}

pub fn serialize(records: &[Record]) -> String {
    let mut s = format!(
        "# netheal reboot budget: one line per reboot netheal started (netheal.conf(5))\n{MAGIC} {VERSION}\n"
    );
    for r in records {
        s += &format!(
            "reboot boot={} wall={} uptime={}.{:03}\n",
            r.boot_id,
            r.wall,
            r.uptime.as_secs(),
            r.uptime.subsec_millis()
        );
    }
    s
}

/// `12345.67` (seconds with an optional fraction, as /proc/uptime has them) to a Duration
/// with millisecond resolution.
pub fn parse_secs(s: &str) -> Option<Duration> {
    let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
    if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let secs: u64 = whole.parse().ok()?;
    let mut ms = 0u64;
    for (i, b) in frac.bytes().take(3).enumerate() {
        ms += u64::from(b - b'0') * 10u64.pow(2 - i as u32);
    }
    Some(Duration::from_secs(secs) + Duration::from_millis(ms))
}

/// `N/WINDOW`, e.g. `3/24h`.
pub fn parse_budget(s: &str) -> Result<(u32, Duration), String> {
    let expected = || "expected COUNT/WINDOW such as 3/24h (1 to 100 reboots in up to 24h)";
    let (n, w) = s.split_once('/').ok_or_else(|| expected().to_string())?;
    let n: u32 = n.parse().map_err(|_| expected().to_string())?;
    if !(1..=100).contains(&n) {
        return Err(expected().to_string());
    }
    let w = crate::config::parse_duration(w).map_err(|_| expected().to_string())?;
    Ok((n, w))
}

#[cfg(test)]
mod tests {
    use super::*;

    const BUILT: i64 = 1_764_000_000;
    const H: u64 = 3600;

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    fn budget() -> Budget {
        Budget {
            max: 3,
            window: secs(24 * H),
            spacing: secs(1800),
        }
    }

    /// A virtual box: boots, runs, reboots; the wall clock may be right or wrong at each boot.
    struct VirtualBox {
        boot: u32,
        uptime: Duration,
        /// True time (Unix seconds); the wall clock is `real + skew`.
        real: i64,
        skew: i64,
        records: Vec<Record>,
    }

    impl VirtualBox {
        fn new() -> Self {
            VirtualBox {
                boot: 1,
                uptime: secs(60),
                real: BUILT + 100 * H as i64,
                skew: 0,
                records: Vec::new(),
            }
        }
        fn now(&self) -> Now {
            Now {
                boot_id: format!("boot-{}", self.boot),
                wall: self.real + self.skew,
                uptime: self.uptime,
                not_before: BUILT,
            }
        }
        fn run(&mut self, d: Duration) {
            self.uptime += d;
            self.real += d.as_secs() as i64;
        }
        fn assess(&self) -> Assessment {
            assess(&budget(), &self.records, &self.now())
        }
        /// Reboots if the budget allows; the next boot starts with `skew` and 60 s of uptime.
        fn try_reboot(&mut self, skew: i64) -> Verdict {
            let a = self.assess();
            if a.verdict == Verdict::Allowed {
                let now = self.now();
                self.records.push(Record {
                    boot_id: now.boot_id,
                    wall: now.wall,
                    uptime: now.uptime,
                });
                self.boot += 1;
                self.real += 60;
                self.uptime = secs(60);
                self.skew = skew;
            }
            a.verdict
        }
    }

    #[test]
    fn three_in_a_day_then_spent_then_recovered() {
        let mut b = VirtualBox::new();
        assert_eq!(b.try_reboot(0), Verdict::Allowed);
        // Spacing: 30 min before the second, 1 h before the third.
        b.run(secs(20 * 60));
        assert!(matches!(b.try_reboot(0), Verdict::TooSoon { .. }));
        b.run(secs(10 * 60));
        assert_eq!(b.try_reboot(0), Verdict::Allowed);
        b.run(secs(40 * 60));
        match b.try_reboot(0) {
            Verdict::TooSoon { wait } => assert_eq!(wait, secs(20 * 60 - 60)),
            v => panic!("{v:?}"),
        }
        b.run(secs(20 * 60));
        assert_eq!(b.try_reboot(0), Verdict::Allowed);
        b.run(secs(5 * H));
        let a = b.assess();
        assert_eq!((a.verdict, a.used, a.remaining()), (Verdict::Spent, 3, 0));
        assert_eq!(a.degraded().unwrap(), "reboot budget spent (3 in 24h)");
        // The first record ages out 24 h after it was written: the budget has one again.
        b.run(secs(16 * H));
        assert_eq!(b.assess().verdict, Verdict::Spent);
        b.run(secs(90 * 60));
        let a = b.assess();
        assert_eq!((a.verdict, a.used), (Verdict::Allowed, 2));
        assert!(a.degraded().is_none());
    }

    #[test]
    fn a_clock_reset_to_the_epoch_does_not_reset_the_budget() {
        let mut b = VirtualBox::new();
        // Every boot starts in 1970 (no clock chip, no NTP yet).
        let epoch = -b.real;
        for _ in 0..3 {
            b.run(secs(4 * H));
            assert_eq!(b.try_reboot(epoch), Verdict::Allowed);
        }
        b.run(secs(H));
        let a = b.assess();
        assert!(!a.wall_trusted);
        assert_eq!(a.verdict, Verdict::Spent);
        // Only uptime can prove age now: a day of it does.
        b.run(secs(22 * H));
        assert_eq!(b.assess().verdict, Verdict::Spent);
        b.run(secs(H));
        assert_eq!(b.assess().used, 0);
    }

    #[test]
    fn a_clock_that_went_backwards_is_not_believed() {
        let mut b = VirtualBox::new();
        b.run(secs(H));
        b.try_reboot(0);
        b.run(secs(H));
        b.try_reboot(0);
        b.run(secs(2 * H));
        b.try_reboot(-3 * H as i64); // this boot's clock is 3 h slow: before the newest record
        let a = b.assess();
        assert!(!a.wall_trusted, "before the newest record");
        assert_eq!(a.used, 3);
        // A correct clock, days later, ages them all out.
        b.skew = 0;
        b.run(secs(2 * H));
        b.real += 2 * 86_400;
        let a = b.assess();
        assert!(a.wall_trusted);
        assert_eq!(a.used, 0);
    }

    #[test]
    fn wall_clock_before_the_build_is_not_believed() {
        let r = Record {
            boot_id: "old".into(),
            wall: BUILT - 10 * 86_400,
            uptime: secs(5),
        };
        let now = Now {
            boot_id: "new".into(),
            wall: BUILT - 86_400, // wrong: before the build, though after the record
            uptime: secs(120),
            not_before: BUILT,
        };
        let a = assess(&budget(), std::slice::from_ref(&r), &now);
        assert_eq!((a.used, a.wall_trusted), (1, false));
        let now = Now {
            wall: BUILT + 10,
            ..now
        };
        assert_eq!(assess(&budget(), &[r], &now).used, 0);
    }

    #[test]
    fn records_of_one_boot_count_once_and_the_same_boot_uses_uptime() {
        let rec = |boot: &str, wall: i64, up: u64| Record {
            boot_id: boot.into(),
            wall,
            uptime: secs(up),
        };
        let now = Now {
            boot_id: "b2".into(),
            wall: BUILT + 10 * H as i64,
            uptime: secs(3 * H),
            not_before: BUILT,
        };
        // Two attempts in boot b1 (the graceful command and the fallback, say), one in this
        // boot 10 minutes ago that did not take (yet).
        let records = [
            rec("b1", BUILT + 5 * H as i64, 100),
            rec("b1", BUILT + 5 * H as i64 + 30, 130),
            rec("b2", BUILT + 20 * H as i64, 3 * H - 600), // wall wrong, uptime right
        ];
        let a = assess(&budget(), &records, &now);
        assert_eq!(a.used, 2);
        // Within this boot the wall clock is ignored: 10 min ago by uptime, spacing 1 h.
        assert_eq!(
            a.verdict,
            Verdict::TooSoon {
                wait: secs(50 * 60)
            }
        );
    }

    #[test]
    fn state_file_round_trips_and_is_tolerant_but_strict() {
        let records = vec![
            Record {
                boot_id: "0f6c1e4a-7d0b-4d9c-9c55-3d1d2e0c8a11".into(),
                wall: 1_764_620_000,
                uptime: Duration::from_millis(3_600_250),
            },
            Record {
                boot_id: "x".into(),
                wall: -5,
                uptime: Duration::ZERO,
            },
        ];
        let text = serialize(&records);
        assert_eq!(parse(&text), Ok(records.clone()));
        assert!(
            text.contains("reboot boot=x wall=-5 uptime=0.000\n"),
            "{text}"
        );
        // A newer netheal's extra keys and line kinds are skipped.
        let newer = format!("{text}note something\nreboot boot=y wall=7 uptime=1.5 why=test\n");
        assert_eq!(parse(&newer).unwrap().len(), 3);
        for (bad, why) in [
            ("", "empty"),
            ("\n# only a comment\n", "empty"),
            ("garbage\n", "line 1: expected"),
            ("netheal-reboots 2\n", "version 2"),
            (
                "netheal-reboots 1\nreboot boot=a wall=x uptime=1\n",
                "line 2",
            ),
            ("netheal-reboots 1\nreboot boot=a uptime=1\n", "needs boot="),
            ("netheal-reboots 1\nreboot boot= wall=1 uptime=1\n", "needs"),
            (
                "netheal-reboots 1\nreboot boot=a wall=1 uptime=-1\n",
                "needs",
            ),
            ("netheal-reboots 1\nreboot oops\n", "not key=value"),
            ("\u{0}\u{1}binary", "expected"),
        ] {
            let e = parse(bad).unwrap_err();
            assert!(e.contains(why), "{bad:?}: {e}");
        }
    }

    #[test]
    fn prune_keeps_what_still_counts() {
        let mut b = VirtualBox::new();
        b.try_reboot(0);
        b.run(secs(25 * H));
        b.try_reboot(0);
        b.run(secs(H));
        let kept = prune(&budget(), &b.records, &b.now());
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].boot_id, "boot-2");
    }

    #[test]
    fn seconds_and_budgets() {
        assert_eq!(
            parse_secs("12345.67"),
            Some(Duration::from_millis(12_345_670))
        );
        assert_eq!(parse_secs("3"), Some(secs(3)));
        assert_eq!(parse_secs("0.0009"), Some(Duration::ZERO));
        for bad in ["", ".5", "1.x", "-1", "1e3"] {
            assert_eq!(parse_secs(bad), None, "{bad}");
        }
        assert_eq!(parse_budget("3/24h"), Ok((3, secs(24 * H))));
        assert_eq!(parse_budget("1/90s"), Ok((1, secs(90))));
        for bad in ["3", "0/24h", "3/", "/1h", "3/25h", "101/1h", "x/1h"] {
            assert!(parse_budget(bad).is_err(), "{bad}");
        }
    }
}
