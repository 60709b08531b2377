//! ICMP (v4) echo parsing on any bytes (what a datagram socket hands us, or what is left
//! after the IPv4 header of a raw one). A parsed echo reads its fields from the right bytes,
//! and emitting it gives the same message back (the checksum recomputed).
#![no_main]

use libfuzzer_sys::fuzz_target;
use netheal::wire::{checksum, Echo, EchoKind, Family, WireError};

const FAMILY: Family = Family::V4;

fuzz_target!(|data: &[u8]| {
    match Echo::parse(FAMILY, data) {
        Ok(echo) => {
            let kind = match data[0] {
                8 => EchoKind::Request,
                0 => EchoKind::Reply,
                t => panic!("type {t} parsed as an echo"),
            };
            assert_eq!(echo.kind, kind);
            assert_eq!(data[1], 0, "code");
            assert_eq!(echo.ident, u16::from_be_bytes([data[4], data[5]]));
            assert_eq!(echo.seq, u16::from_be_bytes([data[6], data[7]]));
            assert_eq!(echo.payload, &data[8..]);
            assert_eq!(echo.buffer_len(), data.len());
            let mut buf = vec![0u8; data.len()];
            assert_eq!(echo.emit(FAMILY, &mut buf), Some(data.len()));
            assert_eq!(buf[..2], data[..2]);
            assert_eq!(buf[4..], data[4..]);
            match FAMILY {
                Family::V4 => assert_eq!(checksum(&buf), 0, "emitted checksum verifies"),
                Family::V6 => assert_eq!(buf[2..4], [0, 0], "v6 checksum left to the kernel"),
            }
            assert_eq!(Echo::parse(FAMILY, &buf), Ok(echo));
        }
        Err(WireError::Truncated) => assert!(data.len() < 8),
        Err(WireError::BadChecksum) => {
            assert_eq!(FAMILY, Family::V4);
            assert_ne!(checksum(data), 0);
            assert_ne!(
                data[2..4],
                [0, 0],
                "the cfg(fuzzing) bypass takes a zero field"
            );
        }
        Err(WireError::NotEchoReply) => assert!(![8, 0].contains(&data[0]) || data[1] != 0),
        #[allow(unreachable_patterns)]
        Err(_) => {}
    }
});
