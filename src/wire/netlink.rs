//! rtnetlink messages (netlink(7), rtnetlink(7)): the 16-byte `nlmsghdr`, the fixed headers
//! of link (`ifinfomsg`), address (`ifaddrmsg`), route (`rtmsg`) and neighbour (`ndmsg`)
//! messages, and the `rtattr` type-length-value attributes after them; plus the dump requests
//! netheal sends. Checked views over borrowed bytes, smoltcp style: every length is checked
//! before a field is read, field positions are named ranges, and no input panics (the truncation
//! tables below feed every prefix of captured messages).
//!
//! Netlink is host byte order (it never leaves the machine); addresses inside attributes are
//! network order. Only the attributes netheal uses are decoded; the rest are skipped.
#![forbid(unsafe_code)]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::{Family, WireError};

/// Netlink message alignment (NLMSG_ALIGNTO) and attribute alignment (RTA_ALIGNTO).
const ALIGN: usize = 4;

fn align(len: usize) -> usize {
    len.saturating_add(ALIGN - 1) & !(ALIGN - 1)
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// Field positions (include/uapi/linux/netlink.h, rtnetlink.h, if_link.h, neighbour.h).
mod field {
    use std::ops::Range;
    // struct nlmsghdr
    pub const LENGTH: Range<usize> = 0..4;
    pub const TYPE: Range<usize> = 4..6;
    pub const FLAGS: Range<usize> = 6..8;
    pub const SEQ: Range<usize> = 8..12;
    pub const PORT: Range<usize> = 12..16;
    pub const HEADER_LEN: usize = 16;
    // struct nlmsgerr: int error, then the request's header
    pub const ERRNO: Range<usize> = 0..4;
    // struct ifinfomsg (16 bytes): family, pad, type, index, flags, change
    pub const IFI_INDEX: Range<usize> = 4..8;
    pub const IFI_FLAGS: Range<usize> = 8..12;
    pub const IFINFO_LEN: usize = 16;
    // struct ifaddrmsg (8 bytes): family, prefixlen, flags, scope, index
    pub const IFA_FAMILY: usize = 0;
    pub const IFA_PREFIXLEN: usize = 1;
    pub const IFA_FLAGS: usize = 2;
    pub const IFA_SCOPE: usize = 3;
    pub const IFA_INDEX: Range<usize> = 4..8;
    pub const IFADDR_LEN: usize = 8;
    // struct rtmsg (12 bytes): family, dst_len, src_len, tos, table, protocol, scope, type,
    // flags
    pub const RTM_FAMILY: usize = 0;
    pub const RTM_DST_LEN: usize = 1;
    pub const RTM_TABLE: usize = 4;
    pub const RTM_PROTOCOL: usize = 5;
    pub const RTM_TYPE: usize = 7;
    pub const RTMSG_LEN: usize = 12;
    // struct ndmsg (12 bytes): family, pad, pad, index, state, flags, type
    pub const NDM_FAMILY: usize = 0;
    pub const NDM_INDEX: Range<usize> = 4..8;
    pub const NDM_STATE: Range<usize> = 8..10;
    pub const NDMSG_LEN: usize = 12;
    // struct rtattr: length, type, then the value
    pub const RTA_LENGTH: Range<usize> = 0..2;
    pub const RTA_TYPE: Range<usize> = 2..4;
    pub const RTA_HEADER_LEN: usize = 4;
    // struct rtnexthop (8 bytes): len, flags, hops, ifindex, then attributes
    pub const RTNH_LEN: Range<usize> = 0..2;
    pub const RTNH_IFINDEX: Range<usize> = 4..8;
    pub const RTNH_HEADER_LEN: usize = 8;
}

pub use field::HEADER_LEN;

/// Message types (netlink.h, rtnetlink.h).
pub mod kind {
    pub const NOOP: u16 = 1;
    pub const ERROR: u16 = 2;
    pub const DONE: u16 = 3;
    pub const OVERRUN: u16 = 4;
    pub const NEWLINK: u16 = 16;
    pub const DELLINK: u16 = 17;
    pub const GETLINK: u16 = 18;
    pub const NEWADDR: u16 = 20;
    pub const DELADDR: u16 = 21;
    pub const GETADDR: u16 = 22;
    pub const NEWROUTE: u16 = 24;
    pub const DELROUTE: u16 = 25;
    pub const GETROUTE: u16 = 26;
    pub const NEWNEIGH: u16 = 28;
    pub const DELNEIGH: u16 = 29;
    pub const GETNEIGH: u16 = 30;
}

/// Header flags (netlink.h).
pub mod flag {
    pub const REQUEST: u16 = 0x1;
    pub const MULTI: u16 = 0x2;
    pub const ACK: u16 = 0x4;
    /// The dump changed while it was being sent: it is inconsistent, do it again.
    pub const DUMP_INTR: u16 = 0x10;
    pub const ROOT: u16 = 0x100;
    pub const MATCH: u16 = 0x200;
    pub const DUMP: u16 = ROOT | MATCH;
    /// On RTM_NEWROUTE: the route replaced an existing one with the same key.
    pub const REPLACE: u16 = 0x100;
}

/// Interface flags (netdevice(7)).
pub const IFF_UP: u32 = 0x1;
pub const IFF_RUNNING: u32 = 0x40;
pub const IFF_LOWER_UP: u32 = 0x1_0000;

const AF_UNSPEC: u8 = 0;
const AF_INET: u8 = 2;
const AF_INET6: u8 = 10;

fn family_of(af: u8) -> Option<Family> {
    match af {
        AF_INET => Some(Family::V4),
        AF_INET6 => Some(Family::V6),
        _ => None,
    }
}

fn af(family: Option<Family>) -> u8 {
    match family {
        None => AF_UNSPEC,
        Some(Family::V4) => AF_INET,
        Some(Family::V6) => AF_INET6,
    }
}

/// An address attribute of `family`: 4 or 16 bytes, anything else is not one.
fn addr(family: Family, value: &[u8]) -> Option<IpAddr> {
    match family {
        Family::V4 => <[u8; 4]>::try_from(value)
            .ok()
            .map(|a| IpAddr::V4(Ipv4Addr::from(a))),
        Family::V6 => <[u8; 16]>::try_from(value)
            .ok()
            .map(|a| IpAddr::V6(Ipv6Addr::from(a))),
    }
}

/// One netlink message: a checked view whose header length fits the buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NlMsg<'a> {
    buf: &'a [u8],
}

