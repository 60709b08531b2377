//! ICMP error messages that quote one of our echo requests: destination unreachable and time
//! exceeded (RFC 792 pages 4 and 6: type 3 and 11; RFC 4443 sections 3.1 and 3.3: ICMPv6
//! type 1 and 3). Such a message is an 8-byte ICMP header, then as much of the offending
//! datagram as the reporter chose to quote: its IP header, then at least the first 8 bytes of
//! its payload (RFC 792), which for us is the echo header. Linux quotes up to 576 bytes
//! (ICMPv4) or 1280 (ICMPv6), so our whole echo; RFC 792 routers may quote only 8 bytes of it,
//! so the echo data that follows is returned as far as it is there, possibly empty.
//!
//! Checked view in the smoltcp manner: every field has a named range, and every length is
//! checked before the field is read, so no input makes this panic. "Packet too big", "frag
//! needed" and parameter problems are not failures of the path and are not parsed.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::{checksum_ok, Family, WireError, ECHO_HEADER_LEN};

mod field {
    use std::ops::Range;
    /// The ICMP error header: type, code, checksum, 4 unused bytes.
    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const HEADER_LEN: usize = 8;
    /// In the quoted IPv4 header (RFC 791 section 3.1).
    pub const V4_VER_IHL: usize = 0;
    pub const V4_TOTAL_LEN: Range<usize> = 2..4;
    pub const V4_PROTO: usize = 9;
    pub const V4_DST: Range<usize> = 16..20;
    pub const V4_MIN_LEN: usize = 20;
    /// In the quoted IPv6 header (RFC 8200 section 3).
    pub const V6_VER: usize = 0;
    pub const V6_PAYLOAD_LEN: Range<usize> = 4..6;
    pub const V6_NEXT: usize = 6;
    pub const V6_DST: Range<usize> = 24..40;
    pub const V6_LEN: usize = 40;
    /// In the quoted echo header.
    pub const ECHO_TYPE: usize = 0;
    pub const ECHO_CODE: usize = 1;
    pub const ECHO_IDENT: Range<usize> = 4..6;
    pub const ECHO_SEQ: Range<usize> = 6..8;
}

const PROTO_ICMP: u8 = 1;
const NEXT_ICMPV6: u8 = 58;

/// What went wrong, as the reporter put it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorKind {
    pub family: Family,
    pub icmp_type: u8,
    pub code: u8,
}

impl ErrorKind {
    /// Whether this type/code says the echo will not arrive: destination unreachable (except
    /// "fragmentation needed", which a 16-byte echo never causes and which is path MTU
    /// discovery, not a dead path) and time exceeded.
    fn is_path_failure(self) -> bool {
        match self.family {
            Family::V4 => self.icmp_type == 11 || (self.icmp_type == 3 && self.code != 4),
            Family::V6 => self.icmp_type == 1 || self.icmp_type == 3,
        }
    }
}

impl std::fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = match (self.family, self.icmp_type, self.code) {
            (Family::V4, 3, 0) => "net unreachable",
            (Family::V4, 3, 1) => "host unreachable",
            (Family::V4, 3, 2) => "protocol unreachable",
            (Family::V4, 3, 3) => "port unreachable",
            (Family::V4, 3, 5) => "source route failed",
            (Family::V4, 3, 6) => "net unknown",
            (Family::V4, 3, 7) => "host unknown",
            (Family::V4, 3, 9 | 10 | 13) => "administratively prohibited",
            (Family::V4, 3, 11) => "net unreachable for TOS",
            (Family::V4, 3, 12) => "host unreachable for TOS",
            (Family::V4, 3, _) => "destination unreachable",
            (Family::V4, 11, _) => "time exceeded",
            (Family::V6, 1, 0) => "no route to destination",
            (Family::V6, 1, 1) => "administratively prohibited",
            (Family::V6, 1, 2) => "beyond scope of source address",
            (Family::V6, 1, 3) => "address unreachable",
            (Family::V6, 1, 4) => "port unreachable",
            (Family::V6, 1, 5) => "source address failed policy",
            (Family::V6, 1, 6) => "reject route",
            (Family::V6, 1, _) => "destination unreachable",
            (Family::V6, 3, _) => "time exceeded",
            _ => "ICMP error",
        };
        write!(f, "{name} (type {} code {})", self.icmp_type, self.code)
    }
}

