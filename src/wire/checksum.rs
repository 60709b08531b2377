//! The Internet checksum (RFC 1071): one's complement of the one's complement sum of 16-bit
//! big-endian words, an odd trailing byte padded with zero.

/// Checksum of `data`. Emitting: store the result in a zeroed checksum field. Verifying: the
/// checksum of a whole message that carries a correct checksum is 0.
///
/// Summed eight bytes at a time: a big-endian 64-bit word is four 16-bit words times powers
/// of 2^16, and 2^16 = 1 in one's complement (mod 0xffff) arithmetic, so adding the wide
/// words with an end-around carry and folding at the end gives the same sum (RFC 1071
/// section 2 (B), "parallel summation"). A 16-byte echo is two additions instead of eight
/// (issue 9).
#[inline]
pub fn checksum(data: &[u8]) -> u16 {
    let mut sum: u64 = 0;
    let mut rest = data;
    while let Some((w, tail)) = rest.split_first_chunk::<8>() {
        let (s, carry) = sum.overflowing_add(u64::from_be_bytes(*w));
        // No second overflow: after one, s is at most 2^64 - 2.
        sum = s + u64::from(carry);
        rest = tail;
    }
    // Folded to under 2^33 first, so that the at most 7 bytes left (as 16-bit words; an odd
    // last byte padded with zero) are plain additions that cannot overflow.
    sum = (sum & 0xffff_ffff) + (sum >> 32);
    while let Some((w, tail)) = rest.split_first_chunk::<2>() {
        sum += u64::from(u16::from_be_bytes(*w));
        rest = tail;
    }
    if let [last] = rest {
        sum += u64::from(*last) << 8;
    }
    // At most 2^33 + 3 * 2^16 here: three folds bring it to 16 bits.
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    !(sum as u16)
}

/// `checksum` of a 16-byte message (an echo request carrying a MAC), inlined: two words.
#[inline(always)]
pub(super) fn checksum_16(data: &[u8; 16]) -> u16 {
    let (hi, lo) = data.split_at(8);
    let hi = u64::from_be_bytes([hi[0], hi[1], hi[2], hi[3], hi[4], hi[5], hi[6], hi[7]]);
    let lo = u64::from_be_bytes([lo[0], lo[1], lo[2], lo[3], lo[4], lo[5], lo[6], lo[7]]);
    checksum_words(hi, lo)
}

/// `checksum` of the 16 bytes that are `hi` then `lo`, big-endian: for a caller that has
/// the message as its two words already.
#[inline(always)]
pub(super) fn checksum_words(hi: u64, lo: u64) -> u16 {
    let (sum, carry) = hi.overflowing_add(lo);
    fold(sum + u64::from(carry))
}

/// One's complement of a wide one's complement sum folded to 16 bits.
#[inline(always)]
fn fold(sum: u64) -> u16 {
    let sum = (sum & 0xffff_ffff) + (sum >> 32);
    let sum = (sum & 0xffff) + (sum >> 16);
    let sum = (sum & 0xffff) + (sum >> 16);
    let sum = (sum & 0xffff) + (sum >> 16);
    !(sum as u16)
}

/// Whether an ICMPv4 message (checksum at bytes 2..4) verifies: it sums to zero. Fuzz builds
/// (`cfg(fuzzing)`, set by cargo-fuzz) also take a zero checksum field, so the fuzzer reaches
/// what lies past the checksum without solving it, while any other wrong value still fails
/// (smoltcp's fuzz bypass, narrowed). Release and test builds never take it.
///
/// A 16-byte message (the reply to one of our echoes: header and MAC) is summed inline, in
/// the caller: a call of its own cost a healthy round ~20 instructions (issue 9).
#[inline(always)]
pub(super) fn checksum_ok(msg: &[u8]) -> bool {
    let sum = match <&[u8; 16]>::try_from(msg) {
        Ok(m) => checksum_16(m),
        Err(_) => checksum(msg),
    };
    sum == 0 || cfg!(fuzzing) && msg.get(2..4) == Some(&[0, 0])
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
    fn agrees_with_the_word_at_a_time_sum_for_every_length_to_64() {
        // RFC 1071's plain loop, 16 bits at a time, against the 64-bit one.
        fn reference(data: &[u8]) -> u16 {
            let mut sum: u32 = 0;
            for w in data.chunks(2) {
                let hi = u32::from(w[0]) << 8;
                sum += hi | w.get(1).map_or(0, |&b| u32::from(b));
            }
            while sum > 0xffff {
                sum = (sum & 0xffff) + (sum >> 16);
            }
            !(sum as u16)
        }
        let mixed: Vec<u8> = (0..64u32).map(|i| (i * 151 + 7) as u8).collect();
        for data in [vec![0u8; 64], vec![0xff; 64], mixed] {
            for start in 0..4 {
                for end in start..=64 {
                    let d = &data[start..end];
                    assert_eq!(checksum(d), reference(d), "{d:02x?}");
                }
            }
        }
        // The largest sums: every wide addition carries.
        let top = [0xffu8; 1500];
        assert_eq!(checksum(&top), reference(&top));
        let mut near = [0xffu8; 1501];
        near[1500] = 0xfe;
        assert_eq!(checksum(&near), reference(&near));
        for data in [
            [0u8; 16],
            [0xff; 16],
            core::array::from_fn(|i| (i * 151 + 7) as u8),
        ] {
            assert_eq!(super::checksum_16(&data), reference(&data));
        }
    }

    #[test]
    fn carries_fold_twice() {
        // 0xffff * 3 = 0x2fffd: folding once gives 0x10000 - 1 + 2 overflow, needs the second fold.
        assert_eq!(checksum(&[0xff; 6]), 0);
        assert_eq!(checksum(&[0xff, 0xff, 0x00, 0x01]), !0x0001u16);
    }
}
