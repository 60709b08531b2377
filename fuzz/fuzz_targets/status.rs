//! The status file reader (`netheal --status`) on any text, and the writer read back. Every
//! interface line gives one row and one table line; `key=value` pairs keep no whitespace;
//! and what `status_text` writes, `parse_status` returns field for field.
#![no_main]

use std::net::IpAddr;
use std::time::Duration;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use netheal::probe::Stats;
use netheal::decide::State;
use netheal::diagnose::Layer;
use netheal::report::{
    parse_status, pretty_status, status_pid, status_text, LaneStatus, LastHeal, MachineStatus,
    Snapshot, TargetStatus,
};
use netheal::wire::Family;

#[derive(Arbitrary, Debug)]
struct Snap {
    iface: u8,
    state: u8,
    since: i64,
    rounds: u64,
    good_rounds: u64,
    replies: u64,
    lost: u64,
    foreign: u64,
    rtt_us: Option<(u32, u32, u32)>,
    heals: u64,
    last_heal: Option<(bool, i64)>,
    icmp_errors: u64,
    own: Vec<(bool, u8)>,
    /// (IPv6?, layer, state) per lane; a family at most once.
    lanes: Vec<(bool, u8, u8)>,
    /// (kind, last address byte, answered, lost, RTT in µs) per target.
    targets: Vec<(u8, u8, u64, u64, Option<u32>)>,
}

#[derive(Arbitrary, Debug)]
struct Input {
    /// The wall clock `--status` reads (Unix seconds; never before 1970 there).
    now: u32,
    text: String,
    snaps: Vec<Snap>,
}

const IFACES: [&str; 3] = ["eth0", "wlan0", "veth=1"];
const STATES: [State; 6] = [
    State::Starting,
    State::Up,
    State::Suspect,
    State::Down,
    State::Healing,
    State::Recovering,
];

fn snapshot(s: &Snap) -> Snapshot {
    let us = |n: u32| Duration::from_micros(u64::from(n));
    let (lo, mid, hi) = s.rtt_us.unwrap_or_default();
    let replies = if s.rtt_us.is_some() {
        s.replies.max(1)
    } else {
        0
    };
    Snapshot {
        iface: IFACES[usize::from(s.iface) % IFACES.len()].to_string(),
        state: STATES[usize::from(s.state) % STATES.len()],
        since: s.since,
        stats: Stats {
            rounds: s.rounds,
            good_rounds: s.good_rounds.min(s.rounds),
            replies,
            lost: s.lost,
            foreign: s.foreign,
            rtt_min: s.rtt_us.map(|_| us(lo)),
            rtt_max: s.rtt_us.map(|_| us(hi)),
            rtt_sum: us(mid) * 8,
            icmp_errors: s.icmp_errors,
            ..Stats::default()
        },
        heals: s.heals,
        last_heal: s.last_heal.map(|(ok, at)| LastHeal { ok, at }),
        machine: MachineStatus::default(),
        own_targets: s
            .own
            .iter()
            .take(3)
            .map(|&(v6, i)| match v6 {
                true => IpAddr::from([0x2001, 0xdb8, 0, 0, 0, 0, 0, u16::from(i)]),
                false => IpAddr::from([198, 51, 100, i]),
            })
            .collect(),
        lanes: {
            let mut lanes: Vec<LaneStatus> = Vec::new();
            for &(v6, layer, state) in &s.lanes {
                let family = if v6 { Family::V6 } else { Family::V4 };
                if lanes.iter().all(|l| l.family != family) {
                    lanes.push(LaneStatus {
                        family,
                        layer: Layer::ALL[usize::from(layer) % Layer::ALL.len()],
                        state: STATES[usize::from(state) % STATES.len()],
                    });
                }
            }
            lanes
        },
        targets: s
            .targets
            .iter()
            .take(4)
            .map(|&(kind, b, answered, lost, rtt)| TargetStatus {
                target: match kind % 4 {
                    0 => "gateway".to_string(),
                    1 => format!("198.51.100.{b}"),
                    2 => format!("tcp:203.0.113.{b}:443"),
                    _ => format!("dns:[2001:db8::{b:x}]"),
                },
                answered,
                lost,
                rtt: rtt.map(us),
            })
            .collect(),
    }
}

