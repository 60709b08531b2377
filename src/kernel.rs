//! What the kernel says about the watched interfaces, learned from rtnetlink (rtnetlink(7)):
//! for each, whether it exists (index, name), whether it is administratively up, whether it
//! has carrier, its addresses, its default route per family from every routing table (or one
//! pinned table), the gateway's neighbour state, and its static routes (for a `link` heal to
//! put back). Parsed messages go in; changes come out as `Event`s tagged with the watch slot
//! they concern.
//!
//! Pure: no I/O and no clock (the dump scheduler is handed `now`). Memory is bounded whatever
//! the size of the routing table: only default routes (any interface, at most
//! `MAX_DEFAULTS`) and the routes, addresses and gateway neighbours of watched interfaces (at
//! most `MAX_PER_IFACE` each) are kept, and each message costs O(watched interfaces + kept
//! default routes), never O(table).
#![forbid(unsafe_code)]

use std::collections::VecDeque;
use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use crate::mono::Instant;
use crate::wire::arp::Mac;
use crate::wire::netlink::{
    flag, Addr, Change, Dump, Link, Message, Neigh, NlMsg, Route, IFA_F_PERMANENT, NUD_FAILED,
    RTN_UNICAST,
};
use crate::wire::Family;

/// Default routes kept, over every table and interface.
pub const MAX_DEFAULTS: usize = 256;
/// Addresses and static routes kept per watched interface.
pub const MAX_PER_IFACE: usize = 64;
/// A dump that has not ended after this long is asked for again (its end was lost).
pub const DUMP_DEADLINE: Duration = Duration::from_secs(5);
/// The main routing table (RT_TABLE_MAIN).
pub const TABLE_MAIN: u32 = 254;
/// rtm_protocol values of routes that someone configured (RTPROT_BOOT: `ip route add`,
/// ifupdown; RTPROT_STATIC: administrators' daemons); kernel, RA and DHCP-client routes come
/// back by themselves.
const RTPROT_BOOT: u8 = 3;
const RTPROT_STATIC: u8 = 4;
/// Errors on a dump request that mean "try again": EBUSY (a dump still running on this
/// socket), EINTR, EAGAIN.
const RETRY_ERRNOS: [i32; 3] = [16, 4, 11];

/// A change the kernel reported for one watched interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// An interface with the watched name exists now (created, renamed to it, moved in), or
    /// it was re-created under a new index.
    Appeared {
        index: u32,
    },
    /// The interface was deleted or moved to another namespace.
    Gone,
    /// The interface was renamed; under the watched name there is nothing now.
    Renamed {
        to: String,
    },
    AdminDown,
    AdminUp,
    CarrierLost,
    CarrierRegained,
    AddressAdded {
        addr: IpAddr,
        prefix_len: u8,
    },
    AddressGone {
        addr: IpAddr,
        prefix_len: u8,
    },
    /// The default route of `family` through this interface changed: another gateway,
    /// another metric or table won, or (`gateway` None and `present` false) there is none.
    DefaultRouteChanged {
        family: Family,
        present: bool,
        gateway: Option<IpAddr>,
    },
    /// The gateway's neighbour entry failed (ARP / neighbour discovery got no answer).
    GatewayUnresolved {
        gateway: IpAddr,
    },
}

impl Event {
    /// Whether this change can have broken reachability: worth a confirming round at once.
    pub fn may_break(&self) -> bool {
        match self {
            Event::Gone
            | Event::Renamed { .. }
            | Event::AdminDown
            | Event::CarrierLost
            | Event::AddressGone { .. }
            | Event::GatewayUnresolved { .. }
            | Event::Appeared { .. } => true,
            Event::DefaultRouteChanged { .. } => true,
            Event::AdminUp | Event::CarrierRegained | Event::AddressAdded { .. } => false,
        }
    }
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Event::Appeared { index } => write!(f, "interface appeared (index {index})"),
            Event::Gone => f.write_str("interface is gone"),
            Event::Renamed { to } => write!(f, "interface renamed to {to}"),
            Event::AdminDown => f.write_str("link set down"),
            Event::AdminUp => f.write_str("link set up"),
            Event::CarrierLost => f.write_str("carrier lost"),
            Event::CarrierRegained => f.write_str("carrier regained"),
            Event::AddressAdded { addr, prefix_len } => {
                write!(f, "address {addr}/{prefix_len} added")
            }
            Event::AddressGone { addr, prefix_len } => {
                write!(f, "address {addr}/{prefix_len} removed")
            }
            Event::DefaultRouteChanged {
                family,
                present: false,
                ..
            } => write!(f, "{} default route gone", fam(*family)),
            Event::DefaultRouteChanged {
                family,
                gateway: Some(gw),
                ..
            } => write!(f, "{} default route now via {gw}", fam(*family)),
            Event::DefaultRouteChanged { family, .. } => {
                write!(f, "{} default route now without a gateway", fam(*family))
            }
            Event::GatewayUnresolved { gateway } => {
                write!(f, "gateway {gateway} does not answer neighbour resolution")
            }
        }
    }
}

fn fam(f: Family) -> &'static str {
    match f {
        Family::V4 => "IPv4",
        Family::V6 => "IPv6",
    }
}

/// A default route as the kernel reported it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DefaultRoute {
    pub family: Family,
    pub table: u32,
    pub metric: u32,
    pub oif: u32,
    pub gateway: Option<IpAddr>,
    pub protocol: u8,
    stale: bool,
}

impl DefaultRoute {
    fn same_key(&self, o: &DefaultRoute) -> bool {
        (self.family, self.table, self.metric, self.oif, self.gateway)
            == (o.family, o.table, o.metric, o.oif, o.gateway)
    }
}

/// A configured (static) non-default route through a watched interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StaticRoute {
    pub family: Family,
    pub dst: Option<IpAddr>,
    pub dst_len: u8,
    pub table: u32,
    pub metric: u32,
    pub gateway: Option<IpAddr>,
    stale: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Address {
    pub addr: IpAddr,
    pub prefix_len: u8,
    pub scope: u8,
    /// ifa_flags (IFA_F_PERMANENT: configured, not from SLAAC or DHCP).
    pub flags: u8,
    stale: bool,
}

/// What the kernel says about one watched interface.
#[derive(Debug, Clone)]
pub struct Iface {
    pub name: String,
    /// Only default routes of this table count (`table` key); None: every table.
    pub table: Option<u32>,
    pub index: Option<u32>,
    pub admin_up: bool,
    pub carrier: bool,
    addrs: Vec<Address>,
    statics: Vec<StaticRoute>,
    /// The winning default route per family (see `Kernel::choose`).
    default: [Option<DefaultRoute>; 2],
    /// The neighbour state (NUD_*) of each family's gateway, when the kernel reported one.
    neigh: [Option<u16>; 2],
    /// That entry's link-layer address, when it has one.
    neigh_mac: [Option<Mac>; 2],
    link_stale: bool,
}

