//! The one DNS exchange a `dns:` target makes (RFC 1035 section 4.1): a query for the root's
//! name servers (`. IN NS`, recursion not desired, so a resolver answers from its cache or
//! its root hints and never has to go out), and the check that a response is an answer to
//! it. Any RCODE counts: REFUSED and SERVFAIL come from a resolver that is there, which is
//! all a probe of the path needs. No name is ever resolved.
//!
//! The parser reads the header and the question, then walks the records that the counts
//! announce (names skipped label by label, a compression pointer ends a name and is not
//! followed, so there is no loop to bound), so a response is well formed when every length
//! in it is in bounds. A truncated response (TC) may stop anywhere after the question.
//! No allocation, no panics on any input.

use super::WireError;

/// The header: id, flags, four counts.
pub const HEADER_LEN: usize = 12;
/// Root name (one zero byte), QTYPE, QCLASS.
const QUESTION: [u8; 5] = [0, 0, 2, 0, 1];
/// The query on the wire: header + question.
pub const QUERY_LEN: usize = HEADER_LEN + QUESTION.len();

mod field {
    use std::ops::Range;
    pub const ID: Range<usize> = 0..2;
    pub const FLAGS: Range<usize> = 2..4;
    pub const QDCOUNT: Range<usize> = 4..6;
    pub const ANCOUNT: Range<usize> = 6..8;
    pub const NSCOUNT: Range<usize> = 8..10;
    pub const ARCOUNT: Range<usize> = 10..12;
}

/// Flag bits (RFC 1035 4.1.1).
const QR: u16 = 0x8000;
const OPCODE: u16 = 0x7800;
const TC: u16 = 0x0200;
const RCODE: u16 = 0x000f;
/// TYPE + CLASS + TTL + RDLENGTH.
const RR_FIXED: usize = 10;

/// Our query: everything but the id is fixed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Query {
    pub id: u16,
}

impl Query {
    /// Writes the query into `buf`; None if it is shorter than `QUERY_LEN`.
    pub fn emit(&self, buf: &mut [u8]) -> Option<usize> {
        let out = buf.get_mut(..QUERY_LEN)?;
        out.fill(0);
        out[field::ID].copy_from_slice(&self.id.to_be_bytes());
        // Flags 0: a standard query (opcode 0), RD=0.
        out[field::QDCOUNT].copy_from_slice(&1u16.to_be_bytes());
        out[HEADER_LEN..].copy_from_slice(&QUESTION);
        Some(QUERY_LEN)
    }
}

/// A response to our query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Response {
    pub id: u16,
    pub rcode: u8,
    pub truncated: bool,
    /// Answer, authority and additional records read.
    pub records: u32,
}

fn be16(msg: &[u8], r: std::ops::Range<usize>) -> u16 {
    // Callers check the length first; a short slice reads as 0 rather than panic.
    match msg.get(r) {
        Some(&[a, b]) => u16::from_be_bytes([a, b]),
        _ => 0,
    }
}

/// Skips a domain name starting at `at`; returns the offset after it.
fn skip_name(msg: &[u8], mut at: usize) -> Result<usize, WireError> {
    // At most 255 bytes of name (RFC 1035 2.3.4): 128 labels is more than a legal name has.
    for _ in 0..128 {
        let len = *msg.get(at).ok_or(WireError::Truncated)?;
        match len & 0xc0 {
            0x00 if len == 0 => return Ok(at + 1),
            0x00 => at += 1 + usize::from(len),
            // A compression pointer: two bytes, and the name ends here.
            0xc0 if at + 2 <= msg.len() => return Ok(at + 2),
            0xc0 => return Err(WireError::Truncated),
            // 0x40 and 0x80: extended label types, not in use (RFC 6891 section 5).
            _ => return Err(WireError::NotOurs),
        }
    }
    Err(WireError::NotOurs)
}