/// An ICMP error that quotes an echo request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuotedEcho<'a> {
    pub kind: ErrorKind,
    /// Where the quoted echo was going.
    pub dest: IpAddr,
    pub ident: u16,
    pub seq: u16,
    /// As much of the echo's data as was quoted (empty when the reporter quoted 8 bytes).
    pub payload: &'a [u8],
}

impl<'a> QuotedEcho<'a> {
    /// Reads an ICMP error quoting an echo request from `msg` (the ICMP part only). Well
    /// formed messages of other kinds, and errors about something other than an echo
    /// request, are `NotEchoReply`.
    pub fn parse(family: Family, msg: &'a [u8]) -> Result<Self, WireError> {
        if msg.len() < field::HEADER_LEN {
            return Err(WireError::Truncated);
        }
        let kind = ErrorKind {
            family,
            icmp_type: msg[field::TYPE],
            code: msg[field::CODE],
        };
        if !kind.is_path_failure() {
            return Err(WireError::NotEchoReply);
        }
        // ICMPv6 checksums are verified by the kernel (see icmp.rs); ICMPv4's are ours.
        if family == Family::V4 && !checksum_ok(msg) {
            return Err(WireError::BadChecksum);
        }
        let quoted = &msg[field::HEADER_LEN..];
        let (dest, echo) = match family {
            Family::V4 => quoted_v4(quoted)?,
            Family::V6 => quoted_v6(quoted)?,
        };
        Self::from_quote(kind, dest, echo)
    }

    /// The same, from what a datagram socket's error queue gives (ip(7) IP_RECVERR): the
    /// kernel has already read the error and its quoted IP header, and hands over the type,
    /// code and destination, and the quoted echo from its header on.
    pub fn from_queued(kind: ErrorKind, dest: IpAddr, echo: &'a [u8]) -> Result<Self, WireError> {
        if !kind.is_path_failure() {
            return Err(WireError::NotEchoReply);
        }
        Self::from_quote(kind, dest, echo)
    }

    fn from_quote(kind: ErrorKind, dest: IpAddr, echo: &'a [u8]) -> Result<Self, WireError> {
        if echo.len() < ECHO_HEADER_LEN {
            return Err(WireError::Truncated);
        }
        let request = match kind.family {
            Family::V4 => 8,
            Family::V6 => 128,
        };
        if echo[field::ECHO_TYPE] != request || echo[field::ECHO_CODE] != 0 {
            return Err(WireError::NotEchoReply);
        }
        let be16 =
            |r: std::ops::Range<usize>| u16::from_be_bytes([echo[r.start], echo[r.start + 1]]);
        Ok(QuotedEcho {
            kind,
            dest,
            ident: be16(field::ECHO_IDENT),
            seq: be16(field::ECHO_SEQ),
            payload: &echo[ECHO_HEADER_LEN..],
        })
    }
}

/// The quoted IPv4 header: its destination, and what follows it (trimmed to its total length
/// when the quote is longer, as it is with padding).
fn quoted_v4(q: &[u8]) -> Result<(IpAddr, &[u8]), WireError> {
    if q.len() < field::V4_MIN_LEN {
        return Err(WireError::Truncated);
    }
    let header_len = usize::from(q[field::V4_VER_IHL] & 0x0f) * 4;
    if q[field::V4_VER_IHL] >> 4 != 4 || header_len < field::V4_MIN_LEN {
        return Err(WireError::BadIpHeader);
    }
    if q[field::V4_PROTO] != PROTO_ICMP {
        return Err(WireError::NotEchoReply);
    }
    if q.len() < header_len {
        return Err(WireError::Truncated);
    }
    let total = usize::from(u16::from_be_bytes([
        q[field::V4_TOTAL_LEN.start],
        q[field::V4_TOTAL_LEN.start + 1],
    ]));
    if total < header_len {
        return Err(WireError::BadIpHeader);
    }
    let d = &q[field::V4_DST];
    let dest = IpAddr::V4(Ipv4Addr::new(d[0], d[1], d[2], d[3]));
    Ok((dest, &q[header_len..total.min(q.len())]))
}

