//! Pure: how netheal puts a diagnosis into words. The reason of a layer (state-change lines,
//! NETHEAL_REASON) and the `--once` table: one row per layer check, the link's rows once, the
//! family's rows per judged family, and a verdict row per family. Facts in, text out: nothing
//! here reads the kernel or the clock, and nothing here decides (diagnose.rs does).
#![forbid(unsafe_code)]

use std::fmt::Write as _;
use std::net::IpAddr;
use std::time::Duration;

use crate::config::human;
use crate::diagnose::{Act, Evidence, Layer, Link, L2};
use crate::kernel::Iface;
use crate::report::family_name;
use crate::wire::Family;

/// The kernel's facts the table and the diagnosis read, per family: copied from the netlink
/// cache whenever it reports a change, so that nothing is read when a round ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct KernelView {
    pub link: Link,
    pub index: Option<u32>,
    pub family: [FamilyView; 2],
}

/// One family's address and default route.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FamilyView {
    /// The first address that counts (IPv6: not link-local), with its prefix length.
    pub address: Option<(IpAddr, u8)>,
    pub route: bool,
    pub gateway: Option<IpAddr>,
    pub table: Option<u32>,
}

/// Scopes below RT_SCOPE_LINK (253, rtnetlink(7)): universe and site. A link-local IPv6
/// address reaches no gateway's far side.
const RT_SCOPE_LINK: u8 = 253;
/// The kernel's main routing table (RT_TABLE_MAIN).
const RT_TABLE_MAIN: u32 = 254;

impl KernelView {
    pub fn of(i: &Iface) -> KernelView {
        let family = |f: Family| {
            let route = i.default_route(f);
            FamilyView {
                address: i
                    .addresses()
                    .find(|a| Family::of(a.addr) == f && a.scope < RT_SCOPE_LINK)
                    .map(|a| (a.addr, a.prefix_len)),
                route: route.is_some(),
                gateway: route.and_then(|r| r.gateway),
                table: route.map(|r| r.table),
            }
        };
        KernelView {
            link: Link {
                present: i.present(),
                admin_up: i.admin_up,
                carrier: i.carrier,
            },
            index: i.index,
            family: [family(Family::V4), family(Family::V6)],
        }
    }
}

/// `main`, or the table's number.
pub fn table_name(t: u32) -> String {
    if t == RT_TABLE_MAIN {
        "main".into()
    } else {
        t.to_string()
    }
}

/// One target's part of the round, as the table shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    /// As configured (`gateway` shows the address it resolved to, when it did).
    pub target: String,
    pub rtt: Option<Duration>,
    /// Why it did not answer when that is more than silence: `host unreachable (type 3 code
    /// 1) from 198.51.100.1`, `send failed`, `own address (not counted)`, `unknown`.
    pub why: Option<String>,
}

/// What the table needs of one family's lane: the evidence diagnose() judged, its verdict and
/// the action the policy gives it, and the details that make each row readable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lane {
    pub family: Family,
    pub evidence: Evidence,
    pub layer: Layer,
    pub act: Act,
    /// The first address of the family, as `198.51.100.2/24`.
    pub address: Option<String>,
    /// The routing table of the default route (`main`, `100`).
    pub table: Option<String>,
    /// How long the gateway took to answer ARP/NDP, when it did and that was timed.
    pub l2_rtt: Option<Duration>,
    /// The round's timeout: how long a silent check waited.
    pub timeout: Duration,
    /// Every target of the lane, the gateway among them when it is one.
    pub targets: Vec<Probe>,
}

impl Lane {
    /// Not an outage: the path works, or its failing layer is ignored by the policy.
    pub fn good(&self) -> bool {
        self.layer == Layer::Ok || !self.act.is_outage()
    }
}

/// `--once` exits 0 only when every lane of every interface is good.
pub fn all_good<'a>(lanes: impl IntoIterator<Item = &'a Lane>) -> bool {
    lanes.into_iter().all(Lane::good)
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1e3)
}

