//! One address family's lane of a watched interface: its own prober (only that family's
//! targets, quorum capped at how many it has) and its own decider (hysteresis, ladder,
//! backoff), so an IPv6-only outage is not an IPv4 outage and the reverse (CONTRACT10). What
//! the lanes share (heal runner, hooks, gate, sockets, the kernel's view) stays in `Uplink`;
//! the interface's state is the worst lane state. Pure bookkeeping: no I/O, no clock.
#![forbid(unsafe_code)]

use std::net::IpAddr;
use std::time::Duration;

use crate::config::{IfaceConfig, Target, MAX_TARGETS};
use crate::decide::{Decider, Policy, State};
use crate::diagnose::{Evidence, Layer, Link, L2};
use crate::mono::Instant;
use crate::probe::{Counters, Prober, Slot, Stats};
use crate::wire::Family;

/// The name of a family in logs, labels, status keys and NETHEAL_FAMILY.
pub fn family_name(f: Family) -> &'static str {
    match f {
        Family::V4 => "ipv4",
        Family::V6 => "ipv6",
    }
}

#[derive(Debug)]
pub(super) struct Lane {
    pub family: Family,
    pub prober: Prober,
    pub decider: Decider,
    /// For a reset (a lane left without targets starts afresh when it gets one again).
    policy: Policy,
    seed: u64,
    /// For each slot of the current (or last) round: the index of its configured target.
    pub slot_targets: Vec<usize>,
    /// Judged: its last round had at least one target. A lane without targets (the `gateway`
    /// target resolved to the other family, and none of its own) is left out of the
    /// interface's state.
    pub active: bool,
    /// `--once`: this lane's verdict, once its round has ended (or it had no targets).
    pub once: Option<bool>,
    /// What the last round's diagnosis was made of.
    pub evidence: Option<(Link, Evidence)>,
    /// The gateway-silent warning was given (once per lane until the layer changes).
    pub silent_warned: bool,
    /// The round's targets as last planned (`slot_targets` beside them).
    pub plan: Plan,
}

/// A lane's round as last planned: its addresses in slot order, the slots that are this
/// host's own addresses and those probed as `tcp:`/`dns:`, and what it was planned from (the gateway the `gateway` target
/// resolved to, when this host's addresses were read).
#[derive(Debug, Default)]
pub(super) struct Plan {
    pub from: Option<(Option<IpAddr>, Option<Instant>)>,
    pub addrs: [Option<IpAddr>; MAX_TARGETS],
    pub own: Vec<usize>,
    pub streams: Vec<usize>,
}

impl Lane {
    pub fn new(family: Family, prober: Prober, policy: Policy, now: Instant, seed: u64) -> Lane {
        Lane {
            family,
            prober,
            decider: Decider::new(policy.clone(), now, seed),
            policy,
            seed,
            slot_targets: Vec::new(),
            active: true,
            once: None,
            evidence: None,
            silent_warned: false,
            plan: Plan::default(),
        }
    }

    /// The layer the last round's diagnosis found (`ok` for a good round).
    pub fn layer(&self) -> Layer {
        self.decider.layer()
    }

    pub fn state(&self) -> State {
        self.decider.state()
    }

    /// The decider's policy for `family`'s lane of `cfg`.
    pub fn settings(cfg: &IfaceConfig, family: Family) -> Policy {
        Policy {
            layers: cfg.layers,
            carrier_wait: cfg.carrier_wait,
            family: family_name(family),
            interval: cfg.interval,
            timeout: cfg.timeout,
            fail_after: cfg.fail_after,
            up_after: cfg.up_after,
            steps: cfg.heal.len(),
            backoff_min: cfg.backoff_min,
            backoff_max: cfg.backoff_max,
        }
    }

    /// Parked (`idle`), and nothing asked of it since: a turn has nothing to run for it.
    pub fn resting(&self) -> bool {
        !self.active && self.decider.parked() && !self.decider.has_actions()
    }

    pub fn name(&self) -> &'static str {
        family_name(self.family)
    }

    /// The lane has no target this round: it is not judged. A lane that was judged starts
    /// afresh (`starting`), so an outage it was in cannot heal on its backoff meanwhile. It
    /// is parked: its next round comes when the kernel's facts change (`Uplink::turn` wakes
    /// it), which is the only way it can get a target.
    pub fn idle(&mut self, now: Instant) {
        if self.active || self.decider.state() != State::Starting {
            self.decider = Decider::new(self.policy.clone(), now, self.seed);
        }
        self.active = false;
        self.decider.park();
    }
}

