//! The Internet checksum (RFC 1071): one's complement of the one's complement sum of 16-bit
//! big-endian words, an odd trailing byte padded with zero.

/// Checksum of `data`. Emitting: store the result in a zeroed checksum field. Verifying: the
/// checksum of a whole message that carries a correct checksum is 0.
pub fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    let mut words = data.chunks_exact(2);
    for w in &mut words {
        sum += u32::from(u16::from_be_bytes([w[0], w[1]]));
    }
    if let [last] = words.remainder() {
        sum += u32::from(*last) << 8;
    }
    // Two folds are enough: after the first the sum is at most 0x1fffe.
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    !(sum as u16)
}

/// Whether an ICMPv4 message (checksum at bytes 2..4) verifies: it sums to zero. Fuzz builds
/// (`cfg(fuzzing)`, set by cargo-fuzz) also take a zero checksum field, so the fuzzer reaches
/// what lies past the checksum without solving it, while any other wrong value still fails
/// (smoltcp's fuzz bypass, narrowed). Release and test builds never take it.
pub(super) fn checksum_ok(msg: &[u8]) -> bool {
    checksum(msg) == 0 || cfg!(fuzzing) && msg.get(2..4) == Some(&[0, 0])
}

#[cfg(test)]
mod tests {
    use super::checksum;

    #[test]
    fn rfc1071_example() {
        // RFC 1071 section 3: the words 0001 f203 f4f5 f6f7 sum to ddf2, checksum 220d.
        assert_eq!(
            checksum(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]),
            0x220d
        );
    }

    #[test]
    fn odd_length_pads_with_zero() {
        assert_eq!(checksum(&[0xab]), !0xab00);
        assert_eq!(
            checksum(&[0x12, 0x34, 0x56]),
            checksum(&[0x12, 0x34, 0x56, 0x00])
        );
    }

    #[test]
    fn empty_and_all_ones() {
        assert_eq!(checksum(&[]), 0xffff);
        assert_eq!(checksum(&[0xff, 0xff]), 0x0000);
    }

    #[test]
    fn verifies_to_zero_with_checksum_in_place() {
        let mut msg = [8u8, 0, 0, 0, 0x12, 0x34, 0x00, 0x07, b'a', b'b', b'c'];
        let c = checksum(&msg);
        msg[2..4].copy_from_slice(&c.to_be_bytes());
        assert_eq!(checksum(&msg), 0);
    }

    #[test]
    fn carries_fold_twice() {
        // 0xffff * 3 = 0x2fffd: folding once gives 0x10000 - 1 + 2 overflow, needs the second fold.
        assert_eq!(checksum(&[0xff; 6]), 0);
        assert_eq!(checksum(&[0xff, 0xff, 0x00, 0x01]), !0x0001u16);
    }
}
