//! The codec: RFC 7692 §7.2.3's examples byte for byte, bounded inflation, the pools.

use super::*;

fn inflate(decompressor: &mut Decompressor, payloads: &[&[u8]]) -> Result<Vec<u8>, InflateError> {
    let mut out = Vec::new();
    for payload in payloads {
        decompressor.decompress(payload, &mut out, 1 << 20)?;
    }
    decompressor.finish(&mut out, 1 << 20)?;
    Ok(out)
}

/// §7.2.3.1: "Hello" compressed, and its frames cut in two.
#[test]
fn rfc7692_7_2_3_1_a_message_compressed() {
    let mut c = Compressor::new(15, 6, true);
    let mut out = Vec::new();
    c.compress(b"Hello", &mut out);
    assert_eq!(out, [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]);
    let mut d = Decompressor::new(15, true);
    assert_eq!(inflate(&mut d, &[&out]).unwrap(), b"Hello");
    // The same payload split over two frames (0x41 0x03 f2 48 cd / 0x80 0x04 c9 c9 07 00).
    assert_eq!(
        inflate(&mut d, &[&[0xf2, 0x48, 0xcd], &[0xc9, 0xc9, 0x07, 0x00]]).unwrap(),
        b"Hello"
    );
}

/// §7.2.3.2: with context takeover the second "Hello" refers to the first.
#[test]
fn rfc7692_7_2_3_2_sharing_the_lz77_window() {
    let mut c = Compressor::new(15, 6, false);
    let (mut first, mut second) = (Vec::new(), Vec::new());
    c.compress(b"Hello", &mut first);
    c.compress(b"Hello", &mut second);
    assert_eq!(first, [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]);
    assert_eq!(second, [0xf2, 0x00, 0x11, 0x00, 0x00]);
    let mut d = Decompressor::new(15, false);
    assert_eq!(inflate(&mut d, &[&first]).unwrap(), b"Hello");
    assert_eq!(inflate(&mut d, &[&second]).unwrap(), b"Hello");
    // Without context takeover each message stands alone.
    let mut c = Compressor::new(15, 6, true);
    let mut again = Vec::new();
    c.compress(b"Hello", &mut Vec::new());
    c.compress(b"Hello", &mut again);
    assert_eq!(again, first);
}

/// §7.2.3.3: a stored (uncompressed) deflate block.
#[test]
fn rfc7692_7_2_3_3_no_compression_block() {
    let payload = [
        0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00,
    ];
    assert_eq!(
        inflate(&mut Decompressor::new(15, true), &[&payload]).unwrap(),
        b"Hello"
    );
}

/// §7.2.3.4: a block with BFINAL set; the stream ends inside the message.
#[test]
fn rfc7692_7_2_3_4_bfinal_set() {
    let payload = [0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00];
    for nct in [true, false] {
        let mut d = Decompressor::new(15, nct);
        assert_eq!(inflate(&mut d, &[&payload]).unwrap(), b"Hello");
        // The next message starts a new stream.
        assert_eq!(
            inflate(&mut d, &[&[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]]).unwrap(),
            b"Hello"
        );
    }
}

/// §7.2.3.5: two deflate blocks in one message.
#[test]
fn rfc7692_7_2_3_5_two_blocks() {
    let payload = [
        0xf2, 0x48, 0x05, 0x00, 0x00, 0x00, 0xff, 0xff, 0xca, 0xc9, 0xc9, 0x07, 0x00,
    ];
    assert_eq!(
        inflate(&mut Decompressor::new(15, true), &[&payload]).unwrap(),
        b"Hello"
    );
}

/// §7.2.3.6: an empty message, as the RFC writes it and as zlib does.
#[test]
fn rfc7692_7_2_3_6_empty_message() {
    let mut d = Decompressor::new(15, true);
    assert_eq!(inflate(&mut d, &[&[0x02, 0x00]]).unwrap(), b"");
    assert_eq!(inflate(&mut d, &[&[0x00]]).unwrap(), b"");
    assert_eq!(inflate(&mut d, &[]).unwrap(), b"");
    let mut out = Vec::new();
    Compressor::new(15, 6, true).compress(b"", &mut out);
    assert_eq!(out, [0x00]);
}

#[test]
fn corrupt_data_is_an_error() {
    let mut d = Decompressor::new(15, true);
    assert_eq!(
        inflate(&mut d, &[&[0xff, 0xff, 0xff, 0xff]]),
        Err(InflateError::Corrupt)
    );
}

