//! ARP for IPv4 over Ethernet (RFC 826): the 28-byte packet an AF_PACKET SOCK_DGRAM socket
//! hands us (the kernel strips and adds the Ethernet header; packet(7)). We build one kind,
//! a request "who has TPA? tell SPA" from our own hardware and protocol address, and read
//! one kind, a reply "SPA is at SHA" whose sender is the gateway we asked about.
//!
//! Checked view in the smoltcp manner: named field ranges, the length checked before any
//! field is read, so no input panics. Other hardware or protocol types (hardware type 1,
//! protocol 0x0800, lengths 6 and 4 are all we speak), requests, and replies from anyone but
//! the gateway are not errors of the wire but packets we do not want: `NotArpReply`.

use std::net::Ipv4Addr;

mod field {
    use std::ops::Range;
    pub const HTYPE: Range<usize> = 0..2;
    pub const PTYPE: Range<usize> = 2..4;
    pub const HLEN: usize = 4;
    pub const PLEN: usize = 5;
    pub const OPER: Range<usize> = 6..8;
    pub const SHA: Range<usize> = 8..14;
    pub const SPA: Range<usize> = 14..18;
    pub const THA: Range<usize> = 18..24;
    pub const TPA: Range<usize> = 24..28;
    pub const LEN: usize = 28;
}

/// The length of an Ethernet/IPv4 ARP packet.
pub const ARP_LEN: usize = field::LEN;
/// ARPHRD_ETHER (if_arp.h), also the ARP hardware type for Ethernet.
pub const HTYPE_ETHER: u16 = 1;
/// ETH_P_IP, the ARP protocol type for IPv4.
const PTYPE_IPV4: u16 = 0x0800;
const OP_REQUEST: u16 = 1;
const OP_REPLY: u16 = 2;

/// An Ethernet (MAC-48) address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Mac(pub [u8; 6]);

impl Mac {
    pub const BROADCAST: Mac = Mac([0xff; 6]);

    /// A unicast address: the group bit (the least significant bit of the first octet,
    /// IEEE 802-2014 8.2) clear, and not all zero.
    pub fn is_unicast(self) -> bool {
        self.0[0] & 1 == 0 && self.0 != [0; 6]
    }
}

impl std::fmt::Display for Mac {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let m = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            m[0], m[1], m[2], m[3], m[4], m[5]
        )
    }
}

/// Why a received ARP packet is not the answer we wait for. Counted, never fatal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArpError {
    /// Shorter than 28 bytes.
    Truncated,
    /// Not Ethernet/IPv4 ARP (hardware type, protocol type or address lengths).
    NotEthernetIpv4,
    /// Well formed Ethernet/IPv4 ARP, but a request or some other operation.
    NotReply,
}

/// An Ethernet/IPv4 ARP packet, parsed or to be emitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arp {
    pub reply: bool,
    pub sender_mac: Mac,
    pub sender_ip: Ipv4Addr,
    pub target_mac: Mac,
    pub target_ip: Ipv4Addr,
}

fn u16_at(b: &[u8], r: std::ops::Range<usize>) -> u16 {
    u16::from_be_bytes([b[r.start], b[r.start + 1]])
}

fn ip_at(b: &[u8], r: std::ops::Range<usize>) -> Ipv4Addr {
    Ipv4Addr::new(b[r.start], b[r.start + 1], b[r.start + 2], b[r.start + 3])
}

fn mac_at(b: &[u8], r: std::ops::Range<usize>) -> Mac {
    let mut m = [0; 6];
    m.copy_from_slice(&b[r]);
    Mac(m)
}

impl Arp {
    /// The request "who has `target`? tell `our_ip` at `our_mac`" (RFC 826; the target
    /// hardware address is zero, as Linux's arp_send writes it for a request).
    pub fn request(our_mac: Mac, our_ip: Ipv4Addr, target: Ipv4Addr) -> Arp {
        Arp {
            reply: false,
            sender_mac: our_mac,
            sender_ip: our_ip,
            target_mac: Mac::default(),
            target_ip: target,
        }
    }

    /// Reads an Ethernet/IPv4 ARP request or reply from the start of `pkt`; trailing bytes
    /// (Ethernet padding to 46 bytes) are ignored.
    pub fn parse(pkt: &[u8]) -> Result<Arp, ArpError> {
        if pkt.len() < field::LEN {
            return Err(ArpError::Truncated);
        }
        if u16_at(pkt, field::HTYPE) != HTYPE_ETHER
            || u16_at(pkt, field::PTYPE) != PTYPE_IPV4
            || pkt[field::HLEN] != 6
            || pkt[field::PLEN] != 4
        {
            return Err(ArpError::NotEthernetIpv4);
        }
        let reply = match u16_at(pkt, field::OPER) {
            OP_REQUEST => false,
            OP_REPLY => true,
            _ => return Err(ArpError::NotReply),
        };
        Ok(Arp {
            reply,
            sender_mac: mac_at(pkt, field::SHA),
            sender_ip: ip_at(pkt, field::SPA),
            target_mac: mac_at(pkt, field::THA),
            target_ip: ip_at(pkt, field::TPA),
        })
    }

    /// A reply from `gateway`, to us: the packet says "`gateway` is at a unicast MAC", and is
    /// addressed to our IP (or, from a gratuitous-reply sender, to the gateway itself: some
    /// routers announce themselves so, and it proves them alive all the same).
    pub fn parse_reply_from(
        pkt: &[u8],
        gateway: Ipv4Addr,
        our_ip: Ipv4Addr,
    ) -> Result<Mac, ArpError> {
        let a = Arp::parse(pkt)?;
        if !a.reply
            || a.sender_ip != gateway
            || !a.sender_mac.is_unicast()
            || (a.target_ip != our_ip && a.target_ip != gateway)
        {
            return Err(ArpError::NotReply);
        }
        Ok(a.sender_mac)
    }

