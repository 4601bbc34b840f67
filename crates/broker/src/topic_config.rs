//! Topic configs with Kafka's names, defaults and validation, in one table used by
//! CreateTopics (and later DescribeConfigs/AlterConfigs).

use std::collections::BTreeMap;

use sluice_protocol::record::TimestampType;

use crate::config::ConfigError;

/// How one config's value is checked.
#[derive(Debug, Clone, Copy)]
enum Kind {
    /// A signed 64-bit integer at least `min`.
    Long { min: i64 },
    /// A signed 32-bit integer at least `min`.
    Int { min: i32 },
    /// One of a fixed list of strings.
    Choice(&'static [&'static str]),
    /// A comma-separated list whose items are from a fixed list.
    List(&'static [&'static str]),
}

/// One row of the table: name, Kafka default, validation.
struct Definition {
    name: &'static str,
    default: &'static str,
    kind: Kind,
}

const DEFINITIONS: &[Definition] = &[
    Definition {
        name: "cleanup.policy",
        default: "delete",
        kind: Kind::List(&["delete", "compact"]),
    },
    Definition {
        name: "compression.type",
        default: "producer",
        kind: Kind::Choice(&["producer", "uncompressed", "gzip", "snappy", "lz4", "zstd"]),
    },
    Definition {
        name: "max.message.bytes",
        default: "1048588",
        kind: Kind::Int { min: 0 },
    },
    Definition {
        name: "message.timestamp.type",
        default: "CreateTime",
        kind: Kind::Choice(&["CreateTime", "LogAppendTime"]),
    },
    Definition {
        name: "message.timestamp.before.max.ms",
        default: "9223372036854775807",
        kind: Kind::Long { min: 0 },
    },
    Definition {
        name: "message.timestamp.after.max.ms",
        default: "3600000",
        kind: Kind::Long { min: 0 },
    },
    Definition {
        name: "retention.bytes",
        default: "-1",
        kind: Kind::Long { min: -1 },
    },
    Definition {
        name: "retention.ms",
        default: "604800000",
        kind: Kind::Long { min: -1 },
    },
    Definition {
        name: "segment.bytes",
        default: "1073741824",
        kind: Kind::Int { min: 1024 * 1024 },
    },
    Definition {
        name: "segment.ms",
        default: "604800000",
        kind: Kind::Long { min: 1 },
    },
    Definition {
        name: "segment.index.bytes",
        default: "10485760",
        kind: Kind::Int { min: 4 },
    },
    Definition {
        name: "index.interval.bytes",
        default: "4096",
        kind: Kind::Int { min: 0 },
    },
];

fn definition(name: &str) -> Option<&'static Definition> {
    DEFINITIONS.iter().find(|d| d.name == name)
}

/// A topic config name or value was rejected (Kafka INVALID_CONFIG).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TopicConfigError {
    /// Not a topic config Kafka (or Sluice) knows.
    #[error("Unknown topic config name: {name}")]
    UnknownName {
        /// The key given.
        name: String,
    },
    /// The value does not parse or is out of range.
    #[error("Invalid value {value} for configuration {name}: {reason}")]
    InvalidValue {
        /// The key.
        name: String,
        /// The value given.
        value: String,
        /// Why it was refused.
        reason: String,
    },
}

fn check_value(def: &Definition, value: &str) -> Result<(), TopicConfigError> {
    let invalid = |reason: String| TopicConfigError::InvalidValue {
        name: def.name.to_owned(),
        value: value.to_owned(),
        reason,
    };
    match def.kind {
        Kind::Long { min } => match value.trim().parse::<i64>() {
            Ok(v) if v >= min => Ok(()),
            Ok(_) => Err(invalid(format!("Value must be at least {min}"))),
            Err(_) => Err(invalid("Not a number of type LONG".to_owned())),
        },
        Kind::Int { min } => match value.trim().parse::<i32>() {
            Ok(v) if v >= min => Ok(()),
            Ok(_) => Err(invalid(format!("Value must be at least {min}"))),
            Err(_) => Err(invalid("Not a number of type INT".to_owned())),
        },
        Kind::Choice(allowed) => {
            if allowed.contains(&value) {
                Ok(())
            } else {
                Err(invalid(format!(
                    "String must be one of: {}",
                    allowed.join(", ")
                )))
            }
        }
        Kind::List(allowed) => {
            let items: Vec<&str> = value.split(',').map(str::trim).collect();
            if !items.is_empty() && items.iter().all(|i| allowed.contains(i)) {
                Ok(())
            } else {
                Err(invalid(format!(
                    "List items must be from: {}",
                    allowed.join(", ")
                )))
            }
        }
    }
}

/// Broker-level defaults for topic configs (Kafka's `log.*` settings): the value a topic
/// gets for a key it does not override.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TopicDefaults {
    overrides: BTreeMap<String, String>,
}

impl TopicDefaults {
    /// Sets a broker-level default for a topic config.
    ///
    /// # Errors
    /// [`TopicConfigError`] for an unknown name or invalid value.
    pub fn set(&mut self, name: &str, value: &str) -> Result<(), TopicConfigError> {
        let def = definition(name).ok_or_else(|| TopicConfigError::UnknownName {
            name: name.to_owned(),
        })?;
        check_value(def, value)?;
        self.overrides.insert(name.to_owned(), value.to_owned());
        Ok(())
    }

    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        Ok(())
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.overrides.get(name).map(String::as_str)
    }
}

