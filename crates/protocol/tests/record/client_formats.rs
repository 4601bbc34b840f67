//! Compressed payloads as other Kafka clients write them must decode.

use std::io::Write;

use sluice_protocol::record::{
    BATCH_HEADER_LEN, Compression, Record, compression::XERIAL_MAGIC, decode_records, decompress,
    validate_batch,
};

use crate::support::{Input, build, permissive_limits, with_payload};

const NOW: i64 = 1_700_000_000_000;

fn inputs() -> Vec<Input> {
    (0..50)
        .map(|i| Input {
            key: Some(format!("k{i}").into_bytes()),
            value: Some(format!("value {i} ").repeat(40).into_bytes()),
            headers: vec![("h".to_owned(), None)],
            timestamp_ms: NOW + i64::from(i),
        })
        .collect()
}

/// The uncompressed batch and its records, as the reference.
fn reference() -> (bytes::Bytes, Vec<Record>) {
    let plain = build(Compression::None, &inputs(), None);
    let records = decode_records(&plain, 1 << 20).unwrap();
    (plain, records)
}

/// A batch carrying `payload` with `codec` must validate and decode to the reference.
fn assert_decodes_like_reference(codec: Compression, payload: &[u8]) {
    let (plain, expected) = reference();
    let batch = with_payload(&plain, codec, payload);
    let summary = validate_batch(&batch, &permissive_limits(NOW)).unwrap();
    assert_eq!(summary.compression, codec);
    assert_eq!(summary.record_count, expected.len());
    assert_eq!(decode_records(&batch, 1 << 20).unwrap(), expected);
}

fn records_section() -> Vec<u8> {
    reference().0[BATCH_HEADER_LEN..].to_vec()
}

#[test]
fn snappy_accepts_a_raw_block_as_librdkafka_writes() {
    let section = records_section();
    let raw = snap::raw::Encoder::new().compress_vec(&section).unwrap();
    assert_ne!(raw.get(..8), Some(&XERIAL_MAGIC[..]));
    assert_decodes_like_reference(Compression::Snappy, &raw);
}

#[test]
fn snappy_accepts_xerial_with_any_block_size() {
    let section = records_section();
    let mut xerial = XERIAL_MAGIC.to_vec();
    xerial.extend_from_slice(&1i32.to_be_bytes());
    xerial.extend_from_slice(&1i32.to_be_bytes());
    for chunk in section.chunks(1000) {
        let block = snap::raw::Encoder::new().compress_vec(chunk).unwrap();
        xerial.extend_from_slice(&u32::try_from(block.len()).unwrap().to_be_bytes());
        xerial.extend_from_slice(&block);
    }
    assert_decodes_like_reference(Compression::Snappy, &xerial);
}

#[test]
fn snappy_rejects_a_truncated_xerial_block() {
    let section = records_section();
    let packed = sluice_protocol::record::compress(Compression::Snappy, &section);
    let cut = &packed[..packed.len() - 3];
    assert!(decompress(Compression::Snappy, cut, 1 << 20).is_err());
}

#[test]
fn lz4_accepts_frames_with_checksums_content_size_and_linked_blocks() {
    use lz4_flex::frame::{BlockMode, BlockSize, FrameEncoder, FrameInfo};
    let section = records_section();
    let info = FrameInfo::new()
        .block_size(BlockSize::Max256KB)
        .block_mode(BlockMode::Linked)
        .block_checksums(true)
        .content_checksum(true)
        .content_size(Some(u64::try_from(section.len()).unwrap()));
    let mut encoder = FrameEncoder::with_frame_info(info, Vec::new());
    encoder.write_all(&section).unwrap();
    let frame = encoder.finish().unwrap();
    assert_decodes_like_reference(Compression::Lz4, &frame);
}

#[test]
fn zstd_accepts_a_streamed_frame_without_content_size_as_the_java_client_writes() {
    let section = records_section();
    let mut encoder = zstd::stream::write::Encoder::new(Vec::new(), 3).unwrap();
    encoder.write_all(&section).unwrap();
    let frame = encoder.finish().unwrap();
    assert!(matches!(
        zstd::zstd_safe::get_frame_content_size(&frame),
        Ok(None)
    ));
    assert_decodes_like_reference(Compression::Zstd, &frame);
}

#[test]
fn gzip_accepts_any_level_and_several_members() {
    let section = records_section();
    let (first, second) = section.split_at(section.len() / 3);
    let mut payload = Vec::new();
    for (part, level) in [(first, 1), (second, 9)] {
        let mut encoder =
            flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(level));
        encoder.write_all(part).unwrap();
        payload.extend_from_slice(&encoder.finish().unwrap());
    }
    assert_decodes_like_reference(Compression::Gzip, &payload);
}

#[test]
fn our_encoders_write_what_the_reference_decoders_read() {
    use std::io::Read;
    let section = records_section();

    let gz = sluice_protocol::record::compress(Compression::Gzip, &section);
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(&gz[..])
        .read_to_end(&mut out)
        .unwrap();
    assert_eq!(out, section);

    let lz4 = sluice_protocol::record::compress(Compression::Lz4, &section);
    // Kafka's Java reader wants the LZ4 frame magic, version 01, independent blocks and a
    // 64 KiB block size (BD = 0x40).
    assert_eq!(&lz4[..4], &[0x04, 0x22, 0x4d, 0x18]);
    assert_eq!(lz4[4] & 0xc0, 0x40, "frame version");
    assert_ne!(lz4[4] & 0x20, 0, "block independence");
    assert_eq!(lz4[5], 0x40, "64 KiB blocks");
    let mut out = Vec::new();
    lz4_flex::frame::FrameDecoder::new(&lz4[..])
        .read_to_end(&mut out)
        .unwrap();
    assert_eq!(out, section);

    let zst = sluice_protocol::record::compress(Compression::Zstd, &section);
    assert_eq!(zstd::decode_all(&zst[..]).unwrap(), section);
}
