//! The IPv4 header a raw ICMP socket hands us in front of every received message (RFC 791
//! section 3.1). We only need to skip it safely and learn nothing else from it: the source
//! address comes from `recvfrom`, which the kernel fills from this same header.

use super::WireError;

const PROTO_ICMP: u8 = 1;
const MIN_HEADER_LEN: usize = 20;

/// The ICMP message inside a raw IPv4 datagram. Checks version, IHL, protocol, and that the
/// buffer holds the whole header; a total length shorter than the buffer trims the payload
/// (padding), a longer one means the datagram was truncated by the receive buffer.
pub fn strip_ipv4_header(packet: &[u8]) -> Result<&[u8], WireError> {
    if packet.len() < MIN_HEADER_LEN {
        return Err(WireError::Truncated);
    }
    let version = packet[0] >> 4;
    let header_len = usize::from(packet[0] & 0x0f) * 4;
    if version != 4 || header_len < MIN_HEADER_LEN || packet[9] != PROTO_ICMP {
        return Err(WireError::BadIpHeader);
    }
    let total_len = usize::from(u16::from_be_bytes([packet[2], packet[3]]));
    if total_len < header_len {
        return Err(WireError::BadIpHeader);
    }
    if packet.len() < header_len || packet.len() < total_len {
        return Err(WireError::Truncated);
    }
    Ok(&packet[header_len..total_len])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An echo reply from 198.51.100.1 to 198.51.100.2 laid out as a raw socket returns it:
    /// 20-byte header (checksum left 0: we never read it), 16 bytes of ICMP.
    const CAPTURED: [u8; 36] = [
        0x45, 0x00, 0x00, 0x24, 0x5c, 0x1e, 0x00, 0x00, 0x40, 0x01, 0x00, 0x00, 0xc6, 0x33, 0x64,
        0x01, 0xc6, 0x33, 0x64, 0x02, // IPv4 header
        0x00, 0x00, 0xd5, 0xb9, 0x1a, 0x2b, 0x00, 0x07, // echo reply, ident 0x1a2b, seq 7
        1, 2, 3, 4, 5, 6, 7, 8, // payload
    ];

    #[test]
    fn strips_captured_header() {
        let icmp = strip_ipv4_header(&CAPTURED).unwrap();
        assert_eq!(icmp.len(), 16);
        assert_eq!(icmp[0], 0);
    }

    #[test]
    fn header_with_options() {
        let mut p = vec![
            0x46, 0, 0, 28, 0, 0, 0, 0, 64, 1, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8,
        ];
        p.extend_from_slice(&[1, 1, 0, 0]); // 4 bytes of options (NOP NOP EOL EOL)
        p.extend_from_slice(&[0xaa; 4]);
        assert_eq!(strip_ipv4_header(&p).unwrap(), &[0xaa; 4]);
    }

    #[test]
    fn trailing_padding_is_trimmed() {
        let mut p = CAPTURED.to_vec();
        p.extend_from_slice(&[0; 10]);
        assert_eq!(strip_ipv4_header(&p).unwrap().len(), 16);
    }

    #[test]
    fn truncated_inputs() {
        for len in 0..CAPTURED.len() {
            assert_eq!(
                strip_ipv4_header(&CAPTURED[..len]),
                Err(WireError::Truncated),
                "len {len}"
            );
        }
    }

    #[test]
    fn bad_headers() {
        let cases: [(usize, u8); 4] = [(0, 0x65), (0, 0x44), (9, 6), (3, 0x10)];
        for (at, byte) in cases {
            let mut p = CAPTURED;
            p[at] = byte;
            assert_eq!(
                strip_ipv4_header(&p),
                Err(WireError::BadIpHeader),
                "byte {at} = {byte:#x}"
            );
        }
    }
}
