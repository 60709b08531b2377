//! ICMP errors that quote an echo (destination unreachable, time exceeded), on any bytes as a
//! raw socket hands them over (first byte even: ICMPv4, odd: ICMPv6), and as a datagram
//! socket's error queue gives them (`from_queued`). A parsed error reads its type and code,
//! the quoted destination, identifier and sequence from the right bytes, and its quoted data
//! is a suffix of the message.
#![no_main]

use std::net::IpAddr;

use libfuzzer_sys::fuzz_target;
use netheal::wire::{ErrorKind, Family, QuotedEcho};

fuzz_target!(|data: &[u8]| {
    let Some((&which, msg)) = data.split_first() else {
        return;
    };
    let family = if which & 1 == 0 {
        Family::V4
    } else {
        Family::V6
    };
    if let Ok(q) = QuotedEcho::parse(family, msg) {
        assert_eq!(q.kind.family, family);
        assert_eq!((q.kind.icmp_type, q.kind.code), (msg[0], msg[1]));
        let _ = q.kind.to_string();
        let (ip_len, dest) = match family {
            Family::V4 => {
                let ihl = usize::from(msg[8] & 0x0f) * 4;
                let d: [u8; 4] = msg[8 + 16..8 + 20].try_into().unwrap();
                (ihl, IpAddr::from(d))
            }
            Family::V6 => {
                let d: [u8; 16] = msg[8 + 24..8 + 40].try_into().unwrap();
                (40, IpAddr::from(d))
            }
        };
        assert_eq!(q.dest, dest, "quoted destination");
        let echo = &msg[8 + ip_len..];
        assert_eq!(q.ident, u16::from_be_bytes([echo[4], echo[5]]));
        assert_eq!(q.seq, u16::from_be_bytes([echo[6], echo[7]]));
        assert!(
            echo[8..].starts_with(q.payload),
            "payload is not the quoted data"
        );
        // The same quote through the error-queue path gives the same error.
        let again = QuotedEcho::from_queued(q.kind, q.dest, &echo[..8 + q.payload.len()]);
        assert_eq!(again, Ok(q));
    }
    if msg.len() >= 2 {
        let kind = ErrorKind {
            family,
            icmp_type: msg[0],
            code: msg[1],
        };
        let dest = IpAddr::from([198, 51, 100, 1]);
        if let Ok(q) = QuotedEcho::from_queued(kind, dest, &msg[2..]) {
            assert_eq!((q.kind, q.dest), (kind, dest));
            assert_eq!(q.ident, u16::from_be_bytes([msg[6], msg[7]]));
            assert!(msg[10..].starts_with(q.payload));
        }
    }
});