fn l2_name(f: Family) -> &'static str {
    match f {
        Family::V4 => "ARP",
        Family::V6 => "NDP",
    }
}

/// The reason of a family's layer, as state-change lines and hooks give it after the family:
/// `ipv4 upstream: 0/2 far targets answered, gateway 198.51.100.1 alive`. `far` is the number
/// of the lane's targets that are not its gateway.
pub fn reason(family: Family, layer: Layer, ev: &Evidence, far: usize) -> String {
    let fam = family_name(family);
    let gw = ev
        .gateway
        .map_or_else(|| "the gateway".to_string(), |g| format!("gateway {g}"));
    let far_answered = ev
        .answered
        .saturating_sub(usize::from(ev.gateway_echo == Some(true)));
    let why = match layer {
        Layer::Absent => "interface not found".to_string(),
        Layer::AdminDown => "interface administratively down".to_string(),
        Layer::NoCarrier => "no carrier".to_string(),
        Layer::NoAddress if family == Family::V6 => "no global IPv6 address".to_string(),
        Layer::NoAddress => "no IPv4 address".to_string(),
        Layer::NoRoute => "no default route through the interface".to_string(),
        Layer::GatewayDead => match ev.l2 {
            L2::Dead => format!("{gw} does not answer {}", l2_name(family)),
            L2::Stale { answer, entry } => format!(
                "{gw} answers {} from {answer} but this host's neighbour entry says {entry} (stale)",
                l2_name(family)
            ),
            _ => format!("{gw} does not answer (no layer-2 check possible)"),
        },
        Layer::GatewaySilent => format!("{gw} silent to ICMP, alive at layer 2"),
        Layer::Upstream => {
            format!("{far_answered}/{far} far targets answered, {gw} alive")
        }
        Layer::Ok => format!("{}/{} targets answered (quorum)", ev.answered, ev.quorum),
    };
    format!("{fam} {layer}: {why}")
}

/// One row of the table.
type Row = [String; 5];

fn row(
    iface: &str,
    family: Option<Family>,
    layer: Option<Layer>,
    check: &str,
    result: String,
) -> Row {
    [
        iface.to_string(),
        family.map_or("-", family_name).to_string(),
        layer.map_or("-".to_string(), |l| l.to_string()),
        check.to_string(),
        result,
    ]
}

fn ok(detail: Option<String>) -> String {
    detail.map_or_else(|| "ok".to_string(), |d| format!("ok ({d})"))
}

fn fail(why: impl AsRef<str>) -> String {
    format!("FAIL ({})", why.as_ref())
}

/// A check that cannot be made, and why not.
fn na(why: &str) -> String {
    format!("- ({why})")
}

/// The rows of one interface: its link once, then each lane's checks and verdict.
pub fn rows(iface: &str, index: Option<u32>, link: &Link, lanes: &[Lane]) -> Vec<Row> {
    let mut out = vec![
        row(
            iface,
            None,
            Some(Layer::Absent),
            "interface present",
            if link.present {
                ok(index.map(|i| format!("index {i}")))
            } else {
                fail("no such interface")
            },
        ),
        row(
            iface,
            None,
            Some(Layer::AdminDown),
            "administratively up",
            match (link.present, link.admin_up) {
                (false, _) => "-".into(),
                (true, true) => ok(None),
                (true, false) => fail("link set down"),
            },
        ),
        row(
            iface,
            None,
            Some(Layer::NoCarrier),
            "carrier",
            match (link.present && link.admin_up, link.carrier) {
                (false, _) => "-".into(),
                (true, true) => ok(None),
                (true, false) => fail("no carrier"),
            },
        ),
    ];
    for lane in lanes {
        out.extend(lane_rows(iface, link, lane));
    }
    out
}

