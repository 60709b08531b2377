//! Pure: what the glue says and hands on for what the decider and the prober decided: the
//! log level and the hook's state for a transition, the verbose round line, the on-change
//! hook's environment. No I/O and no clock; `Uplink` logs and spawns what these return.
#![forbid(unsafe_code)]

use std::fmt::Write as _;

use crate::config::Target;
use crate::decide::State;
use crate::diagnose::Layer;
use crate::log::Level;
use crate::probe::Slot;
use crate::report::family_name;
use crate::wire::Family;

/// The log level of a transition to `to`, and the state the on-change hook is told:
/// `recovered` for an `up` that ends an outage, else the new state.
pub(super) fn transition(from: State, to: State) -> (Level, String) {
    let level = match to {
        State::Down | State::Healing => Level::Warning,
        State::Up => Level::Notice,
        _ => Level::Info,
    };
    let outage = matches!(from, State::Down | State::Healing | State::Recovering);
    let hook_state = if to == State::Up && outage {
        "recovered".to_string()
    } else {
        to.to_string()
    };
    (level, hook_state)
}

/// The verbose line of round `round`: each target's address and what became of its echoes.
pub(super) fn round_line(round: u64, good: bool, slots: &[Slot], targets: &[Target]) -> String {
    let mut line = format!("round {round} {}: ", if good { "good" } else { "failed" });
    for (i, (slot, target)) in slots.iter().zip(targets).enumerate() {
        if i > 0 {
            line.push_str(", ");
        }
        // A stream target is named in full (`tcp:198.51.100.1:443`): the port matters.
        let a = slot.addr.map(|a| match target.is_stream() {
            true => target.to_string(),
            false => a.to_string(),
        });
        let _ = match (a, slot.rtt, slot.report) {
            (Some(a), Some(rtt), _) => write!(line, "{a} {:.3}ms", rtt.as_secs_f64() * 1e3),
            (Some(a), None, _) if slot.own => write!(line, "{a} own address (not counted)"),
            (Some(a), None, Some(r)) => write!(line, "{a} {r}"),
            (Some(a), None, None) if slot.send_failed() => write!(line, "{a} send failed"),
            (Some(a), None, None) if slot.stream_failed() => write!(line, "{a} failed"),
            (Some(a), None, None) => write!(line, "{a} lost"),
            (None, _, _) => write!(line, "{target} unknown"),
        };
    }
    line
}

/// The on-change hook's environment for one change. `family` (of the last pair): the lane whose change it is
/// (NETHEAL_FAMILY `ipv4`/`ipv6`; empty for a change of the whole interface, such as
/// degraded); `layer`: that lane's last diagnosis, or for the whole interface the worst
/// lane's (NETHEAL_LAYER `no-carrier`, ..., `ok`).
pub(super) fn hook_env(
    iface: &str,
    state: String,
    previous: String,
    reason: String,
    attempt: u32,
    degraded: Option<String>,
    (family, layer): (Option<Family>, Layer),
) -> Vec<(&'static str, String)> {
    vec![
        ("NETHEAL_IFACE", iface.to_string()),
        ("NETHEAL_STATE", state),
        ("NETHEAL_PREVIOUS", previous),
        ("NETHEAL_REASON", reason),
        ("NETHEAL_ATTEMPT", attempt.to_string()),
        ("NETHEAL_DEGRADED", degraded.unwrap_or_default()),
        ("NETHEAL_FAMILY", family.map_or("", family_name).to_string()),
        ("NETHEAL_LAYER", layer.to_string()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn up_after_an_outage_is_recovered_and_up_from_starting_is_up() {
        assert_eq!(
            transition(State::Recovering, State::Up),
            (Level::Notice, "recovered".to_string())
        );
        assert_eq!(transition(State::Healing, State::Up).1, "recovered");
        assert_eq!(transition(State::Down, State::Up).1, "recovered");
        assert_eq!(transition(State::Starting, State::Up).1, "up");
        assert_eq!(transition(State::Suspect, State::Up).1, "up");
    }

    #[test]
    fn going_down_or_healing_is_a_warning_suspect_is_info() {
        assert_eq!(transition(State::Suspect, State::Down).0, Level::Warning);
        assert_eq!(transition(State::Down, State::Healing).0, Level::Warning);
        assert_eq!(
            transition(State::Up, State::Suspect),
            (Level::Info, "suspect".to_string())
        );
    }

    #[test]
    fn an_unknown_target_is_named_by_its_configuration() {
        let mut p = crate::probe::Prober::new(1, std::time::Duration::from_secs(1), 1, 7, [0; 16]);
        p.start_round(crate::mono::Instant::now(), [None]);
        assert_eq!(
            round_line(7, false, p.slots(), &[Target::Gateway]),
            "round 7 failed: gateway unknown"
        );
    }

    #[test]
    fn the_hook_environment_names_every_field_and_an_empty_degraded() {
        let env = hook_env(
            "eth0",
            "down".into(),
            "suspect".into(),
            "r".into(),
            2,
            None,
            (None, Layer::Ok),
        );
        assert_eq!(env[0], ("NETHEAL_IFACE", "eth0".to_string()));
        assert_eq!(env[4], ("NETHEAL_ATTEMPT", "2".to_string()));
        assert_eq!(env[5], ("NETHEAL_DEGRADED", String::new()));
        assert_eq!(
            env[6],
            ("NETHEAL_FAMILY", String::new()),
            "the whole interface"
        );
        assert_eq!(env[7], ("NETHEAL_LAYER", "ok".to_string()));
    }

    #[test]
    fn the_hook_is_told_the_family_and_the_layer() {
        let env = hook_env(
            "eth0",
            "down".into(),
            "suspect".into(),
            "ipv6 upstream: 0/2 far targets answered, gateway fe80::1 alive".into(),
            0,
            None,
            (Some(Family::V6), Layer::Upstream),
        );
        let get = |k: &str| env.iter().find(|(n, _)| *n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("NETHEAL_FAMILY"), Some("ipv6"));
        assert_eq!(get("NETHEAL_LAYER"), Some("upstream"));
        let env = hook_env(
            "eth0",
            "up".into(),
            "down".into(),
            "r".into(),
            0,
            None,
            (Some(Family::V4), Layer::NoCarrier),
        );
        assert_eq!(env[6].1, "ipv4");
        assert_eq!(env[7].1, "no-carrier");
    }
}
