//! Compression codecs for the records section of a batch, as Kafka clients write them.
//!
//! | codec  | decode accepts                                          | encode writes                    |
//! |--------|---------------------------------------------------------|----------------------------------|
//! | gzip   | one or more gzip members                                | one member, default level        |
//! | snappy | xerial framing (Java client) or a raw block (librdkafka) | xerial framing, 32 KiB blocks    |
//! | lz4    | LZ4 frame format                                        | LZ4 frame, 64 KiB independent blocks, no checksums |
//! | zstd   | one or more frames, with or without a content size      | one frame, level 3               |
//!
//! Every decoder stops with [`CompressionError::OutputTooLarge`] once the output would pass
//! `max_output`, so a small compressed input cannot make us allocate an unbounded buffer.

use std::cell::RefCell;
use std::io::{self, Read, Write};

use super::Compression;

/// The magic that starts snappy-java's stream framing ("xerial" framing).
pub const XERIAL_MAGIC: [u8; 8] = [0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0];
/// Magic, version and compatible-version fields before the first xerial block.
const XERIAL_HEADER_LEN: usize = 16;
/// Version and compatible version snappy-java writes (both 1).
const XERIAL_VERSION: i32 = 1;
/// Uncompressed bytes per xerial block; snappy-java's default block size.
const XERIAL_BLOCK_LEN: usize = 32 * 1024;
/// zstd level Kafka clients default to.
const ZSTD_LEVEL: i32 = 3;
/// Smallest zstd window (log2) we always accept: covers every non-ultra level, whatever
/// `max_output` is, because streaming encoders declare their window without a content size.
const ZSTD_MIN_WINDOW_LOG: u32 = 24;
/// zstd's own default limit, and Kafka's (zstd-jni's default): ultra levels (20-22)
/// streamed without a content size declare up to this window.
const ZSTD_MAX_WINDOW_LOG: u32 = 27;
/// A thread's cached zstd context is dropped once its buffers grow past this.
const ZSTD_KEEP_CONTEXT_BYTES: usize = 8 << 20;

/// Why compressed bytes could not be turned back into records.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CompressionError {
    /// The decoder rejected the input.
    #[error("malformed {codec} data: {source}")]
    Malformed {
        /// Codec that failed.
        codec: Compression,
        /// What the decoder reported.
        #[source]
        source: io::Error,
    },
    /// The output would exceed the caller's limit.
    #[error("{codec} data decompresses to more than {max_output} bytes")]
    OutputTooLarge {
        /// Codec being decoded.
        codec: Compression,
        /// The limit that was passed.
        max_output: usize,
    },
    /// An encoder failed. Encoders write to memory, so this points to a bug.
    #[error("{codec} encoder failed: {source}")]
    Encode {
        /// Codec that failed.
        codec: Compression,
        /// What the encoder reported.
        #[source]
        source: io::Error,
    },
}

fn malformed(codec: Compression, source: io::Error) -> CompressionError {
    CompressionError::Malformed { codec, source }
}

fn invalid_data(what: &'static str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what)
}

/// Decompresses `input` written with `codec`, producing at most `max_output` bytes.
/// [`Compression::None`] copies the input (subject to the same limit).
///
/// zstd frames may declare a window of up to 16 MiB, or up to the power of two above
/// `max_output` (at most 128 MiB, zstd's and Kafka's default limit): the decoder's memory
/// stays proportional to the output allowed. With a 64 MiB `max_output` every window
/// Kafka accepts is accepted.
///
/// # Errors
/// [`CompressionError::Malformed`] when the input is not valid for the codec,
/// [`CompressionError::OutputTooLarge`] when the output would pass `max_output`.
pub fn decompress(
    codec: Compression,
    input: &[u8],
    max_output: usize,
) -> Result<Vec<u8>, CompressionError> {
    match codec {
        Compression::None => {
            if input.len() > max_output {
                return Err(CompressionError::OutputTooLarge { codec, max_output });
            }
            Ok(input.to_vec())
        }
        Compression::Gzip => read_bounded(
            codec,
            flate2::read::MultiGzDecoder::new(input),
            input.len().saturating_mul(4),
            max_output,
        ),
        Compression::Snappy => decompress_snappy(input, max_output),
        Compression::Lz4 => read_bounded(
            codec,
            lz4_flex::frame::FrameDecoder::new(input),
            input.len().saturating_mul(2),
            max_output,
        ),
        Compression::Zstd => decompress_zstd(input, max_output),
    }
}