    pub fn buffer_len(&self) -> usize {
        field::LEN
    }

    /// Writes the packet at the start of `buf`; its length, or None when `buf` is too short
    /// (nothing is written then).
    pub fn emit(&self, buf: &mut [u8]) -> Option<usize> {
        let out = buf.get_mut(..field::LEN)?;
        out[field::HTYPE].copy_from_slice(&HTYPE_ETHER.to_be_bytes());
        out[field::PTYPE].copy_from_slice(&PTYPE_IPV4.to_be_bytes());
        out[field::HLEN] = 6;
        out[field::PLEN] = 4;
        let op = if self.reply { OP_REPLY } else { OP_REQUEST };
        out[field::OPER].copy_from_slice(&op.to_be_bytes());
        out[field::SHA].copy_from_slice(&self.sender_mac.0);
        out[field::SPA].copy_from_slice(&self.sender_ip.octets());
        out[field::THA].copy_from_slice(&self.target_mac.0);
        out[field::TPA].copy_from_slice(&self.target_ip.octets());
        Some(field::LEN)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OUR_MAC: Mac = Mac([0x02, 0x00, 0x5e, 0x10, 0x00, 0x02]);
    const GW_MAC: Mac = Mac([0x02, 0x00, 0x5e, 0x10, 0x00, 0x01]);
    const OUR_IP: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 2);
    const GW: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);

    /// A reply laid out as Linux's arp_send writes it (RFC 826 order), without the 14-byte
    /// Ethernet header (a SOCK_DGRAM packet socket strips it), with the 18 bytes of Ethernet
    /// padding a minimum-size frame carries.
    const REPLY: [u8; 46] = [
        0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x02, // ether, ipv4, 6, 4, reply
        0x02, 0x00, 0x5e, 0x10, 0x00, 0x01, 198, 51, 100, 1, // gateway is at
        0x02, 0x00, 0x5e, 0x10, 0x00, 0x02, 198, 51, 100, 2, // to us
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ];
    const REQUEST: [u8; 28] = [
        0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01, // ether, ipv4, 6, 4, request
        0x02, 0x00, 0x5e, 0x10, 0x00, 0x02, 198, 51, 100, 2, // from us
        0, 0, 0, 0, 0, 0, 198, 51, 100, 1, // who has the gateway
    ];

    #[test]
    fn request_emits_the_bytes_linux_sends() {
        let r = Arp::request(OUR_MAC, OUR_IP, GW);
        let mut buf = [0xaa; 64];
        assert_eq!(r.emit(&mut buf), Some(28));
        assert_eq!(buf[..28], REQUEST);
        assert_eq!(buf[28], 0xaa, "nothing written past the packet");
        assert_eq!(Arp::parse(&buf[..28]), Ok(r));
        assert_eq!(r.emit(&mut [0; 27]), None);
    }

    #[test]
    fn the_gateways_reply_is_read_with_its_padding() {
        assert_eq!(Arp::parse_reply_from(&REPLY, GW, OUR_IP), Ok(GW_MAC));
        assert_eq!(Arp::parse_reply_from(&REPLY[..28], GW, OUR_IP), Ok(GW_MAC));
    }

    #[test]
    fn requests_others_replies_and_group_macs_are_not_the_answer() {
        // our own request, seen going out on the packet socket
        assert_eq!(
            Arp::parse_reply_from(&REQUEST, GW, OUR_IP),
            Err(ArpError::NotReply)
        );
        // a reply from another host
        let other = Ipv4Addr::new(198, 51, 100, 9);
        assert_eq!(
            Arp::parse_reply_from(&REPLY, other, OUR_IP),
            Err(ArpError::NotReply)
        );
        // addressed to someone else
        let mut p = REPLY;
        p[27] = 7;
        assert_eq!(
            Arp::parse_reply_from(&p, GW, OUR_IP),
            Err(ArpError::NotReply)
        );
        // gratuitous: the gateway announcing itself
        p[24..28].copy_from_slice(&GW.octets());
        assert_eq!(Arp::parse_reply_from(&p, GW, OUR_IP), Ok(GW_MAC));
        // a multicast or zero sender MAC cannot be a neighbour's
        let mut p = REPLY;
        p[8] = 0x01;
        assert_eq!(
            Arp::parse_reply_from(&p, GW, OUR_IP),
            Err(ArpError::NotReply)
        );
        p[8..14].fill(0);
        assert_eq!(
            Arp::parse_reply_from(&p, GW, OUR_IP),
            Err(ArpError::NotReply)
        );
        // an unknown operation (RARP's 3)
        let mut p = REPLY;
        p[7] = 3;
        assert_eq!(Arp::parse(&p), Err(ArpError::NotReply));
    }

    #[test]
    fn other_hardware_or_protocols_are_refused() {
        for (at, v) in [(1, 6u8), (2, 0x86), (4, 8), (5, 16)] {
            let mut p = REPLY;
            p[at] = v;
            assert_eq!(Arp::parse(&p), Err(ArpError::NotEthernetIpv4), "byte {at}");
        }
    }

    #[test]
    fn every_truncation_is_refused_without_panic() {
        for n in 0..28 {
            assert_eq!(Arp::parse(&REPLY[..n]), Err(ArpError::Truncated), "{n}");
        }
    }

    #[test]
    fn macs_print_and_classify() {
        assert_eq!(GW_MAC.to_string(), "02:00:5e:10:00:01");
        assert!(GW_MAC.is_unicast());
        assert!(!Mac::BROADCAST.is_unicast());
        assert!(!Mac::default().is_unicast());
    }
}