fn lane_rows(iface: &str, link: &Link, lane: &Lane) -> Vec<Row> {
    let f = Some(lane.family);
    let ev = &lane.evidence;
    let r = |layer: Layer, check: &str, result: String| row(iface, f, Some(layer), check, result);
    let mut out = Vec::new();
    if !link.present {
        // Nothing of the family can be read off an interface that is not there.
        for (layer, check) in [
            (Layer::NoAddress, "address"),
            (Layer::NoRoute, "default route"),
        ] {
            out.push(r(layer, check, "-".into()));
        }
    } else {
        out.push(r(
            Layer::NoAddress,
            "address",
            if ev.address {
                ok(lane.address.clone())
            } else if lane.family == Family::V6 {
                fail("none but link-local")
            } else {
                fail("none")
            },
        ));
        out.push(r(
            Layer::NoRoute,
            "default route",
            match (ev.route, ev.gateway) {
                (false, _) => fail(format!("none through {iface}")),
                (true, gw) => {
                    let via = gw.map_or("no gateway: point-to-point".to_string(), |g| {
                        format!("via {g}")
                    });
                    ok(Some(match &lane.table {
                        Some(t) => format!("{via}, table {t}"),
                        None => via,
                    }))
                }
            },
        ));
    }
    let l2 = format!("gateway answers {}", l2_name(lane.family));
    out.push(r(
        Layer::GatewayDead,
        &l2,
        match (ev.gateway, ev.l2) {
            (None, _) => "-".into(),
            (Some(_), L2::Alive) => ok(lane.l2_rtt.map(ms)),
            (Some(_), L2::Dead) => fail(format!("no answer in {}", human(lane.timeout))),
            (Some(_), L2::Stale { answer, entry }) => fail(format!(
                "answers from {answer}, this host's neighbour entry says {entry} (stale)"
            )),
            (Some(_), L2::Unknown) => na("not asked"),
        },
    ));
    out.push(r(
        Layer::GatewaySilent,
        "gateway answers ICMP",
        match ev.gateway_echo {
            None if ev.gateway.is_none() => "-".into(),
            None => na("not a target"),
            Some(true) => {
                let rtt = ev.gateway.and_then(|g| {
                    let g = g.to_string();
                    lane.targets
                        .iter()
                        .find(|p| p.target == g || p.target == "gateway")
                        .and_then(|p| p.rtt)
                });
                ok(rtt.map(ms))
            }
            Some(false) => fail(format!("no reply in {}", human(lane.timeout))),
        },
    ));
    let answered = lane.targets.iter().filter(|p| p.rtt.is_some()).count();
    let list: Vec<String> = lane
        .targets
        .iter()
        .map(|p| match (p.rtt, &p.why) {
            (Some(rtt), _) => format!("{} {}", p.target, ms(rtt)),
            (None, Some(why)) => format!("{} {why}", p.target),
            (None, None) => format!("{} lost", p.target),
        })
        .collect();
    let detail = format!("{answered}/{}: {}", lane.targets.len(), list.join(", "));
    out.push(r(
        Layer::Upstream,
        &format!("targets (quorum {})", ev.quorum),
        if ev.answered >= ev.quorum {
            ok(Some(detail))
        } else {
            fail(detail)
        },
    ));
    out.push(r(lane.layer, "verdict", verdict(lane)));
    out
}

/// The verdict of a lane: ok, ok because its layer is ignored, or FAIL with the reason and
/// what the policy does about it.
fn verdict(lane: &Lane) -> String {
    let far = lane
        .targets
        .iter()
        .filter(|p| {
            lane.evidence
                .gateway
                .is_none_or(|g| p.target != g.to_string() && p.target != "gateway")
        })
        .count();
    let why = reason(lane.family, lane.layer, &lane.evidence, far);
    // `ipv4 upstream: ...` -> `...`: the row names family and layer already.
    let why = why.split_once(": ").map_or(why.as_str(), |(_, w)| w);
    match (lane.layer, lane.act) {
        (Layer::Ok, _) => "ok".into(),
        (Layer::GatewaySilent, Act::Ignore) => ok(Some("gateway filters ICMP".into())),
        (l, Act::Ignore) => ok(Some(format!("{why}; on-{l} = ignore"))),
        (l, act) => fail(format!("{why}; on-{l} = {act}")),
    }
}