impl<'a> NlMsg<'a> {
    /// The message at the start of `buf`: its stated length is at least a header and at most
    /// the buffer. Returns it and what follows it (after alignment padding).
    pub fn new_checked(buf: &'a [u8]) -> Result<(NlMsg<'a>, &'a [u8]), WireError> {
        let len = u32_at(buf, field::LENGTH.start).ok_or(WireError::Truncated)? as usize;
        if buf.len() < field::HEADER_LEN || len < field::HEADER_LEN || len > buf.len() {
            return Err(WireError::Truncated);
        }
        let rest = buf.get(align(len)..).unwrap_or(&[]);
        Ok((NlMsg { buf: &buf[..len] }, rest))
    }

    pub fn kind(&self) -> u16 {
        u16_at(self.buf, field::TYPE.start).unwrap_or(0)
    }

    pub fn flags(&self) -> u16 {
        u16_at(self.buf, field::FLAGS.start).unwrap_or(0)
    }

    pub fn seq(&self) -> u32 {
        u32_at(self.buf, field::SEQ.start).unwrap_or(0)
    }

    pub fn port(&self) -> u32 {
        u32_at(self.buf, field::PORT.start).unwrap_or(0)
    }

    pub fn payload(&self) -> &'a [u8] {
        &self.buf[field::HEADER_LEN..]
    }
}

/// The messages of one datagram, in order; stops at the first malformed one (the rest of the
/// datagram cannot be framed then) after yielding the error.
#[derive(Debug, Clone)]
pub struct Messages<'a> {
    rest: &'a [u8],
}

impl<'a> Messages<'a> {
    pub fn new(datagram: &'a [u8]) -> Self {
        Messages { rest: datagram }
    }
}

impl<'a> Iterator for Messages<'a> {
    type Item = Result<NlMsg<'a>, WireError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        match NlMsg::new_checked(self.rest) {
            Ok((msg, rest)) => {
                self.rest = rest;
                Some(Ok(msg))
            }
            Err(e) => {
                self.rest = &[];
                Some(Err(e))
            }
        }
    }
}

/// The attributes after a fixed header: (type, value) pairs. The nested and byte-order flag
/// bits are masked off the type. A malformed attribute ends the walk (the kernel never sends
/// one; a short read would otherwise make us guess).
#[derive(Debug, Clone)]
pub struct Attrs<'a> {
    rest: &'a [u8],
}

impl<'a> Attrs<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Attrs { rest: buf }
    }
}

impl<'a> Iterator for Attrs<'a> {
    type Item = (u16, &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        let len = u16_at(self.rest, field::RTA_LENGTH.start)? as usize;
        let ty = u16_at(self.rest, field::RTA_TYPE.start)? & 0x3fff;
        if len < field::RTA_HEADER_LEN || len > self.rest.len() {
            self.rest = &[];
            return None;
        }
        let value = &self.rest[field::RTA_HEADER_LEN..len];
        self.rest = self.rest.get(align(len)..).unwrap_or(&[]);
        Some((ty, value))
    }
}

/// An interface name as the kernel sends it (IFLA_IFNAME, at most IFNAMSIZ - 1 bytes),
/// kept inline so parsing a link message allocates nothing.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct IfName {
    len: u8,
    bytes: [u8; 15],
}

impl IfName {
    fn parse(value: &[u8]) -> Option<IfName> {
        let value = value.split(|&b| b == 0).next().unwrap_or(&[]);
        if value.is_empty() || value.len() > 15 {
            return None;
        }
        let mut bytes = [0; 15];
        bytes[..value.len()].copy_from_slice(value);
        Some(IfName {
            len: value.len() as u8,
            bytes,
        })
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }

    /// The name, or "?" for one that is not UTF-8 (Linux allows any bytes but '/', ':' and
    /// whitespace).
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(self.as_bytes()).unwrap_or("?")
    }
}

impl std::fmt::Debug for IfName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.as_str())
    }
}

/// IFLA_* (if_link.h)
const IFLA_IFNAME: u16 = 3;
const IFLA_OPERSTATE: u16 = 16;
/// RFC 2863 operstates as IFLA_OPERSTATE carries them.
pub const IF_OPER_UNKNOWN: u8 = 0;
pub const IF_OPER_UP: u8 = 6;

/// RTM_NEWLINK / RTM_DELLINK.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Link {
    pub index: u32,
    pub flags: u32,
    pub name: Option<IfName>,
    pub operstate: Option<u8>,
}

impl Link {
    pub fn parse(payload: &[u8]) -> Result<Link, WireError> {
        if payload.len() < field::IFINFO_LEN {
            return Err(WireError::Truncated);
        }
        let mut link = Link {
            index: u32_at(payload, field::IFI_INDEX.start).unwrap_or(0),
            flags: u32_at(payload, field::IFI_FLAGS.start).unwrap_or(0),
            name: None,
            operstate: None,
        };
        for (ty, value) in Attrs::new(&payload[field::IFINFO_LEN..]) {
            match ty {
                IFLA_IFNAME => link.name = IfName::parse(value),
                IFLA_OPERSTATE => link.operstate = value.first().copied(),
                _ => {}
            }
        }
        Ok(link)
    }

    pub fn admin_up(&self) -> bool {
        self.flags & IFF_UP != 0
    }

