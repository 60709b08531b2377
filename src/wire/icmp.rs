//! ICMP echo request/reply (RFC 792 page 14) and ICMPv6 echo (RFC 4443 section 4): a common
//! 8-byte header — type, code, checksum, identifier, sequence — then opaque data.
//!
//! Checksums: ICMPv4 is covered by a plain Internet checksum, which we compute and verify.
//! ICMPv6's covers a pseudo-header with both addresses (RFC 4443 section 2.3); Linux computes
//! it on send and verifies it on receive for ICMPv6 sockets (RFC 3542 section 3.1), so we
//! leave it zero on emit and do not check it on parse.

use super::{checksum, checksum_ok, checksum_words, WireError};

/// Type + code + checksum + identifier + sequence.
pub const ECHO_HEADER_LEN: usize = 8;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    V4,
    V6,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EchoKind {
    Request,
    Reply,
}

impl Family {
    /// The family of an address.
    pub fn of(addr: std::net::IpAddr) -> Family {
        match addr {
            std::net::IpAddr::V4(_) => Family::V4,
            std::net::IpAddr::V6(_) => Family::V6,
        }
    }

    fn echo_type(self, kind: EchoKind) -> u8 {
        match (self, kind) {
            (Family::V4, EchoKind::Request) => 8,
            (Family::V4, EchoKind::Reply) => 0,
            (Family::V6, EchoKind::Request) => 128,
            (Family::V6, EchoKind::Reply) => 129,
        }
    }

    fn echo_kind(self, icmp_type: u8) -> Option<EchoKind> {
        match (self, icmp_type) {
            (Family::V4, 8) | (Family::V6, 128) => Some(EchoKind::Request),
            (Family::V4, 0) | (Family::V6, 129) => Some(EchoKind::Reply),
            _ => None,
        }
    }
}

/// An echo message, borrowed from or to be written into a buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Echo<'a> {
    pub kind: EchoKind,
    pub ident: u16,
    pub seq: u16,
    pub payload: &'a [u8],
}

impl<'a> Echo<'a> {
    /// Reads an echo message from `msg` (the ICMP part only). Anything else that is well
    /// formed — errors, neighbour discovery, router adverts — is `NotEchoReply`.
    #[inline]
    pub fn parse(family: Family, msg: &'a [u8]) -> Result<Self, WireError> {
        if msg.len() < ECHO_HEADER_LEN {
            return Err(WireError::Truncated);
        }
        if family == Family::V4 && !checksum_ok(msg) {
            return Err(WireError::BadChecksum);
        }
        let kind = family.echo_kind(msg[0]).ok_or(WireError::NotEchoReply)?;
        if msg[1] != 0 {
            return Err(WireError::NotEchoReply);
        }
        let (header, payload) = msg.split_at(ECHO_HEADER_LEN);
        Ok(Echo {
            kind,
            ident: u16::from_be_bytes([header[4], header[5]]),
            seq: u16::from_be_bytes([header[6], header[7]]),
            payload,
        })
    }

    pub fn buffer_len(&self) -> usize {
        ECHO_HEADER_LEN + self.payload.len()
    }

    /// Writes the message at the start of `buf`; returns its length, or `None` when `buf` is
    /// too short (nothing is written then).
    pub fn emit(&self, family: Family, buf: &mut [u8]) -> Option<usize> {
        let len = self.buffer_len();
        let out = buf.get_mut(..len)?;
        out[0] = family.echo_type(self.kind);
        out[1] = 0;
        out[2..4].fill(0);
        out[4..6].copy_from_slice(&self.ident.to_be_bytes());
        out[6..8].copy_from_slice(&self.seq.to_be_bytes());
        out[ECHO_HEADER_LEN..].copy_from_slice(self.payload);
        if family == Family::V4 {
            let sum = checksum(out);
            out[2..4].copy_from_slice(&sum.to_be_bytes());
        }
        Some(len)
    }
}

