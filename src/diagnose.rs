//! Which layer fails, judged for one address family from what the kernel says about the
//! interface and what the round found, and what each layer's failure is allowed to do.
//!
//! The layers are checked bottom up and the first that fails is the diagnosis: a heal can fix
//! a missing address or a dead gateway, but not an upstream outage or a gateway that only
//! filters ICMP, and bouncing a healthy link for those makes things worse. Pure: facts in, a
//! layer out; the caller gathers the facts and acts on the `Act` the policy gives.
#![forbid(unsafe_code)]

use std::fmt;
use std::net::IpAddr;

use crate::wire::arp::Mac;

/// A layer of the path from this host to its targets, in diagnosis order. `Ok` is the verdict
/// when none fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Layer {
    /// The interface does not exist (gone, renamed, moved to another namespace).
    Absent,
    /// It is administratively down (IFF_UP clear).
    AdminDown,
    /// It is up but has no carrier (IFF_LOWER_UP clear: cable, peer or radio gone).
    NoCarrier,
    /// No address of this family (for IPv6: none besides link-local).
    NoAddress,
    /// No default route of this family through the interface.
    NoRoute,
    /// The gateway does not answer at layer 2 (ARP / neighbour discovery), or, where no
    /// layer-2 check is possible, not at all.
    GatewayDead,
    /// The gateway does not answer ICMP echo but answers at layer 2: a filter, not an outage.
    GatewaySilent,
    /// The gateway is alive, the far targets fail: the fault is beyond the link.
    Upstream,
    Ok,
}

impl Layer {
    /// Every layer, in diagnosis order, `Ok` last.
    pub const ALL: [Layer; 9] = [
        Layer::Absent,
        Layer::AdminDown,
        Layer::NoCarrier,
        Layer::NoAddress,
        Layer::NoRoute,
        Layer::GatewayDead,
        Layer::GatewaySilent,
        Layer::Upstream,
        Layer::Ok,
    ];

    /// Every layer that can fail, in diagnosis order.
    pub const FAILING: [Layer; 8] = [
        Layer::Absent,
        Layer::AdminDown,
        Layer::NoCarrier,
        Layer::NoAddress,
        Layer::NoRoute,
        Layer::GatewayDead,
        Layer::GatewaySilent,
        Layer::Upstream,
    ];

    /// The name used in logs, hook environments, the status file, metrics and the config.
    pub fn name(self) -> &'static str {
        match self {
            Layer::Absent => "absent",
            Layer::AdminDown => "admin-down",
            Layer::NoCarrier => "no-carrier",
            Layer::NoAddress => "no-address",
            Layer::NoRoute => "no-route",
            Layer::GatewayDead => "gateway-dead",
            Layer::GatewaySilent => "gateway-silent",
            Layer::Upstream => "upstream",
            Layer::Ok => "ok",
        }
    }

    pub fn from_name(s: &str) -> Option<Layer> {
        Layer::ALL.into_iter().find(|l| l.name() == s)
    }

    /// The layers below the address family: a failure there fails every family.
    pub fn is_link(self) -> bool {
        matches!(self, Layer::Absent | Layer::AdminDown | Layer::NoCarrier)
    }

    /// The config key that sets this layer's action (`on-no-carrier`); None for `Ok`.
    pub fn key(self) -> Option<&'static str> {
        Some(match self {
            Layer::Absent => "on-absent",
            Layer::AdminDown => "on-admin-down",
            Layer::NoCarrier => "on-no-carrier",
            Layer::NoAddress => "on-no-address",
            Layer::NoRoute => "on-no-route",
            Layer::GatewayDead => "on-gateway-dead",
            Layer::GatewaySilent => "on-gateway-silent",
            Layer::Upstream => "on-upstream",
            Layer::Ok => return None,
        })
    }
}

impl fmt::Display for Layer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The gateway's liveness at layer 2 in this round.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum L2 {
    /// Not checked: no gateway, no layer 2 (ppp, tun), or no way to ask (datagram mode).
    #[default]
    Unknown,
    /// It answered ARP / neighbour solicitation (or the kernel confirmed it) this round.
    Alive,
    /// Asked, no answer within the round.
    Dead,
    /// It answered ARP, but from another MAC (`answer`) than this host's neighbour entry
    /// for it holds (`entry`): every packet of ours goes to `entry`, so for this host the
    /// gateway is as dead as with no answer, and the fault is local (a stale or bogus
    /// entry, which a link bounce or ifup flushes). Judged as `Dead`.
    Stale { answer: Mac, entry: Mac },
}

