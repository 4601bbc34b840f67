//! Building RecordBatch v2 bytes, for our client, the CLI and tests.

use bytes::{BufMut, Bytes, BytesMut};

use super::compression::compress;
use super::validate::NO_TIMESTAMP;
use super::varint::{varint_len, varlong_len, write_varint, write_varlong};
use super::{BATCH_HEADER_LEN, Compression, LOG_OVERHEAD, compute_crc};

/// Largest uncompressed records section a builder accepts (1 GiB), leaving room below
/// `i32::MAX` for any codec's expansion of incompressible data.
pub const MAX_RECORDS_BYTES: usize = 1 << 30;

/// Upper bound of one encoded record's overhead outside its key, value and headers:
/// length (5) + attributes (1) + timestampDelta (10) + offsetDelta (5) + key and value
/// lengths (5 + 5) + header count (5).
const RECORD_OVERHEAD_MAX: usize = 36;
/// Upper bound of one header's overhead outside its key and value bytes.
const HEADER_OVERHEAD_MAX: usize = 10;

/// Why a record cannot be added to a batch.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// The records would exceed [`MAX_RECORDS_BYTES`].
    #[error(
        "records section would reach {records_bytes} bytes, over the {max_records_bytes}-byte limit"
    )]
    TooLarge {
        /// Estimated records bytes with the rejected record.
        records_bytes: usize,
        /// The limit.
        max_records_bytes: usize,
    },
}

/// A record waiting to be encoded.
#[derive(Debug, Clone)]
struct PendingRecord {
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    headers: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    timestamp_ms: i64,
}

/// Builds one RecordBatch v2: base offset 0, partition leader epoch -1, CreateTime,
/// offset deltas 0..n-1, correct `lastOffsetDelta`, `maxTimestamp`, record count and
/// CRC-32C, and the records section compressed with the chosen codec.
///
/// ```
/// use sluice_protocol::record::{Compression, RecordBatchBuilder, decode_records};
///
/// let batch = RecordBatchBuilder::new(Compression::Zstd)
///     .producer(7, 0, 0)
///     .push(Some(b"key"), Some(b"value"), &[("trace", Some(b"1"))], 1_700_000_000_000)
///     .build();
/// let records = decode_records(&batch, 1 << 20).unwrap();
/// assert_eq!(records[0].value.as_deref(), Some(&b"value"[..]));
/// ```
#[derive(Debug, Clone)]
pub struct RecordBatchBuilder {
    compression: Compression,
    base_timestamp: Option<i64>,
    producer_id: i64,
    producer_epoch: i16,
    base_sequence: i32,
    transactional: bool,
    control: bool,
    records: Vec<PendingRecord>,
    records_bytes: usize,
}

impl RecordBatchBuilder {
    /// An empty builder whose records section will be compressed with `compression`.
    /// No producer id (-1), not transactional.
    pub fn new(compression: Compression) -> Self {
        Self {
            compression,
            base_timestamp: None,
            producer_id: -1,
            producer_epoch: -1,
            base_sequence: -1,
            transactional: false,
            control: false,
            records: Vec::new(),
            records_bytes: 0,
        }
    }

    /// Sets `baseTimestamp`; by default it is the first record's timestamp, as the Java
    /// client does. Record timestamps are stored relative to it.
    pub fn base_timestamp(&mut self, base_timestamp_ms: i64) -> &mut Self {
        self.base_timestamp = Some(base_timestamp_ms);
        self
    }

    /// Sets the idempotent producer fields: producer id, epoch and the sequence of the
    /// first record.
    pub fn producer(
        &mut self,
        producer_id: i64,
        producer_epoch: i16,
        base_sequence: i32,
    ) -> &mut Self {
        self.producer_id = producer_id;
        self.producer_epoch = producer_epoch;
        self.base_sequence = base_sequence;
        self
    }

    /// Sets attribute bit 4, marking the batch part of a transaction.
    pub fn transactional(&mut self, transactional: bool) -> &mut Self {
        self.transactional = transactional;
        self
    }

    /// Sets attribute bit 5, marking a control batch (commit/abort markers). Brokers
    /// refuse these from clients; this is for the broker's own markers and for tests.
    pub fn control(&mut self, control: bool) -> &mut Self {
        self.control = control;
        self
    }