/// The addresses of `family`'s lane for this round: (configured target index, address).
/// Explicit targets of the family, and `gateway` when it belongs to this family: the family
/// of the gateway it resolves to (IPv4 first, as before lanes), or while it resolves to
/// none, `gateway_home` (the first family with a socket), where it counts as unknown.
/// An iterator, so that a round collects them without allocating (issue 9).
pub(super) fn lane_targets_iter(
    targets: &[Target],
    family: Family,
    gateway: Option<IpAddr>,
    gateway_home: Family,
) -> impl Iterator<Item = (usize, Option<IpAddr>)> + '_ {
    let gw_family = gateway.map_or(gateway_home, Family::of);
    targets
        .iter()
        .enumerate()
        .filter_map(move |(i, t)| match t {
            Target::Gateway if gw_family == family => Some((i, gateway)),
            Target::Gateway => None,
            Target::Addr(a) if Family::of(*a) == family => Some((i, Some(*a))),
            Target::Tcp(s) | Target::Dns(s) if Family::of(s.ip()) == family => {
                Some((i, Some(s.ip())))
            }
            Target::Addr(_) | Target::Tcp(_) | Target::Dns(_) => None,
        })
}

/// `lane_targets_iter`, collected.
#[cfg(test)]
pub(super) fn lane_targets(
    targets: &[Target],
    family: Family,
    gateway: Option<IpAddr>,
    gateway_home: Family,
) -> Vec<(usize, Option<IpAddr>)> {
    lane_targets_iter(targets, family, gateway, gateway_home).collect()
}

/// What the kernel says about the interface, as the lanes' diagnosis needs it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct KernelView {
    pub link: Link,
    /// Per family: an address (IPv6: other than link-local), a default route through it,
    /// and that route's gateway.
    pub address: [bool; 2],
    pub route: [bool; 2],
    pub gateway: [Option<IpAddr>; 2],
}

/// Whether `gateway` answered echo this round; None when it was not an echo target (a
/// `tcp:` or `dns:` target at its address says nothing about whether it answers ICMP).
#[inline]
pub(super) fn gateway_echo(slots: &[Slot], gateway: Option<IpAddr>) -> Option<bool> {
    let g = gateway?;
    slots
        .iter()
        .find(|s| s.addr == Some(g) && !s.is_stream())
        .map(|s| s.rtt.is_some())
}

/// The facts of `family`'s round for `diagnose`: the kernel's view, and from the round's
/// slots how many answered and whether the gateway (when it was a target) did.
pub(super) fn evidence(
    kv: &KernelView,
    family: Family,
    slots: &[Slot],
    quorum: usize,
    l2: L2,
) -> Evidence {
    let f = family as usize;
    let gateway = kv.gateway[f];
    let gateway_echo = gateway_echo(slots, gateway);
    Evidence {
        address: kv.address[f],
        route: kv.route[f],
        gateway,
        gateway_echo,
        l2,
        answered: slots.iter().filter(|s| s.rtt.is_some()).count(),
        quorum,
        targets: slots.len(),
    }
}

/// Whether a failure at `layer` was judged from the targets' silence, where a target that
/// never answered is no evidence. The kernel's own facts (absent .. no-route) and a gateway
/// that did not answer our ARP / neighbour solicitation (`l2` dead), or answered it from
/// another MAC than our neighbour entry's (`l2` stale), are evidence by themselves.
pub(super) fn judged_by_targets(layer: Layer, l2: L2) -> bool {
    match layer {
        Layer::GatewayDead => !matches!(l2, L2::Dead | L2::Stale { .. }),
        Layer::GatewaySilent | Layer::Upstream => true,
        _ => false,
    }
}

/// Whether a failed round's failure rests on targets that are not armed (have never
/// answered since start, before `arm-after`): judged by the armed targets alone (and those
/// that answered), the round would have made its quorum, capped at how many they are. With
/// no armed target at all, nothing is evidence. `armed(t)`: configured target `t` is armed.
pub(super) fn unarmed_failure(
    slots: &[Slot],
    slot_targets: &[usize],
    quorum: usize,
    armed: impl Fn(usize) -> bool,
) -> bool {
    let answered = slots.iter().filter(|s| s.rtt.is_some()).count();
    let counted = slots
        .iter()
        .zip(slot_targets)
        .filter(|(s, &t)| s.rtt.is_some() || (s.addr.is_some() && !s.own && armed(t)))
        .count();
    answered >= quorum.min(counted)
}

