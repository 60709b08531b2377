//! IPv6 neighbour discovery (RFC 4861): the neighbour solicitation we send to ask whether the
//! gateway is there (section 4.3, with our source link-layer address option, 4.6.1), and the
//! neighbour advertisement that answers it (section 4.4). Only the ICMPv6 part: a raw ICMPv6
//! socket strips the IPv6 header on receive and writes it on send.
//!
//! Checksum: the kernel computes it on send and verifies it on receive for ICMPv6 sockets
//! (RFC 3542 section 3.1), so emit leaves it zero and parse does not check it, as for echo.
//! The hop limit of 255 that section 7.1.2 requires is not in the ICMPv6 part: the socket
//! sets it on send, and on receive only a one-hop neighbour can reach us on a socket bound to
//! the device with a filter passing type 136 alone (an off-link forger's packet arrives with
//! a lower hop limit; see sys/l2.rs). Every other check of 7.1.2 that the ICMPv6 part allows
//! is made here: code 0, length, target not multicast, every option's length non-zero and
//! within the message. No input panics: every length is checked before a field is read.

use std::net::Ipv6Addr;

use super::arp::Mac;

mod field {
    use std::ops::Range;
    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: Range<usize> = 2..4;
    /// NS: reserved; NA: the R, S and O flags in the first byte, then reserved.
    pub const FLAGS: usize = 4;
    pub const RESERVED: Range<usize> = 4..8;
    pub const TARGET: Range<usize> = 8..24;
    pub const OPTIONS: usize = 24;
}

pub const TYPE_NS: u8 = 135;
pub const TYPE_NA: u8 = 136;
/// Option types (RFC 4861 4.6.1).
const OPT_SOURCE_LLADDR: u8 = 1;
const OPT_TARGET_LLADDR: u8 = 2;
/// NA flags (RFC 4861 4.4).
const FLAG_ROUTER: u8 = 0x80;
const FLAG_SOLICITED: u8 = 0x40;
const FLAG_OVERRIDE: u8 = 0x20;
/// A solicitation with one source link-layer option for an Ethernet address.
pub const NS_LEN: usize = field::OPTIONS + 8;

/// Why a received ICMPv6 message is not the advertisement we wait for. Counted, never fatal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NdpError {
    /// Shorter than the 24 bytes of an advertisement.
    Truncated,
    /// Not a neighbour advertisement (type 136, code 0).
    NotAdvert,
    /// An advertisement RFC 4861 7.1.2 says to discard: multicast target, a zero-length
    /// option, an option running past the end.
    Invalid,
}

/// A neighbour solicitation for `target` from an interface whose address is `our_mac`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Solicit {
    pub target: Ipv6Addr,
    pub our_mac: Mac,
}

impl Solicit {
    pub fn buffer_len(&self) -> usize {
        NS_LEN
    }

    /// Writes the message at the start of `buf` (checksum zero: the kernel's); its length,
    /// or None when `buf` is too short (nothing is written then).
    pub fn emit(&self, buf: &mut [u8]) -> Option<usize> {
        let out = buf.get_mut(..NS_LEN)?;
        out[field::TYPE] = TYPE_NS;
        out[field::CODE] = 0;
        out[field::CHECKSUM].fill(0);
        out[field::RESERVED].fill(0);
        out[field::TARGET].copy_from_slice(&self.target.octets());
        let opt = &mut out[field::OPTIONS..];
        opt[0] = OPT_SOURCE_LLADDR;
        opt[1] = 1; // in units of 8 bytes
        opt[2..8].copy_from_slice(&self.our_mac.0);
        Some(NS_LEN)
    }
}

/// A neighbour advertisement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Advert {
    pub router: bool,
    pub solicited: bool,
    pub override_: bool,
    pub target: Ipv6Addr,
    /// The target link-layer address option, when there is one of Ethernet length.
    pub target_mac: Option<Mac>,
}

