//! SipHash-2-4 (Aumasson and Bernstein, "SipHash: a fast short-input PRF", 2012): the keyed
//! MAC in every echo request's payload, as OpenBSD ping(8) uses it since 6.5. With a secret
//! random key, one echo's MAC says nothing about the next one's, so seeing a request does not
//! let anyone answer later ones. Written out here (a page) rather than taken from a crate or
//! from std's deprecated `SipHasher`, whose output is not promised to stay SipHash-2-4.

/// A 128-bit key, as two little-endian halves (k0 = bytes 0..8, k1 = bytes 8..16).
///
/// Inlined, so that a caller with a fixed-size message (the echo MAC: 28 bytes) gets the
/// word loop with a constant bound and no call; the size-optimised build would otherwise
/// keep `round` and the byte-slice iterator as calls, most of a round's hashing (issue 9).
#[inline(always)]
pub fn siphash24(key: &[u8; 16], msg: &[u8]) -> u64 {
    let mut v = init(key);
    let mut rest = msg;
    while let Some((w, tail)) = rest.split_first_chunk::<8>() {
        compress(&mut v, u64::from_le_bytes(*w));
        rest = tail;
    }
    // The last word: the remaining bytes (at most 7: read as 4, 2 and 1), and the message
    // length mod 256 in the top byte.
    let mut m = (msg.len() as u64) << 56;
    let mut shift = 0;
    if let Some((w, tail)) = rest.split_first_chunk::<4>() {
        m |= u64::from(u32::from_le_bytes(*w));
        shift = 32;
        rest = tail;
    }
    if let Some((w, tail)) = rest.split_first_chunk::<2>() {
        m |= u64::from(u16::from_le_bytes(*w)) << shift;
        shift += 16;
        rest = tail;
    }
    if let [b] = rest {
        m |= u64::from(*b) << shift;
    }
    finish(v, m)
}

/// SipHash-2-4 of a message handed over as its 64-bit words, as `siphash24` reads them:
/// `words` the whole little-endian words, `last` the final one (the remaining bytes, the
/// message length mod 256 in the top byte). For a message of fixed fields (the echo MAC),
/// whose words the caller can put together without laying the bytes out first.
#[inline(always)]
pub fn siphash24_words(key: &[u8; 16], words: &[u64], last: u64) -> u64 {
    SipKey::new(key).hash_words(words, last)
}

/// A key as the state SipHash starts from: for a caller that hashes many messages under one
/// key (the prober: every echo), the key is read and mixed with the constants once.
#[derive(Debug, Clone, Copy)]
pub struct SipKey([u64; 4]);

impl SipKey {
    pub fn new(key: &[u8; 16]) -> SipKey {
        SipKey(init(key))
    }

    /// `siphash24_words` under this key.
    #[inline(always)]
    pub fn hash_words(&self, words: &[u64], last: u64) -> u64 {
        let mut v = self.0;
        let mut i = 0;
        while let Some(&m) = words.get(i) {
            compress(&mut v, m);
            i += 1;
        }
        finish(v, last)
    }
}

/// The state after the key (the paper's initialisation, section 2).
#[inline(always)]
fn init(key: &[u8; 16]) -> [u64; 4] {
    let (k0, k1) = key.split_at(8);
    let k0 = u64::from_le_bytes([k0[0], k0[1], k0[2], k0[3], k0[4], k0[5], k0[6], k0[7]]);
    let k1 = u64::from_le_bytes([k1[0], k1[1], k1[2], k1[3], k1[4], k1[5], k1[6], k1[7]]);
    [
        k0 ^ 0x736f_6d65_7073_6575,
        k1 ^ 0x646f_7261_6e64_6f6d,
        k0 ^ 0x6c79_6765_6e65_7261,
        k1 ^ 0x7465_6462_7974_6573,
    ]
}

/// The last word, then finalisation: four rounds.
#[inline(always)]
fn finish(mut v: [u64; 4], last: u64) -> u64 {
    compress(&mut v, last);
    v[2] ^= 0xff;
    round(&mut v);
    round(&mut v);
    round(&mut v);
    round(&mut v);
    v[0] ^ v[1] ^ v[2] ^ v[3]
}

/// One message word, with SipHash-2's two compression rounds.
#[inline(always)]
fn compress(v: &mut [u64; 4], m: u64) {
    v[3] ^= m;
    round(v);
    round(v);
    v[0] ^= m;
}

#[inline(always)]
fn round(v: &mut [u64; 4]) {
    v[0] = v[0].wrapping_add(v[1]);
    v[1] = v[1].rotate_left(13) ^ v[0];
    v[0] = v[0].rotate_left(32);
    v[2] = v[2].wrapping_add(v[3]);
    v[3] = v[3].rotate_left(16) ^ v[2];
    v[0] = v[0].wrapping_add(v[3]);
    v[3] = v[3].rotate_left(21) ^ v[0];
    v[2] = v[2].wrapping_add(v[1]);
    v[1] = v[1].rotate_left(17) ^ v[2];
    v[2] = v[2].rotate_left(32);
}

