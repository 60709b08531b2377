//! Emit, then parse: any echo written into a buffer long enough reads back as the same echo,
//! writes exactly `buffer_len` bytes and nothing past them; a buffer too short is left alone.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use netheal::wire::{checksum, Echo, EchoKind, Family};

#[derive(Arbitrary, Debug)]
struct Input {
    v6: bool,
    reply: bool,
    ident: u16,
    seq: u16,
    /// Room in the output buffer beyond (positive) or short of (negative) what is needed.
    slack: i8,
    payload: Vec<u8>,
}

fuzz_target!(|i: Input| {
    let family = if i.v6 { Family::V6 } else { Family::V4 };
    let kind = if i.reply {
        EchoKind::Reply
    } else {
        EchoKind::Request
    };
    let echo = Echo {
        kind,
        ident: i.ident,
        seq: i.seq,
        payload: &i.payload,
    };
    let need = echo.buffer_len();
    assert_eq!(need, 8 + i.payload.len());
    let room = need.saturating_add_signed(isize::from(i.slack));
    let mut buf = vec![0xa5u8; room];
    match echo.emit(family, &mut buf) {
        Some(n) => {
            assert!(room >= need);
            assert_eq!(n, need);
            assert!(
                buf[n..].iter().all(|&b| b == 0xa5),
                "wrote past the message"
            );
            if family == Family::V4 {
                assert_eq!(checksum(&buf[..n]), 0);
            }
            assert_eq!(Echo::parse(family, &buf[..n]), Ok(echo));
        }
        None => {
            assert!(room < need, "refused a buffer that was long enough");
            assert!(
                buf.iter().all(|&b| b == 0xa5),
                "wrote into a buffer it refused"
            );
        }
    }
});