/// A topic's configs: the overrides it was created with, resolved against the broker
/// defaults into typed values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicConfig {
    overrides: BTreeMap<String, String>,
    /// `max.message.bytes`.
    pub max_message_bytes: usize,
    /// `message.timestamp.type`.
    pub timestamp_type: TimestampType,
    /// `message.timestamp.before.max.ms`.
    pub timestamp_before_max_ms: i64,
    /// `message.timestamp.after.max.ms`.
    pub timestamp_after_max_ms: i64,
    /// `segment.bytes`.
    pub segment_bytes: u64,
    /// `segment.index.bytes`.
    pub segment_index_bytes: u32,
    /// `index.interval.bytes`.
    pub index_interval_bytes: u32,
}

/// Where a config's effective value comes from, as DescribeConfigs reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigSource {
    /// Set on the topic.
    Topic,
    /// A broker-level default.
    Broker,
    /// Kafka's default.
    Default,
}

impl TopicConfig {
    /// Validates `overrides` and resolves every config against `defaults`.
    ///
    /// # Errors
    /// [`TopicConfigError`] naming the first bad key.
    pub fn new(
        overrides: BTreeMap<String, String>,
        defaults: &TopicDefaults,
    ) -> Result<Self, TopicConfigError> {
        for (name, value) in &overrides {
            let def = definition(name)
                .ok_or_else(|| TopicConfigError::UnknownName { name: name.clone() })?;
            check_value(def, value)?;
        }
        let effective = |name: &str| -> &str {
            overrides
                .get(name)
                .map(String::as_str)
                .or_else(|| defaults.get(name))
                .or_else(|| definition(name).map(|d| d.default))
                .unwrap_or("")
        };
        // Values were validated above (or are the table's defaults), so parsing succeeds;
        // the fallbacks only guard against a table typo.
        let long = |name: &str| effective(name).parse::<i64>().unwrap_or(0);
        Ok(Self {
            max_message_bytes: usize::try_from(long("max.message.bytes")).unwrap_or(1_048_588),
            timestamp_type: if effective("message.timestamp.type") == "LogAppendTime" {
                TimestampType::LogAppendTime
            } else {
                TimestampType::CreateTime
            },
            timestamp_before_max_ms: long("message.timestamp.before.max.ms"),
            timestamp_after_max_ms: long("message.timestamp.after.max.ms"),
            segment_bytes: u64::try_from(long("segment.bytes")).unwrap_or(1 << 30),
            segment_index_bytes: u32::try_from(long("segment.index.bytes")).unwrap_or(10 << 20),
            index_interval_bytes: u32::try_from(long("index.interval.bytes")).unwrap_or(4096),
            overrides,
        })
    }

    /// The overrides set on this topic (what is persisted).
    pub fn overrides(&self) -> &BTreeMap<String, String> {
        &self.overrides
    }

    /// Every known config with its effective value and source, in name order.
    pub fn describe(&self, defaults: &TopicDefaults) -> Vec<(&'static str, String, ConfigSource)> {
        DEFINITIONS
            .iter()
            .map(|d| {
                if let Some(v) = self.overrides.get(d.name) {
                    (d.name, v.clone(), ConfigSource::Topic)
                } else if let Some(v) = defaults.get(d.name) {
                    (d.name, v.to_owned(), ConfigSource::Broker)
                } else {
                    (d.name, d.default.to_owned(), ConfigSource::Default)
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn overrides(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn defaults_follow_kafka() {
        let c = TopicConfig::new(BTreeMap::new(), &TopicDefaults::default()).unwrap();
        assert_eq!(c.max_message_bytes, 1_048_588);
        assert_eq!(c.timestamp_type, TimestampType::CreateTime);
        assert_eq!(c.segment_bytes, 1 << 30);
    }

    #[test]
    fn unknown_name_is_named_in_the_error() {
        let err = TopicConfig::new(
            overrides(&[("retention.msx", "1")]),
            &TopicDefaults::default(),
        )
        .unwrap_err();
        assert_eq!(err.to_string(), "Unknown topic config name: retention.msx");
    }

    #[test]
    fn invalid_values_are_refused() {
        let d = TopicDefaults::default();
        assert!(TopicConfig::new(overrides(&[("message.timestamp.type", "Wall")]), &d).is_err());
        assert!(TopicConfig::new(overrides(&[("max.message.bytes", "-5")]), &d).is_err());
        assert!(TopicConfig::new(overrides(&[("cleanup.policy", "compact,delete")]), &d).is_ok());
    }

    #[test]
    fn broker_default_applies_below_topic_override() {
        let mut d = TopicDefaults::default();
        d.set("message.timestamp.type", "LogAppendTime").unwrap();
        let c = TopicConfig::new(BTreeMap::new(), &d).unwrap();
        assert_eq!(c.timestamp_type, TimestampType::LogAppendTime);
        let c =
            TopicConfig::new(overrides(&[("message.timestamp.type", "CreateTime")]), &d).unwrap();
        assert_eq!(c.timestamp_type, TimestampType::CreateTime);
    }
}
