//! Kafka's primitive encodings as used by the `__consumer_offsets` schemas: big-endian
//! integers, `int16`-length strings, `int32`-length bytes and arrays, and, for the flexible
//! (v4+) value versions, unsigned-varint compact strings, bytes and arrays plus tagged fields.
//!
//! The reader checks every length against what is left before reading or allocating, so
//! hostile input ends in an error, never a panic or a huge allocation.

use bytes::{BufMut, Bytes, BytesMut};

use super::{RecordDecodeError, RecordEncodeError};

/// A cursor over one key or value.
pub(crate) struct Reader<'a> {
    input: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(input: &'a [u8]) -> Self {
        Self { input }
    }

    fn take(&mut self, len: usize, field: &'static str) -> Result<&'a [u8], RecordDecodeError> {
        if len > self.input.len() {
            return Err(RecordDecodeError::Truncated { field });
        }
        let (head, tail) = self.input.split_at(len);
        self.input = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], RecordDecodeError> {
        let bytes = self.take(N, field)?;
        let mut out = [0u8; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }

    pub(crate) fn i8(&mut self, field: &'static str) -> Result<i8, RecordDecodeError> {
        Ok(i8::from_be_bytes(self.array(field)?))
    }

    pub(crate) fn i16(&mut self, field: &'static str) -> Result<i16, RecordDecodeError> {
        Ok(i16::from_be_bytes(self.array(field)?))
    }

    /// A UUID: 16 bytes, most significant first.
    pub(crate) fn uuid(&mut self, field: &'static str) -> Result<uuid::Uuid, RecordDecodeError> {
        Ok(uuid::Uuid::from_bytes(self.array(field)?))
    }

    pub(crate) fn i32(&mut self, field: &'static str) -> Result<i32, RecordDecodeError> {
        Ok(i32::from_be_bytes(self.array(field)?))
    }

    pub(crate) fn i64(&mut self, field: &'static str) -> Result<i64, RecordDecodeError> {
        Ok(i64::from_be_bytes(self.array(field)?))
    }

    /// Unsigned LEB128 varint of at most 32 bits, as Kafka writes compact lengths and tags.
    pub(crate) fn unsigned_varint(
        &mut self,
        field: &'static str,
    ) -> Result<u32, RecordDecodeError> {
        let mut value: u32 = 0;
        for shift in [0u32, 7, 14, 21, 28] {
            let [byte] = self.array::<1>(field)?;
            let low = u32::from(byte & 0x7f);
            if shift == 28 && low > 0x0f {
                return Err(RecordDecodeError::VarintOverflow { field });
            }
            value |= low << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(RecordDecodeError::VarintOverflow { field })
    }

    fn utf8(&mut self, len: usize, field: &'static str) -> Result<String, RecordDecodeError> {
        let bytes = self.take(len, field)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| RecordDecodeError::InvalidUtf8 { field })
    }

    /// Reads a string that may be null; `flexible` selects the compact encoding.
    pub(crate) fn nullable_string(
        &mut self,
        flexible: bool,
        field: &'static str,
    ) -> Result<Option<String>, RecordDecodeError> {
        let len = if flexible {
            match self.unsigned_varint(field)? {
                0 => return Ok(None),
                n => i64::from(n) - 1,
            }
        } else {
            match self.i16(field)? {
                -1 => return Ok(None),
                n => i64::from(n),
            }
        };
        let len = usize::try_from(len)
            .map_err(|_| RecordDecodeError::InvalidLength { field, length: len })?;
        self.utf8(len, field).map(Some)
    }

    pub(crate) fn string(
        &mut self,
        flexible: bool,
        field: &'static str,
    ) -> Result<String, RecordDecodeError> {
        self.nullable_string(flexible, field)?
            .ok_or(RecordDecodeError::UnexpectedNull { field })
    }

    pub(crate) fn bytes(
        &mut self,
        flexible: bool,
        field: &'static str,
    ) -> Result<Bytes, RecordDecodeError> {
        let len = if flexible {
            i64::from(self.unsigned_varint(field)?) - 1
        } else {
            i64::from(self.i32(field)?)
        };
        if len == -1 {
            return Err(RecordDecodeError::UnexpectedNull { field });
        }
        let len = usize::try_from(len)
            .map_err(|_| RecordDecodeError::InvalidLength { field, length: len })?;
        Ok(Bytes::copy_from_slice(self.take(len, field)?))
    }

    /// Reads an array length and returns it with a capacity hint that the remaining
    /// input can actually back (each element takes at least one byte).
    pub(crate) fn array_len(
        &mut self,
        flexible: bool,
        field: &'static str,
    ) -> Result<usize, RecordDecodeError> {
        let len = if flexible {
            i64::from(self.unsigned_varint(field)?) - 1
        } else {
            i64::from(self.i32(field)?)
        };
        if len == -1 {
            return Err(RecordDecodeError::UnexpectedNull { field });
        }
        let len = usize::try_from(len)
            .map_err(|_| RecordDecodeError::InvalidLength { field, length: len })?;
        if len > self.input.len() {
            return Err(RecordDecodeError::Truncated { field });
        }
        Ok(len)
    }

    /// Skips the tagged-field section that ends every flexible struct. None of the fields
    /// Sluice reads are tagged, so unknown tags are skipped, as Kafka's readers do.
    pub(crate) fn skip_tagged_fields(
        &mut self,
        field: &'static str,
    ) -> Result<(), RecordDecodeError> {
        let count = self.unsigned_varint(field)?;
        for _ in 0..count {
            let _tag = self.unsigned_varint(field)?;
            let size = self.unsigned_varint(field)?;
            let size = usize::try_from(size).map_err(|_| RecordDecodeError::InvalidLength {
                field,
                length: i64::from(size),
            })?;
            self.take(size, field)?;
        }
        Ok(())
    }
}

/// Builds one key or value.
pub(crate) struct Writer {
    out: BytesMut,
}

impl Writer {
    pub(crate) fn new() -> Self {
        Self {
            out: BytesMut::new(),
        }
    }

    pub(crate) fn finish(self) -> Bytes {
        self.out.freeze()
    }

    pub(crate) fn i8(&mut self, value: i8) {
        self.out.put_i8(value);
    }

    pub(crate) fn i16(&mut self, value: i16) {
        self.out.put_i16(value);
    }

    pub(crate) fn uuid(&mut self, value: &uuid::Uuid) {
        self.out.put_slice(value.as_bytes());
    }

    pub(crate) fn i32(&mut self, value: i32) {
        self.out.put_i32(value);
    }

    pub(crate) fn i64(&mut self, value: i64) {
        self.out.put_i64(value);
    }

    pub(crate) fn unsigned_varint(&mut self, mut value: u32) {
        while value >= 0x80 {
            // The masked value is below 0x80, so the cast keeps every bit.
            self.out.put_u8(((value & 0x7f) as u8) | 0x80);
            value >>= 7;
        }
        // The loop leaves a value below 0x80.
        self.out.put_u8(value as u8);
    }

    fn compact_len(&mut self, len: usize, field: &'static str) -> Result<(), RecordEncodeError> {
        let encoded = u32::try_from(len)
            .ok()
            .and_then(|n| n.checked_add(1))
            .ok_or(RecordEncodeError::TooLong { field, len })?;
        self.unsigned_varint(encoded);
        Ok(())
    }

    pub(crate) fn nullable_string(
        &mut self,
        value: Option<&str>,
        flexible: bool,
        field: &'static str,
    ) -> Result<(), RecordEncodeError> {
        match (value, flexible) {
            (None, true) => self.unsigned_varint(0),
            (None, false) => self.i16(-1),
            (Some(s), true) => {
                self.compact_len(s.len(), field)?;
                self.out.put_slice(s.as_bytes());
            }
            (Some(s), false) => {
                let len = i16::try_from(s.len()).map_err(|_| RecordEncodeError::TooLong {
                    field,
                    len: s.len(),
                })?;
                self.i16(len);
                self.out.put_slice(s.as_bytes());
            }
        }
        Ok(())
    }

    pub(crate) fn string(
        &mut self,
        value: &str,
        flexible: bool,
        field: &'static str,
    ) -> Result<(), RecordEncodeError> {
        self.nullable_string(Some(value), flexible, field)
    }

    pub(crate) fn bytes(
        &mut self,
        value: &[u8],
        flexible: bool,
        field: &'static str,
    ) -> Result<(), RecordEncodeError> {
        if flexible {
            self.compact_len(value.len(), field)?;
        } else {
            let len = i32::try_from(value.len()).map_err(|_| RecordEncodeError::TooLong {
                field,
                len: value.len(),
            })?;
            self.i32(len);
        }
        self.out.put_slice(value);
        Ok(())
    }

    pub(crate) fn array_len(
        &mut self,
        len: usize,
        flexible: bool,
        field: &'static str,
    ) -> Result<(), RecordEncodeError> {
        if flexible {
            self.compact_len(len, field)
        } else {
            let len = i32::try_from(len).map_err(|_| RecordEncodeError::TooLong { field, len })?;
            self.i32(len);
            Ok(())
        }
    }

    /// An empty tagged-field section: Sluice writes no tagged fields.
    pub(crate) fn no_tagged_fields(&mut self) {
        self.unsigned_varint(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varint_round_trips_edges() {
        for value in [0u32, 1, 127, 128, 16_383, 16_384, u32::MAX] {
            let mut w = Writer::new();
            w.unsigned_varint(value);
            let bytes = w.finish();
            let mut r = Reader::new(&bytes);
            assert_eq!(r.unsigned_varint("v").unwrap(), value);
        }
    }

    #[test]
    fn varint_longer_than_five_bytes_is_rejected() {
        let mut r = Reader::new(&[0xff, 0xff, 0xff, 0xff, 0xff, 0x01]);
        assert!(matches!(
            r.unsigned_varint("v"),
            Err(RecordDecodeError::VarintOverflow { .. })
        ));
    }

    #[test]
    fn hostile_array_length_is_rejected_before_allocating() {
        let mut r = Reader::new(&[0x7f, 0xff, 0xff, 0xff, 0x00]);
        assert!(matches!(
            r.array_len(false, "a"),
            Err(RecordDecodeError::Truncated { .. })
        ));
    }
}