    /// The physical layer is up (netdevice(7): IFF_LOWER_UP, "driver signals L1 up"). An
    /// operstate other than UP or UNKNOWN (RFC 2863; UNKNOWN is what drivers without carrier
    /// reporting leave) also means no carrier: LOWERLAYERDOWN, DORMANT, DOWN...
    pub fn carrier(&self) -> bool {
        self.flags & IFF_LOWER_UP != 0
            && self
                .operstate
                .is_none_or(|s| s == IF_OPER_UP || s == IF_OPER_UNKNOWN)
    }
}

/// IFA_* (if_addr.h)
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;

/// RTM_NEWADDR / RTM_DELADDR.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Addr {
    pub family: Family,
    pub prefix_len: u8,
    pub flags: u8,
    pub scope: u8,
    pub index: u32,
    /// The interface's own address: IFA_LOCAL where the kernel sends one (IPv4; for
    /// point-to-point links IFA_ADDRESS is the peer's), else IFA_ADDRESS.
    pub addr: IpAddr,
}

impl Addr {
    /// `Ok(None)` for a family other than IPv4 and IPv6, or a message without an address.
    pub fn parse(payload: &[u8]) -> Result<Option<Addr>, WireError> {
        if payload.len() < field::IFADDR_LEN {
            return Err(WireError::Truncated);
        }
        let Some(family) = family_of(payload[field::IFA_FAMILY]) else {
            return Ok(None);
        };
        let (mut local, mut address) = (None, None);
        for (ty, value) in Attrs::new(&payload[field::IFADDR_LEN..]) {
            match ty {
                IFA_LOCAL => local = addr(family, value),
                IFA_ADDRESS => address = addr(family, value),
                _ => {}
            }
        }
        Ok(local.or(address).map(|addr| Addr {
            family,
            prefix_len: payload[field::IFA_PREFIXLEN],
            flags: payload[field::IFA_FLAGS],
            scope: payload[field::IFA_SCOPE],
            index: u32_at(payload, field::IFA_INDEX.start).unwrap_or(0),
            addr,
        }))
    }
}

/// RTA_* (rtnetlink.h)
const RTA_DST: u16 = 1;
const RTA_OIF: u16 = 4;
const RTA_GATEWAY: u16 = 5;
const RTA_PRIORITY: u16 = 6;
const RTA_MULTIPATH: u16 = 9;
const RTA_TABLE: u16 = 15;
/// rtm_type RTN_UNICAST: a route that forwards (not local, broadcast, unreachable...).
pub const RTN_UNICAST: u8 = 1;

/// RTM_NEWROUTE / RTM_DELROUTE, as far as netheal cares: one next hop (the first of a
/// multipath route; see `next_hops` for all of them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route<'a> {
    pub family: Family,
    pub dst_len: u8,
    /// RTA_TABLE when present (tables above 255), else rtm_table.
    pub table: u32,
    pub protocol: u8,
    /// rtm_type (RTN_UNICAST...).
    pub kind: u8,
    pub dst: Option<IpAddr>,
    pub oif: Option<u32>,
    pub gateway: Option<IpAddr>,
    /// The metric; 0 when absent (IPv4 routes added without one).
    pub priority: u32,
    multipath: &'a [u8],
}

impl<'a> Route<'a> {
    /// `Ok(None)` for a family other than IPv4 and IPv6.
    pub fn parse(payload: &'a [u8]) -> Result<Option<Route<'a>>, WireError> {
        if payload.len() < field::RTMSG_LEN {
            return Err(WireError::Truncated);
        }
        let Some(family) = family_of(payload[field::RTM_FAMILY]) else {
            return Ok(None);
        };
        let mut r = Route {
            family,
            dst_len: payload[field::RTM_DST_LEN],
            table: u32::from(payload[field::RTM_TABLE]),
            protocol: payload[field::RTM_PROTOCOL],
            kind: payload[field::RTM_TYPE],
            dst: None,
            oif: None,
            gateway: None,
            priority: 0,
            multipath: &[],
        };
        for (ty, value) in Attrs::new(&payload[field::RTMSG_LEN..]) {
            match ty {
                RTA_DST => r.dst = addr(family, value),
                RTA_OIF => r.oif = u32_at(value, 0),
                RTA_GATEWAY => r.gateway = addr(family, value),
                RTA_PRIORITY => r.priority = u32_at(value, 0).unwrap_or(0),
                RTA_TABLE => r.table = u32_at(value, 0).unwrap_or(r.table),
                RTA_MULTIPATH => r.multipath = value,
                _ => {}
            }
        }
        if r.oif.is_none() {
            if let Some((oif, gw)) = r.next_hops().next() {
                r.oif = Some(oif);
                r.gateway = r.gateway.or(gw);
            }
        }
        Ok(Some(r))
    }

    /// A default route: no destination prefix.
    pub fn is_default(&self) -> bool {
        self.dst_len == 0
    }

    /// The (interface, gateway) pairs of a multipath route (struct rtnexthop list), or
    /// nothing for a plain one. A malformed entry ends the list.
    pub fn next_hops(&self) -> impl Iterator<Item = (u32, Option<IpAddr>)> + 'a {
        let family = self.family;
        let mut rest = self.multipath;
        std::iter::from_fn(move || {
            let len = usize::from(u16_at(rest, field::RTNH_LEN.start)?);
            let oif = u32_at(rest, field::RTNH_IFINDEX.start)?;
            if len < field::RTNH_HEADER_LEN || len > rest.len() {
                rest = &[];
                return None;
            }
            let gw = Attrs::new(&rest[field::RTNH_HEADER_LEN..len])
                .find(|(ty, _)| *ty == RTA_GATEWAY)
                .and_then(|(_, v)| addr(family, v));
            rest = rest.get(align(len)..).unwrap_or(&[]);
            Some((oif, gw))
        })
    }
}