impl Advert {
    pub fn parse(msg: &[u8]) -> Result<Advert, NdpError> {
        if msg.len() < field::OPTIONS {
            return Err(NdpError::Truncated);
        }
        if msg[field::TYPE] != TYPE_NA || msg[field::CODE] != 0 {
            return Err(NdpError::NotAdvert);
        }
        let mut t = [0u8; 16];
        t.copy_from_slice(&msg[field::TARGET]);
        let target = Ipv6Addr::from(t);
        if target.is_multicast() {
            return Err(NdpError::Invalid);
        }
        let mut target_mac = None;
        let mut opts = &msg[field::OPTIONS..];
        while !opts.is_empty() {
            let (Some(&kind), Some(&units)) = (opts.first(), opts.get(1)) else {
                return Err(NdpError::Invalid);
            };
            let len = usize::from(units) * 8;
            if len == 0 || len > opts.len() {
                return Err(NdpError::Invalid);
            }
            if kind == OPT_TARGET_LLADDR && len == 8 {
                let mut m = [0; 6];
                m.copy_from_slice(&opts[2..8]);
                target_mac = Some(Mac(m));
            }
            opts = &opts[len..];
        }
        let flags = msg[field::FLAGS];
        Ok(Advert {
            router: flags & FLAG_ROUTER != 0,
            solicited: flags & FLAG_SOLICITED != 0,
            override_: flags & FLAG_OVERRIDE != 0,
            target,
            target_mac,
        })
    }

    /// An advertisement for `gateway`: the answer to our solicitation (or to the kernel's
    /// own, or the gateway announcing itself: each proves it is there).
    pub fn parse_for(msg: &[u8], gateway: Ipv6Addr) -> Result<Advert, NdpError> {
        let a = Advert::parse(msg)?;
        if a.target != gateway {
            return Err(NdpError::NotAdvert);
        }
        Ok(a)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OUR_MAC: Mac = Mac([0x02, 0x00, 0x5e, 0x10, 0x00, 0x02]);
    const GW: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1);

    /// A solicited advertisement laid out as Linux's ndisc_send_na writes it for a router
    /// (R, S, O set; one target link-layer option), as a raw ICMPv6 socket returns it
    /// (checksum as the kernel verified it).
    const NA: [u8; 32] = [
        136, 0, 0x3a, 0x5c, 0xe0, 0, 0, 0, // type, code, checksum, R|S|O
        0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, // target fe80::1
        2, 1, 0x02, 0x00, 0x5e, 0x10, 0x00, 0x01, // target link-layer address
    ];

    #[test]
    fn solicitation_bytes() {
        let mut buf = [0xaa; 40];
        let ns = Solicit {
            target: GW,
            our_mac: OUR_MAC,
        };
        assert_eq!(ns.emit(&mut buf), Some(32));
        assert_eq!(
            buf[..32],
            [
                135, 0, 0, 0, 0, 0, 0, 0, 0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1,
                1, 0x02, 0x00, 0x5e, 0x10, 0x00, 0x02
            ]
        );
        assert_eq!(buf[32], 0xaa, "nothing written past the message");
        assert_eq!(ns.emit(&mut [0; 31]), None);
        // our own solicitation is not an advertisement
        assert_eq!(Advert::parse(&buf[..32]), Err(NdpError::NotAdvert));
    }

    #[test]
    fn the_gateways_advert_is_read() {
        let a = Advert::parse_for(&NA, GW).unwrap();
        assert!(a.router && a.solicited && a.override_);
        assert_eq!(
            a.target_mac,
            Some(Mac([0x02, 0x00, 0x5e, 0x10, 0x00, 0x01]))
        );
        // without options (allowed for a solicited advert when the source knows our MAC)
        let a = Advert::parse_for(&NA[..24], GW).unwrap();
        assert_eq!(a.target_mac, None);
    }

    #[test]
    fn adverts_for_others_and_invalid_ones_are_refused() {
        let other = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 2);
        assert_eq!(Advert::parse_for(&NA, other), Err(NdpError::NotAdvert));
        let mut p = NA;
        p[1] = 1; // code
        assert_eq!(Advert::parse(&p), Err(NdpError::NotAdvert));
        let mut p = NA;
        p[8] = 0xff; // multicast target
        assert_eq!(Advert::parse(&p), Err(NdpError::Invalid));
        let mut p = NA;
        p[25] = 0; // zero-length option: RFC 4861 7.1.2 says discard
        assert_eq!(Advert::parse(&p), Err(NdpError::Invalid));
        p[25] = 2; // runs past the end
        assert_eq!(Advert::parse(&p), Err(NdpError::Invalid));
        // a lone option type byte with no length
        assert_eq!(Advert::parse(&NA[..25]), Err(NdpError::Invalid));
    }

    #[test]
    fn every_truncation_is_refused_without_panic() {
        for n in 0..24 {
            assert_eq!(Advert::parse(&NA[..n]), Err(NdpError::Truncated), "{n}");
        }
        for n in 25..32 {
            assert_eq!(Advert::parse(&NA[..n]), Err(NdpError::Invalid), "{n}");
        }
    }
}