#[cfg(test)]
mod tests {
    use super::{siphash24, siphash24_words, SipKey};

    /// Key 00 01 .. 0f, as in the paper's appendix A and the reference `vectors.h`.
    const KEY: [u8; 16] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15];

    #[test]
    fn paper_appendix_a() {
        // Message 00 01 .. 0e (15 bytes): a129ca6149be45e5.
        let msg: Vec<u8> = (0..15).collect();
        assert_eq!(siphash24(&KEY, &msg), 0xa129_ca61_49be_45e5);
    }

    #[test]
    fn reference_vectors() {
        // vectors.h of the reference implementation, first entries (message 00 .. len-1),
        // written there as little-endian bytes.
        let want: [[u8; 8]; 12] = [
            [0x31, 0x0e, 0x0e, 0xdd, 0x47, 0xdb, 0x6f, 0x72],
            [0xfd, 0x67, 0xdc, 0x93, 0xc5, 0x39, 0xf8, 0x74],
            [0x5a, 0x4f, 0xa9, 0xd9, 0x09, 0x80, 0x6c, 0x0d],
            [0x2d, 0x7e, 0xfb, 0xd7, 0x96, 0x66, 0x67, 0x85],
            [0xb7, 0x87, 0x71, 0x27, 0xe0, 0x94, 0x27, 0xcf],
            [0x8d, 0xa6, 0x99, 0xcd, 0x64, 0x55, 0x76, 0x18],
            [0xce, 0xe3, 0xfe, 0x58, 0x6e, 0x46, 0xc9, 0xcb],
            [0x37, 0xd1, 0x01, 0x8b, 0xf5, 0x00, 0x02, 0xab],
            [0x62, 0x24, 0x93, 0x9a, 0x79, 0xf5, 0xf5, 0x93],
            [0xb0, 0xe4, 0xa9, 0x0b, 0xdf, 0x82, 0x00, 0x9e],
            [0xf3, 0xb9, 0xdd, 0x94, 0xc5, 0xbb, 0x5d, 0x7a],
            [0xa7, 0xad, 0x6b, 0x22, 0x46, 0x2f, 0xb3, 0xf4],
        ];
        for (len, bytes) in want.into_iter().enumerate() {
            let msg: Vec<u8> = (0..len as u8).collect();
            assert_eq!(
                siphash24(&KEY, &msg),
                u64::from_le_bytes(bytes),
                "length {len}"
            );
        }
    }

    #[test]
    fn agrees_with_std_siphasher_for_every_length_to_64() {
        // std's SipHasher is SipHash-2-4 today; `write` feeds the bytes as they are.
        #[allow(deprecated)]
        fn std_sip(key: &[u8; 16], msg: &[u8]) -> u64 {
            use std::hash::Hasher;
            let k0 = u64::from_le_bytes(key[..8].try_into().unwrap());
            let k1 = u64::from_le_bytes(key[8..].try_into().unwrap());
            let mut h = std::hash::SipHasher::new_with_keys(k0, k1);
            h.write(msg);
            h.finish()
        }
        let key: [u8; 16] = *b"netheal test key";
        let msg: Vec<u8> = (0..64u8).map(|i| i.wrapping_mul(37)).collect();
        for len in 0..=64 {
            assert_eq!(
                siphash24(&key, &msg[..len]),
                std_sip(&key, &msg[..len]),
                "length {len}"
            );
        }
    }

    #[test]
    fn words_are_the_bytes_read_little_endian() {
        let key: [u8; 16] = *b"netheal test key";
        let msg: Vec<u8> = (0..40u8).map(|i| i.wrapping_mul(91) ^ 0x5a).collect();
        for len in 0..=40 {
            let m = &msg[..len];
            let whole = len / 8;
            let words: Vec<u64> = m
                .chunks_exact(8)
                .map(|w| u64::from_le_bytes(w.try_into().unwrap()))
                .collect();
            let mut tail = [0u8; 8];
            tail[..len % 8].copy_from_slice(&m[whole * 8..]);
            tail[7] = len as u8;
            let last = u64::from_le_bytes(tail);
            assert_eq!(
                siphash24_words(&key, &words, last),
                siphash24(&key, m),
                "length {len}"
            );
            assert_eq!(
                SipKey::new(&key).hash_words(&words, last),
                siphash24(&key, m),
                "length {len}"
            );
        }
    }

    #[test]
    fn every_key_bit_changes_the_output() {
        let msg = b"ident seq dest time";
        let base = siphash24(&KEY, msg);
        for bit in 0..128 {
            let mut k = KEY;
            k[bit / 8] ^= 1 << (bit % 8);
            assert_ne!(siphash24(&k, msg), base, "key bit {bit}");
        }
    }
}
