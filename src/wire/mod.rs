//! Packet codec for ICMP and ICMPv6 echo (RFC 792, RFC 4443), the errors that quote an echo
//! (destination unreachable, time exceeded), the IPv4 header in front of raw IPv4 replies
//! (RFC 791), SipHash-2-4 for the echo MAC, the rtnetlink messages netheal reads
//! (`netlink`), the gateway's layer-2 answers: ARP (`arp`, RFC 826) and neighbour
//! discovery (`ndp`, RFC 4861), and the one DNS query of a `dns:` target (`dns`, RFC 1035).
//! Pure byte handling: no I/O, no allocation, no `unsafe`, and no panics on any
//! input — every length is checked before a field is read, and the tests feed truncated and
//! corrupt packets to hold that.
#![forbid(unsafe_code)]

pub mod arp;
mod checksum;
pub mod dns;
mod error;
mod icmp;
mod ipv4;
pub mod ndp;
pub mod netlink;
#[cfg(test)]
mod netlink_fixtures;
mod siphash;

pub use checksum::checksum;
use checksum::{checksum_ok, checksum_words};
pub use error::{ErrorKind, QuotedEcho};
pub use icmp::{echo_request, Echo, EchoKind, Family, ECHO_HEADER_LEN};
pub use ipv4::strip_ipv4_header;
pub use siphash::{siphash24, siphash24_words, SipKey};

/// Why a received packet was not an echo reply we can read. Each is counted, never fatal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WireError {
    /// Shorter than the header it claims or needs.
    Truncated,
    /// IPv4 header that is not version 4, has IHL < 5, or does not carry ICMP.
    BadIpHeader,
    /// ICMP checksum does not verify.
    BadChecksum,
    /// A well-formed ICMP message that is not an echo reply (errors, requests, NDP...).
    NotEchoReply,
    /// A DNS message that is not the response to our query (another id or question, a
    /// query, an unknown label type).
    NotOurs,
}