/// What a failure of a layer is allowed to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Act {
    /// An outage: the heal ladder runs.
    Heal,
    /// An outage: state, log and hooks, but no heal step.
    Report,
    /// Not an outage: the round counts as good (warned once).
    Ignore,
    /// Set the interface administratively up at once (admin-down only).
    LinkUp,
}

impl Act {
    pub fn name(self) -> &'static str {
        match self {
            Act::Heal => "heal",
            Act::Report => "report",
            Act::Ignore => "ignore",
            Act::LinkUp => "link-up",
        }
    }

    /// Whether a round failing at a layer with this action is a failed round.
    pub fn is_outage(self) -> bool {
        self != Act::Ignore
    }
}

impl fmt::Display for Act {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The action per failing layer (`on-LAYER` keys).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    acts: [Act; 8],
}

impl Default for Policy {
    /// What a careful admin would choose: fix what a heal can fix, never bounce a link for a
    /// fault beyond it, and take a gateway that only filters ICMP for what it is.
    fn default() -> Self {
        Policy {
            acts: [
                Act::Heal,   // absent: ifup-style steps may re-create it
                Act::LinkUp, // admin-down
                Act::Heal,   // no-carrier, after carrier-wait
                Act::Heal,   // no-address
                Act::Heal,   // no-route
                Act::Heal,   // gateway-dead
                Act::Ignore, // gateway-silent
                Act::Report, // upstream
            ],
        }
    }
}

impl Policy {
    /// The action for a failing layer; `Ok` is never acted on (`Ignore`).
    pub fn act(&self, layer: Layer) -> Act {
        Layer::FAILING
            .iter()
            .position(|&l| l == layer)
            .map_or(Act::Ignore, |i| self.acts[i])
    }

    /// Sets a layer's action from its config value.
    pub fn set(&mut self, layer: Layer, value: &str) -> Result<(), String> {
        let act = match value {
            "heal" => Act::Heal,
            "report" => Act::Report,
            "ignore" => Act::Ignore,
            "link-up" if layer == Layer::AdminDown => Act::LinkUp,
            "link-up" => return Err("link-up is only for on-admin-down".into()),
            _ if layer == Layer::AdminDown => {
                return Err("expected link-up, heal, report or ignore".into())
            }
            _ => return Err("expected heal, report or ignore".into()),
        };
        if let Some(i) = Layer::FAILING.iter().position(|&l| l == layer) {
            self.acts[i] = act;
        }
        Ok(())
    }

    /// Every layer's key and action, in diagnosis order (for --check).
    pub fn rows(&self) -> impl Iterator<Item = (&'static str, Act)> + '_ {
        Layer::FAILING
            .iter()
            .zip(self.acts)
            .filter_map(|(l, a)| l.key().map(|k| (k, a)))
    }
}

/// What the kernel says about the link (the same for every family).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Link {
    pub present: bool,
    pub admin_up: bool,
    pub carrier: bool,
}

/// What one family's round found, with the kernel's facts for that family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Evidence {
    /// An address of this family on the interface (IPv6: other than link-local).
    pub address: bool,
    /// A default route of this family through the interface.
    pub route: bool,
    /// That route's gateway, if it has one (point-to-point links have none).
    pub gateway: Option<IpAddr>,
    /// Whether the gateway answered echo this round; None when it was not an echo target.
    pub gateway_echo: Option<bool>,
    pub l2: L2,
    /// Targets that answered this round (the gateway among them if it did), and how many
    /// must answer.
    pub answered: usize,
    pub quorum: usize,
    /// Targets probed this round (the gateway among them if it is one).
    pub targets: usize,
}

