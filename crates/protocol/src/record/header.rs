use std::fmt;

/// Bytes before `batchLength` counts from: baseOffset (8) + batchLength (4).
pub const LOG_OVERHEAD: usize = 12;
/// Size of the fixed RecordBatch v2 header, up to and including the record count.
pub const BATCH_HEADER_LEN: usize = 61;

const MAGIC_OFFSET: usize = 16;
const CRC_OFFSET: usize = 17;
const ATTRIBUTES_OFFSET: usize = 21;

/// Compression codec named by the low three bits of the batch attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Compression {
    /// Records stored as they are.
    None,
    /// gzip (RFC 1952).
    Gzip,
    /// Snappy in the xerial framing Kafka clients use.
    Snappy,
    /// LZ4 frame format.
    Lz4,
    /// Zstandard.
    Zstd,
}

impl Compression {
    /// The codec for attribute bits 0..=2, or `None` for an undefined codec id.
    pub fn from_id(id: u8) -> Option<Self> {
        match id {
            0 => Some(Self::None),
            1 => Some(Self::Gzip),
            2 => Some(Self::Snappy),
            3 => Some(Self::Lz4),
            4 => Some(Self::Zstd),
            _ => None,
        }
    }

    /// The attribute bits for this codec.
    pub fn id(self) -> u8 {
        match self {
            Self::None => 0,
            Self::Gzip => 1,
            Self::Snappy => 2,
            Self::Lz4 => 3,
            Self::Zstd => 4,
        }
    }
}

/// Which clock a batch's timestamps come from (attribute bit 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimestampType {
    /// Set by the producer.
    CreateTime,
    /// Set by the broker when it appended the batch.
    LogAppendTime,
}

/// Why a byte range is not a RecordBatch v2 header.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchHeaderError {
    /// Fewer bytes than the fixed header or than `batchLength` announces.
    #[error("record batch truncated: need {needed} bytes, have {available}")]
    Truncated {
        /// Bytes the batch needs.
        needed: usize,
        /// Bytes present.
        available: usize,
    },
    /// `batchLength` is smaller than the fixed header.
    #[error("record batch length {batch_length} is below the minimum header size")]
    InvalidLength {
        /// The announced length.
        batch_length: i32,
    },
    /// A magic byte other than 2.
    #[error("unsupported record batch magic {magic}")]
    UnsupportedMagic {
        /// The magic byte found.
        magic: i8,
    },
}

/// The fixed header of one RecordBatch v2, parsed by value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    /// Offset of the first record.
    pub base_offset: i64,
    /// Bytes after the `batchLength` field.
    pub batch_length: i32,
    /// Leader epoch stamped by the broker.
    pub partition_leader_epoch: i32,
    /// Always 2 for a parsed header.
    pub magic: i8,
    /// CRC-32C over bytes 21..end, as stored.
    pub crc: u32,
    /// Raw attribute bits.
    pub attributes: i16,
    /// Offset of the last record relative to `base_offset`.
    pub last_offset_delta: i32,
    /// Timestamp of the first record.
    pub base_timestamp: i64,
    /// Largest record timestamp (or the append time under LogAppendTime).
    pub max_timestamp: i64,
    /// Idempotent/transactional producer id, -1 when none.
    pub producer_id: i64,
    /// Producer epoch, -1 when none.
    pub producer_epoch: i16,
    /// Sequence of the first record, -1 when none.
    pub base_sequence: i32,
    /// Number of records that follow.
    pub record_count: i32,
}

fn be_i64(buf: &[u8], at: usize) -> i64 {
    let mut raw = [0u8; 8];
    if let Some(src) = buf.get(at..at + 8) {
        raw.copy_from_slice(src);
    }
    i64::from_be_bytes(raw)
}

fn be_i32(buf: &[u8], at: usize) -> i32 {
    let mut raw = [0u8; 4];
    if let Some(src) = buf.get(at..at + 4) {
        raw.copy_from_slice(src);
    }
    i32::from_be_bytes(raw)
}

fn be_i16(buf: &[u8], at: usize) -> i16 {
    let mut raw = [0u8; 2];
    if let Some(src) = buf.get(at..at + 2) {
        raw.copy_from_slice(src);
    }
    i16::from_be_bytes(raw)
}

