//! The IPv4 header in front of what a raw ICMP socket receives: `strip_ipv4_header` on any
//! bytes. What it returns starts right after the header the IHL names and ends where the
//! total length says; only a version-4 header that carries ICMP gets that far.
#![no_main]

use libfuzzer_sys::fuzz_target;
use netheal::wire::{strip_ipv4_header, WireError};

fuzz_target!(|data: &[u8]| {
    let header = (data.len() >= 20).then(|| {
        let ihl = usize::from(data[0] & 0x0f) * 4;
        let total = usize::from(u16::from_be_bytes([data[2], data[3]]));
        (ihl, total)
    });
    match strip_ipv4_header(data) {
        Ok(icmp) => {
            let (ihl, total) = header.expect("accepted a packet shorter than 20 bytes");
            assert_eq!(data[0] >> 4, 4, "version");
            assert_eq!(data[9], 1, "protocol");
            assert!(ihl >= 20 && ihl <= total && total <= data.len());
            assert!(std::ptr::eq(icmp.as_ptr(), data[ihl..].as_ptr()));
            assert_eq!(icmp.len(), total - ihl);
        }
        Err(WireError::Truncated) => {
            if let Some((ihl, total)) = header {
                assert!(data.len() < ihl.max(total), "truncated, yet all there");
            }
        }
        Err(_) => assert!(header.is_some(), "a short packet is Truncated"),
    }
});
