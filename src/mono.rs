//! netheal's monotonic instant: one `u64` of CLOCK_MONOTONIC nanoseconds, for every interval,
//! deadline, RTT and backoff. Pure except `Instant::now`, whose clock read is in
//! `sys::clock`; nothing here knows the wall clock (`watch::unix_time_of` relates the two).
//!
//! Why not `std::time::Instant`: it is a `timespec` (i64 seconds + u32 nanoseconds), so every
//! comparison, `saturating_duration_since`, `checked_add` and `min` of a deadline is a
//! two-field carry-and-normalise in the opt-level "z" build, several times per round. Here each
//! is one u64 operation, and the API is the subset of std's that netheal uses, with the same
//! results.
//!
//! The range: the `u64` is the signed nanosecond count of CLOCK_MONOTONIC offset by 2^63, so
//! that plain `u64` order is time order and instants before the clock's zero (boot) exist, as
//! they do for std (`Instant::now() - interval` a second after boot). That is ±292 years
//! around boot. Overflow, std's and ours:
//! - `checked_add`/`checked_sub` return None out of range, like std's;
//! - `duration_since`, `saturating_duration_since`, `elapsed` and `Instant - Instant` give
//!   zero when the other instant is later, as std's do since Rust 1.60;
//! - `+`/`-`/`+=`/`-=` with a `Duration` panic in std when out of range (an abort here, with
//!   `panic = "abort"`); ours saturate at the end of the range instead, which is "never" for a
//!   deadline and "before anything" for a start. No call site reaches it: durations from the
//!   configuration are at most 24 h.
#![forbid(unsafe_code)]

use std::fmt;
use std::ops::{Add, AddAssign, Sub, SubAssign};
use std::time::Duration;

/// A reading of CLOCK_MONOTONIC (nanoseconds, offset by 2^63; see the module comment).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Instant(u64);

const NANOS_PER_SEC: u64 = 1_000_000_000;
/// The clock's zero, in the middle of the `u64` range.
const ZERO: u64 = 1 << 63;

/// `d` in nanoseconds, None above u64::MAX (584 years).
#[inline(always)]
pub fn nanos(d: Duration) -> Option<u64> {
    d.as_secs()
        .checked_mul(NANOS_PER_SEC)?
        .checked_add(u64::from(d.subsec_nanos()))
}

/// `d` in nanoseconds, u64::MAX above that (which saturates any sum with it).
#[inline(always)]
fn nanos_saturating(d: Duration) -> u64 {
    nanos(d).unwrap_or(u64::MAX)
}

impl Instant {
    /// Now, by CLOCK_MONOTONIC (the clock std's `Instant` reads on Linux).
    #[inline(always)]
    pub fn now() -> Instant {
        Instant::from_monotonic_nanos(crate::sys::clock::monotonic_nanos())
    }

    /// The instant at `ns` nanoseconds of CLOCK_MONOTONIC.
    #[inline(always)]
    const fn from_monotonic_nanos(ns: i64) -> Instant {
        Instant((ns as u64).wrapping_add(ZERO))
    }

    /// `self + d`, None if that is out of range.
    #[inline(always)]
    pub fn checked_add(self, d: Duration) -> Option<Instant> {
        self.0.checked_add(nanos(d)?).map(Instant)
    }

    /// `self + ns` nanoseconds, None if that is out of range: `checked_add` of a duration
    /// whose nanoseconds (`nanos`) were worked out once.
    #[inline(always)]
    pub fn checked_add_nanos(self, ns: u64) -> Option<Instant> {
        self.0.checked_add(ns).map(Instant)
    }

    /// `self - d`, None if that is out of range.
    #[inline(always)]
    pub fn checked_sub(self, d: Duration) -> Option<Instant> {
        self.0.checked_sub(nanos(d)?).map(Instant)
    }

    /// The time from `earlier` to `self`; None if `earlier` is later.
    #[inline(always)]
    pub fn checked_duration_since(self, earlier: Instant) -> Option<Duration> {
        self.0.checked_sub(earlier.0).map(Duration::from_nanos)
    }