/// The lines of `--status`'s output for these rows: a title, a header and a line per
/// interface; then, when any interface lists targets (`target.0`, `target.1`, ... in a row), a
/// blank line, a header and a line per target.
fn table_lines(rows: &[Vec<(String, String)>]) -> usize {
    let targets: usize = rows
        .iter()
        .map(|r| {
            (0..)
                .take_while(|i| r.iter().any(|(k, _)| *k == format!("target.{i}")))
                .count()
        })
        .sum();
    2 + rows.len() + if targets > 0 { 2 + targets } else { 0 }
}

fuzz_target!(|i: Input| {
    let now = i64::from(i.now);
    let rows = parse_status(&i.text);
    let lines = i
        .text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .count();
    assert_eq!(rows.len(), lines);
    for (k, v) in rows.iter().flatten() {
        assert!(!k.contains(char::is_whitespace) && !k.contains('='));
        assert!(!v.contains(char::is_whitespace));
    }
    let table = pretty_status(&i.text, now);
    assert_eq!(table.lines().count(), table_lines(&rows), "{table}");
    let _ = status_pid(&i.text);

    let snaps: Vec<Snapshot> = i.snaps.iter().take(4).map(snapshot).collect();
    let text = status_text(&snaps, 4242, now);
    assert_eq!(status_pid(&text), Some(4242));
    let rows = parse_status(&text);
    assert_eq!(rows.len(), snaps.len());
    for (row, s) in rows.iter().zip(&snaps) {
        let get = |k: &str| {
            row.iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(get("iface"), Some(s.iface.as_str()));
        assert_eq!(get("state"), Some(s.state.to_string().as_str()));
        assert_eq!(get("since"), Some(s.since.to_string().as_str()));
        assert_eq!(get("rounds"), Some(s.stats.rounds.to_string().as_str()));
        let failed = s.stats.rounds - s.stats.good_rounds;
        assert_eq!(get("failed_rounds"), Some(failed.to_string().as_str()));
        assert_eq!(get("lost"), Some(s.stats.lost.to_string().as_str()));
        assert_eq!(get("heals"), Some(s.heals.to_string().as_str()));
        let icmp = s.stats.icmp_errors.to_string();
        assert_eq!(get("icmp_errors"), Some(icmp.as_str()));
        let own: Vec<String> = s.own_targets.iter().map(ToString::to_string).collect();
        let own = (!own.is_empty()).then(|| own.join(","));
        assert_eq!(get("own_address_targets"), own.as_deref());
        for l in &s.lanes {
            let f = if l.family == Family::V6 { "ipv6" } else { "ipv4" };
            assert_eq!(get(&format!("layer_{f}")), Some(l.layer.name()));
            let state = l.state.to_string();
            assert_eq!(get(&format!("state_{f}")), Some(state.as_str()));
        }
        assert_eq!(get("layer").is_some(), !s.lanes.is_empty());
        for (k, t) in s.targets.iter().enumerate() {
            assert_eq!(get(&format!("target.{k}")), Some(t.target.as_str()));
            let answered = t.answered.to_string();
            assert_eq!(get(&format!("target.{k}.answered")), Some(answered.as_str()));
        }
        match s.last_heal {
            None => assert_eq!(get("last_heal"), Some("none")),
            Some(h) => {
                assert_eq!(get("last_heal"), Some(if h.ok { "ok" } else { "failed" }));
                assert_eq!(get("last_heal_at"), Some(h.at.to_string().as_str()));
            }
        }
    }
    let table = pretty_status(&text, now);
    assert_eq!(table.lines().count(), table_lines(&rows), "{table}");
});