/// The quoted IPv6 header. Our echoes carry no extension headers, so a quote whose next header
/// is not ICMPv6 is not about one of them.
fn quoted_v6(q: &[u8]) -> Result<(IpAddr, &[u8]), WireError> {
    if q.len() < field::V6_LEN {
        return Err(WireError::Truncated);
    }
    if q[field::V6_VER] >> 4 != 6 {
        return Err(WireError::BadIpHeader);
    }
    if q[field::V6_NEXT] != NEXT_ICMPV6 {
        return Err(WireError::NotEchoReply);
    }
    let mut d = [0u8; 16];
    d.copy_from_slice(&q[field::V6_DST]);
    let payload_len = usize::from(u16::from_be_bytes([
        q[field::V6_PAYLOAD_LEN.start],
        q[field::V6_PAYLOAD_LEN.start + 1],
    ]));
    let end = field::V6_LEN.saturating_add(payload_len).min(q.len());
    Ok((IpAddr::V6(Ipv6Addr::from(d)), &q[field::V6_LEN..end]))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::wire::checksum;

    /// Host unreachable (type 3 code 1) from a router, quoting our echo request from
    /// 198.51.100.2 to 203.0.113.77 (ident 0x1a2b, seq 7, 8 bytes of MAC 01..08) in full, as
    /// a Linux router's kernel does (icmp_send quotes up to 576 bytes). ICMP part only: the
    /// raw socket's outer IPv4 header is stripped by strip_ipv4_header first.
    /// The quoted IPv4 header's checksum is left 0 (nothing reads it); the error's checksum
    /// 0xbf20 is the ones' complement of the sum of all 22 words (worked out by hand and
    /// held by `fixture_checksums_verify`).
    pub const V4_HOST_UNREACHABLE: [u8; 44] = [
        0x03, 0x01, 0xbf, 0x20, 0x00, 0x00, 0x00, 0x00, // type 3 code 1, checksum, unused
        0x45, 0x00, 0x00, 0x24, 0x12, 0x34, 0x40, 0x00, 0x40, 0x01, 0x00, 0x00, // IPv4 ...
        0xc6, 0x33, 0x64, 0x02, 0xcb, 0x00, 0x71, 0x4d, // src 198.51.100.2 dst 203.0.113.77
        0x08, 0x00, 0xcd, 0xb9, 0x1a, 0x2b, 0x00, 0x07, // echo request, ident, seq 7
        1, 2, 3, 4, 5, 6, 7, 8, // the echo's data (our MAC)
    ];

    /// ICMPv6 destination unreachable, code 3 (address unreachable: the router's neighbour
    /// discovery for the target failed), quoting an echo request from 2001:db8:1::2 to
    /// 2001:db8:2::77, ident 0xbeef, seq 0xfffe, with 4 bytes of data.
    pub const V6_ADDR_UNREACHABLE: [u8; 60] = [
        0x01, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // type 1 code 3 (kernel-checked sum)
        0x60, 0x00, 0x00, 0x00, 0x00, 0x0c, 0x3a, 0x40, // IPv6, payload 12, next 58, hop 64
        0x20, 0x01, 0x0d, 0xb8, 0x00, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02, // src
        0x20, 0x01, 0x0d, 0xb8, 0x00, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x77, // dst
        0x80, 0x00, 0x00, 0x00, 0xbe, 0xef, 0xff, 0xfe, // echo request
        0xca, 0xfe, 0, 1, // data
    ];

    #[test]
    fn fixture_checksums_verify() {
        assert_eq!(checksum(&V4_HOST_UNREACHABLE), 0);
        // The quoted IPv4 header is left with a zero checksum: nobody reads it.
        assert_eq!(
            checksum(&V4_HOST_UNREACHABLE[28..]),
            0,
            "the quoted echo's own sum"
        );
    }

    #[test]
    fn parses_v4_host_unreachable_fixture() {
        let q = QuotedEcho::parse(Family::V4, &V4_HOST_UNREACHABLE).unwrap();
        assert_eq!(q.dest, "203.0.113.77".parse::<IpAddr>().unwrap());
        assert_eq!((q.ident, q.seq), (0x1a2b, 7));
        assert_eq!(q.payload, &[1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(q.kind.to_string(), "host unreachable (type 3 code 1)");
    }

    #[test]
    fn parses_v6_address_unreachable_fixture() {
        let q = QuotedEcho::parse(Family::V6, &V6_ADDR_UNREACHABLE).unwrap();
        assert_eq!(q.dest, "2001:db8:2::77".parse::<IpAddr>().unwrap());
        assert_eq!((q.ident, q.seq), (0xbeef, 0xfffe));
        assert_eq!(q.payload, &[0xca, 0xfe, 0, 1]);
        assert_eq!(q.kind.to_string(), "address unreachable (type 1 code 3)");
    }

    /// Rebuilds a v4 error of type/code around `quote`, with a correct checksum.
    fn v4_error(t: u8, c: u8, quote: &[u8]) -> Vec<u8> {
        let mut m = vec![t, c, 0, 0, 0, 0, 0, 0];
        m.extend_from_slice(quote);
        let s = checksum(&m);
        m[2..4].copy_from_slice(&s.to_be_bytes());
        m
    }

    #[test]
    fn an_rfc792_quote_of_eight_bytes_gives_an_empty_payload() {
        // Quoted total length still says 36, but only the echo header was quoted.
        let m = v4_error(11, 0, &V4_HOST_UNREACHABLE[8..36]);
        let q = QuotedEcho::parse(Family::V4, &m).unwrap();
        assert_eq!(q.kind.to_string(), "time exceeded (type 11 code 0)");
        assert_eq!((q.ident, q.seq, q.payload), (0x1a2b, 7, &[][..]));
    }

    #[test]
    fn every_truncation_is_refused_without_panic() {
        // Cut anywhere before the end of the quoted echo header: refused, whether the
        // checksum still verifies (re-computed) or not (cut as received).
        for len in 0..28 {
            let m = v4_error(3, 1, &V4_HOST_UNREACHABLE[8..8 + len]);
            assert!(
                QuotedEcho::parse(Family::V4, &m).is_err(),
                "v4 quote cut to {len} bytes"
            );
        }
        for len in 0..36 {
            assert!(
                QuotedEcho::parse(Family::V4, &V4_HOST_UNREACHABLE[..len]).is_err(),
                "v4 cut to {len} bytes"
            );
        }
        for len in 0..56 {
            assert!(
                QuotedEcho::parse(Family::V6, &V6_ADDR_UNREACHABLE[..len]).is_err(),
                "v6 cut to {len} bytes"
            );
        }
    }

    #[test]
    fn other_kinds_are_not_parsed() {
        let quote = &V4_HOST_UNREACHABLE[8..];
        // Echo reply, redirect, frag needed, source quench, parameter problem.
        for (t, c) in [(0u8, 0u8), (5, 1), (3, 4), (4, 0), (12, 0)] {
            assert_eq!(
                QuotedEcho::parse(Family::V4, &v4_error(t, c, quote)),
                Err(WireError::NotEchoReply),
                "type {t} code {c}"
            );
        }
        // Packet too big, parameter problem, echo reply.
        for t in [2u8, 4, 129] {
            let mut m = V6_ADDR_UNREACHABLE;
            m[0] = t;
            assert_eq!(
                QuotedEcho::parse(Family::V6, &m),
                Err(WireError::NotEchoReply),
                "v6 type {t}"
            );
        }
        // An error about a UDP datagram, or about an echo reply (someone else's ping answer).
        let mut q = quote.to_vec();
        q[9] = 17;
        assert_eq!(
            QuotedEcho::parse(Family::V4, &v4_error(3, 1, &q)),
            Err(WireError::NotEchoReply)
        );
        let mut q = quote.to_vec();
        q[20] = 0;
        assert_eq!(
            QuotedEcho::parse(Family::V4, &v4_error(3, 1, &q)),
            Err(WireError::NotEchoReply)
        );
        let mut m = V6_ADDR_UNREACHABLE;
        m[14] = 17;
        assert_eq!(
            QuotedEcho::parse(Family::V6, &m),
            Err(WireError::NotEchoReply)
        );
    }

    #[test]
    fn corrupt_v4_checksum_and_bad_quoted_headers() {
        let mut m = V4_HOST_UNREACHABLE;
        m[30] ^= 1;
        assert_eq!(
            QuotedEcho::parse(Family::V4, &m),
            Err(WireError::BadChecksum)
        );
        // Quoted version 6 in a v4 error, IHL 4, total length below the header.
        for (at, byte) in [(8usize, 0x65u8), (8, 0x44), (11, 0x10)] {
            let mut q = V4_HOST_UNREACHABLE[8..].to_vec();
            q[at - 8] = byte;
            assert_eq!(
                QuotedEcho::parse(Family::V4, &v4_error(3, 1, &q)),
                Err(WireError::BadIpHeader),
                "byte {at} = {byte:#x}"
            );
        }
        let mut m = V6_ADDR_UNREACHABLE;
        m[8] = 0x45;
        assert_eq!(
            QuotedEcho::parse(Family::V6, &m),
            Err(WireError::BadIpHeader)
        );
    }

    #[test]
    fn queued_errors_are_read_from_the_echo_on() {
        let kind = |family, icmp_type, code| ErrorKind {
            family,
            icmp_type,
            code,
        };
        let dest: IpAddr = "203.0.113.77".parse().unwrap();
        let echo = &V4_HOST_UNREACHABLE[28..];
        let q = QuotedEcho::from_queued(kind(Family::V4, 3, 1), dest, echo).unwrap();
        assert_eq!((q.dest, q.ident, q.seq), (dest, 0x1a2b, 7));
        assert_eq!(q.payload, &[1, 2, 3, 4, 5, 6, 7, 8]);
        let v6 = &V6_ADDR_UNREACHABLE[48..];
        let d6: IpAddr = "2001:db8:2::77".parse().unwrap();
        assert_eq!(
            QuotedEcho::from_queued(kind(Family::V6, 1, 3), d6, v6).map(|q| q.seq),
            Ok(0xfffe)
        );
        // Frag needed / packet too big are not failures; a short or foreign quote is refused.
        assert!(QuotedEcho::from_queued(kind(Family::V4, 3, 4), dest, echo).is_err());
        assert!(QuotedEcho::from_queued(kind(Family::V6, 2, 0), d6, v6).is_err());
        for len in 0..ECHO_HEADER_LEN {
            assert!(QuotedEcho::from_queued(kind(Family::V4, 3, 1), dest, &echo[..len]).is_err());
        }
        assert!(QuotedEcho::from_queued(kind(Family::V6, 1, 3), d6, echo).is_err());
    }

    #[test]
    fn a_quote_longer_than_its_datagram_is_trimmed() {
        let mut q = V4_HOST_UNREACHABLE[8..].to_vec();
        q.extend_from_slice(&[0xee; 6]);
        let m = v4_error(3, 1, &q);
        assert_eq!(
            QuotedEcho::parse(Family::V4, &m).unwrap().payload,
            &[1, 2, 3, 4, 5, 6, 7, 8]
        );
        let mut m = V6_ADDR_UNREACHABLE.to_vec();
        m.extend_from_slice(&[0xee; 6]);
        assert_eq!(
            QuotedEcho::parse(Family::V6, &m).unwrap().payload,
            &[0xca, 0xfe, 0, 1]
        );
    }
}
