//! The monotonic clock: CLOCK_MONOTONIC read with clock_gettime(2), which glibc and musl answer
//! from the vDSO without a system call. `mono::Instant::now` is the one caller; everything else
//! takes the `Instant` it makes. Never the wall clock, and nothing here sets a clock.
//!
//! Raw libc rather than nix's safe `clock_gettime`: nix's wraps the same call in an
//! out-of-line errno check and a `TimeSpec` copy, ~30 instructions of a read netheal makes
//! about eight times per round (callgrind, opt-level "z"); std's `Instant::now` calls libc
//! directly too.
#![allow(unsafe_code)]

/// CLOCK_MONOTONIC in nanoseconds since its zero (boot on Linux, suspend excluded), signed as
/// the kernel's `tv_sec` is.
#[inline]
pub fn monotonic_nanos() -> i64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable `timespec` that lives across the call, and
    // clock_gettime(2) writes only that one struct.
    let ret = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    // std's Instant::now panics here too: CLOCK_MONOTONIC exists on every Linux
    // (clock_gettime(2)), so the call fails only for a bad pointer, which `&mut ts` is not.
    assert!(ret == 0, "clock_gettime(CLOCK_MONOTONIC) failed");
    // tv_sec is i32 or i64 by target and tv_nsec is below 10^9 by the kernel's contract; the
    // sum cannot overflow before 292 years of uptime, and wraps rather than panics after.
    #[allow(clippy::unnecessary_cast)]
    (ts.tv_sec as i64)
        .wrapping_mul(1_000_000_000)
        .wrapping_add(ts.tv_nsec as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agrees_with_nix_clock_gettime() {
        let nix_ns = || {
            let t = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC).unwrap();
            #[allow(clippy::unnecessary_cast)]
            let ns = t.tv_sec() as i64 * 1_000_000_000 + t.tv_nsec() as i64;
            ns
        };
        // Ordering only, no tolerance: the clock never goes back, so a read taken between two
        // others lies between them; a wrong unit or clock would not.
        let (before, at, after) = (nix_ns(), monotonic_nanos(), nix_ns());
        assert!(before <= at && at <= after, "{before} <= {at} <= {after}");
    }
}