thread_local! {
    /// One zstd decompression context per thread, reused across batches: creating one
    /// costs more than decoding a small batch. Its buffers are bounded by the window limit.
    static ZSTD_DCTX: RefCell<Option<zstd::zstd_safe::DCtx<'static>>> = const { RefCell::new(None) };
}

/// Streaming zstd decode: accepts frames with or without a content size, and several
/// frames in a row.
fn decompress_zstd(input: &[u8], max_output: usize) -> Result<Vec<u8>, CompressionError> {
    let codec = Compression::Zstd;
    let window_log_max = zstd_window_log_max(max_output);
    // librdkafka and our encoder record the content size; use it as the capacity hint,
    // but do not let a tiny frame claiming a huge size reserve all of `max_output`.
    let size_hint = match zstd::zstd_safe::get_frame_content_size(input) {
        Ok(Some(size)) => usize::try_from(size)
            .unwrap_or(usize::MAX)
            .min(input.len().saturating_mul(256)),
        _ => input.len().saturating_mul(4),
    };
    ZSTD_DCTX.with(|cell| {
        let mut slot = cell.try_borrow_mut().ok();
        let context = slot.as_deref_mut().and_then(|slot| {
            if slot.is_none() {
                *slot = zstd::zstd_safe::DCtx::try_create();
            }
            slot.as_mut()
        });
        match context {
            // `with_context` resets the session, whatever the last use left behind.
            Some(context) => {
                let mut decoder = zstd::stream::read::Decoder::with_context(input, context);
                let result = decoder
                    .window_log_max(window_log_max)
                    .map_err(|e| malformed(codec, e))
                    .and_then(|()| read_bounded(codec, decoder, size_hint, max_output));
                // A frame with a large window grows the context's buffers; do not keep
                // that memory for the life of the thread.
                if let Some(slot) = slot.as_deref_mut()
                    && slot
                        .as_ref()
                        .is_some_and(|c| c.sizeof() > ZSTD_KEEP_CONTEXT_BYTES)
                {
                    *slot = None;
                }
                result
            }
            None => {
                let mut decoder = zstd::stream::read::Decoder::with_buffer(input)
                    .map_err(|e| malformed(codec, e))?;
                decoder
                    .window_log_max(window_log_max)
                    .map_err(|e| malformed(codec, e))?;
                read_bounded(codec, decoder, size_hint, max_output)
            }
        }
    })
}

/// Window limit for a zstd stream whose output may be `max_output` bytes: no frame needs a
/// window larger than its content, but streaming encoders declare one from their level.
fn zstd_window_log_max(max_output: usize) -> u32 {
    let needed = usize::BITS - max_output.leading_zeros();
    needed.clamp(ZSTD_MIN_WINDOW_LOG, ZSTD_MAX_WINDOW_LOG)
}

/// Reads `reader` to its end, failing once more than `max_output` bytes come out.
/// `size_hint` is the expected output size, capped by `max_output` for the first
/// allocation.
fn read_bounded(
    codec: Compression,
    reader: impl Read,
    size_hint: usize,
    max_output: usize,
) -> Result<Vec<u8>, CompressionError> {
    // One byte past the limit tells "exactly max_output" from "more".
    let limit = u64::try_from(max_output)
        .unwrap_or(u64::MAX)
        .saturating_add(1);
    let mut out = Vec::with_capacity(size_hint.min(max_output));
    reader
        .take(limit)
        .read_to_end(&mut out)
        .map_err(|e| malformed(codec, e))?;
    if out.len() > max_output {
        return Err(CompressionError::OutputTooLarge { codec, max_output });
    }
    Ok(out)
}

/// Snappy as Kafka clients write it: the Java client uses snappy-java's xerial stream
/// framing, librdkafka may write one raw block. Like snappy-java, anything that does not
/// start with the xerial magic is read as a raw block.
fn decompress_snappy(input: &[u8], max_output: usize) -> Result<Vec<u8>, CompressionError> {
    match input.strip_prefix(&XERIAL_MAGIC) {
        Some(rest) => decompress_xerial(rest, max_output),
        None => {
            let mut out = Vec::new();
            append_raw_snappy(input, &mut out, max_output)?;
            Ok(out)
        }
    }
}