    /// Appends a record with the next offset delta.
    ///
    /// # Errors
    /// [`BuildError::TooLarge`] when the records section would pass
    /// [`MAX_RECORDS_BYTES`]; the builder is unchanged.
    pub fn try_push(
        &mut self,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[(&str, Option<&[u8]>)],
        timestamp_ms: i64,
    ) -> Result<&mut Self, BuildError> {
        let mut size = RECORD_OVERHEAD_MAX;
        let mut add = |n: usize| size = size.saturating_add(n);
        add(key.map_or(0, <[u8]>::len));
        add(value.map_or(0, <[u8]>::len));
        for (k, v) in headers {
            add(HEADER_OVERHEAD_MAX);
            add(k.len());
            add(v.map_or(0, <[u8]>::len));
        }
        let records_bytes = self.records_bytes.saturating_add(size);
        if records_bytes > MAX_RECORDS_BYTES {
            return Err(BuildError::TooLarge {
                records_bytes,
                max_records_bytes: MAX_RECORDS_BYTES,
            });
        }
        self.records_bytes = records_bytes;
        self.records.push(PendingRecord {
            key: key.map(<[u8]>::to_vec),
            value: value.map(<[u8]>::to_vec),
            headers: headers
                .iter()
                .map(|(k, v)| (k.as_bytes().to_vec(), v.map(<[u8]>::to_vec)))
                .collect(),
            timestamp_ms,
        });
        Ok(self)
    }

    /// Appends a record with the next offset delta, like [`RecordBatchBuilder::try_push`].
    ///
    /// # Panics
    /// When the records section would pass [`MAX_RECORDS_BYTES`] (1 GiB), far above any
    /// batch Kafka accepts; callers that take sizes from outside should use `try_push`.
    pub fn push(
        &mut self,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[(&str, Option<&[u8]>)],
        timestamp_ms: i64,
    ) -> &mut Self {
        if let Err(err) = self.try_push(key, value, headers, timestamp_ms) {
            panic!("RecordBatchBuilder::push: {err}");
        }
        self
    }

    /// Records pushed so far.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether no record was pushed.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Upper bound of the uncompressed records section so far, to decide when a batch is
    /// full (`batch.size`).
    pub fn records_bytes(&self) -> usize {
        self.records_bytes
    }

    /// Encodes the batch. An empty builder gives a batch with no records (which brokers
    /// reject), `lastOffsetDelta` -1 and no timestamps.
    pub fn build(&self) -> Bytes {
        let base_timestamp = self
            .base_timestamp
            .or_else(|| self.records.first().map(|r| r.timestamp_ms))
            .unwrap_or(NO_TIMESTAMP);
        let mut max_timestamp = NO_TIMESTAMP;
        let mut section = Vec::with_capacity(self.records_bytes);
        for (index, record) in self.records.iter().enumerate() {
            max_timestamp = max_timestamp.max(record.timestamp_ms);
            let offset_delta = to_i32(index);
            encode_record(&mut section, record, base_timestamp, offset_delta);
        }
        let payload = match self.compression {
            Compression::None => section,
            codec => compress(codec, &section),
        };

        let count = to_i32(self.records.len());
        let mut attributes = i16::from(self.compression.id());
        if self.transactional {
            attributes |= 0x10;
        }
        if self.control {
            attributes |= 0x20;
        }
        let total_len = BATCH_HEADER_LEN.saturating_add(payload.len());
        let mut out = BytesMut::with_capacity(total_len);
        out.put_i64(0); // baseOffset
        out.put_i32(to_i32(total_len - LOG_OVERHEAD)); // batchLength
        out.put_i32(-1); // partitionLeaderEpoch
        out.put_i8(2); // magic
        out.put_u32(0); // crc, filled in below
        out.put_i16(attributes);
        out.put_i32(count - 1); // lastOffsetDelta
        out.put_i64(base_timestamp);
        out.put_i64(max_timestamp);
        out.put_i64(self.producer_id);
        out.put_i16(self.producer_epoch);
        out.put_i32(self.base_sequence);
        out.put_i32(count);
        out.put_slice(&payload);
        let crc = compute_crc(&out);
        if let Some(dst) = out.get_mut(17..21) {
            dst.copy_from_slice(&crc.to_be_bytes());
        }
        out.freeze()
    }
}