impl Response {
    /// Reads `msg` as the response to the query with `id`: QR set, opcode 0, our id, and our
    /// one question echoed back; records, where the counts announce them, within the message.
    pub fn parse(msg: &[u8], id: u16) -> Result<Response, WireError> {
        if msg.len() < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        let flags = be16(msg, field::FLAGS);
        if be16(msg, field::ID) != id || flags & QR == 0 || flags & OPCODE != 0 {
            return Err(WireError::NotOurs);
        }
        if be16(msg, field::QDCOUNT) != 1 {
            return Err(WireError::NotOurs);
        }
        // Name compression never applies to the root name: it is the single zero byte.
        match msg.get(HEADER_LEN..QUERY_LEN) {
            None => return Err(WireError::Truncated),
            Some(q) if q != QUESTION => return Err(WireError::NotOurs),
            Some(_) => {}
        }
        let truncated = flags & TC != 0;
        let total = u32::from(be16(msg, field::ANCOUNT))
            + u32::from(be16(msg, field::NSCOUNT))
            + u32::from(be16(msg, field::ARCOUNT));
        let mut at = QUERY_LEN;
        let mut records = 0;
        while records < total {
            if truncated && at == msg.len() {
                break;
            }
            at = skip_name(msg, at)?;
            let fixed = msg.get(at..at + RR_FIXED).ok_or(WireError::Truncated)?;
            let rdlen = usize::from(u16::from_be_bytes([fixed[8], fixed[9]]));
            at += RR_FIXED;
            if msg.len() - at < rdlen {
                return Err(WireError::Truncated);
            }
            at += rdlen;
            records += 1;
        }
        Ok(Response {
            id,
            rcode: (flags & RCODE) as u8,
            truncated,
            records,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `dig @198.51.100.53 . NS +norecurse` answered by dnsmasq 2.89 (--no-resolv, no
    /// upstream): REFUSED, no records.
    const REFUSED: [u8; 17] = [
        0xbe, 0xef, 0x80, 0x05, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 1,
    ];

    /// A root server's answer: one NS record (`. 518400 IN NS a.root-servers.net.`) and one
    /// A glue record with a compressed owner name.
    fn with_records() -> Vec<u8> {
        let mut m = vec![0xbe, 0xef, 0x84, 0x00, 0, 1, 0, 1, 0, 0, 0, 1];
        m.extend_from_slice(&QUESTION);
        // NS: owner root, type 2, class 1, ttl, rdlength 20, rdata a.root-servers.net.
        m.extend_from_slice(&[0, 0, 2, 0, 1, 0, 7, 0xe9, 0, 0, 20]);
        m.extend_from_slice(b"\x01a\x0croot-servers\x03net\x00");
        // A: owner pointer to offset 28 (a.root-servers.net), rdlength 4.
        m.extend_from_slice(&[
            0xc0, 28, 0, 1, 0, 1, 0, 0x36, 0xee, 0x80, 0, 4, 198, 41, 0, 4,
        ]);
        m
    }

    #[test]
    fn the_query_is_root_ns_without_recursion() {
        let mut buf = [0xffu8; 32];
        assert_eq!(Query { id: 0xbeef }.emit(&mut buf), Some(QUERY_LEN));
        assert_eq!(
            buf[..QUERY_LEN],
            [0xbe, 0xef, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 1]
        );
        assert_eq!(Query { id: 1 }.emit(&mut buf[..QUERY_LEN - 1]), None);
    }

    #[test]
    fn a_refusal_is_an_answer() {
        assert_eq!(
            Response::parse(&REFUSED, 0xbeef),
            Ok(Response {
                id: 0xbeef,
                rcode: 5,
                truncated: false,
                records: 0
            })
        );
    }

    #[test]
    fn records_are_walked_and_must_fit() {
        let m = with_records();
        let r = Response::parse(&m, 0xbeef).unwrap();
        assert_eq!((r.rcode, r.records), (0, 2));
        for cut in QUERY_LEN..m.len() {
            assert_eq!(
                Response::parse(&m[..cut], 0xbeef),
                Err(WireError::Truncated),
                "cut at {cut}"
            );
        }
        // The same cut with TC set is fine where a record ends.
        let mut tc = m.clone();
        tc[2] |= 0x02;
        let r = Response::parse(&tc[..QUERY_LEN], 0xbeef).unwrap();
        assert_eq!((r.truncated, r.records), (true, 0));
        assert!(Response::parse(&tc[..QUERY_LEN + 3], 0xbeef).is_err());
    }

    #[test]
    fn what_is_not_the_answer_to_our_query_is_refused() {
        type Change = fn(&mut Vec<u8>);
        let cases: &[(&str, Change, WireError)] = &[
            ("other id", |m| m[1] ^= 1, WireError::NotOurs),
            (
                "a query, not a response",
                |m| m[2] &= 0x7f,
                WireError::NotOurs,
            ),
            ("opcode 2 (status)", |m| m[2] |= 0x10, WireError::NotOurs),
            ("no question", |m| m[5] = 0, WireError::NotOurs),
            ("two questions", |m| m[5] = 2, WireError::NotOurs),
            ("type A", |m| m[14] = 1, WireError::NotOurs),
            ("class CH", |m| m[16] = 3, WireError::NotOurs),
            ("another name", |m| m[12] = 3, WireError::NotOurs),
            (
                "header only",
                |m| m.truncate(HEADER_LEN),
                WireError::Truncated,
            ),
            ("half a header", |m| m.truncate(5), WireError::Truncated),
            (
                "an extended label",
                |m| {
                    m[7] = 1;
                    m.push(0x41);
                },
                WireError::NotOurs,
            ),
            (
                "a record past the end",
                |m| {
                    m[7] = 1;
                    m.extend_from_slice(&[0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 9, 1]);
                },
                WireError::Truncated,
            ),
            (
                "a half pointer",
                |m| {
                    m[7] = 1;
                    m.push(0xc0);
                },
                WireError::Truncated,
            ),
        ];
        for (what, change, want) in cases {
            let mut m = REFUSED.to_vec();
            change(&mut m);
            assert_eq!(Response::parse(&m, 0xbeef), Err(*want), "{what}");
        }
    }

    #[test]
    fn a_name_of_endless_labels_ends() {
        let mut m = REFUSED.to_vec();
        m[7] = 1;
        for _ in 0..200 {
            m.extend_from_slice(&[1, b'a']);
        }
        assert_eq!(Response::parse(&m, 0xbeef), Err(WireError::NotOurs));
    }
}