    /// The time from `earlier` to `self`, zero if `earlier` is later.
    #[inline(always)]
    pub fn saturating_duration_since(self, earlier: Instant) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(earlier.0))
    }

    /// `saturating_duration_since` in nanoseconds, without making a `Duration` of it (the
    /// loop's poll timeout, every turn: a `Duration` costs a division to make and a
    /// multiplication to take apart again).
    #[inline(always)]
    pub fn saturating_nanos_since(self, earlier: Instant) -> u64 {
        self.0.saturating_sub(earlier.0)
    }

    /// The same as `saturating_duration_since`, as std's is since Rust 1.60.
    #[inline(always)]
    pub fn duration_since(self, earlier: Instant) -> Duration {
        self.saturating_duration_since(earlier)
    }

    /// The time since `self`, zero if `self` is in the future.
    #[inline(always)]
    pub fn elapsed(self) -> Duration {
        Instant::now().saturating_duration_since(self)
    }
}

/// Saturates at the end of the range where std panics (see the module comment).
impl Add<Duration> for Instant {
    type Output = Instant;
    #[inline(always)]
    fn add(self, d: Duration) -> Instant {
        Instant(self.0.saturating_add(nanos_saturating(d)))
    }
}

impl AddAssign<Duration> for Instant {
    #[inline(always)]
    fn add_assign(&mut self, d: Duration) {
        *self = *self + d;
    }
}

/// Saturates at the start of the range where std panics (see the module comment).
impl Sub<Duration> for Instant {
    type Output = Instant;
    #[inline(always)]
    fn sub(self, d: Duration) -> Instant {
        Instant(self.0.saturating_sub(nanos_saturating(d)))
    }
}

impl SubAssign<Duration> for Instant {
    #[inline(always)]
    fn sub_assign(&mut self, d: Duration) {
        *self = *self - d;
    }
}

/// Zero if `earlier` is later, as std's.
impl Sub<Instant> for Instant {
    type Output = Duration;
    #[inline(always)]
    fn sub(self, earlier: Instant) -> Duration {
        self.saturating_duration_since(earlier)
    }
}