/// Converts a size the builder has already bounded by [`MAX_RECORDS_BYTES`].
fn to_i32(n: usize) -> i32 {
    debug_assert!(n <= i32::MAX as usize);
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// Length as a varint, -1 for null.
fn nullable_len(bytes: Option<&Vec<u8>>) -> i32 {
    bytes.map_or(-1, |b| to_i32(b.len()))
}

fn encode_record(
    out: &mut Vec<u8>,
    record: &PendingRecord,
    base_timestamp: i64,
    offset_delta: i32,
) {
    let timestamp_delta = record.timestamp_ms.wrapping_sub(base_timestamp);
    let key_len = nullable_len(record.key.as_ref());
    let value_len = nullable_len(record.value.as_ref());
    let header_count = to_i32(record.headers.len());

    let mut body = 1 // attributes
        + varlong_len(timestamp_delta)
        + varint_len(offset_delta)
        + varint_len(key_len)
        + record.key.as_ref().map_or(0, Vec::len)
        + varint_len(value_len)
        + record.value.as_ref().map_or(0, Vec::len)
        + varint_len(header_count);
    for (k, v) in &record.headers {
        let v_len = nullable_len(v.as_ref());
        body += varint_len(to_i32(k.len()))
            + k.len()
            + varint_len(v_len)
            + v.as_ref().map_or(0, Vec::len);
    }

    write_varint(out, to_i32(body));
    out.put_i8(0); // attributes
    write_varlong(out, timestamp_delta);
    write_varint(out, offset_delta);
    write_varint(out, key_len);
    if let Some(key) = &record.key {
        out.put_slice(key);
    }
    write_varint(out, value_len);
    if let Some(value) = &record.value {
        out.put_slice(value);
    }
    write_varint(out, header_count);
    for (k, v) in &record.headers {
        write_varint(out, to_i32(k.len()));
        out.put_slice(k);
        write_varint(out, nullable_len(v.as_ref()));
        if let Some(v) = v {
            out.put_slice(v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{BatchHeader, TimestampType, crc_matches, decode_records};

    #[test]
    fn builds_a_header_like_the_java_client() {
        let batch = RecordBatchBuilder::new(Compression::Gzip)
            .producer(42, 3, 10)
            .push(Some(b"a"), Some(b"1"), &[], 100)
            .push(None, Some(b"2"), &[("h", None)], 300)
            .push(Some(b"c"), None, &[], 200)
            .build();
        let header = BatchHeader::parse(&batch).unwrap();
        assert_eq!(header.base_offset, 0);
        assert_eq!(header.total_len(), batch.len());
        assert_eq!(header.partition_leader_epoch, -1);
        assert_eq!(header.compression(), Some(Compression::Gzip));
        assert_eq!(header.timestamp_type(), TimestampType::CreateTime);
        assert_eq!(header.last_offset_delta, 2);
        assert_eq!(header.record_count, 3);
        assert_eq!(header.base_timestamp, 100);
        assert_eq!(header.max_timestamp, 300);
        assert_eq!(
            (
                header.producer_id,
                header.producer_epoch,
                header.base_sequence
            ),
            (42, 3, 10)
        );
        assert!(crc_matches(&header, &batch));

        let records = decode_records(&batch, 1 << 20).unwrap();
        assert_eq!(records.len(), 3);
        assert_eq!(records[1].key, None);
        assert_eq!(records[1].timestamp(&header), 300);
        assert_eq!(records[1].headers, vec![(Bytes::from_static(b"h"), None)]);
        assert_eq!(records[2].value, None);
        assert_eq!(records[2].timestamp_delta, 100);
    }

    #[test]
    fn explicit_base_timestamp_makes_negative_deltas() {
        let batch = RecordBatchBuilder::new(Compression::None)
            .base_timestamp(1_000)
            .push(None, Some(b"x"), &[], 900)
            .build();
        let header = BatchHeader::parse(&batch).unwrap();
        let records = decode_records(&batch, 1 << 20).unwrap();
        assert_eq!(header.base_timestamp, 1_000);
        assert_eq!(records[0].timestamp_delta, -100);
        assert_eq!(records[0].timestamp(&header), 900);
    }

    #[test]
    fn uncompressed_records_match_the_kafka_byte_layout() {
        let batch = RecordBatchBuilder::new(Compression::None)
            .push(Some(b"k"), Some(b"vv"), &[("h", Some(b"x"))], 5)
            .build();
        // length 13, attrs 0, tsDelta 0, offsetDelta 0, keyLen 1 "k", valueLen 2 "vv",
        // 1 header: keyLen 1 "h", valueLen 1 "x".
        let expected = [26, 0, 0, 0, 2, b'k', 4, b'v', b'v', 2, 2, b'h', 2, b'x'];
        assert_eq!(batch.get(BATCH_HEADER_LEN..), Some(&expected[..]));
    }

    #[test]
    fn try_push_rejects_oversized_records_and_keeps_the_builder() {
        let mut b = RecordBatchBuilder::new(Compression::None);
        b.push(None, Some(b"ok"), &[], 0);
        b.records_bytes = MAX_RECORDS_BYTES - 10;
        assert!(matches!(
            b.try_push(None, Some(b"big"), &[], 0),
            Err(BuildError::TooLarge { .. })
        ));
        assert_eq!(b.len(), 1);
    }
}