/// A bomb: 64 MiB of zeros compress to ~64 KiB; with a 1 MiB limit inflation stops one byte
/// past the limit, long before the input is used up, having allocated no more than that.
#[test]
fn a_bomb_stops_at_the_limit() {
    let zeros = vec![0u8; 64 << 20];
    let mut bomb = Vec::new();
    Compressor::new(15, 9, true).compress(&zeros, &mut bomb);
    assert!(bomb.len() < 128 << 10, "{}", bomb.len());
    let max = 1 << 20;
    let mut d = Decompressor::new(15, true);
    let mut out = Vec::new();
    assert_eq!(
        d.decompress(&bomb, &mut out, max),
        Err(InflateError::TooBig { max })
    );
    assert_eq!(out.len(), max + 1);
    assert!(out.capacity() <= max + 1, "{}", out.capacity());
    assert!(
        d.inner.total_in() < bomb.len() as u64 / 8,
        "{}",
        d.inner.total_in()
    );
    // Fed in small pieces, the same.
    let mut d = Decompressor::new(15, true);
    let mut out = Vec::new();
    let err = bomb
        .chunks(100)
        .try_for_each(|piece| d.decompress(piece, &mut out, max));
    assert_eq!(err, Err(InflateError::TooBig { max }));
    assert!(out.capacity() <= max + 1);
}

#[test]
fn exactly_the_limit_is_allowed() {
    let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    let mut payload = Vec::new();
    Compressor::new(15, 6, true).compress(&data, &mut payload);
    let mut d = Decompressor::new(15, true);
    let mut out = Vec::new();
    d.decompress(&payload, &mut out, data.len()).unwrap();
    d.finish(&mut out, data.len()).unwrap();
    assert_eq!(out, data);
    let mut out = Vec::new();
    assert!(d.decompress(&payload, &mut out, data.len() - 1).is_err());
}

#[test]
fn round_trip_every_window_and_level() {
    let text: Vec<u8> = br#"{"user":"ada","room":"lobby","text":"hello, world","seq":12345}"#
        .iter()
        .copied()
        .cycle()
        .take(70_000)
        .collect();
    for bits in 9..=15 {
        for level in [0, 1, 6, 9] {
            for nct in [true, false] {
                let mut c = Compressor::new(bits, level, nct);
                let mut d = Decompressor::new(bits, nct);
                for _ in 0..3 {
                    let mut payload = Vec::new();
                    c.compress(&text, &mut payload);
                    assert!(!payload.ends_with(&DEFLATE_TAIL));
                    assert_eq!(
                        inflate(&mut d, &[&payload]).unwrap(),
                        text,
                        "{bits} {level}"
                    );
                }
            }
        }
    }
}

#[test]
fn shared_compressor_counts_and_resets() {
    let before = shared_compressions();
    let mut a = Vec::new();
    let mut b = Vec::new();
    with_shared_compressor(15, 6, |c| c.compress(b"Hello", &mut a));
    with_shared_compressor(15, 6, |c| c.compress(b"Hello", &mut b));
    assert_eq!(a, b, "no context carried between messages");
    assert_eq!(shared_compressions(), before + 2);
    // Each window gets its own compressor.
    with_shared_compressor(9, 6, |c| assert_eq!(c.window_bits(), 9));
    with_shared_compressor(4, 6, |c| assert_eq!(c.window_bits(), 9));
}

#[test]
fn pooled_decompressors_are_reused_and_reset() {
    let d = Decompressor::pooled(15);
    let first = &*d as *const Decompressor as usize;
    d.release();
    let mut d = Decompressor::pooled(15);
    assert_eq!(
        &*d as *const Decompressor as usize, first,
        "taken from the pool"
    );
    assert!(d.no_context_takeover());
    // Half a message, then released: the next user starts clean.
    let mut out = Vec::new();
    d.decompress(&[0xf2, 0x48], &mut out, 100).unwrap();
    d.release();
    let mut d = Decompressor::pooled(15);
    assert_eq!(
        inflate(&mut d, &[&[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]]).unwrap(),
        b"Hello"
    );
    // A decompressor with context takeover is not pooled.
    Box::new(Decompressor::new(15, false)).release();
    let d = Decompressor::pooled(15);
    assert!(d.no_context_takeover());
}
