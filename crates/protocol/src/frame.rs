//! Length-prefixed framing: every Kafka request and response is an `i32` size followed by
//! that many bytes. Checking is separate from decoding (as mini-redis does) so a
//! connection can refuse an oversized frame before allocating a buffer for it.

/// Bytes of the size prefix.
pub const SIZE_PREFIX_LEN: usize = 4;

/// Why the bytes at the front of a connection's buffer cannot be a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The size prefix is larger than `socket.request.max.bytes`.
    #[error("frame of {size} bytes exceeds the limit of {max} bytes")]
    TooLarge {
        /// Announced size.
        size: i64,
        /// Configured limit.
        max: usize,
    },
    /// The size prefix is negative or too small to hold a request header.
    #[error("invalid frame size {size}")]
    InvalidSize {
        /// Announced size.
        size: i32,
    },
}

/// Smallest body a request can have: api key, api version, correlation id.
const MIN_REQUEST_BODY: i32 = 8;

/// Looks at the start of `buf` and reports whether a whole request frame is buffered.
///
/// Returns `Ok(Some(body_len))` when `buf` holds the size prefix and `body_len` bytes after
/// it, `Ok(None)` when more bytes are needed (the caller may reserve
/// [`announced_body_len`] bytes, already checked against `max_body_bytes`).
///
/// # Errors
/// [`FrameError`] when the announced size is invalid or above `max_body_bytes`; the
/// connection should be closed.
pub fn check(buf: &[u8], max_body_bytes: usize) -> Result<Option<usize>, FrameError> {
    let Some(body_len) = announced_body_len(buf, max_body_bytes)? else {
        return Ok(None);
    };
    if buf.len() - SIZE_PREFIX_LEN >= body_len {
        Ok(Some(body_len))
    } else {
        Ok(None)
    }
}

/// The body length announced by the size prefix, validated against `max_body_bytes`;
/// `Ok(None)` when fewer than four bytes are buffered.
///
/// # Errors
/// See [`check`].
pub fn announced_body_len(buf: &[u8], max_body_bytes: usize) -> Result<Option<usize>, FrameError> {
    let Some(prefix) = buf.get(..SIZE_PREFIX_LEN) else {
        return Ok(None);
    };
    let mut raw = [0u8; SIZE_PREFIX_LEN];
    raw.copy_from_slice(prefix);
    let size = i32::from_be_bytes(raw);
    if size < MIN_REQUEST_BODY {
        return Err(FrameError::InvalidSize { size });
    }
    let body_len = usize::try_from(size).map_err(|_| FrameError::InvalidSize { size })?;
    if body_len > max_body_bytes {
        return Err(FrameError::TooLarge {
            size: i64::from(size),
            max: max_body_bytes,
        });
    }
    Ok(Some(body_len))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_for_prefix_and_body() {
        assert_eq!(check(&[0, 0], 100), Ok(None));
        let mut buf = 10i32.to_be_bytes().to_vec();
        assert_eq!(check(&buf, 100), Ok(None));
        buf.extend_from_slice(&[0; 9]);
        assert_eq!(check(&buf, 100), Ok(None));
        buf.push(0);
        assert_eq!(check(&buf, 100), Ok(Some(10)));
    }

    #[test]
    fn rejects_oversized_before_body_arrives() {
        let buf = i32::MAX.to_be_bytes();
        assert!(matches!(
            check(&buf, 1024),
            Err(FrameError::TooLarge { .. })
        ));
    }

    #[test]
    fn rejects_negative_and_tiny_sizes() {
        assert!(matches!(
            check(&(-1i32).to_be_bytes(), 1024),
            Err(FrameError::InvalidSize { size: -1 })
        ));
        assert!(matches!(
            check(&3i32.to_be_bytes(), 1024),
            Err(FrameError::InvalidSize { size: 3 })
        ));
    }
}
