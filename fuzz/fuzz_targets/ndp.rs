//! Neighbour advertisement parsing on any bytes (what a raw ICMPv6 socket hands us: the
//! kernel strips the IPv6 header and has verified the checksum). A parsed advertisement is
//! type 136 code 0, its flags and target come from the right bytes, its target is not
//! multicast, its options tile the rest exactly with no zero length; a solicitation built
//! from the same target emits 32 bytes that are never taken for an advertisement.
#![no_main]

use std::net::Ipv6Addr;

use libfuzzer_sys::fuzz_target;
use netheal::wire::arp::Mac;
use netheal::wire::ndp::{Advert, NdpError, Solicit, NS_LEN};

fn options_tile(mut o: &[u8]) -> bool {
    while !o.is_empty() {
        let Some(&units) = o.get(1) else { return false };
        let len = usize::from(units) * 8;
        if len == 0 || len > o.len() {
            return false;
        }
        o = &o[len..];
    }
    true
}

fuzz_target!(|data: &[u8]| {
    match Advert::parse(data) {
        Ok(a) => {
            assert_eq!((data[0], data[1]), (136, 0));
            assert_eq!(a.router, data[4] & 0x80 != 0);
            assert_eq!(a.solicited, data[4] & 0x40 != 0);
            assert_eq!(a.override_, data[4] & 0x20 != 0);
            assert_eq!(a.target.octets(), data[8..24]);
            assert!(!a.target.is_multicast());
            assert!(options_tile(&data[24..]));
            assert_eq!(Advert::parse_for(data, a.target), Ok(a));
            if let Some(m) = a.target_mac {
                assert!(data[24..].windows(8).any(|w| w[..2] == [2, 1] && w[2..] == m.0));
            }
        }
        Err(NdpError::Truncated) => assert!(data.len() < 24),
        Err(NdpError::NotAdvert) => assert!(data[0] != 136 || data[1] != 0),
        Err(NdpError::Invalid) => {
            let mut t = [0u8; 16];
            t.copy_from_slice(&data[8..24]);
            assert!(Ipv6Addr::from(t).is_multicast() || !options_tile(&data[24..]));
        }
    }
    if data.len() >= 22 {
        let mut t = [0u8; 16];
        t.copy_from_slice(&data[..16]);
        let mut m = [0u8; 6];
        m.copy_from_slice(&data[16..22]);
        let ns = Solicit {
            target: Ipv6Addr::from(t),
            our_mac: Mac(m),
        };
        let mut buf = [0u8; 40];
        assert_eq!(ns.emit(&mut buf), Some(NS_LEN));
        assert_eq!(buf[0], 135);
        assert_eq!(buf[8..24], t);
        assert_eq!(buf[24..32], [1, 1, m[0], m[1], m[2], m[3], m[4], m[5]]);
        assert_eq!(Advert::parse(&buf[..NS_LEN]), Err(NdpError::NotAdvert));
        assert_eq!(ns.emit(&mut buf[..NS_LEN - 1]), None);
    }
});
