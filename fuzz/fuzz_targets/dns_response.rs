//! The `dns:` target's response check on any bytes (what a resolver, or whoever can send
//! from its address, hands the connected UDP socket). The id expected is the one the data
//! carries, so every header the fuzzer writes can be accepted; a parsed response holds what
//! the header says, another id is always refused, and junk after a complete response
//! changes nothing.
#![no_main]

use libfuzzer_sys::fuzz_target;
use netheal::wire::dns::{Query, Response, HEADER_LEN, QUERY_LEN};
use netheal::wire::WireError;

fuzz_target!(|data: &[u8]| {
    let id = match data {
        [a, b, ..] => u16::from_be_bytes([*a, *b]),
        _ => 0,
    };
    let got = Response::parse(data, id);
    if data.len() < HEADER_LEN {
        assert_eq!(got, Err(WireError::Truncated));
    }
    if data.len() >= HEADER_LEN {
        assert_eq!(
            Response::parse(data, id ^ 0x8001),
            Err(WireError::NotOurs),
            "another id"
        );
    }
    if let Ok(r) = got {
        assert!(data.len() >= QUERY_LEN);
        assert_eq!(r.id, id);
        assert_ne!(data[2] & 0x80, 0, "QR");
        assert_eq!(data[2] & 0x78, 0, "opcode");
        assert_eq!(data[4..6], [0, 1], "one question");
        assert_eq!(data[12..17], [0, 0, 2, 0, 1], ". NS IN");
        assert_eq!(r.rcode, data[3] & 0x0f);
        assert_eq!(r.truncated, data[2] & 0x02 != 0);
        let count = |i: usize| u32::from(u16::from_be_bytes([data[i], data[i + 1]]));
        let total = count(6) + count(8) + count(10);
        assert!(r.records <= total);
        if !r.truncated {
            assert_eq!(r.records, total, "every announced record read");
            let mut longer = data.to_vec();
            longer.extend_from_slice(&[0xc0, 0xff, 0x41]);
            assert_eq!(Response::parse(&longer, id), Ok(r), "trailing junk");
        }
    }
    // Our own query, turned into a response, is accepted with no record.
    let mut q = [0u8; QUERY_LEN];
    assert_eq!(Query { id }.emit(&mut q), Some(QUERY_LEN));
    q[2] |= 0x80;
    let r = Response::parse(&q, id).expect("our query as a response");
    assert_eq!((r.rcode, r.records, r.truncated), (0, 0, false));
});
