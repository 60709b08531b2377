//! ARP parsing on any bytes (what an AF_PACKET SOCK_DGRAM socket hands us: the kernel strips
//! the Ethernet header). A parsed packet reads its fields from the right bytes and emits back
//! to the same 28 bytes; each error only when its cause holds; the gateway's reply is only
//! ever a reply from the gateway, to us (or gratuitous), from a unicast MAC.
#![no_main]

use std::net::Ipv4Addr;

use libfuzzer_sys::fuzz_target;
use netheal::wire::arp::{Arp, ArpError, ARP_LEN};

fuzz_target!(|data: &[u8]| {
    // The first 8 bytes also choose the gateway and our address, so that matches happen.
    let (gw, us) = match data {
        [a, b, c, d, e, f, g, h, ..] => (
            Ipv4Addr::new(*a, *b, *c, *d),
            Ipv4Addr::new(*e, *f, *g, *h),
        ),
        _ => (Ipv4Addr::new(198, 51, 100, 1), Ipv4Addr::new(198, 51, 100, 2)),
    };
    let pkt = data.get(8..).unwrap_or(&[]);
    let be = |i: usize| u16::from_be_bytes([pkt[i], pkt[i + 1]]);
    match Arp::parse(pkt) {
        Ok(a) => {
            assert!(pkt.len() >= ARP_LEN);
            assert_eq!((be(0), be(2), pkt[4], pkt[5]), (1, 0x0800, 6, 4));
            assert_eq!(be(6), if a.reply { 2 } else { 1 });
            assert_eq!(a.sender_mac.0, pkt[8..14]);
            assert_eq!(a.sender_ip.octets(), pkt[14..18]);
            assert_eq!(a.target_mac.0, pkt[18..24]);
            assert_eq!(a.target_ip.octets(), pkt[24..28]);
            let mut buf = [0u8; ARP_LEN];
            assert_eq!(a.emit(&mut buf), Some(ARP_LEN));
            assert_eq!(buf, pkt[..ARP_LEN]);
            assert_eq!(a.buffer_len(), ARP_LEN);
        }
        Err(ArpError::Truncated) => assert!(pkt.len() < ARP_LEN),
        Err(ArpError::NotEthernetIpv4) => {
            assert!((be(0), be(2), pkt[4], pkt[5]) != (1, 0x0800, 6, 4))
        }
        Err(ArpError::NotReply) => assert!(![1, 2].contains(&be(6))),
    }
    match Arp::parse_reply_from(pkt, gw, us) {
        Ok(mac) => {
            let a = Arp::parse(pkt).unwrap();
            assert!(a.reply && a.sender_ip == gw && a.sender_mac == mac);
            assert!(a.target_ip == us || a.target_ip == gw);
            assert!(mac.0[0] & 1 == 0 && mac.0 != [0; 6], "unicast sender");
        }
        Err(ArpError::NotReply) => {
            if let Ok(a) = Arp::parse(pkt) {
                assert!(
                    !a.reply
                        || a.sender_ip != gw
                        || !a.sender_mac.is_unicast()
                        || (a.target_ip != us && a.target_ip != gw)
                );
            }
        }
        Err(e) => assert_eq!(Arp::parse(pkt).err(), Some(e)),
    }
});