/// The table: a header, then every row, in columns two spaces apart.
pub fn render(rows: &[Row]) -> String {
    let header: Row = ["IFACE", "FAMILY", "LAYER", "CHECK", "RESULT"].map(String::from);
    let all: Vec<&Row> = std::iter::once(&header).chain(rows).collect();
    let widths: Vec<usize> = (0..5)
        .map(|i| all.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for r in all {
        let mut line = String::new();
        for (i, (cell, w)) in r.iter().zip(&widths).enumerate() {
            if i > 0 {
                line.push_str("  ");
            }
            let _ = write!(line, "{cell:<w$}");
        }
        out += line.trim_end();
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const UP: Link = Link {
        present: true,
        admin_up: true,
        carrier: true,
    };
    const GW: &str = "198.51.100.1";
    const FAR: &str = "203.0.113.10";

    fn probe(target: &str, rtt_us: Option<u64>) -> Probe {
        Probe {
            target: target.into(),
            rtt: rtt_us.map(Duration::from_micros),
            why: None,
        }
    }

    /// An IPv4 lane with address, route and gateway, targets gateway and one far target.
    fn v4(gw_us: Option<u64>, far_us: Option<u64>, l2: L2, quorum: usize) -> Lane {
        let targets = vec![probe(GW, gw_us), probe(FAR, far_us)];
        let evidence = Evidence {
            address: true,
            route: true,
            gateway: Some(GW.parse().unwrap()),
            gateway_echo: Some(gw_us.is_some()),
            l2,
            answered: targets.iter().filter(|p| p.rtt.is_some()).count(),
            quorum,
            targets: targets.len(),
        };
        let layer = crate::diagnose::diagnose(&UP, &evidence);
        Lane {
            family: Family::V4,
            evidence,
            layer,
            act: crate::diagnose::Policy::default().act(layer),
            address: Some("198.51.100.2/24".into()),
            table: Some("main".into()),
            l2_rtt: (l2 == L2::Alive).then(|| Duration::from_micros(310)),
            timeout: Duration::from_secs(2),
            targets,
        }
    }

    fn v6(far_us: Option<u64>) -> Lane {
        let targets = vec![probe("2001:db8::10", far_us)];
        let evidence = Evidence {
            address: true,
            route: true,
            gateway: Some("fe80::1".parse().unwrap()),
            gateway_echo: None,
            l2: L2::Alive,
            answered: usize::from(far_us.is_some()),
            quorum: 1,
            targets: 1,
        };
        let layer = crate::diagnose::diagnose(&UP, &evidence);
        Lane {
            family: Family::V6,
            evidence,
            layer,
            act: crate::diagnose::Policy::default().act(layer),
            address: Some("2001:db8::2/64".into()),
            table: Some("main".into()),
            l2_rtt: Some(Duration::from_micros(250)),
            timeout: Duration::from_secs(2),
            targets,
        }
    }

    fn table(link: &Link, lanes: &[Lane]) -> String {
        render(&rows("nh0", Some(7), link, lanes))
    }

    #[test]
    fn all_ok() {
        let lane = v4(Some(300), Some(500), L2::Unknown, 1);
        assert_eq!(
            table(&UP, std::slice::from_ref(&lane)),
            "\
IFACE  FAMILY  LAYER           CHECK                 RESULT
nh0    -       absent          interface present     ok (index 7)
nh0    -       admin-down      administratively up   ok
nh0    -       no-carrier      carrier               ok
nh0    ipv4    no-address      address               ok (198.51.100.2/24)
nh0    ipv4    no-route        default route         ok (via 198.51.100.1, table main)
nh0    ipv4    gateway-dead    gateway answers ARP   - (not asked)
nh0    ipv4    gateway-silent  gateway answers ICMP  ok (0.300 ms)
nh0    ipv4    upstream        targets (quorum 1)    ok (2/2: 198.51.100.1 0.300 ms, 203.0.113.10 0.500 ms)
nh0    ipv4    ok              verdict               ok
"
        );
        assert!(all_good([&lane]));
    }

    #[test]
    fn gateway_filters_icmp() {
        // The gateway alone is the target; it answers ARP, not echo.
        let mut lane = v4(None, None, L2::Alive, 1);
        lane.targets.truncate(1);
        lane.evidence.targets = 1;
        lane.layer = crate::diagnose::diagnose(&UP, &lane.evidence);
        lane.act = crate::diagnose::Policy::default().act(lane.layer);
        let t = table(&UP, std::slice::from_ref(&lane));
        let tail: Vec<&str> = t.lines().skip(6).collect();
        assert_eq!(
            tail,
            [
                "nh0    ipv4    gateway-dead    gateway answers ARP   ok (0.310 ms)",
                "nh0    ipv4    gateway-silent  gateway answers ICMP  FAIL (no reply in 2s)",
                "nh0    ipv4    upstream        targets (quorum 1)    FAIL (0/1: 198.51.100.1 lost)",
                "nh0    ipv4    gateway-silent  verdict               ok (gateway filters ICMP)",
            ],
            "{t}"
        );
        assert!(all_good([&lane]), "a filter is not an outage: exit 0");
    }

    #[test]
    fn upstream() {
        let lane = v4(Some(300), None, L2::Unknown, 2);
        let t = table(&UP, std::slice::from_ref(&lane));
        let tail: Vec<&str> = t.lines().skip(8).collect();
        assert_eq!(
            tail,
            [
                "nh0    ipv4    upstream        targets (quorum 2)    FAIL (1/2: 198.51.100.1 0.300 ms, 203.0.113.10 lost)",
                "nh0    ipv4    upstream        verdict               FAIL (0/1 far targets answered, gateway 198.51.100.1 alive; on-upstream = report)",
            ],
            "{t}"
        );
        assert!(!all_good([&lane]));
        assert_eq!(
            reason(Family::V4, lane.layer, &lane.evidence, 1),
            "ipv4 upstream: 0/1 far targets answered, gateway 198.51.100.1 alive"
        );
    }

    #[test]
    fn no_carrier() {
        let link = Link {
            carrier: false,
            ..UP
        };
        let mut lane = v4(None, None, L2::Dead, 1);
        lane.layer = crate::diagnose::diagnose(&link, &lane.evidence);
        lane.act = Act::Heal;
        let t = table(&link, std::slice::from_ref(&lane));
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(
            lines[3],
            "nh0    -       no-carrier      carrier               FAIL (no carrier)"
        );
        assert_eq!(
            lines[6],
            "nh0    ipv4    gateway-dead    gateway answers ARP   FAIL (no answer in 2s)"
        );
        assert_eq!(
            lines[9],
            "nh0    ipv4    no-carrier      verdict               FAIL (no carrier; on-no-carrier = heal)"
        );
        assert!(!all_good([&lane]));
    }

    #[test]
    fn a_stale_neighbour_entry_is_gateway_dead_with_both_macs() {
        let stale = L2::Stale {
            answer: crate::wire::arp::Mac([0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff]),
            entry: crate::wire::arp::Mac([2, 0, 0, 0, 0, 1]),
        };
        let mut lane = v4(None, None, stale, 1);
        lane.layer = crate::diagnose::diagnose(&UP, &lane.evidence);
        assert_eq!(lane.layer, Layer::GatewayDead);
        lane.act = Act::Heal;
        let t = table(&UP, std::slice::from_ref(&lane));
        let row = t
            .lines()
            .find(|l| l.contains("gateway answers ARP"))
            .unwrap();
        assert!(
            row.ends_with(
                "FAIL (answers from aa:bb:cc:dd:ee:ff, this host's neighbour entry says 02:00:00:00:00:01 (stale))"
            ),
            "{row}"
        );
        assert!(!all_good([&lane]));
        assert_eq!(
            reason(Family::V4, Layer::GatewayDead, &lane.evidence, 1),
            "ipv4 gateway-dead: gateway 198.51.100.1 answers ARP from aa:bb:cc:dd:ee:ff but this host's neighbour entry says 02:00:00:00:00:01 (stale)"
        );
    }

    #[test]
    fn interface_absent() {
        let link = Link::default();
        let mut lane = v4(None, None, L2::Unknown, 1);
        lane.evidence = Evidence {
            quorum: 1,
            ..Evidence::default()
        };
        lane.layer = crate::diagnose::diagnose(&link, &lane.evidence);
        lane.act = Act::Heal;
        lane.targets = vec![Probe {
            target: "gateway".into(),
            rtt: None,
            why: Some("not probed".into()),
        }];
        assert_eq!(
            render(&rows("nh0", None, &link, std::slice::from_ref(&lane))),
            "\
IFACE  FAMILY  LAYER           CHECK                 RESULT
nh0    -       absent          interface present     FAIL (no such interface)
nh0    -       admin-down      administratively up   -
nh0    -       no-carrier      carrier               -
nh0    ipv4    no-address      address               -
nh0    ipv4    no-route        default route         -
nh0    ipv4    gateway-dead    gateway answers ARP   -
nh0    ipv4    gateway-silent  gateway answers ICMP  -
nh0    ipv4    upstream        targets (quorum 1)    FAIL (0/1: gateway not probed)
nh0    ipv4    absent          verdict               FAIL (interface not found; on-absent = heal)
"
        );
    }

    #[test]
    fn v6_only_failure() {
        let (four, six) = (v4(Some(300), Some(500), L2::Unknown, 1), v6(None));
        let t = table(&UP, &[four.clone(), six.clone()]);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 1 + 3 + 6 + 6, "{t}");
        assert_eq!(
            lines[9],
            "nh0    ipv4    ok              verdict               ok"
        );
        assert_eq!(
            &lines[10..],
            [
                "nh0    ipv6    no-address      address               ok (2001:db8::2/64)",
                "nh0    ipv6    no-route        default route         ok (via fe80::1, table main)",
                "nh0    ipv6    gateway-dead    gateway answers NDP   ok (0.250 ms)",
                "nh0    ipv6    gateway-silent  gateway answers ICMP  - (not a target)",
                "nh0    ipv6    upstream        targets (quorum 1)    FAIL (0/1: 2001:db8::10 lost)",
                "nh0    ipv6    upstream        verdict               FAIL (0/1 far targets answered, gateway fe80::1 alive; on-upstream = report)",
            ],
            "{t}"
        );
        assert!(four.good() && !six.good());
        assert!(!all_good([&four, &six]), "one failing family fails --once");
    }

    #[test]
    fn reasons_name_family_layer_and_evidence() {
        let ev = Evidence {
            gateway: Some(GW.parse().unwrap()),
            l2: L2::Dead,
            quorum: 1,
            ..Evidence::default()
        };
        let cases = [
            (
                Family::V4,
                Layer::AdminDown,
                "ipv4 admin-down: interface administratively down",
            ),
            (
                Family::V6,
                Layer::NoAddress,
                "ipv6 no-address: no global IPv6 address",
            ),
            (
                Family::V4,
                Layer::NoRoute,
                "ipv4 no-route: no default route through the interface",
            ),
            (
                Family::V4,
                Layer::GatewayDead,
                "ipv4 gateway-dead: gateway 198.51.100.1 does not answer ARP",
            ),
            (
                Family::V6,
                Layer::GatewayDead,
                "ipv6 gateway-dead: gateway 198.51.100.1 does not answer NDP",
            ),
            (
                Family::V4,
                Layer::GatewaySilent,
                "ipv4 gateway-silent: gateway 198.51.100.1 silent to ICMP, alive at layer 2",
            ),
        ];
        for (f, l, want) in cases {
            assert_eq!(reason(f, l, &ev, 0), want);
        }
        let unknown = Evidence {
            l2: L2::Unknown,
            ..ev
        };
        assert_eq!(
            reason(Family::V4, Layer::GatewayDead, &unknown, 0),
            "ipv4 gateway-dead: gateway 198.51.100.1 does not answer (no layer-2 check possible)"
        );
    }
}