/// NDA_DST, NDA_LLADDR (neighbour.h)
const NDA_DST: u16 = 1;
const NDA_LLADDR: u16 = 2;
/// Neighbour states (NUD_*, neighbour.h).
pub const NUD_INCOMPLETE: u16 = 0x01;
pub const NUD_REACHABLE: u16 = 0x02;
pub const NUD_STALE: u16 = 0x04;
pub const NUD_DELAY: u16 = 0x08;
pub const NUD_PROBE: u16 = 0x10;
pub const NUD_FAILED: u16 = 0x20;
pub const NUD_NOARP: u16 = 0x40;
pub const NUD_PERMANENT: u16 = 0x80;

/// RTM_NEWNEIGH / RTM_DELNEIGH.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Neigh {
    pub family: Family,
    pub index: u32,
    pub state: u16,
    pub dst: IpAddr,
    /// The entry's link-layer address (NDA_LLADDR), when it has an Ethernet-sized one
    /// (INCOMPLETE and FAILED entries have none; other link types' are not read).
    pub lladdr: Option<[u8; 6]>,
}

impl Neigh {
    /// `Ok(None)` for a family other than IPv4 and IPv6 (bridge FDB entries...) or an entry
    /// without a destination.
    pub fn parse(payload: &[u8]) -> Result<Option<Neigh>, WireError> {
        if payload.len() < field::NDMSG_LEN {
            return Err(WireError::Truncated);
        }
        let Some(family) = family_of(payload[field::NDM_FAMILY]) else {
            return Ok(None);
        };
        let attrs = || Attrs::new(&payload[field::NDMSG_LEN..]);
        let dst = attrs()
            .find(|(ty, _)| *ty == NDA_DST)
            .and_then(|(_, v)| addr(family, v));
        let lladdr = attrs()
            .find(|(ty, _)| *ty == NDA_LLADDR)
            .and_then(|(_, v)| <[u8; 6]>::try_from(v).ok());
        Ok(dst.map(|dst| Neigh {
            family,
            index: u32_at(payload, field::NDM_INDEX.start).unwrap_or(0),
            state: u16_at(payload, field::NDM_STATE.start).unwrap_or(0),
            dst,
            lladdr,
        }))
    }
}

/// A parsed message, as far as netheal reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Message<'a> {
    NewLink(Link),
    DelLink(Link),
    NewAddr(Addr),
    DelAddr(Addr),
    NewRoute(Route<'a>),
    DelRoute(Route<'a>),
    NewNeigh(Neigh),
    DelNeigh(Neigh),
    /// The end of a multi-part dump.
    Done,
    /// An error (negative errno) or, with 0, an acknowledgement.
    Error(i32),
    /// Anything else, including messages of families we do not read (NOOP, OVERRUN, ...).
    Other,
}

impl<'a> Message<'a> {
    pub fn parse(msg: &NlMsg<'a>) -> Result<Message<'a>, WireError> {
        let p = msg.payload();
        let or_other = |m: Option<Message<'a>>| m.unwrap_or(Message::Other);
        Ok(match msg.kind() {
            kind::NEWLINK => Message::NewLink(Link::parse(p)?),
            kind::DELLINK => Message::DelLink(Link::parse(p)?),
            kind::NEWADDR => or_other(Addr::parse(p)?.map(Message::NewAddr)),
            kind::DELADDR => or_other(Addr::parse(p)?.map(Message::DelAddr)),
            kind::NEWROUTE => or_other(Route::parse(p)?.map(Message::NewRoute)),
            kind::DELROUTE => or_other(Route::parse(p)?.map(Message::DelRoute)),
            kind::NEWNEIGH => or_other(Neigh::parse(p)?.map(Message::NewNeigh)),
            kind::DELNEIGH => or_other(Neigh::parse(p)?.map(Message::DelNeigh)),
            kind::DONE => Message::Done,
            kind::ERROR => {
                let errno = u32_at(p, field::ERRNO.start).ok_or(WireError::Truncated)?;
                Message::Error(errno as i32)
            }
            _ => Message::Other,
        })
    }
}

/// The dumps netheal asks for at start and after lost events, in this order: links first,
/// so that addresses, routes and neighbours find the interfaces they name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dump {
    Links,
    Addrs,
    Routes(Family),
    Neighs,
}

impl Dump {
    pub const ALL: [Dump; 5] = [
        Dump::Links,
        Dump::Addrs,
        Dump::Routes(Family::V4),
        Dump::Routes(Family::V6),
        Dump::Neighs,
    ];

    /// The largest request `emit` writes.
    pub const MAX_LEN: usize = field::HEADER_LEN + field::IFINFO_LEN;

    /// Writes the dump request with sequence number `seq` at the start of `buf`; its length,
    /// or None when `buf` is too short (nothing is written then).
    pub fn emit(self, seq: u32, buf: &mut [u8]) -> Option<usize> {
        let (ty, family, body) = match self {
            Dump::Links => (kind::GETLINK, None, field::IFINFO_LEN),
            Dump::Addrs => (kind::GETADDR, None, field::IFADDR_LEN),
            Dump::Routes(f) => (kind::GETROUTE, Some(f), field::RTMSG_LEN),
            Dump::Neighs => (kind::GETNEIGH, None, field::NDMSG_LEN),
        };
        let len = field::HEADER_LEN + body;
        let out = buf.get_mut(..len)?;
        out.fill(0);
        out[field::LENGTH].copy_from_slice(&(len as u32).to_ne_bytes());
        out[field::TYPE].copy_from_slice(&ty.to_ne_bytes());
        out[field::FLAGS].copy_from_slice(&(flag::REQUEST | flag::DUMP).to_ne_bytes());
        out[field::SEQ].copy_from_slice(&seq.to_ne_bytes());
        // Every fixed header starts with its family byte; port 0 lets the kernel fill ours.
        out[field::HEADER_LEN] = af(family);
        Some(len)
    }
}

/// ifa_flags bits (if_addr.h) netheal reads or sets.
pub const IFA_F_NODAD: u8 = 0x02;
pub const IFA_F_PERMANENT: u8 = 0x80;
/// Route scopes (rtnetlink.h).
const RT_SCOPE_UNIVERSE: u8 = 0;
const RT_SCOPE_LINK: u8 = 253;
/// Request flags for a change: create it, and fail (EEXIST) if it is already there.
const NLM_F_EXCL: u16 = 0x200;
const NLM_F_CREATE: u16 = 0x400;

/// A change netheal asks the kernel for: putting back an address or a route that a link
/// bounce removed (the `link` heal step).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    AddAddr {
        index: u32,
        addr: IpAddr,
        prefix_len: u8,
        scope: u8,
    },
    AddRoute {
        family: Family,
        dst: Option<IpAddr>,
        dst_len: u8,
        table: u32,
        protocol: u8,
        metric: u32,
        oif: u32,
        gateway: Option<IpAddr>,
    },
}

