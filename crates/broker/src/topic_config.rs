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
    /// A floating point number within `min..=max`.
    Double { min: f64, max: f64 },
    /// One of a fixed list of strings.
    Choice(&'static [&'static str]),
    /// A comma-separated list whose items are from a fixed list.
    List(&'static [&'static str]),
}

/// Kafka's ConfigType codes, as DescribeConfigs v3+ reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigType {
    /// STRING (2).
    String,
    /// INT (3).
    Int,
    /// LONG (5).
    Long,
    /// DOUBLE (6).
    Double,
    /// LIST (7).
    List,
}

impl ConfigType {
    /// The wire code.
    pub fn code(self) -> i8 {
        match self {
            Self::String => 2,
            Self::Int => 3,
            Self::Long => 5,
            Self::Double => 6,
            Self::List => 7,
        }
    }
}

impl Kind {
    fn config_type(self) -> ConfigType {
        match self {
            Kind::Long { .. } => ConfigType::Long,
            Kind::Int { .. } => ConfigType::Int,
            Kind::Double { .. } => ConfigType::Double,
            Kind::Choice(_) => ConfigType::String,
            Kind::List(_) => ConfigType::List,
        }
    }
}

/// One row of the table: topic name, the broker-level name that sets its default
/// (Kafka's synonym), Kafka's default, validation, documentation.
struct Definition {
    name: &'static str,
    broker_name: &'static str,
    default: &'static str,
    kind: Kind,
    doc: &'static str,
}

const LONG_MAX: &str = "9223372036854775807";