impl Iface {
    fn new(name: &str, table: Option<u32>) -> Iface {
        Iface {
            name: name.to_string(),
            table,
            index: None,
            admin_up: false,
            carrier: false,
            addrs: Vec::new(),
            statics: Vec::new(),
            default: [None, None],
            neigh: [None, None],
            neigh_mac: [None, None],
            link_stale: false,
        }
    }

    pub fn present(&self) -> bool {
        self.index.is_some()
    }

    pub fn addresses(&self) -> impl Iterator<Item = &Address> {
        self.addrs.iter()
    }

    pub fn static_routes(&self) -> impl Iterator<Item = &StaticRoute> {
        self.statics.iter()
    }

    pub fn default_route(&self, family: Family) -> Option<&DefaultRoute> {
        self.default[family as usize].as_ref()
    }

    /// The gateway of the interface's default route of `family`, if it has one.
    pub fn gateway(&self, family: Family) -> Option<IpAddr> {
        self.default_route(family).and_then(|r| r.gateway)
    }

    pub fn gateway_neighbour(&self, family: Family) -> Option<u16> {
        self.neigh[family as usize]
    }

    /// The link-layer address of the gateway's neighbour entry (the MAC this host sends
    /// the family's traffic to), when the entry has one.
    pub fn gateway_lladdr(&self, family: Family) -> Option<Mac> {
        self.neigh_mac[family as usize]
    }

    fn forget(&mut self) {
        self.index = None;
        self.admin_up = false;
        self.carrier = false;
        self.addrs.clear();
        self.statics.clear();
        self.neigh = [None, None];
        self.neigh_mac = [None, None];
    }
}

#[cfg(test)]
impl Iface {
    /// For the watch's tests: `name` at `index`, up with carrier, an address of each family
    /// and a default route in the main table through each of `gateways` that is given.
    pub fn up_for_tests(name: &str, index: u32, gateways: [Option<IpAddr>; 2]) -> Iface {
        let mut i = Iface::new(name, None);
        i.index = Some(index);
        i.admin_up = true;
        i.carrier = true;
        for a in ["198.51.100.2", "2001:db8::2"] {
            i.addrs.push(Address {
                addr: a.parse().unwrap(),
                prefix_len: 24,
                scope: 0,
                flags: IFA_F_PERMANENT,
                stale: false,
            });
        }
        for (f, gw) in [Family::V4, Family::V6].into_iter().zip(gateways) {
            i.default[f as usize] = gw.map(|g| DefaultRoute {
                family: f,
                table: TABLE_MAIN,
                metric: 0,
                oif: index,
                gateway: Some(g),
                protocol: RTPROT_BOOT,
                stale: false,
            });
        }
        i
    }
}

/// What a watched interface had before a `link` heal step bounced it: the configured
/// addresses, static routes and default routes the bounce may remove.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    addrs: Vec<Address>,
    statics: Vec<StaticRoute>,
    defaults: Vec<DefaultRoute>,
}

impl Snapshot {
    pub fn is_empty(&self) -> bool {
        self.addrs.is_empty() && self.statics.is_empty() && self.defaults.is_empty()
    }
}

/// Link-local addresses (fe80::/10 and their scope) come back with the link by themselves.
const RT_SCOPE_LINK: u8 = 253;

/// One dump at a time: which one runs (its sequence number and deadline), which come next,
/// and whether a resync is owed (events were lost: ENOBUFS, an interrupted dump).
#[derive(Debug)]
struct Sync {
    next: usize,
    running: Option<Running>,
    seq: u32,
    resync_owed: bool,
    synced: bool,
}

#[derive(Debug, Clone, Copy)]
struct Running {
    dump: Dump,
    seq: u32,
    deadline: Instant,
    interrupted: bool,
}

/// The cache, its dump scheduler and its event queue.
#[derive(Debug)]
pub struct Kernel {
    ifaces: Vec<Iface>,
    defaults: Vec<DefaultRoute>,
    sync: Sync,
    events: VecDeque<(usize, Event)>,
    /// Counters for the status line and metrics.
    pub resyncs: u64,
    pub dropped: u64,
}