/// Appends one attribute at `*at`; None when `out` is too short.
fn put_attr(out: &mut [u8], at: &mut usize, ty: u16, value: &[u8]) -> Option<()> {
    let len = field::RTA_HEADER_LEN + value.len();
    let end = at.checked_add(align(len))?;
    let dst = out.get_mut(*at..end)?;
    dst.fill(0);
    dst[field::RTA_LENGTH].copy_from_slice(&(len as u16).to_ne_bytes());
    dst[field::RTA_TYPE].copy_from_slice(&ty.to_ne_bytes());
    dst[field::RTA_HEADER_LEN..len].copy_from_slice(value);
    *at = end;
    Some(())
}

fn ip_octets(a: &IpAddr) -> ([u8; 16], usize) {
    let mut b = [0; 16];
    match a {
        IpAddr::V4(a) => {
            b[..4].copy_from_slice(&a.octets());
            (b, 4)
        }
        IpAddr::V6(a) => (a.octets(), 16),
    }
}

impl Change {
    /// The largest request `emit` writes.
    pub const MAX_LEN: usize = 128;

    /// Writes the request (with an ACK asked for) at the start of `buf`; its length, or None
    /// when `buf` is too short.
    pub fn emit(&self, seq: u32, buf: &mut [u8]) -> Option<usize> {
        let out = buf.get_mut(..Self::MAX_LEN)?;
        out.fill(0);
        let h = field::HEADER_LEN;
        let (ty, mut at) = match *self {
            Change::AddAddr {
                index,
                addr,
                prefix_len,
                scope,
            } => {
                out[h + field::IFA_FAMILY] = af(Some(Family::of(addr)));
                out[h + field::IFA_PREFIXLEN] = prefix_len;
                // No duplicate address detection: the address was in use a moment ago.
                out[h + field::IFA_FLAGS] = IFA_F_NODAD;
                out[h + field::IFA_SCOPE] = scope;
                out[h + field::IFA_INDEX.start..h + field::IFA_INDEX.end]
                    .copy_from_slice(&index.to_ne_bytes());
                let mut at = h + field::IFADDR_LEN;
                let (b, n) = ip_octets(&addr);
                put_attr(out, &mut at, IFA_LOCAL, &b[..n])?;
                put_attr(out, &mut at, IFA_ADDRESS, &b[..n])?;
                (kind::NEWADDR, at)
            }
            Change::AddRoute {
                family,
                dst,
                dst_len,
                table,
                protocol,
                metric,
                oif,
                gateway,
            } => {
                out[h + field::RTM_FAMILY] = af(Some(family));
                out[h + field::RTM_DST_LEN] = dst_len;
                out[h + field::RTM_TABLE] = u8::try_from(table).unwrap_or(0);
                out[h + field::RTM_PROTOCOL] = protocol;
                out[h + 6] = if gateway.is_some() {
                    RT_SCOPE_UNIVERSE
                } else {
                    RT_SCOPE_LINK
                };
                out[h + field::RTM_TYPE] = RTN_UNICAST;
                let mut at = h + field::RTMSG_LEN;
                put_attr(out, &mut at, RTA_TABLE, &table.to_ne_bytes())?;
                if let Some(d) = dst.filter(|_| dst_len > 0) {
                    let (b, n) = ip_octets(&d);
                    put_attr(out, &mut at, RTA_DST, &b[..n])?;
                }
                if let Some(g) = gateway {
                    let (b, n) = ip_octets(&g);
                    put_attr(out, &mut at, RTA_GATEWAY, &b[..n])?;
                }
                put_attr(out, &mut at, RTA_OIF, &oif.to_ne_bytes())?;
                put_attr(out, &mut at, RTA_PRIORITY, &metric.to_ne_bytes())?;
                (kind::NEWROUTE, at)
            }
        };
        let flags = flag::REQUEST | flag::ACK | NLM_F_CREATE | NLM_F_EXCL;
        out[field::LENGTH].copy_from_slice(&(at as u32).to_ne_bytes());
        out[field::TYPE].copy_from_slice(&ty.to_ne_bytes());
        out[field::FLAGS].copy_from_slice(&flags.to_ne_bytes());
        out[field::SEQ].copy_from_slice(&seq.to_ne_bytes());
        at = at.min(Self::MAX_LEN);
        Some(at)
    }
}

#[cfg(test)]
mod tests {
    use super::super::netlink_fixtures as fx;
    use super::*;

    fn one(hex: &str) -> Vec<u8> {
        fx::bytes(hex)
    }