const DEFINITIONS: &[Definition] = &[
    Definition {
        name: "cleanup.policy",
        broker_name: "log.cleanup.policy",
        default: "delete",
        kind: Kind::List(&["delete", "compact"]),
        doc: "delete: drop old segments by retention; compact: keep the latest record per key.",
    },
    Definition {
        name: "compression.type",
        broker_name: "compression.type",
        default: "producer",
        kind: Kind::Choice(&["producer", "uncompressed", "gzip", "snappy", "lz4", "zstd"]),
        doc: "Codec the broker stores batches in; producer keeps what came.",
    },
    Definition {
        name: "delete.retention.ms",
        broker_name: "log.cleaner.delete.retention.ms",
        default: "86400000",
        kind: Kind::Long { min: 0 },
        doc: "How long tombstones are kept in a compacted topic.",
    },
    Definition {
        name: "flush.messages",
        broker_name: "log.flush.interval.messages",
        default: LONG_MAX,
        kind: Kind::Long { min: 1 },
        doc: "Fsync the log after this many messages.",
    },
    Definition {
        name: "flush.ms",
        broker_name: "log.flush.interval.ms",
        default: LONG_MAX,
        kind: Kind::Long { min: 0 },
        doc: "Fsync the log when data is this old.",
    },
    Definition {
        name: "index.interval.bytes",
        broker_name: "log.index.interval.bytes",
        default: "4096",
        kind: Kind::Int { min: 0 },
        doc: "Bytes between two offset index entries.",
    },
    Definition {
        name: "max.compaction.lag.ms",
        broker_name: "log.cleaner.max.compaction.lag.ms",
        default: LONG_MAX,
        kind: Kind::Long { min: 1 },
        doc: "Longest a record stays uncompacted.",
    },
    Definition {
        name: "max.message.bytes",
        broker_name: "message.max.bytes",
        default: "1048588",
        kind: Kind::Int { min: 0 },
        doc: "Largest record batch accepted.",
    },
    Definition {
        name: "message.timestamp.after.max.ms",
        broker_name: "log.message.timestamp.after.max.ms",
        default: "3600000",
        kind: Kind::Long { min: 0 },
        doc: "How far in the future a CreateTime timestamp may be.",
    },
    Definition {
        name: "message.timestamp.before.max.ms",
        broker_name: "log.message.timestamp.before.max.ms",
        default: LONG_MAX,
        kind: Kind::Long { min: 0 },
        doc: "How far in the past a CreateTime timestamp may be.",
    },
    Definition {
        name: "message.timestamp.type",
        broker_name: "log.message.timestamp.type",
        default: "CreateTime",
        kind: Kind::Choice(&["CreateTime", "LogAppendTime"]),
        doc: "Whose clock stamps records.",
    },
    Definition {
        name: "min.cleanable.dirty.ratio",
        broker_name: "log.cleaner.min.cleanable.ratio",
        default: "0.5",
        kind: Kind::Double { min: 0.0, max: 1.0 },
        doc: "Share of the log that must be uncompacted before cleaning.",
    },
    Definition {
        name: "min.compaction.lag.ms",
        broker_name: "log.cleaner.min.compaction.lag.ms",
        default: "0",
        kind: Kind::Long { min: 0 },
        doc: "Shortest time a record stays uncompacted.",
    },
    Definition {
        name: "retention.bytes",
        broker_name: "log.retention.bytes",
        default: "-1",
        kind: Kind::Long { min: -1 },
        doc: "Size a partition is trimmed to by deleting old segments; -1 for no limit.",
    },
    Definition {
        name: "retention.ms",
        broker_name: "log.retention.ms",
        default: "604800000",
        kind: Kind::Long { min: -1 },
        doc: "Age after which segments are deleted; -1 for no limit.",
    },
    Definition {
        name: "segment.bytes",
        broker_name: "log.segment.bytes",
        default: "1073741824",
        kind: Kind::Int { min: 1024 * 1024 },
        doc: "Size at which a segment is rolled.",
    },
    Definition {
        name: "segment.index.bytes",
        broker_name: "log.index.size.max.bytes",
        default: "10485760",
        kind: Kind::Int { min: 4 },
        doc: "Largest size of a segment's offset index.",
    },
    Definition {
        name: "segment.ms",
        broker_name: "log.roll.ms",
        default: "604800000",
        kind: Kind::Long { min: 1 },
        doc: "Age at which a segment is rolled.",
    },
    Definition {
        name: "write.caching",
        broker_name: "write_caching_default",
        default: "false",
        kind: Kind::Choice(&["true", "false"]),
        doc: "Redpanda's switch: when true, acks=all is answered before the fsync.",
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
        Kind::Double { min, max } => match value.trim().parse::<f64>() {
            Ok(v) if (min..=max).contains(&v) => Ok(()),
            Ok(_) => Err(invalid(format!("Value must be between {min} and {max}"))),
            Err(_) => Err(invalid("Not a number of type DOUBLE".to_owned())),
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
/// gets for a key it does not override. Two layers: the node config file's (static) and
/// the cluster-wide ones set at run time with IncrementalAlterConfigs on the broker
/// resource (dynamic, which win). Clones share the dynamic layer, so a change reaches
/// every holder of the node config at once.
#[derive(Debug, Clone, Default)]
pub struct TopicDefaults {
    overrides: BTreeMap<String, String>,
    dynamic: std::sync::Arc<std::sync::RwLock<BTreeMap<String, String>>>,
}

impl PartialEq for TopicDefaults {
    fn eq(&self, other: &Self) -> bool {
        self.overrides == other.overrides && self.dynamic_snapshot() == other.dynamic_snapshot()
    }
}

impl Eq for TopicDefaults {}

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

    fn get(&self, name: &str) -> Option<String> {
        self.dynamic_get(name)
            .or_else(|| self.overrides.get(name).cloned())
    }

    fn dynamic_get(&self, name: &str) -> Option<String> {
        // A poisoned lock still holds a consistent map (writers only insert/remove).
        let map = self.dynamic.read().unwrap_or_else(|e| e.into_inner());
        map.get(name).cloned()
    }

    /// The topic config name behind a broker config name (`log.retention.ms` ->
    /// `retention.ms`), when it is a topic default.
    pub fn topic_name_of(broker_name: &str) -> Option<&'static str> {
        DEFINITIONS
            .iter()
            .find(|d| d.broker_name == broker_name)
            .map(|d| d.name)
    }

    /// The dynamic cluster-wide defaults, by topic config name (what is persisted).
    pub fn dynamic_snapshot(&self) -> BTreeMap<String, String> {
        self.dynamic
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Replaces the dynamic defaults (keys are topic config names), validating each.
    ///
    /// # Errors
    /// [`TopicConfigError`] naming the first bad key; nothing changes then.
    pub fn replace_dynamic(
        &self,
        values: BTreeMap<String, String>,
    ) -> Result<(), TopicConfigError> {
        for (name, value) in &values {
            validate_config(name, value)?;
        }
        *self.dynamic.write().unwrap_or_else(|e| e.into_inner()) = values;
        Ok(())
    }
}

/// A topic's configs: the overrides it was created with, resolved against the broker
/// defaults into typed values.
#[derive(Debug, Clone, PartialEq)]
pub struct TopicConfig {
    overrides: BTreeMap<String, String>,
    /// `cleanup.policy` contains `delete`.
    pub cleanup_delete: bool,
    /// `cleanup.policy` contains `compact`.
    pub cleanup_compact: bool,
    /// `compression.type`; `None` for `producer` (keep what came).
    pub compression_type: Option<String>,
    /// `delete.retention.ms`.
    pub delete_retention_ms: i64,
    /// `flush.messages`.
    pub flush_messages: i64,
    /// `flush.ms`.
    pub flush_ms: i64,
    /// `max.message.bytes`.
    pub max_message_bytes: usize,
    /// `message.timestamp.type`.
    pub timestamp_type: TimestampType,
    /// `message.timestamp.before.max.ms`.
    pub timestamp_before_max_ms: i64,
    /// `message.timestamp.after.max.ms`.
    pub timestamp_after_max_ms: i64,
    /// `min.cleanable.dirty.ratio`.
    pub min_cleanable_dirty_ratio: f64,
    /// `min.compaction.lag.ms`.
    pub min_compaction_lag_ms: i64,
    /// `retention.bytes` (-1: no limit).
    pub retention_bytes: i64,
    /// `retention.ms` (-1: no limit).
    pub retention_ms: i64,
    /// `segment.bytes`.
    pub segment_bytes: u64,
    /// `segment.ms`.
    pub segment_ms: i64,
    /// `segment.index.bytes`.
    pub segment_index_bytes: u32,
    /// `index.interval.bytes`.
    pub index_interval_bytes: u32,
    /// `write.caching` (Redpanda): acknowledge acks=all before the fsync.
    pub write_caching: bool,
}

/// Where a config's effective value comes from, as DescribeConfigs reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigSource {
    /// Set on the topic (TOPIC_CONFIG, 1).
    Topic,
    /// A cluster-wide default set at run time (DYNAMIC_DEFAULT_BROKER_CONFIG, 3).
    DynamicDefaultBroker,
    /// A broker-level default from the node config (STATIC_BROKER_CONFIG, 4).
    Broker,
    /// Kafka's default (DEFAULT_CONFIG, 5).
    Default,
}

impl ConfigSource {
    /// The wire code.
    pub fn code(self) -> i8 {
        match self {
            Self::Topic => 1,
            Self::DynamicDefaultBroker => 3,
            Self::Broker => 4,
            Self::Default => 5,
        }
    }
}

/// One config as DescribeConfigs reports it: effective value, source, and the chain of
/// values it was resolved from (Kafka's synonyms), most specific first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DescribedConfig {
    /// Topic config name.
    pub name: &'static str,
    /// Effective value.
    pub value: String,
    /// Where it comes from.
    pub source: ConfigSource,
    /// Kafka's config type.
    pub config_type: ConfigType,
    /// One line of documentation.
    pub doc: &'static str,
    /// (name, value, source) of every level that sets it.
    pub synonyms: Vec<(&'static str, String, ConfigSource)>,
}

/// Whether `name` is a list config (APPEND and SUBTRACT apply to it).
pub fn is_list_config(name: &str) -> bool {
    definition(name).is_some_and(|d| matches!(d.kind, Kind::List(_)))
}

/// Checks one config name and value against the table.
///
/// # Errors
/// [`TopicConfigError`] for an unknown name or invalid value.
pub fn validate_config(name: &str, value: &str) -> Result<(), TopicConfigError> {
    let def = definition(name).ok_or_else(|| TopicConfigError::UnknownName {
        name: name.to_owned(),
    })?;
    check_value(def, value)
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
            validate_config(name, value)?;
        }
        let effective = |name: &str| -> String {
            overrides
                .get(name)
                .cloned()
                .or_else(|| defaults.get(name))
                .or_else(|| definition(name).map(|d| d.default.to_owned()))
                .unwrap_or_default()
        };
        // Values were validated above (or are the table's defaults), so parsing succeeds;
        // the fallbacks only guard against a table typo.
        let long = |name: &str| effective(name).trim().parse::<i64>().unwrap_or(0);
        let policy_text = effective("cleanup.policy");
        let policy: Vec<&str> = policy_text.split(',').map(str::trim).collect();
        let compression = effective("compression.type");
        Ok(Self {
            cleanup_delete: policy.contains(&"delete"),
            cleanup_compact: policy.contains(&"compact"),
            compression_type: (compression != "producer").then(|| compression.to_owned()),
            delete_retention_ms: long("delete.retention.ms"),
            flush_messages: long("flush.messages"),
            flush_ms: long("flush.ms"),
            max_message_bytes: usize::try_from(long("max.message.bytes")).unwrap_or(1_048_588),
            timestamp_type: if effective("message.timestamp.type") == "LogAppendTime" {
                TimestampType::LogAppendTime
            } else {
                TimestampType::CreateTime
            },
            timestamp_before_max_ms: long("message.timestamp.before.max.ms"),
            timestamp_after_max_ms: long("message.timestamp.after.max.ms"),
            min_cleanable_dirty_ratio: effective("min.cleanable.dirty.ratio")
                .trim()
                .parse()
                .unwrap_or(0.5),
            min_compaction_lag_ms: long("min.compaction.lag.ms"),
            retention_bytes: long("retention.bytes"),
            retention_ms: long("retention.ms"),
            segment_bytes: u64::try_from(long("segment.bytes")).unwrap_or(1 << 30),
            segment_ms: long("segment.ms"),
            segment_index_bytes: u32::try_from(long("segment.index.bytes")).unwrap_or(10 << 20),
            index_interval_bytes: u32::try_from(long("index.interval.bytes")).unwrap_or(4096),
            write_caching: effective("write.caching") == "true",
            overrides,
        })
    }

    /// The overrides set on this topic (what is persisted).
    pub fn overrides(&self) -> &BTreeMap<String, String> {
        &self.overrides
    }

    /// Every known config with its effective value and source, in name order.
    pub fn describe(&self, defaults: &TopicDefaults) -> Vec<DescribedConfig> {
        DEFINITIONS
            .iter()
            .map(|d| {
                let mut synonyms = Vec::with_capacity(3);
                if let Some(v) = self.overrides.get(d.name) {
                    synonyms.push((d.name, v.clone(), ConfigSource::Topic));
                }
                if let Some(v) = defaults.dynamic_get(d.name) {
                    synonyms.push((d.broker_name, v, ConfigSource::DynamicDefaultBroker));
                }
                if let Some(v) = defaults.overrides.get(d.name) {
                    synonyms.push((d.broker_name, v.clone(), ConfigSource::Broker));
                }
                synonyms.push((d.broker_name, d.default.to_owned(), ConfigSource::Default));
                let (value, source) = synonyms
                    .first()
                    .map(|(_, v, s)| (v.clone(), *s))
                    .unwrap_or_else(|| (d.default.to_owned(), ConfigSource::Default));
                DescribedConfig {
                    name: d.name,
                    value,
                    source,
                    config_type: d.kind.config_type(),
                    doc: d.doc,
                    synonyms,
                }
            })
            .collect()
    }
}

