//! The state files behind the reboot step, which survive reboots and are read back at start:
//! the reboot budget (`budget::parse`, its `parse_secs` for uptimes, `parse_budget` for the
//! setting) and the heal inhibit file (`inhibit::parse`, `parse_inhibit` for --inhibit); the
//! first byte picks the parser. What a file parser accepts, written back with its own
//! `serialize`, reads back the same; uptimes keep millisecond resolution; settings are in range.
#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use netheal::{budget, inhibit};

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    let Ok(s) = std::str::from_utf8(rest) else {
        return;
    };
    match which % 5 {
        0 => {
            if let Ok(records) = budget::parse(s) {
                let again = budget::serialize(&records);
                assert_eq!(budget::parse(&again), Ok(records), "{again}");
            }
        }
        1 => {
            if let Some(d) = budget::parse_secs(s) {
                assert_eq!(d.subsec_nanos() % 1_000_000, 0, "{d:?}");
                let back = format!("{}.{:03}", d.as_secs(), d.subsec_millis());
                assert_eq!(budget::parse_secs(&back), Some(d));
            }
        }
        2 => {
            if let Ok((n, window)) = budget::parse_budget(s) {
                assert!((1..=100).contains(&n));
                assert!(
                    window >= Duration::from_millis(1) && window <= Duration::from_secs(86_400)
                );
            }
        }
        3 => {
            let entries = inhibit::parse(s);
            let again = inhibit::serialize(&entries);
            assert_eq!(inhibit::parse(&again), entries, "{again}");
        }
        _ => {
            if let Ok(Some(d)) = inhibit::parse_inhibit(s) {
                assert!(!d.is_zero() && d <= inhibit::MAX, "{d:?}");
            }
        }
    }
});