/// Decodes the xerial blocks after the magic: two version fields, then repeated
/// `[u32 BE length][raw snappy block]` up to the end of the input.
fn decompress_xerial(after_magic: &[u8], max_output: usize) -> Result<Vec<u8>, CompressionError> {
    let codec = Compression::Snappy;
    // Version and compatible version; snappy-java accepts any value here.
    let mut rest = after_magic
        .get(XERIAL_HEADER_LEN - XERIAL_MAGIC.len()..)
        .ok_or_else(|| malformed(codec, invalid_data("xerial header truncated")))?;
    let mut out = Vec::new();
    while !rest.is_empty() {
        let (len_bytes, tail) = rest
            .split_first_chunk::<4>()
            .ok_or_else(|| malformed(codec, invalid_data("xerial block length truncated")))?;
        let block_len = usize::try_from(u32::from_be_bytes(*len_bytes))
            .map_err(|_| malformed(codec, invalid_data("xerial block length overflows")))?;
        let block = tail
            .get(..block_len)
            .ok_or_else(|| malformed(codec, invalid_data("xerial block truncated")))?;
        append_raw_snappy(block, &mut out, max_output)?;
        rest = tail.get(block_len..).unwrap_or_default();
    }
    Ok(out)
}

/// Decodes one raw snappy block onto the end of `out`, keeping `out` within `max_output`.
fn append_raw_snappy(
    block: &[u8],
    out: &mut Vec<u8>,
    max_output: usize,
) -> Result<(), CompressionError> {
    let codec = Compression::Snappy;
    let block_out = snap::raw::decompress_len(block).map_err(|e| malformed(codec, e.into()))?;
    let start = out.len();
    let end = start
        .checked_add(block_out)
        .filter(|end| *end <= max_output)
        .ok_or(CompressionError::OutputTooLarge { codec, max_output })?;
    out.resize(end, 0);
    let dst = out.get_mut(start..).unwrap_or_default();
    let written = snap::raw::Decoder::new()
        .decompress(block, dst)
        .map_err(|e| malformed(codec, e.into()))?;
    if written != block_out {
        return Err(malformed(
            codec,
            invalid_data("snappy block shorter than announced"),
        ));
    }
    Ok(())
}

/// Compresses `input` the way Kafka clients do (see the module table), for a batch's
/// records section. [`Compression::None`] copies the input.
///
/// # Errors
/// [`CompressionError::Encode`] if an encoder fails. They write to memory, so this does
/// not happen in practice; [`compress`] is the convenient twin.
pub fn try_compress(codec: Compression, input: &[u8]) -> Result<Vec<u8>, CompressionError> {
    let encode_err = |source| CompressionError::Encode { codec, source };
    match codec {
        Compression::None => Ok(input.to_vec()),
        Compression::Gzip => {
            let mut encoder = flate2::write::GzEncoder::new(
                Vec::with_capacity(input.len() / 2),
                flate2::Compression::default(),
            );
            encoder.write_all(input).map_err(encode_err)?;
            encoder.finish().map_err(encode_err)
        }
        Compression::Snappy => compress_xerial(input).map_err(encode_err),
        Compression::Lz4 => {
            let info = lz4_flex::frame::FrameInfo::new()
                .block_size(lz4_flex::frame::BlockSize::Max64KB)
                .block_mode(lz4_flex::frame::BlockMode::Independent);
            let mut encoder = lz4_flex::frame::FrameEncoder::with_frame_info(
                info,
                Vec::with_capacity(input.len() / 2),
            );
            encoder.write_all(input).map_err(encode_err)?;
            encoder.finish().map_err(|e| encode_err(e.into()))
        }
        Compression::Zstd => zstd::bulk::compress(input, ZSTD_LEVEL).map_err(encode_err),
    }
}

/// Compresses `input` like [`try_compress`].
///
/// # Panics
/// Only if an encoder fails while writing to memory, which would be a bug in it: the
/// encoders here have no input-dependent failure (snappy input is cut into 32 KiB blocks).
#[allow(
    clippy::expect_used,
    reason = "encoders write to a Vec and cannot fail on any input"
)]
pub fn compress(codec: Compression, input: &[u8]) -> Vec<u8> {
    try_compress(codec, input).expect("in-memory compression does not fail")
}