impl TopicDefaults {
    /// Broker-level configs (Kafka's `log.*` names) with their effective values and
    /// sources, for DescribeConfigs on a broker resource.
    pub fn describe_broker(&self) -> Vec<DescribedConfig> {
        DEFINITIONS
            .iter()
            .map(|d| {
                let (value, source) = match (self.dynamic_get(d.name), self.overrides.get(d.name)) {
                    (Some(v), _) => (v, ConfigSource::DynamicDefaultBroker),
                    (None, Some(v)) => (v.clone(), ConfigSource::Broker),
                    (None, None) => (d.default.to_owned(), ConfigSource::Default),
                };
                DescribedConfig {
                    name: d.broker_name,
                    value: value.clone(),
                    source,
                    config_type: d.kind.config_type(),
                    doc: d.doc,
                    synonyms: vec![(d.broker_name, value, source)],
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

    #[test]
    fn dynamic_defaults_win_over_static_ones_and_are_shared_by_clones() {
        let mut d = TopicDefaults::default();
        d.set("retention.ms", "1000").unwrap();
        let shared = d.clone();
        d.replace_dynamic(overrides(&[("retention.ms", "2000")]))
            .unwrap();
        let c = TopicConfig::new(BTreeMap::new(), &shared).unwrap();
        assert_eq!(c.retention_ms, 2000);
        let described = c.describe(&shared);
        let retention = described.iter().find(|c| c.name == "retention.ms").unwrap();
        assert_eq!(retention.source, ConfigSource::DynamicDefaultBroker);
        assert_eq!(retention.synonyms.len(), 3, "dynamic, static, default");
        let broker = shared.describe_broker();
        let log_retention = broker
            .iter()
            .find(|c| c.name == "log.retention.ms")
            .unwrap();
        assert_eq!(log_retention.value, "2000");
        assert_eq!(log_retention.source.code(), 3);
        // A topic override still wins; a bad value changes nothing.
        let c = TopicConfig::new(overrides(&[("retention.ms", "5")]), &shared).unwrap();
        assert_eq!(c.retention_ms, 5);
        assert!(
            d.replace_dynamic(overrides(&[("retention.ms", "x")]))
                .is_err()
        );
        assert_eq!(
            shared.dynamic_snapshot(),
            overrides(&[("retention.ms", "2000")])
        );
        assert_eq!(
            TopicDefaults::topic_name_of("log.retention.ms"),
            Some("retention.ms")
        );
        assert_eq!(TopicDefaults::topic_name_of("node.id"), None);
    }
}