/// The failing layer of one family, or `Ok`.
///
/// A round whose quorum answered is `Ok` whatever else is true: the path works. Otherwise
/// the link's layers come first, then the family's address and route, then the gateway:
/// dead at layer 2 (or, with no layer-2 check, silent to echo as well) is a local fault;
/// alive but silent to echo is a filter, and the path is judged by layer 2 and the other
/// targets (CONTRACT10): a filter if they make the quorum among themselves (capped at how
/// many they are) or there are none, upstream if they fail; alive while targets beyond it
/// fail is upstream.
pub fn diagnose(link: &Link, ev: &Evidence) -> Layer {
    if ev.answered >= ev.quorum {
        return Layer::Ok;
    }
    if !link.present {
        return Layer::Absent;
    }
    if !link.admin_up {
        return Layer::AdminDown;
    }
    if !link.carrier {
        return Layer::NoCarrier;
    }
    if !ev.address {
        return Layer::NoAddress;
    }
    if !ev.route {
        return Layer::NoRoute;
    }
    let echo_answered = ev.gateway_echo == Some(true);
    let alive = echo_answered || ev.l2 == L2::Alive;
    if !alive {
        return Layer::GatewayDead;
    }
    // The gateway lives. If it was an echo target that kept silent, layer 2 speaks for it
    // and the other targets judge the path beyond it: a filter if they make the quorum
    // among themselves (or there are none), else upstream too.
    let silent = ev.gateway_echo == Some(false);
    let others = ev.targets.saturating_sub(1);
    if silent && (others == 0 || ev.answered >= ev.quorum.min(others)) {
        Layer::GatewaySilent
    } else {
        Layer::Upstream
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const UP: Link = Link {
        present: true,
        admin_up: true,
        carrier: true,
    };

    fn gw() -> Option<IpAddr> {
        Some("198.51.100.1".parse().unwrap())
    }

    /// A family with address, route and gateway, whose round had `answered` of `quorum`.
    fn ev(answered: usize, quorum: usize) -> Evidence {
        Evidence {
            targets: quorum,
            address: true,
            route: true,
            gateway: gw(),
            gateway_echo: None,
            l2: L2::Unknown,
            answered,
            quorum,
        }
    }

    #[test]
    fn a_round_that_made_its_quorum_is_ok_whatever_the_kernel_says() {
        let broken = Link::default();
        assert_eq!(diagnose(&broken, &ev(1, 1)), Layer::Ok);
        let e = Evidence {
            route: false,
            ..ev(2, 2)
        };
        assert_eq!(diagnose(&UP, &e), Layer::Ok);
    }

    #[test]
    fn the_lowest_failing_layer_wins() {
        let e = Evidence {
            address: false,
            route: false,
            ..ev(0, 1)
        };
        let cases = [
            (Link::default(), Layer::Absent),
            (
                Link {
                    present: true,
                    ..Link::default()
                },
                Layer::AdminDown,
            ),
            (
                Link {
                    carrier: false,
                    ..UP
                },
                Layer::NoCarrier,
            ),
            (UP, Layer::NoAddress),
        ];
        for (link, want) in cases {
            assert_eq!(diagnose(&link, &e), want, "{link:?}");
        }
        let e = Evidence {
            route: false,
            ..ev(0, 1)
        };
        assert_eq!(diagnose(&UP, &e), Layer::NoRoute);
    }

    #[test]
    fn a_gateway_dead_at_layer_2_is_a_local_fault() {
        let e = Evidence {
            l2: L2::Dead,
            gateway_echo: Some(false),
            ..ev(0, 1)
        };
        assert_eq!(diagnose(&UP, &e), Layer::GatewayDead);
        // No layer-2 check and no echo answer: nothing says it lives.
        assert_eq!(diagnose(&UP, &ev(0, 1)), Layer::GatewayDead);
    }

    #[test]
    fn a_gateway_answering_arp_from_another_mac_than_our_entry_is_a_local_fault() {
        let stale = L2::Stale {
            answer: Mac([0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff]),
            entry: Mac([2, 0, 0, 0, 0, 1]),
        };
        // gateway the only target (as Alive it would be gateway-silent, ignored), or far
        // targets behind it (as Alive: upstream, report only): both a heal's business.
        for e in [
            Evidence {
                l2: stale,
                gateway_echo: Some(false),
                ..ev(0, 1)
            },
            Evidence {
                l2: stale,
                ..ev(0, 2)
            },
        ] {
            assert_eq!(diagnose(&UP, &e), Layer::GatewayDead, "{e:?}");
        }
    }

    #[test]
    fn a_gateway_silent_to_echo_but_alive_at_layer_2_is_a_filter() {
        // targets = gateway: it alone misses the quorum.
        let e = Evidence {
            l2: L2::Alive,
            gateway_echo: Some(false),
            ..ev(0, 1)
        };
        assert_eq!(diagnose(&UP, &e), Layer::GatewaySilent);
        // gateway + one far target answering, quorum 2.
        let e = Evidence {
            l2: L2::Alive,
            gateway_echo: Some(false),
            ..ev(1, 2)
        };
        assert_eq!(diagnose(&UP, &e), Layer::GatewaySilent);
    }

    #[test]
    fn far_targets_failing_behind_a_live_gateway_is_upstream() {
        // The gateway answers echo, the far ones do not (quorum 2 of gateway + 2 far).
        let e = Evidence {
            gateway_echo: Some(true),
            ..ev(1, 2)
        };
        assert_eq!(diagnose(&UP, &e), Layer::Upstream);
        // The gateway is not a target; ARP says it lives.
        let e = Evidence {
            l2: L2::Alive,
            ..ev(0, 1)
        };
        assert_eq!(diagnose(&UP, &e), Layer::Upstream);
        // Gateway and one far target, quorum 1: the far one fails behind a gateway that
        // only filters: judged by it, upstream (counting the gateway as answered would call
        // it a filter, and a dead far side would never be seen).
        let e = Evidence {
            l2: L2::Alive,
            gateway_echo: Some(false),
            targets: 2,
            ..ev(0, 1)
        };
        assert_eq!(diagnose(&UP, &e), Layer::Upstream);
        let e = Evidence {
            l2: L2::Alive,
            gateway_echo: Some(false),
            targets: 2,
            ..ev(1, 1)
        };
        assert_eq!(
            diagnose(&UP, &e),
            Layer::Ok,
            "the far one answered: quorum 1 met"
        );
        // Gateway and two far targets, quorum 2: both far ones answer: a filter.
        let e = Evidence {
            l2: L2::Alive,
            gateway_echo: Some(false),
            targets: 3,
            ..ev(2, 2)
        };
        assert_eq!(diagnose(&UP, &e), Layer::Ok);
        // Quorum 3 of gateway + two far: they answer, the gateway filters.
        let e = Evidence {
            l2: L2::Alive,
            gateway_echo: Some(false),
            targets: 3,
            ..ev(2, 3)
        };
        assert_eq!(diagnose(&UP, &e), Layer::GatewaySilent);
        // Silent gateway and silent far targets: more than the filter is missing.
        let e = Evidence {
            l2: L2::Alive,
            gateway_echo: Some(false),
            ..ev(0, 2)
        };
        assert_eq!(diagnose(&UP, &e), Layer::Upstream);
    }

    #[test]
    fn default_policy_heals_only_what_a_heal_can_fix() {
        let p = Policy::default();
        assert_eq!(p.act(Layer::AdminDown), Act::LinkUp);
        assert_eq!(p.act(Layer::GatewaySilent), Act::Ignore);
        assert_eq!(p.act(Layer::Upstream), Act::Report);
        assert_eq!(p.act(Layer::Ok), Act::Ignore);
        for l in [
            Layer::Absent,
            Layer::NoCarrier,
            Layer::NoAddress,
            Layer::NoRoute,
            Layer::GatewayDead,
        ] {
            assert_eq!(p.act(l), Act::Heal, "{l}");
        }
        assert!(!Act::Ignore.is_outage() && Act::Report.is_outage());
    }

    #[test]
    fn policy_values_are_checked_per_layer() {
        let mut p = Policy::default();
        assert_eq!(p.set(Layer::Upstream, "heal"), Ok(()));
        assert_eq!(p.act(Layer::Upstream), Act::Heal);
        assert_eq!(p.set(Layer::AdminDown, "report"), Ok(()));
        assert_eq!(p.act(Layer::AdminDown), Act::Report);
        assert_eq!(
            p.set(Layer::NoRoute, "link-up"),
            Err("link-up is only for on-admin-down".into())
        );
        assert_eq!(
            p.set(Layer::NoRoute, "bounce"),
            Err("expected heal, report or ignore".into())
        );
        assert_eq!(
            p.set(Layer::AdminDown, "bounce"),
            Err("expected link-up, heal, report or ignore".into())
        );
        assert_eq!(
            p.act(Layer::NoRoute),
            Act::Heal,
            "a refused value changes nothing"
        );
    }

    #[test]
    fn names_and_keys_round_trip() {
        assert_eq!(Layer::ALL[..8], Layer::FAILING);
        for l in Layer::ALL {
            assert_eq!(Layer::from_name(l.name()), Some(l));
            assert_eq!(l.key().is_none(), l == Layer::Ok);
            if let Some(k) = l.key() {
                assert_eq!(k, format!("on-{}", l.name()));
            }
        }
        assert_eq!(Layer::from_name("down"), None);
        assert_eq!(Policy::default().rows().count(), 8);
    }
}