/// snappy-java's stream framing: magic, version 1, compatible version 1, then each
/// 32 KiB slice of the input as `[u32 BE length][raw snappy block]`.
fn compress_xerial(input: &[u8]) -> io::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(XERIAL_HEADER_LEN + input.len() / 2 + 16);
    out.extend_from_slice(&XERIAL_MAGIC);
    out.extend_from_slice(&XERIAL_VERSION.to_be_bytes());
    out.extend_from_slice(&XERIAL_VERSION.to_be_bytes());
    let mut encoder = snap::raw::Encoder::new();
    let mut block = vec![0u8; snap::raw::max_compress_len(XERIAL_BLOCK_LEN)];
    for chunk in input.chunks(XERIAL_BLOCK_LEN) {
        let len = encoder
            .compress(chunk, &mut block)
            .map_err(io::Error::from)?;
        let len_field =
            u32::try_from(len).map_err(|_| invalid_data("snappy block longer than u32"))?;
        out.extend_from_slice(&len_field.to_be_bytes());
        out.extend_from_slice(block.get(..len).unwrap_or_default());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [Compression; 5] = [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ];

    fn sample(len: usize) -> Vec<u8> {
        (0..len)
            .map(|i| (i % 251) as u8 ^ (i / 1000) as u8)
            .collect()
    }

    #[test]
    fn every_codec_round_trips_empty_small_and_multi_block_input() {
        for codec in ALL {
            for len in [
                0,
                1,
                100,
                XERIAL_BLOCK_LEN,
                XERIAL_BLOCK_LEN * 3 + 7,
                300_000,
            ] {
                let input = sample(len);
                let packed = compress(codec, &input);
                let unpacked = decompress(codec, &packed, len).unwrap();
                assert_eq!(unpacked, input, "{codec} len {len}");
            }
        }
    }

    #[test]
    fn output_over_the_limit_is_an_error() {
        for codec in ALL {
            let input = vec![0u8; 100_000];
            let packed = compress(codec, &input);
            let err = decompress(codec, &packed, 99_999).unwrap_err();
            assert!(
                matches!(
                    err,
                    CompressionError::OutputTooLarge {
                        max_output: 99_999,
                        ..
                    }
                ),
                "{codec}: {err}"
            );
        }
    }

    #[test]
    fn snappy_writes_xerial_framing_like_the_java_client() {
        let packed = compress(Compression::Snappy, b"hello hello hello");
        assert_eq!(packed.get(..8), Some(&XERIAL_MAGIC[..]));
        assert_eq!(packed.get(8..16), Some(&[0, 0, 0, 1, 0, 0, 0, 1][..]));
    }

    #[test]
    fn snappy_accepts_a_raw_block() {
        let input = sample(70_000);
        let raw = snap::raw::Encoder::new().compress_vec(&input).unwrap();
        assert_eq!(
            decompress(Compression::Snappy, &raw, input.len()).unwrap(),
            input
        );
    }

    #[test]
    fn zstd_accepts_a_streamed_frame_without_content_size() {
        let input = sample(200_000);
        let mut encoder = zstd::stream::write::Encoder::new(Vec::new(), 3).unwrap();
        encoder.write_all(&input).unwrap();
        let packed = encoder.finish().unwrap();
        assert!(
            matches!(zstd::zstd_safe::get_frame_content_size(&packed), Ok(None)),
            "streamed frame should not carry a content size"
        );
        assert_eq!(
            decompress(Compression::Zstd, &packed, input.len()).unwrap(),
            input
        );
    }

    #[test]
    fn zstd_context_is_clean_after_a_failed_decode() {
        let big = compress(Compression::Zstd, &sample(500_000));
        assert!(decompress(Compression::Zstd, &big, 1000).is_err());
        assert!(
            decompress(
                Compression::Zstd,
                big.get(..big.len() / 2).unwrap(),
                1 << 20
            )
            .is_err()
        );
        let small = sample(3000);
        let packed = compress(Compression::Zstd, &small);
        assert_eq!(decompress(Compression::Zstd, &packed, 3000).unwrap(), small);
    }

    #[test]
    fn truncated_xerial_is_malformed() {
        let packed = compress(Compression::Snappy, &sample(1000));
        for cut in 0..packed.len() {
            // A cut inside the magic falls back to raw snappy, which also fails. A cut right
            // after the header is a valid empty stream.
            let result = decompress(Compression::Snappy, packed.get(..cut).unwrap(), 1000);
            if cut == XERIAL_HEADER_LEN {
                assert_eq!(result.unwrap(), Vec::<u8>::new());
            } else {
                assert!(result.is_err(), "cut at {cut}");
            }
        }
    }

    #[test]
    fn garbage_never_panics() {
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        for _ in 0..2000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let len = (seed % 64) as usize;
            let bytes: Vec<u8> = (0..len).map(|i| (seed >> (i % 56)) as u8).collect();
            for codec in ALL {
                let _ = decompress(codec, &bytes, 1 << 16);
            }
        }
    }
}