/// The interface's state: the worst of its judged lanes (`starting` while none is judged).
pub(super) fn worst<'a>(lanes: impl IntoIterator<Item = &'a Lane>) -> State {
    lanes
        .into_iter()
        .filter(|l| l.active)
        .map(|l| l.decider.state())
        .max_by_key(|s| s.badness())
        .unwrap_or(State::Starting)
}

/// The counters of two lanes together, for the interface's status line and file.
pub(super) fn merged(a: &Stats, b: &Counters) -> Stats {
    let b = &Stats::from(b);
    let opt =
        |x: Option<Duration>, y: Option<Duration>, f: fn(Duration, Duration) -> Duration| match (
            x, y,
        ) {
            (Some(x), Some(y)) => Some(f(x, y)),
            (x, y) => x.or(y),
        };
    Stats {
        rounds: a.rounds.saturating_add(b.rounds),
        good_rounds: a.good_rounds.saturating_add(b.good_rounds),
        sent: a.sent.saturating_add(b.sent),
        send_errors: a.send_errors.saturating_add(b.send_errors),
        replies: a.replies.saturating_add(b.replies),
        lost: a.lost.saturating_add(b.lost),
        foreign: a.foreign.saturating_add(b.foreign),
        late: a.late.saturating_add(b.late),
        icmp_errors: a.icmp_errors.saturating_add(b.icmp_errors),
        rtt_min: opt(a.rtt_min, b.rtt_min, Duration::min),
        rtt_max: opt(a.rtt_max, b.rtt_max, Duration::max),
        rtt_sum: a.rtt_sum.saturating_add(b.rtt_sum),
    }
}

