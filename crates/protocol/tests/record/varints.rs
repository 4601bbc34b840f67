//! Varint and varlong round trips and garbage.

use proptest::prelude::*;
use sluice_protocol::record::varint::{
    MAX_VARINT_LEN, MAX_VARLONG_LEN, read_varint, read_varlong, varint_len, varlong_len,
    write_varint, write_varlong,
};

proptest! {
    #[test]
    fn varint_round_trips(value in any::<i32>(), tail in proptest::collection::vec(any::<u8>(), 0..4)) {
        let mut buf = Vec::new();
        write_varint(&mut buf, value);
        prop_assert_eq!(buf.len(), varint_len(value));
        let len = buf.len();
        buf.extend_from_slice(&tail);
        prop_assert_eq!(read_varint(&buf), Ok((value, len)));
    }

    #[test]
    fn varlong_round_trips(value in any::<i64>(), tail in proptest::collection::vec(any::<u8>(), 0..4)) {
        let mut buf = Vec::new();
        write_varlong(&mut buf, value);
        prop_assert_eq!(buf.len(), varlong_len(value));
        let len = buf.len();
        buf.extend_from_slice(&tail);
        prop_assert_eq!(read_varlong(&buf), Ok((value, len)));
    }

    #[test]
    fn garbage_decodes_or_errors_without_panicking(bytes in proptest::collection::vec(any::<u8>(), 0..12)) {
        if let Ok((_, len)) = read_varint(&bytes) {
            prop_assert!(len >= 1 && len <= MAX_VARINT_LEN.min(bytes.len()));
        }
        if let Ok((_, len)) = read_varlong(&bytes) {
            prop_assert!(len >= 1 && len <= MAX_VARLONG_LEN.min(bytes.len()));
        }
    }

    #[test]
    fn every_truncation_of_a_varlong_is_an_error(value in any::<i64>()) {
        let mut buf = Vec::new();
        write_varlong(&mut buf, value);
        for cut in 0..buf.len() {
            prop_assert!(read_varlong(&buf[..cut]).is_err());
        }
    }
}