impl BatchHeader {
    /// Parses the fixed header at the start of `buf`. Checks the magic byte and that
    /// `batchLength` covers at least the header; does not require the whole batch to be
    /// present (see [`BatchHeader::total_len`]) and does not check the CRC.
    ///
    /// # Errors
    /// [`BatchHeaderError`] when `buf` is shorter than the header, the length is below
    /// the header size, or the magic is not 2.
    pub fn parse(buf: &[u8]) -> Result<Self, BatchHeaderError> {
        if buf.len() < BATCH_HEADER_LEN {
            return Err(BatchHeaderError::Truncated {
                needed: BATCH_HEADER_LEN,
                available: buf.len(),
            });
        }
        let batch_length = be_i32(buf, 8);
        if batch_length < (BATCH_HEADER_LEN - LOG_OVERHEAD) as i32 {
            return Err(BatchHeaderError::InvalidLength { batch_length });
        }
        let magic = buf.get(MAGIC_OFFSET).map_or(-1, |b| *b as i8);
        if magic != 2 {
            return Err(BatchHeaderError::UnsupportedMagic { magic });
        }
        Ok(Self {
            base_offset: be_i64(buf, 0),
            batch_length,
            partition_leader_epoch: be_i32(buf, 12),
            magic,
            crc: be_i32(buf, CRC_OFFSET) as u32,
            attributes: be_i16(buf, ATTRIBUTES_OFFSET),
            last_offset_delta: be_i32(buf, 23),
            base_timestamp: be_i64(buf, 27),
            max_timestamp: be_i64(buf, 35),
            producer_id: be_i64(buf, 43),
            producer_epoch: be_i16(buf, 51),
            base_sequence: be_i32(buf, 53),
            record_count: be_i32(buf, 57),
        })
    }

    /// Size of the whole batch in bytes, header included.
    pub fn total_len(&self) -> usize {
        // batch_length was checked positive in `parse`.
        LOG_OVERHEAD + self.batch_length as usize
    }

    /// Offset of the last record in the batch.
    pub fn last_offset(&self) -> i64 {
        self.base_offset
            .saturating_add(i64::from(self.last_offset_delta))
    }

    /// Codec named by the attributes, `None` when the id is undefined.
    pub fn compression(&self) -> Option<Compression> {
        Compression::from_id((self.attributes & 0x07) as u8)
    }

    /// Timestamp type from attribute bit 3.
    pub fn timestamp_type(&self) -> TimestampType {
        if self.attributes & 0x08 != 0 {
            TimestampType::LogAppendTime
        } else {
            TimestampType::CreateTime
        }
    }

    /// Attribute bit 4.
    pub fn is_transactional(&self) -> bool {
        self.attributes & 0x10 != 0
    }

    /// Attribute bit 5: a commit/abort marker rather than data.
    pub fn is_control(&self) -> bool {
        self.attributes & 0x20 != 0
    }
}

/// CRC-32C of a whole batch's covered bytes (21..end), to compare with the stored CRC.
/// `batch` must be exactly one batch as long as [`BatchHeader::total_len`].
pub fn compute_crc(batch: &[u8]) -> u32 {
    crc32c::crc32c(batch.get(ATTRIBUTES_OFFSET..).unwrap_or(&[]))
}

/// Whether the stored CRC matches the covered bytes of `batch`.
pub fn crc_matches(header: &BatchHeader, batch: &[u8]) -> bool {
    compute_crc(batch) == header.crc
}

/// Rewrites baseOffset in place. Outside the CRC, so the batch stays valid.
pub fn set_base_offset(batch: &mut [u8], base_offset: i64) {
    if let Some(dst) = batch.get_mut(0..8) {
        dst.copy_from_slice(&base_offset.to_be_bytes());
    }
}

/// Rewrites partitionLeaderEpoch in place. Outside the CRC, so the batch stays valid.
pub fn set_partition_leader_epoch(batch: &mut [u8], epoch: i32) {
    if let Some(dst) = batch.get_mut(12..16) {
        dst.copy_from_slice(&epoch.to_be_bytes());
    }
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::None => "none",
            Self::Gzip => "gzip",
            Self::Snappy => "snappy",
            Self::Lz4 => "lz4",
            Self::Zstd => "zstd",
        })
    }
}
