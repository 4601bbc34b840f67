//! Broker-side recompression (`compression.type` other than `producer`): the records
//! section is decompressed and compressed again with the topic's codec. Record bytes
//! (offset deltas, timestamps, keys, values, headers) are kept exactly; only the codec
//! bits, the batch length and the CRC change.

use bytes::{BufMut, Bytes, BytesMut};

use super::compression::{CompressionError, decompress, try_compress};
use super::error::{BatchError, Corruption};
use super::header::{BATCH_HEADER_LEN, BatchHeader, Compression, LOG_OVERHEAD};

/// Attribute bits that name the codec.
const CODEC_MASK: i16 = 0x07;

/// `batch` with its records section in `codec`; the same bytes when it already is.
///
/// # Errors
/// [`BatchError::Corrupt`] when the batch does not parse or decompress,
/// [`BatchError::UncompressedTooLarge`] past `max_uncompressed`.
pub fn recompress(
    batch: &Bytes,
    codec: Compression,
    max_uncompressed: usize,
) -> Result<Bytes, BatchError> {
    let header = BatchHeader::parse(batch).map_err(BatchError::from)?;
    let current =
        header
            .compression()
            .ok_or(BatchError::corrupt(Corruption::UnknownCompression {
                codec_id: (header.attributes & CODEC_MASK) as u8,
            }))?;
    if current == codec {
        return Ok(batch.clone());
    }
    let section = batch
        .get(BATCH_HEADER_LEN..header.total_len())
        .ok_or(BatchError::corrupt(Corruption::Truncated {
            needed: header.total_len(),
            available: batch.len(),
        }))?;
    let too_large = |e: CompressionError| match e {
        CompressionError::OutputTooLarge { .. } => BatchError::UncompressedTooLarge {
            codec: current,
            max_uncompressed_bytes: max_uncompressed,
        },
        other => BatchError::corrupt(Corruption::Decompression { source: other }),
    };
    let raw = match current {
        Compression::None => section.to_vec(),
        other => decompress(other, section, max_uncompressed).map_err(too_large)?,
    };
    let records = match codec {
        Compression::None => raw,
        other => try_compress(other, &raw)
            .map_err(|e| BatchError::corrupt(Corruption::Decompression { source: e }))?,
    };
    let batch_length =
        i32::try_from(BATCH_HEADER_LEN - LOG_OVERHEAD + records.len()).map_err(|_| {
            BatchError::UncompressedTooLarge {
                codec,
                max_uncompressed_bytes: max_uncompressed,
            }
        })?;
    let attributes = (header.attributes & !CODEC_MASK) | i16::from(codec.id());
    let mut out = BytesMut::with_capacity(BATCH_HEADER_LEN + records.len());
    out.put_i64(header.base_offset);
    out.put_i32(batch_length);
    out.put_i32(header.partition_leader_epoch);
    out.put_i8(header.magic);
    out.put_u32(0); // CRC, filled below
    out.put_i16(attributes);
    out.put_i32(header.last_offset_delta);
    out.put_i64(header.base_timestamp);
    out.put_i64(header.max_timestamp);
    out.put_i64(header.producer_id);
    out.put_i16(header.producer_epoch);
    out.put_i32(header.base_sequence);
    out.put_i32(header.record_count);
    out.put_slice(&records);
    let crc = super::header::compute_crc(&out);
    if let Some(field) = out.get_mut(17..21) {
        field.copy_from_slice(&crc.to_be_bytes());
    }
    Ok(out.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{RecordBatchBuilder, decode_records};

    #[test]
    fn every_codec_pair_keeps_the_records() {
        let codecs = [
            Compression::None,
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ];
        for from in codecs {
            let original = RecordBatchBuilder::new(from)
                .producer(7, 1, 10)
                .push(Some(b"k"), Some(b"value one"), &[("h", Some(b"v"))], 1_000)
                .push(None, None, &[], 1_005)
                .build();
            let before = decode_records(&original, 1 << 20).unwrap();
            for to in codecs {
                let converted = recompress(&original, to, 1 << 20).unwrap();
                let header = BatchHeader::parse(&converted).unwrap();
                assert_eq!(header.compression(), Some(to));
                assert_eq!(header.total_len(), converted.len());
                assert_eq!(
                    (
                        header.producer_id,
                        header.producer_epoch,
                        header.base_sequence
                    ),
                    (7, 1, 10)
                );
                assert!(
                    crate::record::crc_matches(&header, &converted),
                    "{from} -> {to}"
                );
                assert_eq!(
                    decode_records(&converted, 1 << 20).unwrap(),
                    before,
                    "{from} -> {to}"
                );
            }
        }
    }
}