/// `Instant(12.000000345s)`: CLOCK_MONOTONIC seconds (negative before its zero).
impl fmt::Debug for Instant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (sign, ns) = match self.0.checked_sub(ZERO) {
            Some(ns) => ("", ns),
            None => ("-", ZERO - self.0),
        };
        let (s, sub) = (ns / NANOS_PER_SEC, ns % NANOS_PER_SEC);
        write!(f, "Instant({sign}{s}.{sub:09}s)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: Instant = Instant(0);
    const MAX: Instant = Instant(u64::MAX);
    const BOOT: Instant = Instant::from_monotonic_nanos(0);

    fn at(ns: i64) -> Instant {
        Instant::from_monotonic_nanos(ns)
    }

    #[test]
    fn orders_as_the_clock_does_across_its_zero() {
        let ladder = [
            MIN,
            at(i64::MIN + 1),
            at(-1_000_000_001),
            at(-1),
            BOOT,
            at(1),
            at(999_999_999),
            at(1_000_000_000),
            at(i64::MAX),
        ];
        for w in ladder.windows(2) {
            assert!(w[0] < w[1], "{:?} < {:?}", w[0], w[1]);
        }
        assert_eq!(MIN, at(i64::MIN));
        assert_eq!(MAX, at(i64::MAX));
        assert_eq!(Some(at(5)).min(Some(at(3))), Some(at(3)));
        assert_eq!(at(5).max(at(3)), at(5));
    }

    #[test]
    fn durations_between_instants_saturate_at_zero() {
        let (a, b) = (at(-1_500_000_000), at(2_000_000_007));
        let d = Duration::new(3, 500_000_007);
        assert_eq!(b.saturating_duration_since(a), d);
        assert_eq!(b.duration_since(a), d);
        assert_eq!(b - a, d);
        assert_eq!(b.checked_duration_since(a), Some(d));
        assert_eq!(a.saturating_duration_since(b), Duration::ZERO);
        assert_eq!(a.duration_since(b), Duration::ZERO);
        assert_eq!(a - b, Duration::ZERO);
        assert_eq!(a.checked_duration_since(b), None);
        assert_eq!(a - a, Duration::ZERO);
        assert_eq!(b.saturating_nanos_since(a), 3_500_000_007);
        assert_eq!(a.saturating_nanos_since(b), 0);
        assert_eq!(MAX.saturating_nanos_since(MIN), u64::MAX);
        // The whole range: u64::MAX nanoseconds, beyond i64.
        assert_eq!(MAX - MIN, Duration::from_nanos(u64::MAX));
    }

    #[test]
    fn adding_and_subtracting_durations() {
        let t = at(10);
        let d = Duration::new(2, 5);
        assert_eq!(t + d, at(2_000_000_015));
        assert_eq!(t.checked_add(d), Some(at(2_000_000_015)));
        assert_eq!(t - d, at(-1_999_999_995));
        assert_eq!(t.checked_sub(d), Some(at(-1_999_999_995)));
        assert_eq!((t + d) - t, d);
        assert_eq!(t - (t - d), d);
        let mut u = t;
        u += d;
        assert_eq!(u, t + d);
        u -= d;
        assert_eq!(u, t);
        assert_eq!(t + Duration::ZERO, t);
        assert_eq!(t.checked_add(Duration::ZERO), Some(t));
    }

    #[test]
    fn checked_add_and_sub_refuse_what_is_out_of_range() {
        let ns = Duration::from_nanos;
        assert_eq!(MAX.checked_add(ns(1)), None);
        assert_eq!(at(i64::MAX - 1).checked_add(ns(1)), Some(MAX));
        assert_eq!(MIN.checked_sub(ns(1)), None);
        assert_eq!(at(i64::MIN + 1).checked_sub(ns(1)), Some(MIN));
        assert_eq!(MIN.checked_add(ns(u64::MAX)), Some(MAX));
        // Durations beyond u64 nanoseconds (584 years) are out of range from anywhere.
        let huge = Duration::from_secs(u64::MAX / NANOS_PER_SEC + 1);
        assert_eq!(MIN.checked_add(huge), None);
        assert_eq!(MAX.checked_sub(huge), None);
        assert_eq!(BOOT.checked_add(Duration::MAX), None);
        assert_eq!(BOOT.checked_sub(Duration::MAX), None);
        // Just below the u64 limit, by its sub-second part.
        let top = Duration::new(u64::MAX / NANOS_PER_SEC, (u64::MAX % NANOS_PER_SEC) as u32);
        assert_eq!(MIN.checked_add(top), Some(MAX));
        assert_eq!(MIN.checked_add(top + ns(1)), None);
    }

    #[test]
    fn plus_and_minus_saturate_where_std_would_panic() {
        let ns = Duration::from_nanos;
        assert_eq!(MAX + ns(1), MAX);
        assert_eq!(BOOT + Duration::MAX, MAX);
        assert_eq!(MIN - ns(1), MIN);
        assert_eq!(BOOT - Duration::MAX, MIN);
        let mut t = at(i64::MAX - 1);
        t += ns(5);
        assert_eq!(t, MAX);
        t = at(i64::MIN + 1);
        t -= ns(5);
        assert_eq!(t, MIN);
    }

    #[test]
    fn debug_shows_clock_seconds() {
        assert_eq!(
            format!("{:?}", at(12_000_000_345)),
            "Instant(12.000000345s)"
        );
        assert_eq!(format!("{:?}", BOOT), "Instant(0.000000000s)");
        assert_eq!(
            format!("{:?}", at(-1_500_000_000)),
            "Instant(-1.500000000s)"
        );
        assert_eq!(format!("{:?}", MIN), "Instant(-9223372036.854775808s)");
    }

    #[test]
    fn now_is_monotone_and_is_the_clock_std_reads() {
        // Ordering only, so nothing here can flake on a slow or loaded machine: std's Instant
        // reads CLOCK_MONOTONIC too, so an interval of ours nested inside one of std's is no
        // longer than it, and one of std's nested inside ours no longer than ours.
        let s0 = std::time::Instant::now();
        let m0 = Instant::now();
        let s1 = std::time::Instant::now();
        std::thread::sleep(Duration::from_millis(20));
        let m1 = Instant::now();
        let s2 = std::time::Instant::now();
        let m2 = Instant::now();
        assert!(m0 <= m1 && m1 <= m2, "{m0:?} <= {m1:?} <= {m2:?}");
        assert!(m1 - m0 >= Duration::from_millis(20), "{:?}", m1 - m0);
        assert!(m1 - m0 <= s2 - s0, "{:?} <= {:?}", m1 - m0, s2 - s0);
        assert!(s2 - s1 <= m2 - m0, "{:?} <= {:?}", s2 - s1, m2 - m0);
        // A run of reads never goes back.
        let mut last = Instant::now();
        for _ in 0..1000 {
            let t = Instant::now();
            assert!(t >= last, "{t:?} >= {last:?}");
            last = t;
        }
        // And it is after the clock's zero (boot), as CLOCK_MONOTONIC is on Linux.
        assert!(m0 > BOOT);
        assert!(m0.elapsed() >= m1 - m0);
    }
}
