//! Every value parser of the configuration (file and command line share them), on any text;
//! the first byte picks the parser. What a parser accepts is in range and prints back to text
//! the same parser reads as the same value. Loopback and unspecified targets are refused;
//! counts are digits only.
#![no_main]

use std::net::IpAddr;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use netheal::config::values::{
    canonical, check_iface_name, human, parse_backoff, parse_bool, parse_command, parse_count,
    parse_duration, parse_heal_step, parse_optional_path, parse_target,
};
use netheal::config::{HealStep, Target, IFNAME_MAX};

const DAY: Duration = Duration::from_secs(24 * 3600);

fn in_range(d: Duration) {
    assert!(
        d >= Duration::from_millis(1) && d <= DAY,
        "{d:?} out of range"
    );
    assert_eq!(d.subsec_nanos() % 1_000_000, 0, "{d:?}: finer than 1 ms");
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    let Ok(s) = std::str::from_utf8(rest) else {
        return;
    };
    match which % 8 {
        0 => {
            if let Ok(d) = parse_duration(s) {
                in_range(d);
                assert_eq!(parse_duration(&canonical(d)), Ok(d), "canonical({d:?})");
                let _ = human(d);
            }
        }
        1 => {
            let max = u32::from(which / 8) * 37 + 1;
            if let Ok(n) = parse_count(s, max) {
                assert!((1..=max).contains(&n));
                assert!(s.bytes().all(|b| b.is_ascii_digit()), "{s:?}: only digits");
                assert_eq!(parse_count(&n.to_string(), max), Ok(n));
            }
        }
        2 => match parse_target(s) {
            Ok(Target::Gateway) => assert_eq!(s, "gateway"),
            Ok(t @ Target::Addr(a)) => {
                let v4 = match a {
                    IpAddr::V4(v4) => Some(v4),
                    IpAddr::V6(v6) => {
                        assert!(!v6.is_loopback() && !v6.is_unspecified(), "{a}");
                        v6.to_ipv4_mapped()
                    }
                };
                assert!(
                    !v4.is_some_and(|v| v.is_loopback() || v.is_unspecified()),
                    "{a}"
                );
                assert_eq!(parse_target(&t.to_string()), Ok(t));
            }
            Ok(t @ (Target::Tcp(sa) | Target::Dns(sa))) => {
                let prefix = if matches!(t, Target::Tcp(_)) { "tcp:" } else { "dns:" };
                assert!(s.starts_with(prefix), "{s:?}");
                assert_ne!(sa.port(), 0, "{s:?}");
                assert!(t.is_stream());
                // The address obeys the echo targets' rules.
                assert!(parse_target(&sa.ip().to_string()).is_ok(), "{s:?}");
                if let std::net::SocketAddr::V6(v6) = sa {
                    assert_eq!((v6.scope_id(), v6.flowinfo()), (0, 0), "{s:?}");
                }
                assert_eq!(parse_target(&t.to_string()), Ok(t));
            }
            Err(_) => {}
        },
        3 => {
            if let Ok((min, max)) = parse_backoff(s) {
                in_range(min);
                in_range(max);
                assert!(min <= max);
                let again = format!("{}:{}", canonical(min), canonical(max));
                assert_eq!(parse_backoff(&again), Ok((min, max)));
            }
        }
        4 => match parse_heal_step(s) {
            Ok(HealStep::Exec(p)) => {
                assert!(p.is_absolute());
                assert_eq!(
                    parse_heal_step(&p.display().to_string()),
                    Ok(HealStep::Exec(p))
                );
            }
            Ok(step) => assert_eq!(step.to_string(), s),
            Err(_) => {}
        },
        5 if which & 0x80 != 0 => {
            if let Ok(words) = parse_command(s) {
                assert!(words[0].starts_with('/'));
                assert!(words
                    .iter()
                    .all(|w| !w.is_empty() && !w.contains(char::is_whitespace)));
                assert_eq!(parse_command(&words.join(" ")), Ok(words));
            }
        }
        5 => {
            if let Ok(b) = parse_bool(s) {
                assert_eq!(parse_bool(if b { "yes" } else { "no" }), Ok(b));
            }
        }
        6 => match parse_optional_path(s) {
            Ok(Some(p)) => assert!(p.is_absolute()),
            Ok(None) => assert_eq!(s, "none"),
            Err(_) => {}
        },
        _ => {
            if check_iface_name(s).is_ok() {
                assert!(!s.is_empty() && s.len() <= IFNAME_MAX);
                assert!(!s.contains(['/', ':']) && !s.contains(char::is_whitespace));
            }
        }
    }
});
