//! Masking and unmasking payloads (RFC 6455 §5.3), a machine word at a time in safe code.

/// XORs `buf` with the 4-byte `mask` repeated, starting at the mask's first byte.
///
/// Masking and unmasking are the same operation. Works on 8 bytes at a time, then byte by byte
/// for the last (at most 7) bytes.
///
/// ```
/// use armature_ws_core::frame::apply_mask;
///
/// // RFC 6455 §5.7: "Hello" masked with 37 fa 21 3d.
/// let mut payload = *b"Hello";
/// apply_mask(&mut payload, [0x37, 0xfa, 0x21, 0x3d]);
/// assert_eq!(payload, [0x7f, 0x9f, 0x4d, 0x51, 0x58]);
/// apply_mask(&mut payload, [0x37, 0xfa, 0x21, 0x3d]);
/// assert_eq!(&payload, b"Hello");
/// ```
#[inline]
pub fn apply_mask(buf: &mut [u8], mask: [u8; 4]) {
    let word = u64::from_ne_bytes([
        mask[0], mask[1], mask[2], mask[3], mask[0], mask[1], mask[2], mask[3],
    ]);
    let mut chunks = buf.chunks_exact_mut(32);
    for chunk in &mut chunks {
        // Four independent words per round; the compiler turns this into vector code.
        for lane in chunk.chunks_exact_mut(8) {
            xor_word(lane, word);
        }
    }
    let rest = chunks.into_remainder();
    let mut words = rest.chunks_exact_mut(8);
    for lane in &mut words {
        xor_word(lane, word);
    }
    // Every chunk so far was a multiple of 4 bytes long, so the tail starts at mask[0].
    for (byte, m) in words.into_remainder().iter_mut().zip(mask.iter().cycle()) {
        *byte ^= m;
    }
}

#[inline(always)]
fn xor_word(lane: &mut [u8], word: u64) {
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(lane);
    let masked = u64::from_ne_bytes(bytes) ^ word;
    lane.copy_from_slice(&masked.to_ne_bytes());
}

/// Like [`apply_mask`] for a piece of a payload that starts `offset` bytes into it, so a
/// payload can be unmasked in pieces as it streams in.
///
/// ```
/// use armature_ws_core::frame::{apply_mask, apply_mask_offset};
///
/// let mask = [1, 2, 3, 4];
/// let mut whole = *b"streamed payload";
/// apply_mask(&mut whole, mask);
///
/// let mut pieces = *b"streamed payload";
/// let (a, b) = pieces.split_at_mut(5);
/// apply_mask_offset(a, mask, 0);
/// apply_mask_offset(b, mask, 5);
/// assert_eq!(pieces, whole);
/// ```
#[inline]
pub fn apply_mask_offset(buf: &mut [u8], mask: [u8; 4], offset: usize) {
    let shift = offset % 4;
    let rotated = [
        mask[shift],
        mask[(shift + 1) % 4],
        mask[(shift + 2) % 4],
        mask[(shift + 3) % 4],
    ];
    apply_mask(buf, rotated);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(buf: &mut [u8], mask: [u8; 4], offset: usize) {
        for (i, b) in buf.iter_mut().enumerate() {
            *b ^= mask[(i + offset) % 4];
        }
    }

    /// RFC 6455 §5.3: octet i of the transformed data is octet i of the original XOR octet
    /// i MOD 4 of the masking key — checked for every length around the word and block sizes.
    #[test]
    fn rfc6455_5_3_matches_the_definition_for_small_lengths() {
        let mask = [0xde, 0xad, 0xbe, 0xef];
        for len in 0..100 {
            let original: Vec<u8> = (0..len as u8).map(|b| b.wrapping_mul(31)).collect();
            let mut fast = original.clone();
            let mut slow = original.clone();
            apply_mask(&mut fast, mask);
            naive(&mut slow, mask, 0);
            assert_eq!(fast, slow, "len {len}");
            for offset in 0..8 {
                let mut fast = original.clone();
                let mut slow = original.clone();
                apply_mask_offset(&mut fast, mask, offset);
                naive(&mut slow, mask, offset);
                assert_eq!(fast, slow, "len {len} offset {offset}");
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn word_at_a_time_equals_byte_loop(
            data in proptest::collection::vec(proptest::num::u8::ANY, 0..2048),
            mask in proptest::array::uniform4(proptest::num::u8::ANY),
            offset in 0usize..16,
        ) {
            let mut fast = data.clone();
            let mut slow = data.clone();
            apply_mask_offset(&mut fast, mask, offset);
            naive(&mut slow, mask, offset);
            proptest::prop_assert_eq!(&fast, &slow);
            apply_mask_offset(&mut fast, mask, offset);
            proptest::prop_assert_eq!(fast, data);
        }
    }
}
