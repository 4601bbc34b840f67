//! Records as operators see them.

use bytes::Bytes;
use serde_json::Value;

/// A record's value: parsed JSON when the pipeline reads JSON, else the raw bytes.
#[derive(Debug, Clone, PartialEq)]
pub enum Payload {
    /// The bytes as they are in the log (`None`: a null value).
    Raw(Option<Bytes>),
    /// The value parsed as JSON.
    Json(Value),
}

/// One record flowing through a pipeline.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// Key bytes, `None` when null.
    pub key: Option<Bytes>,
    /// The value.
    pub value: Payload,
    /// Headers in order; names are UTF-8 (lossy), values raw.
    pub headers: Vec<(String, Option<Bytes>)>,
    /// The record's Kafka timestamp (ms).
    pub timestamp: i64,
    /// Event time (ms): the record timestamp or the pipeline's `time` field.
    pub event_time: i64,
}

impl Record {
    /// The JSON value, if the payload is JSON.
    pub fn json(&self) -> Option<&Value> {
        match &self.value {
            Payload::Json(v) => Some(v),
            Payload::Raw(_) => None,
        }
    }

    /// The value as bytes for the log: JSON is serialised compactly.
    pub fn value_bytes(&self) -> Option<Bytes> {
        match &self.value {
            Payload::Raw(bytes) => bytes.clone(),
            Payload::Json(v) => Some(Bytes::from(serde_json::to_vec(v).unwrap_or_default())),
        }
    }

    /// The first header named `name`.
    pub fn header(&self, name: &str) -> Option<&Option<Bytes>> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }
}