/// One configured target's evidence since start (for the status file and metrics).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TargetStats {
    /// Rounds in which it answered.
    pub answered: u64,
    /// Rounds in which it was probed and did not answer.
    pub lost: u64,
    /// The round-trip time of its last answer.
    pub rtt: Option<Duration>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::KEY_LEN;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn lane(family: Family, now: Instant) -> Lane {
        let policy = Policy {
            interval: Duration::from_secs(10),
            timeout: Duration::from_secs(2),
            fail_after: 3,
            up_after: 1,
            steps: 1,
            backoff_min: Duration::from_secs(30),
            backoff_max: Duration::from_secs(900),
            layers: crate::diagnose::Policy::default(),
            carrier_wait: Duration::from_secs(30),
            family: "ipv4",
        };
        let prober = Prober::new(1, policy.timeout, 1, 7, [0; KEY_LEN]);
        Lane::new(family, prober, policy, now, 1)
    }

    #[test]
    fn each_family_gets_its_own_targets_and_the_gateway_goes_where_it_resolves() {
        let t = vec![
            Target::Gateway,
            Target::Addr(ip("203.0.113.10")),
            Target::Addr(ip("2001:db8::10")),
        ];
        let gw4 = Some(ip("198.51.100.1"));
        assert_eq!(
            lane_targets(&t, Family::V4, gw4, Family::V4),
            vec![(0, gw4), (1, Some(ip("203.0.113.10")))]
        );
        assert_eq!(
            lane_targets(&t, Family::V6, gw4, Family::V4),
            vec![(2, Some(ip("2001:db8::10")))]
        );
        let gw6 = Some(ip("2001:db8::1"));
        assert_eq!(lane_targets(&t, Family::V4, gw6, Family::V4).len(), 1);
        assert_eq!(lane_targets(&t, Family::V6, gw6, Family::V4)[0], (0, gw6));
        // Unresolved: unknown, in its home family's lane (the round fails there).
        assert_eq!(lane_targets(&t, Family::V4, None, Family::V4)[0], (0, None));
        assert_eq!(lane_targets(&t, Family::V6, None, Family::V4).len(), 1);
    }

    #[test]
    fn stream_targets_go_to_their_address_family_and_are_no_gateway_echo() {
        let sa = |s: &str| s.parse::<std::net::SocketAddr>().unwrap();
        let t = vec![
            Target::Tcp(sa("198.51.100.1:443")),
            Target::Dns(sa("[2001:db8::53]:53")),
            Target::Gateway,
        ];
        let gw4 = Some(ip("198.51.100.1"));
        assert_eq!(
            lane_targets(&t, Family::V4, gw4, Family::V4),
            vec![(0, gw4), (2, gw4)]
        );
        assert_eq!(
            lane_targets(&t, Family::V6, gw4, Family::V4),
            vec![(1, Some(ip("2001:db8::53")))]
        );
        // A round where `tcp:` to the gateway's address answered and the echo did not: the
        // gateway did not answer echo, whatever its TCP port said.
        let now = Instant::now();
        let mut l = lane(Family::V4, now);
        l.prober.start_round(now, [gw4, gw4]);
        l.prober.mark_stream(0);
        assert!(l.prober.poll_stream(now).is_some());
        l.prober.stream_answered(now, 0);
        let kv = KernelView {
            gateway: [gw4, None],
            ..KernelView::default()
        };
        let ev = evidence(&kv, Family::V4, l.prober.slots(), 1, L2::Unknown);
        assert_eq!((ev.gateway_echo, ev.answered), (Some(false), 1));
    }

    #[test]
    fn the_worst_judged_lane_speaks_for_the_interface() {
        let order = [
            State::Up,
            State::Starting,
            State::Suspect,
            State::Recovering,
            State::Down,
            State::Healing,
        ];
        assert!(order.windows(2).all(|w| w[0].badness() < w[1].badness()));
        let now = Instant::now();
        let mut a = lane(Family::V4, now);
        let mut b = lane(Family::V6, now);
        assert_eq!(worst([&a, &b]), State::Starting);
        b.idle(now);
        assert_eq!(worst([&a, &b]), State::Starting);
        a.active = false;
        assert_eq!(worst([&a, &b]), State::Starting, "nothing judged");
    }

    #[test]
    fn only_a_failure_judged_from_silent_targets_needs_them_armed() {
        for l in [
            Layer::Absent,
            Layer::AdminDown,
            Layer::NoCarrier,
            Layer::NoAddress,
            Layer::NoRoute,
        ] {
            assert!(
                !judged_by_targets(l, L2::Unknown),
                "{l}: the kernel says so"
            );
        }
        assert!(
            !judged_by_targets(Layer::GatewayDead, L2::Dead),
            "ARP said so"
        );
        let stale = L2::Stale {
            answer: crate::wire::arp::Mac([0xaa; 6]),
            entry: crate::wire::arp::Mac([2, 0, 0, 0, 0, 1]),
        };
        assert!(
            !judged_by_targets(Layer::GatewayDead, stale),
            "ARP and the neighbour entry said so"
        );
        assert!(
            judged_by_targets(Layer::GatewayDead, L2::Unknown),
            "only silence says so"
        );
        assert!(judged_by_targets(Layer::Upstream, L2::Alive));
    }

    #[test]
    fn an_unarmed_failure_is_judged_by_the_armed_targets_alone() {
        let t0 = Instant::now();
        let mut p = Prober::new(1, Duration::from_secs(1), 2, 7, [0; KEY_LEN]);
        p.start_round(t0, [Some(ip("198.51.100.1")), Some(ip("203.0.113.10"))]);
        let slots = p.slots().to_vec();
        // Neither answered; quorum 2.
        let none = |_: usize| false;
        let first = |t: usize| t == 0;
        let both = |_: usize| true;
        assert!(
            unarmed_failure(&slots, &[0, 1], 2, none),
            "nothing is evidence"
        );
        assert!(
            !unarmed_failure(&slots, &[0, 1], 2, first),
            "target 0 is, and failed"
        );
        assert!(!unarmed_failure(&slots, &[0, 1], 2, both));
        assert!(
            !unarmed_failure(&slots, &[0, 1], 1, first),
            "quorum 1: 0 alone decides"
        );
    }

    #[test]
    fn merged_counters_add_up_and_keep_the_extremes() {
        let ms = Duration::from_millis;
        let a = Stats {
            rounds: 3,
            replies: 2,
            rtt_min: Some(ms(2)),
            rtt_max: Some(ms(5)),
            rtt_sum: ms(7),
            ..Stats::default()
        };
        let mut b = Counters::default();
        b.rounds = 1;
        b.reply(1_000_000); // 1 ms
        let m = merged(&a, &b);
        assert_eq!((m.rounds, m.replies), (4, 3));
        assert_eq!((m.rtt_min, m.rtt_max), (Some(ms(1)), Some(ms(5))));
        assert_eq!(m.rtt_avg(), Some(ms(8) / 3));
        assert_eq!(merged(&a, &Counters::default()), a);
    }
}