    fn parse(bytes: &[u8]) -> Result<Message<'_>, WireError> {
        let (msg, rest) = NlMsg::new_checked(bytes)?;
        assert!(rest.is_empty());
        Message::parse(&msg)
    }

    fn v4(a: [u8; 4]) -> IpAddr {
        IpAddr::V4(Ipv4Addr::from(a))
    }

    #[cfg(target_endian = "little")]
    mod captured {
        use super::*;

        #[test]
        fn link_up_with_carrier() {
            let b = one(fx::LINK_NLC0_UP);
            let (msg, _) = NlMsg::new_checked(&b).unwrap();
            assert_eq!((msg.kind(), msg.seq()), (kind::NEWLINK, 1));
            assert_ne!(msg.flags() & flag::MULTI, 0);
            let Message::NewLink(l) = parse(&b).unwrap() else {
                panic!("not a link")
            };
            assert_eq!(l.index, 3);
            assert_eq!(l.name.unwrap().as_str(), "nlc0");
            assert_eq!(l.operstate, Some(IF_OPER_UP));
            assert!(l.admin_up() && l.carrier());
        }

        #[test]
        fn link_without_carrier() {
            let b = one(fx::LINK_NLC0_NO_CARRIER);
            let Message::NewLink(l) = parse(&b).unwrap() else {
                panic!("not a link")
            };
            assert_eq!((l.index, l.name.unwrap().as_str()), (3, "nlc0"));
            assert!(l.admin_up());
            assert!(!l.carrier());
            assert_eq!(l.operstate, Some(3), "IF_OPER_LOWERLAYERDOWN");
        }

        #[test]
        fn link_deleted() {
            let b = one(fx::DELLINK_NLC0);
            let Message::DelLink(l) = parse(&b).unwrap() else {
                panic!("not a deleted link")
            };
            assert_eq!((l.index, l.name.unwrap().as_str()), (3, "nlc0"));
        }

        #[test]
        fn addresses() {
            let b = one(fx::ADDR4_NLC0);
            let Message::NewAddr(a) = parse(&b).unwrap() else {
                panic!("not an address")
            };
            assert_eq!(
                (a.family, a.index, a.prefix_len, a.addr),
                (Family::V4, 3, 24, v4([198, 51, 100, 2]))
            );
            let b = one(fx::ADDR6_GLOBAL);
            let Message::NewAddr(a) = parse(&b).unwrap() else {
                panic!("not an address")
            };
            assert_eq!(a.addr, "2001:db8::2".parse::<IpAddr>().unwrap());
            assert_eq!(
                (a.family, a.index, a.prefix_len, a.scope),
                (Family::V6, 3, 64, 0)
            );
        }

        #[test]
        fn default_routes_in_two_tables() {
            let b = one(fx::ROUTE4_TABLE100);
            let Message::NewRoute(r) = parse(&b).unwrap() else {
                panic!("not a route")
            };
            assert!(r.is_default());
            assert_eq!(
                (r.table, r.oif, r.gateway, r.priority, r.kind),
                (100, Some(3), Some(v4([198, 51, 100, 1])), 0, RTN_UNICAST)
            );
            let b = one(fx::ROUTE4_MAIN_METRIC100);
            let Message::NewRoute(r) = parse(&b).unwrap() else {
                panic!("not a route")
            };
            assert_eq!((r.table, r.oif, r.priority), (254, Some(3), 100));
            let b = one(fx::ROUTE4_DELETED);
            let Message::DelRoute(r) = parse(&b).unwrap() else {
                panic!("not a deleted route")
            };
            assert_eq!((r.table, r.oif, r.priority), (254, Some(3), 100));
        }

        #[test]
        fn connected_and_v6_routes() {
            let b = one(fx::ROUTE4_CONNECTED);
            let Message::NewRoute(r) = parse(&b).unwrap() else {
                panic!("not a route")
            };
            assert!(!r.is_default());
            assert_eq!(
                (r.dst, r.dst_len, r.oif),
                (Some(v4([198, 51, 100, 0])), 24, Some(3))
            );
            assert_eq!(r.gateway, None);
            let b = one(fx::ROUTE6_DEFAULT);
            let Message::NewRoute(r) = parse(&b).unwrap() else {
                panic!("not a route")
            };
            assert!(r.is_default());
            assert_eq!(r.gateway, Some("fe80::1".parse().unwrap()));
            assert_eq!(
                (r.family, r.table, r.oif, r.priority),
                (Family::V6, 254, Some(3), 1024)
            );
        }

        #[test]
        fn neighbour() {
            let b = one(fx::NEIGH4_REACHABLE);
            let Message::NewNeigh(n) = parse(&b).unwrap() else {
                panic!("not a neighbour")
            };
            assert_eq!(
                (n.family, n.index, n.state, n.dst),
                (Family::V4, 3, NUD_REACHABLE, v4([198, 51, 100, 1]))
            );
            assert_eq!(n.lladdr, Some([2, 0, 0, 0, 0, 1]), "NDA_LLADDR");
        }

        #[test]
        fn done_and_error() {
            assert_eq!(parse(&one(fx::DONE)), Ok(Message::Done));
            let b = one(fx::ERROR_ENODEV);
            let (msg, _) = NlMsg::new_checked(&b).unwrap();
            assert_eq!(msg.seq(), 7);
            assert_eq!(parse(&b), Ok(Message::Error(-19)));
        }

        #[test]
        fn a_datagram_of_several_messages() {
            let mut d = one(fx::ADDR4_NLC0);
            d.extend(one(fx::ROUTE6_DEFAULT));
            d.extend(one(fx::DONE));
            let kinds: Vec<u16> = Messages::new(&d).map(|m| m.unwrap().kind()).collect();
            assert_eq!(kinds, [kind::NEWADDR, kind::NEWROUTE, kind::DONE]);
        }

        /// Every prefix of every captured message: the framing says Truncated, or (when the
        /// cut falls between attributes after a re-stated length) parsing ends without a panic.
        #[test]
        fn truncated_inputs() {
            for hex in [
                fx::LINK_NLC0_UP,
                fx::LINK_NLC0_NO_CARRIER,
                fx::DELLINK_NLC0,
                fx::ADDR4_NLC0,
                fx::ADDR6_GLOBAL,
                fx::ROUTE4_TABLE100,
                fx::ROUTE4_MAIN_METRIC100,
                fx::ROUTE4_CONNECTED,
                fx::ROUTE6_DEFAULT,
                fx::ROUTE4_DELETED,
                fx::NEIGH4_REACHABLE,
                fx::DONE,
                fx::ERROR_ENODEV,
            ] {
                let full = one(hex);
                for len in 0..full.len() {
                    let cut = &full[..len];
                    assert_eq!(
                        NlMsg::new_checked(cut).map(|_| ()),
                        Err(WireError::Truncated),
                        "{len} of {}",
                        full.len()
                    );
                    assert_eq!(
                        Messages::new(cut).next().map(|m| m.is_err()),
                        (len > 0).then_some(true)
                    );
                    // The same prefix with its length field re-stated: the header frames it,
                    // the fixed header or an attribute is cut short.
                    if len >= HEADER_LEN {
                        let mut re = cut.to_vec();
                        re[field::LENGTH].copy_from_slice(&(len as u32).to_ne_bytes());
                        let (msg, _) = NlMsg::new_checked(&re).unwrap();
                        let _ = Message::parse(&msg);
                    }
                }
            }
        }
    }

    /// Mutated captures (random bytes overwritten, random lengths) never panic the framing, the
    /// parsers or the next-hop walk: a deterministic xorshift stands in for a fuzzer.
    #[test]
    fn mutated_inputs_do_not_panic() {
        let seeds = [
            fx::LINK_NLC0_UP,
            fx::ADDR6_GLOBAL,
            fx::ROUTE6_DEFAULT,
            fx::NEIGH4_REACHABLE,
            fx::ERROR_ENODEV,
        ];
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        let mut rnd = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for i in 0..20_000 {
            let mut b = one(seeds[i % seeds.len()]);
            for _ in 0..1 + rnd() % 8 {
                let at = (rnd() as usize) % b.len();
                b[at] = rnd() as u8;
            }
            b.truncate(1 + (rnd() as usize) % b.len());
            for m in Messages::new(&b).flatten() {
                if let Ok(Message::NewRoute(r) | Message::DelRoute(r)) = Message::parse(&m) {
                    let _ = r.next_hops().count();
                }
            }
        }
    }

    /// Fixed headers shorter than their struct are Truncated, whatever the message type.
    #[test]
    fn short_fixed_headers() {
        for (ty, need) in [
            (kind::NEWLINK, field::IFINFO_LEN),
            (kind::DELADDR, field::IFADDR_LEN),
            (kind::NEWROUTE, field::RTMSG_LEN),
            (kind::DELNEIGH, field::NDMSG_LEN),
            (kind::ERROR, 4),
        ] {
            for body in 0..need {
                let len = HEADER_LEN + body;
                let mut b = vec![0u8; len];
                b[field::LENGTH].copy_from_slice(&(len as u32).to_ne_bytes());
                b[field::TYPE].copy_from_slice(&ty.to_ne_bytes());
                b[HEADER_LEN..].fill(AF_INET);
                let (msg, _) = NlMsg::new_checked(&b).unwrap();
                assert_eq!(
                    Message::parse(&msg),
                    Err(WireError::Truncated),
                    "{ty} {body}"
                );
            }
        }
    }

    #[test]
    fn bad_lengths() {
        // stated length below a header, above the buffer, and a zero-length attribute
        for stated in [0u32, 15, 33, u32::MAX] {
            let mut b = vec![0u8; 32];
            b[field::LENGTH].copy_from_slice(&stated.to_ne_bytes());
            assert_eq!(
                NlMsg::new_checked(&b).map(|_| ()),
                Err(WireError::Truncated)
            );
        }
        assert_eq!(Attrs::new(&[0, 0, 1, 0, 9, 9, 9, 9]).count(), 0);
        assert_eq!(Attrs::new(&[8, 0, 1, 0, 9, 9]).count(), 0);
        assert_eq!(Attrs::new(&[5, 0, 1, 0, 9, 0, 0, 0, 4, 0, 2, 0]).count(), 2);
    }

    /// A message written with the builders below parses back on any host byte order.
    fn message(ty: u16, fixed: &[u8], attrs: &[(u16, &[u8])]) -> Vec<u8> {
        let mut b = vec![0u8; HEADER_LEN];
        b.extend_from_slice(fixed);
        for (t, v) in attrs {
            b.extend_from_slice(&((4 + v.len()) as u16).to_ne_bytes());
            b.extend_from_slice(&t.to_ne_bytes());
            b.extend_from_slice(v);
            b.resize(align(b.len()), 0);
        }
        let len = b.len() as u32;
        b[field::LENGTH].copy_from_slice(&len.to_ne_bytes());
        b[field::TYPE].copy_from_slice(&ty.to_ne_bytes());
        b
    }

    #[test]
    fn multipath_default_route_names_its_first_hop() {
        let mut rtmsg = [0u8; 12];
        rtmsg[0] = AF_INET;
        rtmsg[4] = 254;
        rtmsg[7] = RTN_UNICAST;
        let mut hops = Vec::new();
        for (oif, gw) in [(7u32, [203, 0, 113, 1]), (3, [198, 51, 100, 1])] {
            hops.extend_from_slice(&16u16.to_ne_bytes());
            hops.extend_from_slice(&[0, 0]);
            hops.extend_from_slice(&oif.to_ne_bytes());
            hops.extend_from_slice(&8u16.to_ne_bytes());
            hops.extend_from_slice(&RTA_GATEWAY.to_ne_bytes());
            hops.extend_from_slice(&gw);
        }
        let b = message(kind::NEWROUTE, &rtmsg, &[(RTA_MULTIPATH, &hops)]);
        let Message::NewRoute(r) = parse(&b).unwrap() else {
            panic!("not a route")
        };
        assert_eq!((r.oif, r.gateway), (Some(7), Some(v4([203, 0, 113, 1]))));
        let all: Vec<_> = r.next_hops().collect();
        assert_eq!(
            all,
            [
                (7, Some(v4([203, 0, 113, 1]))),
                (3, Some(v4([198, 51, 100, 1])))
            ]
        );
    }

    #[test]
    fn foreign_families_are_other() {
        let mut fixed = [0u8; 12];
        fixed[0] = 7; // AF_BRIDGE
        for ty in [kind::NEWROUTE, kind::NEWNEIGH, kind::NEWADDR] {
            let b = message(ty, &fixed, &[]);
            assert_eq!(parse(&b), Ok(Message::Other));
        }
        assert_eq!(parse(&message(kind::NOOP, &[], &[])), Ok(Message::Other));
    }

    #[test]
    fn names_are_bounded() {
        assert_eq!(IfName::parse(b"eth0\0").unwrap().as_str(), "eth0");
        assert!(IfName::parse(b"").is_none());
        assert!(IfName::parse(b"\0eth0").is_none());
        assert!(IfName::parse(&[b'a'; 16]).is_none());
        assert_eq!(IfName::parse(&[0xff, 0]).unwrap().as_str(), "?");
    }

    #[test]
    fn dump_requests() {
        let mut buf = [0xaau8; 64];
        for (i, d) in Dump::ALL.into_iter().enumerate() {
            let n = d.emit(40 + i as u32, &mut buf).unwrap();
            assert!(n <= Dump::MAX_LEN);
            let (msg, rest) = NlMsg::new_checked(&buf[..n]).unwrap();
            assert!(rest.is_empty());
            assert_eq!(msg.seq(), 40 + i as u32);
            assert_eq!(msg.flags(), flag::REQUEST | flag::DUMP);
            assert_eq!(msg.port(), 0);
            let (ty, fam, body) = match d {
                Dump::Links => (kind::GETLINK, AF_UNSPEC, 16),
                Dump::Addrs => (kind::GETADDR, AF_UNSPEC, 8),
                Dump::Routes(Family::V4) => (kind::GETROUTE, AF_INET, 12),
                Dump::Routes(Family::V6) => (kind::GETROUTE, AF_INET6, 12),
                Dump::Neighs => (kind::GETNEIGH, AF_UNSPEC, 12),
            };
            assert_eq!((msg.kind(), msg.payload().len()), (ty, body));
            assert_eq!(msg.payload()[0], fam);
            assert!(msg.payload()[1..].iter().all(|&b| b == 0));
        }
        assert_eq!(Dump::Links.emit(1, &mut [0; 31]), None);
    }

    /// Change requests parse back with our own parsers (what the kernel would read).
    #[test]
    fn change_requests_parse_back() {
        let mut buf = [0u8; Change::MAX_LEN];
        let a = Change::AddAddr {
            index: 7,
            addr: "2001:db8::2".parse().unwrap(),
            prefix_len: 64,
            scope: 0,
        };
        let n = a.emit(9, &mut buf).unwrap();
        let (msg, _) = NlMsg::new_checked(&buf[..n]).unwrap();
        assert_eq!((msg.kind(), msg.seq()), (kind::NEWADDR, 9));
        assert_eq!(msg.flags(), flag::REQUEST | flag::ACK | 0x600);
        let Message::NewAddr(p) = Message::parse(&msg).unwrap() else {
            panic!("not an address")
        };
        assert_eq!((p.index, p.prefix_len, p.flags), (7, 64, IFA_F_NODAD));
        assert_eq!(p.addr, "2001:db8::2".parse::<IpAddr>().unwrap());
        let r = Change::AddRoute {
            family: Family::V4,
            dst: None,
            dst_len: 0,
            table: 1000,
            protocol: 3,
            metric: 100,
            oif: 7,
            gateway: Some(v4([198, 51, 100, 1])),
        };
        let n = r.emit(10, &mut buf).unwrap();
        let (msg, _) = NlMsg::new_checked(&buf[..n]).unwrap();
        let Message::NewRoute(p) = Message::parse(&msg).unwrap() else {
            panic!("not a route")
        };
        assert!(p.is_default());
        assert_eq!(
            (p.table, p.oif, p.priority, p.gateway, p.protocol, p.kind),
            (
                1000,
                Some(7),
                100,
                Some(v4([198, 51, 100, 1])),
                3,
                RTN_UNICAST
            )
        );
        assert_eq!(buf[HEADER_LEN + 4], 0, "tables above 255 only in RTA_TABLE");
        let s = Change::AddRoute {
            family: Family::V6,
            dst: Some("2001:db8:5::".parse().unwrap()),
            dst_len: 48,
            table: 254,
            protocol: 4,
            metric: 1024,
            oif: 7,
            gateway: None,
        };
        let n = s.emit(11, &mut buf).unwrap();
        let (msg, _) = NlMsg::new_checked(&buf[..n]).unwrap();
        let Message::NewRoute(p) = Message::parse(&msg).unwrap() else {
            panic!("not a route")
        };
        assert_eq!((p.dst_len, p.table, p.gateway), (48, 254, None));
        assert_eq!(p.dst, Some("2001:db8:5::".parse().unwrap()));
        assert_eq!(buf[HEADER_LEN + 6], RT_SCOPE_LINK);
        assert_eq!(s.emit(1, &mut [0; 64]), None);
    }

    /// The request for a route dump, byte for byte as `ip route show table all` sends it
    /// (strace -x, sequence number aside), little-endian hosts only.
    #[cfg(target_endian = "little")]
    #[test]
    fn route_dump_request_bytes() {
        let mut buf = [0u8; 32];
        let n = Dump::Routes(Family::V4).emit(1, &mut buf).unwrap();
        assert_eq!(
            &buf[..n],
            &[
                0x1c, 0, 0, 0, 0x1a, 0, 0x01, 0x03, 1, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0,
                0, 0, 0, 0
            ]
        );
    }
}
