//! rtnetlink datagrams on any bytes, as the route socket hands them over: framing
//! (`Messages`), each message's parse, attributes and multipath next hops. Messages are framed
//! in order inside the datagram, and every parsed address has the family of its message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use netheal::wire::netlink::{Attrs, Message, Messages};
use netheal::wire::Family;

fuzz_target!(|data: &[u8]| {
    let end = data.as_ptr() as usize + data.len();
    let mut at = data.as_ptr() as usize;
    for m in Messages::new(data) {
        let Ok(msg) = m else {
            continue;
        };
        let p = msg.payload();
        let start = p.as_ptr() as usize;
        assert!(
            start >= at + 16 && start + p.len() <= end,
            "message outside the datagram"
        );
        at = start + p.len();
        let _ = (msg.kind(), msg.flags(), msg.seq(), msg.port());
        match Message::parse(&msg) {
            Ok(Message::NewRoute(r) | Message::DelRoute(r)) => {
                for a in [r.dst, r.gateway].into_iter().flatten() {
                    assert_eq!(Family::of(a), r.family);
                }
                for (_, gw) in r.next_hops() {
                    assert!(gw.is_none_or(|g| Family::of(g) == r.family));
                }
                let _ = r.is_default();
            }
            Ok(Message::NewAddr(a) | Message::DelAddr(a)) => {
                assert_eq!(Family::of(a.addr), a.family)
            }
            Ok(Message::NewNeigh(n) | Message::DelNeigh(n)) => {
                assert_eq!(Family::of(n.dst), n.family);
                // the lladdr is the first NDA_LLADDR attribute, read only when it is 6 bytes
                let ll = p
                    .get(12..)
                    .and_then(|a| Attrs::new(a).find(|(ty, _)| *ty == 2))
                    .map(|(_, v)| v)
                    .filter(|v| v.len() == 6);
                assert_eq!(n.lladdr.as_ref().map(|m| &m[..]), ll);
            }
            Ok(Message::NewLink(l) | Message::DelLink(l)) => {
                if let Some(name) = l.name {
                    let b = name.as_bytes();
                    assert!(!b.is_empty() && b.len() <= 15 && !b.contains(&0));
                    let s = name.as_str();
                    assert!(s.as_bytes() == b || s == "?", "{s:?} for {b:?}");
                }
                let _ = (l.admin_up(), l.carrier());
            }
            _ => {}
        }
    }
    for (_, v) in Attrs::new(data) {
        assert!(v.len() <= data.len());
    }
});
