//! Reading topic names out of the "consumer" protocol's member metadata, which OffsetDelete
//! and offset expiry need (is the group still subscribed to this topic?).
//!
//! Like Kafka, only the version prefix and the v0 layout are read (topics, user data): every
//! later version of ConsumerProtocolSubscription extends v0, so this keeps working when
//! clients move to a newer version.

use bytes::{Buf, Bytes};
use kafka_protocol::messages::ConsumerProtocolSubscription;
use kafka_protocol::protocol::Decodable;
use sluice_protocol::kafka_protocol;

/// The protocol type of Kafka consumers.
pub(crate) const CONSUMER_PROTOCOL_TYPE: &str = "consumer";

/// The topics of one member's subscription, or `None` if the bytes are not a consumer
/// protocol subscription.
pub(crate) fn subscribed_topics(metadata: &Bytes) -> Option<Vec<String>> {
    let mut buf = metadata.clone();
    if buf.remaining() < 2 {
        return None;
    }
    let version = buf.get_i16();
    if version < 0 {
        return None;
    }
    let subscription = ConsumerProtocolSubscription::decode(&mut buf, 0).ok()?;
    Some(
        subscription
            .topics
            .into_iter()
            .map(|t| t.to_string())
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use bytes::BytesMut;
    use kafka_protocol::protocol::{Encodable, StrBytes};

    use super::*;

    fn encode(version: i16, topics: &[&'static str]) -> Bytes {
        let subscription = ConsumerProtocolSubscription::default().with_topics(
            topics
                .iter()
                .map(|t| StrBytes::from_static_str(t))
                .collect(),
        );
        let mut buf = BytesMut::new();
        buf.extend_from_slice(&version.to_be_bytes());
        subscription.encode(&mut buf, version).unwrap();
        buf.freeze()
    }

    #[test]
    fn reads_topics_of_every_version() {
        for version in 0..=3 {
            assert_eq!(
                subscribed_topics(&encode(version, &["a", "b"])),
                Some(vec!["a".to_string(), "b".to_string()])
            );
        }
    }

    #[test]
    fn garbage_is_not_a_subscription() {
        assert_eq!(subscribed_topics(&Bytes::from_static(b"x")), None);
        assert_eq!(
            subscribed_topics(&Bytes::from_static(&[0xff, 0xff, 0, 0, 0, 1])),
            None
        );
        assert_eq!(
            subscribed_topics(&Bytes::from_static(&[0, 0, 0, 0, 0, 9, 0, 1])),
            None
        );
    }
}