/// An echo request carrying exactly `data` (the prober's MAC), as `Echo::emit` writes it but
/// built as one fixed-size array: no length checks to make and no byte-slice copies, which
/// the size-optimised build keeps as calls (issue 9). The ICMPv4 checksum is filled in.
///
/// Put together as the message's two big-endian words (type, code, checksum, identifier,
/// sequence number; the data), which are also what the checksum sums: inlined into the
/// prober, a dozen instructions where the call over the bytes was forty.
#[inline(always)]
pub fn echo_request(family: Family, ident: u16, seq: u16, data: [u8; 8]) -> [u8; 16] {
    let t = family.echo_type(EchoKind::Request);
    let mut hi = u64::from(t) << 56 | u64::from(ident) << 16 | u64::from(seq);
    let lo = u64::from_be_bytes(data);
    if family == Family::V4 {
        hi |= u64::from(checksum_words(hi, lo)) << 32;
    }
    let [h0, h1, h2, h3, h4, h5, h6, h7] = hi.to_be_bytes();
    let [l0, l1, l2, l3, l4, l5, l6, l7] = lo.to_be_bytes();
    [
        h0, h1, h2, h3, h4, h5, h6, h7, l0, l1, l2, l3, l4, l5, l6, l7,
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// ICMPv4 echo request, ident 0x1a2b, seq 7, payload 01..08 (checksum by hand:
    /// 0x0800 + 0x1a2b + 0x0007 + 0x0102 + 0x0304 + 0x0506 + 0x0708 = 0x3246, !0x3246 = 0xcdb9).
    const V4_REQUEST: [u8; 16] = [
        0x08, 0x00, 0xcd, 0xb9, 0x1a, 0x2b, 0x00, 0x07, 1, 2, 3, 4, 5, 6, 7, 8,
    ];
    /// The matching reply: type 0, so the checksum is 0x0800 higher.
    const V4_REPLY: [u8; 16] = [
        0x00, 0x00, 0xd5, 0xb9, 0x1a, 0x2b, 0x00, 0x07, 1, 2, 3, 4, 5, 6, 7, 8,
    ];
    /// ICMPv6 echo reply as a raw ICMPv6 socket returns it (kernel-verified checksum).
    const V6_REPLY: [u8; 12] = [
        0x81, 0x00, 0x5e, 0x1f, 0xbe, 0xef, 0xff, 0xfe, 0xca, 0xfe, 0, 1,
    ];

    #[test]
    fn emits_v4_request_fixture() {
        let mut buf = [0u8; 64];
        let echo = Echo {
            kind: EchoKind::Request,
            ident: 0x1a2b,
            seq: 7,
            payload: &[1, 2, 3, 4, 5, 6, 7, 8],
        };
        assert_eq!(echo.emit(Family::V4, &mut buf), Some(16));
        assert_eq!(buf[..16], V4_REQUEST);
    }

    #[test]
    fn emits_v6_request_with_zero_checksum() {
        let mut buf = [0xffu8; 10];
        let echo = Echo {
            kind: EchoKind::Request,
            ident: 0xbeef,
            seq: 0xfffe,
            payload: &[0xca, 0xfe],
        };
        assert_eq!(echo.emit(Family::V6, &mut buf), Some(10));
        assert_eq!(buf, [0x80, 0, 0, 0, 0xbe, 0xef, 0xff, 0xfe, 0xca, 0xfe]);
    }

    #[test]
    fn the_fixed_request_is_what_emit_writes() {
        assert_eq!(
            echo_request(Family::V4, 0x1a2b, 7, [1, 2, 3, 4, 5, 6, 7, 8]),
            V4_REQUEST
        );
        for family in [Family::V4, Family::V6] {
            for (ident, seq) in [(0, 0), (0xbeef, 0xfffe), (0xffff, 0xffff), (1, 256)] {
                let data = *b"\x00\xffmac\x80!\x01";
                let mut buf = [0u8; 16];
                let echo = Echo {
                    kind: EchoKind::Request,
                    ident,
                    seq,
                    payload: &data,
                };
                assert_eq!(echo.emit(family, &mut buf), Some(16));
                assert_eq!(echo_request(family, ident, seq, data), buf);
            }
        }
    }

    #[test]
    fn emit_refuses_short_buffer_without_writing() {
        let mut buf = [0x55u8; 15];
        let echo = Echo::parse(Family::V4, &V4_REQUEST).unwrap();
        assert_eq!(echo.emit(Family::V4, &mut buf), None);
        assert_eq!(buf, [0x55; 15]);
    }

    #[test]
    fn parses_v4_reply_fixture() {
        let echo = Echo::parse(Family::V4, &V4_REPLY).unwrap();
        assert_eq!(echo.kind, EchoKind::Reply);
        assert_eq!((echo.ident, echo.seq), (0x1a2b, 7));
        assert_eq!(echo.payload, &[1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(
            Echo::parse(Family::V4, &V4_REQUEST).unwrap().kind,
            EchoKind::Request
        );
    }

    #[test]
    fn parses_v6_reply_fixture() {
        let echo = Echo::parse(Family::V6, &V6_REPLY).unwrap();
        assert_eq!(echo.kind, EchoKind::Reply);
        assert_eq!((echo.ident, echo.seq), (0xbeef, 0xfffe));
        assert_eq!(echo.payload, &[0xca, 0xfe, 0, 1]);
    }

    #[test]
    fn round_trip_both_families() {
        let payload = *b"cookie!!";
        for family in [Family::V4, Family::V6] {
            let echo = Echo {
                kind: EchoKind::Reply,
                ident: 1,
                seq: 65535,
                payload: &payload,
            };
            let mut buf = [0u8; 32];
            let n = echo.emit(family, &mut buf).unwrap();
            assert_eq!(Echo::parse(family, &buf[..n]), Ok(echo));
        }
    }

    #[test]
    fn truncated_inputs() {
        for len in 0..ECHO_HEADER_LEN {
            assert_eq!(
                Echo::parse(Family::V4, &V4_REPLY[..len]),
                Err(WireError::Truncated)
            );
            assert_eq!(
                Echo::parse(Family::V6, &V6_REPLY[..len]),
                Err(WireError::Truncated)
            );
        }
        // A header-only v4 reply with a fixed-up checksum is a valid echo with no data.
        let mut bare = [0u8, 0, 0, 0, 0x1a, 0x2b, 0, 7];
        let sum = checksum(&bare);
        bare[2..4].copy_from_slice(&sum.to_be_bytes());
        assert_eq!(
            Echo::parse(Family::V4, &bare).unwrap().payload,
            &[] as &[u8]
        );
    }

    #[test]
    fn corrupt_v4_checksum_is_rejected() {
        for i in 0..V4_REPLY.len() {
            let mut p = V4_REPLY;
            p[i] ^= 0x40;
            assert_eq!(
                Echo::parse(Family::V4, &p),
                Err(WireError::BadChecksum),
                "byte {i}"
            );
        }
    }

    #[test]
    fn other_messages_are_not_echo() {
        // ICMPv6 neighbour solicitation (135), router advert (134), destination unreachable (1).
        for t in [135u8, 134, 1, 3] {
            let mut p = V6_REPLY;
            p[0] = t;
            assert_eq!(Echo::parse(Family::V6, &p), Err(WireError::NotEchoReply));
        }
        // A v6 echo type seen on a v4 socket is not an echo there (128 = v6 request).
        let mut p = [128u8, 0, 0, 0, 0, 0, 0, 0];
        let sum = checksum(&p);
        p[2..4].copy_from_slice(&sum.to_be_bytes());
        assert_eq!(Echo::parse(Family::V4, &p), Err(WireError::NotEchoReply));
        // Nonzero code.
        let mut p = V6_REPLY;
        p[1] = 1;
        assert_eq!(Echo::parse(Family::V6, &p), Err(WireError::NotEchoReply));
    }

    #[test]
    fn never_panics_on_any_short_input() {
        // Not only no panic: every input shorter than the header is `Truncated`, and every
        // 8-byte header over all types and a sample of codes gets the one answer it must.
        for len in 0..ECHO_HEADER_LEN {
            for v in 0..=255u8 {
                let p = vec![v; len];
                assert_eq!(Echo::parse(Family::V4, &p), Err(WireError::Truncated));
                assert_eq!(Echo::parse(Family::V6, &p), Err(WireError::Truncated));
            }
        }
        for t in 0..=255u8 {
            for c in [0u8, 1, 255] {
                let p = [t, c, 0, 0, 0x12, 0x34, 0x56, 0x78];
                let want = |req: u8, rep: u8| match (t, c) {
                    (x, 0) if x == req => Ok(EchoKind::Request),
                    (x, 0) if x == rep => Ok(EchoKind::Reply),
                    _ => Err(WireError::NotEchoReply),
                };
                // ICMPv6: the kernel checked the sum, the zero field is fine.
                let got = Echo::parse(Family::V6, &p).map(|e| (e.kind, e.ident, e.seq));
                assert_eq!(
                    got,
                    want(128, 129).map(|k| (k, 0x1234, 0x5678)),
                    "v6 {t}/{c}"
                );
                // ICMPv4 with a correct checksum: classified by type and code...
                let mut p4 = p;
                let sum = checksum(&p4);
                p4[2..4].copy_from_slice(&sum.to_be_bytes());
                let got = Echo::parse(Family::V4, &p4).map(|e| (e.kind, e.ident, e.seq));
                assert_eq!(got, want(8, 0).map(|k| (k, 0x1234, 0x5678)), "v4 {t}/{c}");
                // ...and with a wrong one, refused before the type is even looked at.
                p4[3] ^= 0x01;
                assert_eq!(Echo::parse(Family::V4, &p4), Err(WireError::BadChecksum));
            }
        }
    }
}