impl Kernel {
    /// A cache for these interfaces (name, pinned table); slot i is the i-th. It knows
    /// nothing until the first full dump has ended (`synced`).
    pub fn new<'a>(watched: impl IntoIterator<Item = (&'a str, Option<u32>)>) -> Kernel {
        Kernel {
            ifaces: watched.into_iter().map(|(n, t)| Iface::new(n, t)).collect(),
            defaults: Vec::new(),
            sync: Sync {
                next: 0,
                running: None,
                seq: 0,
                resync_owed: false,
                synced: false,
            },
            events: VecDeque::new(),
            resyncs: 0,
            dropped: 0,
        }
    }

    pub fn iface(&self, slot: usize) -> &Iface {
        &self.ifaces[slot]
    }

    pub fn slots(&self) -> usize {
        self.ifaces.len()
    }

    /// The slot watching the interface called `name`.
    pub fn slot_of(&self, name: &str) -> Option<usize> {
        self.ifaces.iter().position(|i| i.name == name)
    }

    /// The configured state of slot `s`'s interface, to put back after a bounce (None while
    /// it is missing). Only what someone configured counts: permanent, non-link-local
    /// addresses and routes of the boot/static protocols.
    pub fn snapshot(&self, s: usize) -> Option<Snapshot> {
        let i = &self.ifaces[s];
        let index = i.index?;
        Some(Snapshot {
            addrs: i
                .addrs
                .iter()
                .filter(|a| a.flags & IFA_F_PERMANENT != 0 && a.scope != RT_SCOPE_LINK)
                .copied()
                .collect(),
            statics: i.statics.clone(),
            defaults: self
                .defaults
                .iter()
                .filter(|r| r.oif == index)
                .filter(|r| r.protocol == RTPROT_BOOT || r.protocol == RTPROT_STATIC)
                .copied()
                .collect(),
        })
    }

    /// What of `snap` slot `s`'s interface lacks now, as requests to put it back: addresses
    /// first (routes through a gateway need its connected route), then static routes, then
    /// default routes. Nothing while the interface is missing.
    pub fn missing(&self, s: usize, snap: &Snapshot) -> Vec<Change> {
        let i = &self.ifaces[s];
        let Some(index) = i.index else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for a in &snap.addrs {
            if !i
                .addrs
                .iter()
                .any(|b| b.addr == a.addr && b.prefix_len == a.prefix_len)
            {
                out.push(Change::AddAddr {
                    index,
                    addr: a.addr,
                    prefix_len: a.prefix_len,
                    scope: a.scope,
                });
            }
        }
        for r in &snap.statics {
            if !i
                .statics
                .iter()
                .any(|o| StaticRoute { stale: false, ..*o } == StaticRoute { stale: false, ..*r })
            {
                out.push(Change::AddRoute {
                    family: r.family,
                    dst: r.dst,
                    dst_len: r.dst_len,
                    table: r.table,
                    protocol: RTPROT_BOOT,
                    metric: r.metric,
                    oif: index,
                    gateway: r.gateway,
                });
            }
        }
        for r in &snap.defaults {
            let there = self.defaults.iter().any(|o| {
                (o.family, o.table, o.metric, o.gateway) == (r.family, r.table, r.metric, r.gateway)
                    && o.oif == index
            });
            if !there {
                out.push(Change::AddRoute {
                    family: r.family,
                    dst: None,
                    dst_len: 0,
                    table: r.table,
                    protocol: r.protocol,
                    metric: r.metric,
                    oif: index,
                    gateway: r.gateway,
                });
            }
        }
        out
    }

    /// Every dump has ended at least once: absence now means the interface is not there.
    pub fn synced(&self) -> bool {
        self.sync.synced
    }

    pub fn poll_event(&mut self) -> Option<(usize, Event)> {
        self.events.pop_front()
    }

    /// Lost events (ENOBUFS on the socket, a truncated datagram): dump everything again once
    /// the running dump, if any, has ended.
    pub fn overflowed(&mut self) {
        self.resyncs += 1;
        if self.sync.running.is_some() {
            self.sync.resync_owed = true;
        } else {
            self.sync.next = 0;
        }
    }

    /// The next dump request to send, with its sequence number. Call until None.
    pub fn poll_request(&mut self, now: Instant) -> Option<(Dump, u32)> {
        if self.sync.running.is_some() {
            return None;
        }
        let dump = *Dump::ALL.get(self.sync.next)?;
        self.sync.next += 1;
        self.sync.seq = self.sync.seq.wrapping_add(1).max(1);
        self.sync.running = Some(Running {
            dump,
            seq: self.sync.seq,
            deadline: now + DUMP_DEADLINE,
            interrupted: false,
        });
        self.begin(dump);
        Some((dump, self.sync.seq))
    }

    /// A dump request is due (a resync owed, or a retry after a lost end).
    pub fn wants_request(&self) -> bool {
        self.sync.running.is_none() && self.sync.next < Dump::ALL.len()
    }

    /// When a running dump must be asked for again.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.sync.running.map(|r| r.deadline)
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        if let Some(r) = self.sync.running {
            if r.deadline <= now {
                self.retry(r.dump);
            }
        }
    }

    fn retry(&mut self, dump: Dump) {
        self.sync.running = None;
        self.sync.next = Dump::ALL.iter().position(|d| *d == dump).unwrap_or(0);
    }

    /// One received netlink message.
    pub fn handle_message(&mut self, msg: &NlMsg<'_>) {
        let ours = self
            .sync
            .running
            .filter(|r| r.seq == msg.seq() && msg.seq() != 0);
        if let (Some(_), true) = (ours, msg.flags() & flag::DUMP_INTR != 0) {
            if let Some(r) = self.sync.running.as_mut() {
                r.interrupted = true;
            }
        }
        let Ok(m) = Message::parse(msg) else {
            self.dropped += 1;
            return;
        };
        match m {
            Message::Done => {
                if let Some(r) = ours {
                    self.end(r);
                }
            }
            Message::Error(errno) => {
                if let Some(r) = ours {
                    if RETRY_ERRNOS.contains(&-errno) {
                        self.retry(r.dump);
                    } else {
                        // not fatal: without this dump we learn the facts from events only
                        self.end(r);
                    }
                }
            }
            Message::NewLink(l) => self.link(&l),
            Message::DelLink(l) => self.link_gone(l.index),
            Message::NewAddr(a) => self.addr(&a, true),
            Message::DelAddr(a) => self.addr(&a, false),
            Message::NewRoute(r) => self.route(&r, true, msg.flags() & flag::REPLACE != 0),
            Message::DelRoute(r) => self.route(&r, false, false),
            Message::NewNeigh(n) => self.neigh(&n, true),
            Message::DelNeigh(n) => self.neigh(&n, false),
            Message::Other => {}
        }
    }

    fn end(&mut self, r: Running) {
        self.sync.running = None;
        if r.interrupted {
            self.retry(r.dump);
            return;
        }
        self.sweep(r.dump);
        if self.sync.next >= Dump::ALL.len() {
            self.sync.synced = true;
        }
        if self.sync.resync_owed {
            self.sync.resync_owed = false;
            self.sync.next = 0;
        }
    }

    /// A dump starts: everything it covers is stale until the dump mentions it again.
    fn begin(&mut self, dump: Dump) {
        for i in &mut self.ifaces {
            match dump {
                Dump::Links => i.link_stale = true,
                Dump::Addrs => i.addrs.iter_mut().for_each(|a| a.stale = true),
                Dump::Routes(f) => i
                    .statics
                    .iter_mut()
                    .filter(|r| r.family == f)
                    .for_each(|r| r.stale = true),
                Dump::Neighs => {}
            }
        }
        if let Dump::Routes(f) = dump {
            for r in self.defaults.iter_mut().filter(|r| r.family == f) {
                r.stale = true;
            }
        }
    }

    /// A dump ended: what it did not mention is gone (its deletion was among lost events).
    fn sweep(&mut self, dump: Dump) {
        match dump {
            Dump::Links => {
                for s in 0..self.ifaces.len() {
                    if let (true, Some(index)) = (self.ifaces[s].link_stale, self.ifaces[s].index) {
                        self.ifaces[s].forget();
                        self.events.push_back((s, Event::Gone));
                        self.drop_routes(index, None);
                    }
                }
            }
            Dump::Addrs => {
                for s in 0..self.ifaces.len() {
                    let gone: Vec<Address> = self.ifaces[s]
                        .addrs
                        .iter()
                        .filter(|a| a.stale)
                        .copied()
                        .collect();
                    self.ifaces[s].addrs.retain(|a| !a.stale);
                    for a in gone {
                        self.events.push_back((
                            s,
                            Event::AddressGone {
                                addr: a.addr,
                                prefix_len: a.prefix_len,
                            },
                        ));
                    }
                }
            }
            Dump::Routes(f) => {
                self.defaults.retain(|r| !(r.family == f && r.stale));
                for i in &mut self.ifaces {
                    i.statics.retain(|r| !(r.family == f && r.stale));
                }
                self.choose_all();
            }
            Dump::Neighs => {}
        }
    }

    fn slot_of_index(&self, index: u32) -> Option<usize> {
        self.ifaces.iter().position(|i| i.index == Some(index))
    }

    fn link(&mut self, l: &Link) {
        let name = l.name.map(|n| n.as_str().to_string());
        // The interface we knew under this index was renamed away from the watched name.
        if let Some(s) = self.slot_of_index(l.index) {
            if let Some(n) = name.as_ref().filter(|n| **n != self.ifaces[s].name) {
                // Its routes stay with it under the new name.
                self.ifaces[s].forget();
                self.events.push_back((s, Event::Renamed { to: n.clone() }));
                self.choose(s);
            }
        }
        let Some(name) = name else { return };
        for s in 0..self.ifaces.len() {
            if self.ifaces[s].name != name {
                continue;
            }
            let i = &mut self.ifaces[s];
            i.link_stale = false;
            let (was_up, had_carrier) = (i.admin_up, i.carrier);
            i.admin_up = l.admin_up();
            i.carrier = l.carrier();
            match i.index {
                Some(old) if old == l.index => {
                    if was_up && !i.admin_up {
                        self.events.push_back((s, Event::AdminDown));
                        // The kernel drops IPv4 routes through a downed link without telling
                        // (fib_disable_ip: no RTM_DELROUTE); IPv6 ones it reports.
                        self.drop_routes(l.index, Some(Family::V4));
                    } else if !was_up && i.admin_up {
                        self.events.push_back((s, Event::AdminUp));
                    }
                    let i = &self.ifaces[s];
                    if had_carrier && !i.carrier && i.admin_up {
                        self.events.push_back((s, Event::CarrierLost));
                    } else if !had_carrier && i.carrier {
                        self.events.push_back((s, Event::CarrierRegained));
                    }
                }
                _ => {
                    let renamed_in = self.defaults.iter().any(|r| r.oif == l.index);
                    let i = &mut self.ifaces[s];
                    let (up, carrier) = (i.admin_up, i.carrier);
                    i.forget();
                    (i.admin_up, i.carrier) = (up, carrier);
                    i.index = Some(l.index);
                    self.events
                        .push_back((s, Event::Appeared { index: l.index }));
                    self.choose(s);
                    if renamed_in && self.sync.synced {
                        // An existing interface renamed to the watched name: its addresses
                        // and static routes were not kept while it was not watched.
                        self.overflowed();
                    }
                }
            }
        }
    }

    fn link_gone(&mut self, index: u32) {
        while let Some(s) = self.slot_of_index(index) {
            self.ifaces[s].forget();
            self.events.push_back((s, Event::Gone));
        }
        self.drop_routes(index, None);
    }

    /// Routes through interface `index` that the kernel removed without a message.
    fn drop_routes(&mut self, index: u32, family: Option<Family>) {
        let hit = |f: Family| family.is_none_or(|x| x == f);
        for i in self.ifaces.iter_mut().filter(|i| i.index == Some(index)) {
            i.statics.retain(|r| !hit(r.family));
        }
        self.defaults.retain(|r| !(r.oif == index && hit(r.family)));
        self.choose_all();
    }

    fn addr(&mut self, a: &Addr, add: bool) {
        let Some(s) = self.slot_of_index(a.index) else {
            return;
        };
        let list = &mut self.ifaces[s].addrs;
        let pos = list
            .iter()
            .position(|x| x.addr == a.addr && x.prefix_len == a.prefix_len);
        let ev = match (pos, add) {
            (Some(p), true) => {
                list[p].stale = false;
                None
            }
            (None, true) if list.len() < MAX_PER_IFACE => {
                list.push(Address {
                    addr: a.addr,
                    prefix_len: a.prefix_len,
                    scope: a.scope,
                    flags: a.flags,
                    stale: false,
                });
                Some(Event::AddressAdded {
                    addr: a.addr,
                    prefix_len: a.prefix_len,
                })
            }
            (None, true) => {
                self.dropped += 1;
                None
            }
            (Some(p), false) => {
                list.remove(p);
                Some(Event::AddressGone {
                    addr: a.addr,
                    prefix_len: a.prefix_len,
                })
            }
            (None, false) => None,
        };
        if let Some(e) = ev {
            self.events.push_back((s, e));
        }
    }

    fn route(&mut self, r: &Route<'_>, add: bool, replace: bool) {
        let Some(oif) = r.oif else { return };
        if r.kind != RTN_UNICAST {
            return;
        }
        if r.is_default() {
            let d = DefaultRoute {
                family: r.family,
                table: r.table,
                metric: r.priority,
                oif,
                gateway: r.gateway,
                protocol: r.protocol,
                stale: false,
            };
            if add && replace {
                // NLM_F_REPLACE: the route took the place of the one with the same table and
                // metric, which gets no RTM_DELROUTE of its own.
                self.defaults.retain(|o| {
                    !(o.family == d.family && o.table == d.table && o.metric == d.metric)
                });
            }
            let pos = self.defaults.iter().position(|o| o.same_key(&d));
            match (pos, add) {
                (Some(p), true) => self.defaults[p] = d,
                (None, true) => {
                    let watched = self.slot_of_index(oif).is_some();
                    if self.defaults.len() >= MAX_DEFAULTS {
                        // Make room by forgetting one of an unwatched interface, if any.
                        let idx: Vec<Option<u32>> = self.ifaces.iter().map(|i| i.index).collect();
                        match self
                            .defaults
                            .iter()
                            .position(|o| !idx.contains(&Some(o.oif)))
                        {
                            Some(p) if watched => {
                                self.defaults.swap_remove(p);
                            }
                            _ => {
                                self.dropped += 1;
                                return;
                            }
                        }
                    }
                    self.defaults.push(d);
                }
                (Some(p), false) => {
                    self.defaults.swap_remove(p);
                }
                (None, false) => return,
            }
            for s in 0..self.ifaces.len() {
                if self.ifaces[s].index == Some(oif) || replace {
                    self.choose(s);
                }
            }
            return;
        }
        let Some(s) = self.slot_of_index(oif) else {
            return;
        };
        if r.protocol != RTPROT_BOOT && r.protocol != RTPROT_STATIC {
            return;
        }
        let sr = StaticRoute {
            family: r.family,
            dst: r.dst,
            dst_len: r.dst_len,
            table: r.table,
            metric: r.priority,
            gateway: r.gateway,
            stale: false,
        };
        let list = &mut self.ifaces[s].statics;
        let pos = list
            .iter()
            .position(|o| StaticRoute { stale: false, ..*o } == sr);
        match (pos, add) {
            (Some(p), true) => list[p].stale = false,
            (None, true) if list.len() < MAX_PER_IFACE => list.push(sr),
            (None, true) => self.dropped += 1,
            (Some(p), false) => {
                list.remove(p);
            }
            (None, false) => {}
        }
    }

    fn choose_all(&mut self) {
        for s in 0..self.ifaces.len() {
            self.choose(s);
        }
    }

    /// Slot `s`'s default route of `family`: through its interface, in its pinned table if
    /// it has one; lowest metric first, then the main table, then the lowest table number.
    fn best(&self, s: usize, family: Family) -> Option<DefaultRoute> {
        let i = &self.ifaces[s];
        let index = i.index?;
        self.defaults
            .iter()
            .filter(|r| r.family == family && r.oif == index)
            .filter(|r| i.table.is_none_or(|t| t == r.table))
            .min_by_key(|r| (r.metric, r.table != TABLE_MAIN, r.table))
            .copied()
    }

    /// Re-picks slot `s`'s default routes; a change is an event (not for a missing
    /// interface: its Gone or Renamed event says it all).
    fn choose(&mut self, s: usize) {
        let key = |r: Option<DefaultRoute>| r.map(|r| (r.table, r.metric, r.gateway));
        for family in [Family::V4, Family::V6] {
            let best = self.best(s, family);
            let i = &mut self.ifaces[s];
            let old = i.default[family as usize];
            if key(old) == key(best) {
                continue;
            }
            i.default[family as usize] = best;
            if old.map(|r| r.gateway) != best.map(|r| r.gateway) {
                i.neigh[family as usize] = None;
                i.neigh_mac[family as usize] = None;
            }
            if i.index.is_some() {
                self.events.push_back((
                    s,
                    Event::DefaultRouteChanged {
                        family,
                        present: best.is_some(),
                        gateway: best.and_then(|r| r.gateway),
                    },
                ));
            }
        }
    }

    fn neigh(&mut self, n: &Neigh, add: bool) {
        for s in 0..self.ifaces.len() {
            let i = &mut self.ifaces[s];
            if i.index != Some(n.index) || i.gateway(n.family) != Some(n.dst) {
                continue;
            }
            let f = n.family as usize;
            let before = i.neigh[f];
            i.neigh[f] = add.then_some(n.state);
            i.neigh_mac[f] = n.lladdr.filter(|_| add).map(Mac);
            let failed = |st: Option<u16>| st.is_some_and(|st| st & NUD_FAILED != 0);
            if failed(i.neigh[f]) && !failed(before) {
                self.events
                    .push_back((s, Event::GatewayUnresolved { gateway: n.dst }));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::netlink::{kind, IFF_LOWER_UP, IFF_UP, NUD_PERMANENT, NUD_REACHABLE};

    const UP: u32 = IFF_UP | IFF_LOWER_UP;
    const GW: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(198, 51, 100, 1));
    const GW2: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(198, 51, 100, 254));

    /// Messages in host byte order, as the kernel would write them on this machine.
    fn msg(ty: u16, flags: u16, seq: u32, fixed: &[u8], attrs: &[(u16, Vec<u8>)]) -> Vec<u8> {
        let mut b = vec![0u8; 16];
        b.extend_from_slice(fixed);
        for (t, v) in attrs {
            b.extend_from_slice(&((4 + v.len()) as u16).to_ne_bytes());
            b.extend_from_slice(&t.to_ne_bytes());
            b.extend_from_slice(v);
            b.resize((b.len() + 3) & !3, 0);
        }
        let len = b.len() as u32;
        b[0..4].copy_from_slice(&len.to_ne_bytes());
        b[4..6].copy_from_slice(&ty.to_ne_bytes());
        b[6..8].copy_from_slice(&flags.to_ne_bytes());
        b[8..12].copy_from_slice(&seq.to_ne_bytes());
        b
    }

    fn link(ty: u16, seq: u32, index: u32, name: &str, flags: u32) -> Vec<u8> {
        let mut fixed = vec![0u8; 16];
        fixed[4..8].copy_from_slice(&index.to_ne_bytes());
        fixed[8..12].copy_from_slice(&flags.to_ne_bytes());
        let mut n = name.as_bytes().to_vec();
        n.push(0);
        let oper = if flags & IFF_LOWER_UP != 0 { 6 } else { 2 };
        msg(ty, 0, seq, &fixed, &[(3, n), (16, vec![oper])])
    }

    fn ip_bytes(a: IpAddr) -> (u8, Vec<u8>) {
        match a {
            IpAddr::V4(a) => (2, a.octets().to_vec()),
            IpAddr::V6(a) => (10, a.octets().to_vec()),
        }
    }

    fn addr(ty: u16, seq: u32, index: u32, a: IpAddr, plen: u8) -> Vec<u8> {
        let (af, bytes) = ip_bytes(a);
        let mut fixed = vec![af, plen, 0, 0];
        fixed.extend_from_slice(&index.to_ne_bytes());
        msg(ty, 0, seq, &fixed, &[(1, bytes.clone()), (2, bytes)])
    }

    struct R {
        dst: Option<(IpAddr, u8)>,
        table: u32,
        metric: u32,
        oif: u32,
        gw: Option<IpAddr>,
        proto: u8,
    }

    fn default_via(gw: IpAddr, oif: u32, table: u32, metric: u32) -> R {
        R {
            dst: None,
            table,
            metric,
            oif,
            gw: Some(gw),
            proto: RTPROT_BOOT,
        }
    }

    fn route(ty: u16, flags: u16, seq: u32, r: &R) -> Vec<u8> {
        let af = match r.gw.or(r.dst.map(|d| d.0)) {
            Some(IpAddr::V6(_)) => 10,
            _ => 2,
        };
        let dst_len = r.dst.map_or(0, |d| d.1);
        let fixed = [
            af,
            dst_len,
            0,
            0,
            r.table.min(252) as u8,
            r.proto,
            0,
            1,
            0,
            0,
            0,
            0,
        ];
        let mut attrs = vec![
            (15, r.table.to_ne_bytes().to_vec()),
            (4, r.oif.to_ne_bytes().to_vec()),
            (6, r.metric.to_ne_bytes().to_vec()),
        ];
        if let Some(g) = r.gw {
            attrs.push((5, ip_bytes(g).1));
        }
        if let Some((d, _)) = r.dst {
            attrs.push((1, ip_bytes(d).1));
        }
        msg(ty, flags, seq, &fixed, &attrs)
    }

    fn neigh(ty: u16, index: u32, dst: IpAddr, state: u16) -> Vec<u8> {
        let (af, bytes) = ip_bytes(dst);
        let mut fixed = vec![af, 0, 0, 0];
        fixed.extend_from_slice(&index.to_ne_bytes());
        fixed.extend_from_slice(&state.to_ne_bytes());
        fixed.extend_from_slice(&[0, 0]);
        msg(ty, 0, 0, &fixed, &[(1, bytes)])
    }

    fn done(seq: u32) -> Vec<u8> {
        msg(kind::DONE, flag::MULTI, seq, &[0; 4], &[])
    }

    fn feed(k: &mut Kernel, bytes: &[u8]) {
        let (m, _) = NlMsg::new_checked(bytes).unwrap();
        k.handle_message(&m);
    }

    fn events(k: &mut Kernel) -> Vec<(usize, Event)> {
        std::iter::from_fn(|| k.poll_event()).collect()
    }

    /// Runs the five start-up dumps, feeding `contents(dump, seq)` before each end.
    fn sync(k: &mut Kernel, now: Instant, mut contents: impl FnMut(Dump, u32) -> Vec<Vec<u8>>) {
        let mut n = 0;
        while let Some((dump, seq)) = k.poll_request(now) {
            for m in contents(dump, seq) {
                feed(k, &m);
            }
            feed(k, &done(seq));
            n += 1;
            assert!(n <= 20, "dumps never end");
        }
    }

    /// nh0 index 3, up with carrier, 198.51.100.2/24, default via GW in table 100.
    fn lab(table: Option<u32>) -> (Kernel, Instant) {
        let now = Instant::now();
        let mut k = Kernel::new([("nh0", table), ("nh1", None)]);
        sync(&mut k, now, |d, seq| match d {
            Dump::Links => vec![
                link(kind::NEWLINK, seq, 1, "lo", IFF_UP),
                link(kind::NEWLINK, seq, 3, "nh0", UP),
            ],
            Dump::Addrs => vec![addr(
                kind::NEWADDR,
                seq,
                3,
                "198.51.100.2".parse().unwrap(),
                24,
            )],
            Dump::Routes(Family::V4) => vec![
                route(kind::NEWROUTE, 0, seq, &default_via(GW, 3, 100, 0)),
                route(
                    kind::NEWROUTE,
                    0,
                    seq,
                    &R {
                        dst: Some(("203.0.113.0".parse().unwrap(), 24)),
                        table: TABLE_MAIN,
                        metric: 0,
                        oif: 3,
                        gw: Some(GW),
                        proto: RTPROT_BOOT,
                    },
                ),
            ],
            Dump::Neighs => vec![neigh(kind::NEWNEIGH, 3, GW, NUD_REACHABLE)],
            _ => vec![],
        });
        (k, now)
    }

    #[test]
    fn start_up_dumps_fill_the_cache() {
        let (mut k, _) = lab(None);
        assert!(k.synced());
        let i = k.iface(0);
        assert_eq!(i.index, Some(3));
        assert!(i.admin_up && i.carrier);
        assert_eq!(i.addresses().count(), 1);
        assert_eq!(i.gateway(Family::V4), Some(GW), "policy table 100 is seen");
        assert_eq!(i.default_route(Family::V4).unwrap().table, 100);
        assert_eq!(i.gateway(Family::V6), None);
        assert_eq!(i.gateway_neighbour(Family::V4), Some(NUD_REACHABLE));
        assert_eq!(i.static_routes().count(), 1);
        assert!(!k.iface(1).present());
        let ev = events(&mut k);
        assert_eq!(ev[0], (0, Event::Appeared { index: 3 }));
        assert!(ev.contains(&(
            0,
            Event::DefaultRouteChanged {
                family: Family::V4,
                present: true,
                gateway: Some(GW)
            }
        )));
        assert!(ev.iter().all(|(s, _)| *s == 0), "nothing about nh1: {ev:?}");
    }

    #[test]
    fn requests_go_one_at_a_time_in_order() {
        let now = Instant::now();
        let mut k = Kernel::new([("nh0", None)]);
        let (d1, s1) = k.poll_request(now).unwrap();
        assert_eq!(d1, Dump::Links);
        assert_eq!(k.poll_request(now), None, "one dump at a time");
        feed(&mut k, &done(s1 + 7)); // someone else's sequence number
        assert_eq!(k.poll_request(now), None);
        feed(&mut k, &done(s1));
        let (d2, s2) = k.poll_request(now).unwrap();
        assert_eq!((d2, s2), (Dump::Addrs, s1 + 1));
        assert!(!k.synced());
    }

    #[test]
    fn pinned_table_ignores_other_tables() {
        let (k, _) = lab(Some(200));
        assert_eq!(k.iface(0).gateway(Family::V4), None);
        let (k, _) = lab(Some(100));
        assert_eq!(k.iface(0).gateway(Family::V4), Some(GW));
    }

    #[test]
    fn carrier_and_admin_changes_are_events() {
        let (mut k, _) = lab(None);
        events(&mut k);
        feed(&mut k, &link(kind::NEWLINK, 0, 3, "nh0", IFF_UP));
        assert_eq!(events(&mut k), [(0, Event::CarrierLost)]);
        assert!(Event::CarrierLost.may_break());
        feed(&mut k, &link(kind::NEWLINK, 0, 3, "nh0", IFF_UP));
        assert_eq!(events(&mut k), [], "no change, no event");
        feed(&mut k, &link(kind::NEWLINK, 0, 3, "nh0", UP));
        assert_eq!(events(&mut k), [(0, Event::CarrierRegained)]);
        // Admin down: the kernel drops the IPv4 default route silently.
        feed(&mut k, &link(kind::NEWLINK, 0, 3, "nh0", 0));
        let ev = events(&mut k);
        assert_eq!(ev[0], (0, Event::AdminDown));
        assert!(ev.contains(&(
            0,
            Event::DefaultRouteChanged {
                family: Family::V4,
                present: false,
                gateway: None
            }
        )));
        assert_eq!(k.iface(0).gateway(Family::V4), None);
        feed(&mut k, &link(kind::NEWLINK, 0, 3, "nh0", UP));
        assert_eq!(
            events(&mut k),
            [(0, Event::AdminUp), (0, Event::CarrierRegained)]
        );
    }

    #[test]
    fn deleted_and_recreated_interface() {
        let (mut k, _) = lab(None);
        events(&mut k);
        feed(&mut k, &link(kind::DELLINK, 0, 3, "nh0", 0));
        assert_eq!(events(&mut k), [(0, Event::Gone)]);
        let i = k.iface(0);
        assert!(!i.present() && i.gateway(Family::V4).is_none() && i.addresses().count() == 0);
        // Re-created: a new index, no routes until someone adds them.
        feed(&mut k, &link(kind::NEWLINK, 0, 9, "nh0", UP));
        assert_eq!(events(&mut k), [(0, Event::Appeared { index: 9 })]);
        feed(
            &mut k,
            &route(kind::NEWROUTE, 0, 0, &default_via(GW, 9, TABLE_MAIN, 0)),
        );
        assert_eq!(k.iface(0).gateway(Family::V4), Some(GW));
    }

    #[test]
    fn renames_away_and_in() {
        let (mut k, now) = lab(None);
        events(&mut k);
        feed(&mut k, &link(kind::NEWLINK, 0, 3, "nh9", UP));
        assert_eq!(events(&mut k), [(0, Event::Renamed { to: "nh9".into() })]);
        assert!(!k.iface(0).present());
        assert_eq!(k.poll_request(now), None, "nothing to re-learn");
        // Renamed back: its default route (kept for every interface) counts again, and its
        // addresses are re-learnt by a resync.
        feed(&mut k, &link(kind::NEWLINK, 0, 3, "nh0", UP));
        let ev = events(&mut k);
        assert_eq!(ev[0], (0, Event::Appeared { index: 3 }));
        assert_eq!(k.iface(0).gateway(Family::V4), Some(GW));
        assert_eq!(k.poll_request(now).map(|r| r.0), Some(Dump::Links));
    }

    #[test]
    fn default_routes_by_metric_and_removal() {
        let (mut k, _) = lab(None);
        events(&mut k);
        feed(
            &mut k,
            &route(kind::NEWROUTE, 0, 0, &default_via(GW2, 3, TABLE_MAIN, 50)),
        );
        assert_eq!(
            k.iface(0).gateway(Family::V4),
            Some(GW),
            "metric 0 in table 100 wins"
        );
        assert_eq!(events(&mut k), []);
        feed(
            &mut k,
            &route(kind::DELROUTE, 0, 0, &default_via(GW, 3, 100, 0)),
        );
        assert_eq!(
            events(&mut k),
            [(
                0,
                Event::DefaultRouteChanged {
                    family: Family::V4,
                    present: true,
                    gateway: Some(GW2)
                }
            )]
        );
        // Moved to another interface: none left through nh0.
        feed(
            &mut k,
            &route(kind::DELROUTE, 0, 0, &default_via(GW2, 3, TABLE_MAIN, 50)),
        );
        feed(
            &mut k,
            &route(kind::NEWROUTE, 0, 0, &default_via(GW2, 7, TABLE_MAIN, 50)),
        );
        assert_eq!(
            events(&mut k),
            [(
                0,
                Event::DefaultRouteChanged {
                    family: Family::V4,
                    present: false,
                    gateway: None
                }
            )]
        );
        assert_eq!(k.iface(0).gateway_neighbour(Family::V4), None);
    }

    #[test]
    fn replace_takes_the_place_of_the_old_route() {
        let (mut k, _) = lab(None);
        feed(
            &mut k,
            &route(
                kind::NEWROUTE,
                flag::REPLACE,
                0,
                &default_via(GW2, 3, 100, 0),
            ),
        );
        assert_eq!(k.iface(0).gateway(Family::V4), Some(GW2));
        feed(
            &mut k,
            &route(kind::DELROUTE, 0, 0, &default_via(GW2, 3, 100, 0)),
        );
        assert_eq!(
            k.iface(0).gateway(Family::V4),
            None,
            "the old one is not left over"
        );
    }

    #[test]
    fn ipv6_default_route() {
        let (mut k, _) = lab(None);
        let gw6: IpAddr = "fe80::1".parse().unwrap();
        feed(
            &mut k,
            &route(kind::NEWROUTE, 0, 0, &default_via(gw6, 3, TABLE_MAIN, 1024)),
        );
        assert_eq!(k.iface(0).gateway(Family::V6), Some(gw6));
        assert_eq!(k.iface(0).gateway(Family::V4), Some(GW));
    }

    #[test]
    fn addresses_come_and_go() {
        let (mut k, _) = lab(None);
        events(&mut k);
        let a: IpAddr = "2001:db8::2".parse().unwrap();
        feed(&mut k, &addr(kind::NEWADDR, 0, 3, a, 64));
        feed(&mut k, &addr(kind::NEWADDR, 0, 3, a, 64));
        feed(&mut k, &addr(kind::DELADDR, 0, 3, a, 64));
        feed(&mut k, &addr(kind::DELADDR, 0, 5, a, 64)); // another interface's
        assert_eq!(
            events(&mut k),
            [
                (
                    0,
                    Event::AddressAdded {
                        addr: a,
                        prefix_len: 64
                    }
                ),
                (
                    0,
                    Event::AddressGone {
                        addr: a,
                        prefix_len: 64
                    }
                )
            ]
        );
    }

    #[test]
    fn gateway_neighbour_failure() {
        let (mut k, _) = lab(None);
        events(&mut k);
        feed(&mut k, &neigh(kind::NEWNEIGH, 3, GW2, NUD_FAILED)); // not the gateway
        feed(&mut k, &neigh(kind::NEWNEIGH, 3, GW, NUD_FAILED));
        feed(&mut k, &neigh(kind::NEWNEIGH, 3, GW, NUD_FAILED));
        assert_eq!(
            events(&mut k),
            [(0, Event::GatewayUnresolved { gateway: GW })]
        );
        assert_eq!(k.iface(0).gateway_neighbour(Family::V4), Some(NUD_FAILED));
    }

    #[test]
    fn gateway_neighbour_lladdr_is_kept_with_its_state() {
        let (mut k, _) = lab(None);
        events(&mut k);
        let with_mac = |ty, state, mac: [u8; 6]| {
            let mut b = neigh(ty, 3, GW, state);
            // one more attribute: NDA_LLADDR (type 2), 6 bytes, padded to 4
            b.extend_from_slice(&[10, 0, 2, 0]);
            b.extend_from_slice(&mac);
            b.extend_from_slice(&[0, 0]);
            let len = b.len() as u32;
            b[..4].copy_from_slice(&len.to_ne_bytes());
            b
        };
        let bogus = [2, 0, 0, 0, 0, 1];
        feed(&mut k, &with_mac(kind::NEWNEIGH, NUD_PERMANENT, bogus));
        assert_eq!(
            k.iface(0).gateway_neighbour(Family::V4),
            Some(NUD_PERMANENT)
        );
        assert_eq!(k.iface(0).gateway_lladdr(Family::V4), Some(Mac(bogus)));
        assert_eq!(k.iface(0).gateway_lladdr(Family::V6), None);
        // an entry without one (FAILED) has none
        feed(&mut k, &neigh(kind::NEWNEIGH, 3, GW, NUD_FAILED));
        assert_eq!(k.iface(0).gateway_lladdr(Family::V4), None);
        feed(&mut k, &with_mac(kind::NEWNEIGH, NUD_REACHABLE, bogus));
        feed(&mut k, &with_mac(kind::DELNEIGH, NUD_REACHABLE, bogus));
        assert_eq!(k.iface(0).gateway_lladdr(Family::V4), None, "deleted");
    }

    /// Lost events: the resync waits for the running dump, then dumps everything again; what
    /// it no longer mentions is gone, what is unchanged makes no event.
    #[test]
    fn overflow_resyncs_and_sweeps() {
        let (mut k, now) = lab(None);
        events(&mut k);
        let (d, seq) = {
            k.overflowed();
            k.poll_request(now).unwrap()
        };
        assert_eq!(d, Dump::Links);
        k.overflowed(); // again, while the links dump runs
        feed(&mut k, &link(kind::NEWLINK, seq, 3, "nh0", UP));
        feed(&mut k, &done(seq));
        // Back to the start: the dump that ran is done again.
        let mut seen = vec![];
        sync(&mut k, now, |d, seq| {
            seen.push(d);
            match d {
                Dump::Links => vec![link(kind::NEWLINK, seq, 3, "nh0", UP)],
                // The address is gone (its RTM_DELADDR was lost), the route is still there.
                Dump::Routes(Family::V4) => {
                    vec![route(kind::NEWROUTE, 0, seq, &default_via(GW, 3, 100, 0))]
                }
                _ => vec![],
            }
        });
        assert_eq!(seen, Dump::ALL);
        assert_eq!(
            events(&mut k),
            [(
                0,
                Event::AddressGone {
                    addr: "198.51.100.2".parse().unwrap(),
                    prefix_len: 24
                }
            )]
        );
        assert_eq!(k.iface(0).gateway(Family::V4), Some(GW));
        assert_eq!(k.iface(0).static_routes().count(), 0, "swept");
        assert_eq!(k.resyncs, 2);
    }

    #[test]
    fn a_link_missing_from_a_dump_is_gone() {
        let (mut k, now) = lab(None);
        events(&mut k);
        k.overflowed();
        sync(&mut k, now, |_, _| vec![]);
        assert_eq!(events(&mut k), [(0, Event::Gone)]);
    }

    #[test]
    fn lost_dump_end_is_retried_after_the_deadline() {
        let now = Instant::now();
        let mut k = Kernel::new([("nh0", None)]);
        let (d, s1) = k.poll_request(now).unwrap();
        assert_eq!(k.poll_timeout(), Some(now + DUMP_DEADLINE));
        k.handle_timeout(now + DUMP_DEADLINE - Duration::from_millis(1));
        assert_eq!(k.poll_request(now), None);
        let later = now + DUMP_DEADLINE;
        k.handle_timeout(later);
        let (d2, s2) = k.poll_request(later).unwrap();
        assert_eq!(d2, d);
        assert_ne!(s2, s1);
        // EBUSY: the old dump still runs on the socket; ask again.
        let e = msg(kind::ERROR, 0, s2, &(-16i32).to_ne_bytes(), &[]);
        feed(&mut k, &e);
        let (d3, _) = k.poll_request(later).unwrap();
        assert_eq!(d3, d);
        // Any other error ends that dump: the next one comes.
        let e = msg(kind::ERROR, 0, s2 + 1, &(-95i32).to_ne_bytes(), &[]);
        feed(&mut k, &e);
        assert_eq!(k.poll_request(later).map(|r| r.0), Some(Dump::Addrs));
    }

    #[test]
    fn interrupted_dump_is_done_again() {
        let now = Instant::now();
        let mut k = Kernel::new([("nh0", None)]);
        let (_, seq) = k.poll_request(now).unwrap();
        let mut m = link(kind::NEWLINK, seq, 3, "nh0", UP);
        m[6..8].copy_from_slice(&(flag::MULTI | flag::DUMP_INTR).to_ne_bytes());
        feed(&mut k, &m);
        feed(&mut k, &done(seq));
        assert_eq!(k.poll_request(now).map(|r| r.0), Some(Dump::Links));
    }

    /// A full routing table through watched and unwatched interfaces keeps the cache bounded,
    /// and a watched interface's default route still finds room.
    #[test]
    fn memory_is_bounded_by_the_caps_not_the_table() {
        let (mut k, _) = lab(None);
        for n in 0..20_000u32 {
            let [a, b, c, _] = n.to_be_bytes();
            let r = R {
                dst: Some((IpAddr::from([10 ^ a, b, c, 0]), 24)),
                table: TABLE_MAIN,
                metric: 0,
                oif: 3 + n % 2,
                gw: Some(GW),
                proto: RTPROT_BOOT,
            };
            feed(&mut k, &route(kind::NEWROUTE, 0, 0, &r));
            let d = default_via(GW2, 100 + n, 1000 + n, n);
            feed(&mut k, &route(kind::NEWROUTE, 0, 0, &d));
        }
        assert!(k.defaults.len() <= MAX_DEFAULTS);
        assert!(k.iface(0).static_routes().count() <= MAX_PER_IFACE);
        feed(
            &mut k,
            &route(kind::NEWROUTE, 0, 0, &default_via(GW2, 3, TABLE_MAIN, 7)),
        );
        assert!(k
            .defaults
            .iter()
            .any(|r| r.oif == 3 && r.gateway == Some(GW2)));
        assert!(k.dropped > 0);
    }

    /// The bounce of a `link` step: down drops the IPv4 default and static routes silently
    /// and the IPv6 global address with a message; up brings back only the connected route.
    /// What is missing afterwards is exactly what was configured and is gone.
    #[test]
    fn snapshot_and_what_a_bounce_removed() {
        let (mut k, _) = lab(None);
        let g6: IpAddr = "2001:db8::2".parse().unwrap();
        let ll: IpAddr = "fe80::2".parse().unwrap();
        let mut m6 = addr(kind::NEWADDR, 0, 3, g6, 64);
        m6[16 + 2] = IFA_F_PERMANENT;
        feed(&mut k, &m6);
        let mut mll = addr(kind::NEWADDR, 0, 3, ll, 64);
        mll[16 + 2] = IFA_F_PERMANENT;
        mll[16 + 3] = RT_SCOPE_LINK;
        feed(&mut k, &mll);
        // The lab's IPv4 address came without IFA_F_PERMANENT: dynamic, not restored.
        let snap = k.snapshot(0).unwrap();
        assert_eq!(snap.addrs.len(), 1, "{snap:?}");
        assert_eq!((snap.statics.len(), snap.defaults.len()), (1, 1));
        assert!(
            k.missing(0, &snap).is_empty(),
            "nothing missing before the bounce"
        );
        feed(&mut k, &link(kind::NEWLINK, 0, 3, "nh0", 0));
        feed(&mut k, &addr(kind::DELADDR, 0, 3, g6, 64));
        feed(&mut k, &addr(kind::DELADDR, 0, 3, ll, 64));
        feed(&mut k, &link(kind::NEWLINK, 0, 3, "nh0", UP));
        feed(&mut k, &mll);
        let missing = k.missing(0, &snap);
        assert_eq!(missing.len(), 3, "{missing:?}");
        assert!(
            matches!(missing[0], Change::AddAddr { addr, prefix_len: 64, index: 3, .. } if addr == g6)
        );
        assert!(matches!(
            missing[1],
            Change::AddRoute {
                dst_len: 24,
                gateway: Some(GW),
                oif: 3,
                ..
            }
        ));
        assert!(matches!(
            missing[2],
            Change::AddRoute {
                dst_len: 0,
                table: 100,
                gateway: Some(GW),
                oif: 3,
                ..
            }
        ));
        // Put back (as the kernel would report the additions): nothing missing any more.
        let mut m6b = addr(kind::NEWADDR, 0, 3, g6, 64);
        m6b[16 + 2] = IFA_F_PERMANENT;
        feed(&mut k, &m6b);
        let mut st = default_via(GW, 3, TABLE_MAIN, 0);
        st.dst = Some(("203.0.113.0".parse().unwrap(), 24));
        feed(&mut k, &route(kind::NEWROUTE, 0, 0, &st));
        feed(
            &mut k,
            &route(kind::NEWROUTE, 0, 0, &default_via(GW, 3, 100, 0)),
        );
        assert!(k.missing(0, &snap).is_empty());
        feed(&mut k, &link(kind::DELLINK, 0, 3, "nh0", 0));
        assert!(
            k.missing(0, &snap).is_empty(),
            "nothing to do while it is gone"
        );
        assert!(k.snapshot(0).is_none());
    }

    #[test]
    fn other_kernel_routes_are_not_kept() {
        let (mut k, _) = lab(None);
        let mut r = default_via(GW, 3, TABLE_MAIN, 0);
        r.dst = Some(("198.51.100.0".parse().unwrap(), 24));
        r.gw = None;
        r.proto = 2; // RTPROT_KERNEL: the connected route, which comes back by itself
        feed(&mut k, &route(kind::NEWROUTE, 0, 0, &r));
        assert_eq!(
            k.iface(0).static_routes().count(),
            1,
            "only the lab's static one"
        );
    }
}
