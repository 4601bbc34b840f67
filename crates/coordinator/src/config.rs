//! Coordinator settings, named after the Kafka broker configs they mirror.

use std::time::Duration;

/// Settings of a [`GroupCoordinator`](crate::GroupCoordinator). `Default` follows Kafka 4.x.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupConfig {
    /// `group.min.session.timeout.ms` (6 s): JoinGroup with a shorter session timeout gets
    /// INVALID_SESSION_TIMEOUT.
    pub min_session_timeout: Duration,
    /// `group.max.session.timeout.ms` (30 min).
    pub max_session_timeout: Duration,
    /// `group.initial.rebalance.delay.ms` (3 s): how long the first rebalance of an empty
    /// group waits for more members, extended by that much (up to the rebalance timeout)
    /// each time another member arrives.
    pub initial_rebalance_delay: Duration,
    /// How long a new member's parked JoinGroup may wait before the member is dropped
    /// (Kafka's `classicGroupNewMemberJoinTimeoutMs`, 5 min).
    pub new_member_join_timeout: Duration,
    /// `group.max.size` (unbounded in Kafka, i.e. `i32::MAX`).
    pub max_group_size: u32,
    /// `offset.metadata.max.bytes` (4096). Like Kafka, this bounds the metadata string's
    /// length in UTF-16 code units (Java `String.length()`), not its UTF-8 size.
    pub offset_metadata_max_bytes: usize,
    /// `offsets.retention.minutes` (7 days).
    pub offsets_retention: Duration,
    /// `offsets.retention.check.interval.ms` (10 min): how often expired offsets and dead
    /// groups are cleaned up.
    pub offsets_retention_check_interval: Duration,
    /// Seed of the generator of member ids (`{client_id}-{uuid}`). Ids are a function of
    /// this seed and a counter, so tests are reproducible; give each coordinator instance a
    /// different seed (e.g. random at node start, mixed with the partition and leader
    /// epoch), or a reloaded coordinator could hand out an id again.
    pub member_id_seed: u64,
    /// `group.consumer.session.timeout.ms` (45 s): a consumer-protocol member that does not
    /// heartbeat for this long is removed.
    pub consumer_session_timeout: Duration,
    /// `group.consumer.heartbeat.interval.ms` (5 s): how often consumer-protocol members
    /// heartbeat (sent to them in every response).
    pub consumer_heartbeat_interval: Duration,
    /// `group.consumer.max.size` (unbounded in Kafka, i.e. `i32::MAX`).
    pub consumer_max_group_size: u32,
}

impl Default for GroupConfig {
    fn default() -> Self {
        Self {
            min_session_timeout: Duration::from_millis(6_000),
            max_session_timeout: Duration::from_millis(1_800_000),
            initial_rebalance_delay: Duration::from_millis(3_000),
            new_member_join_timeout: Duration::from_millis(300_000),
            max_group_size: i32::MAX.unsigned_abs(),
            offset_metadata_max_bytes: 4096,
            offsets_retention: Duration::from_secs(10_080 * 60),
            offsets_retention_check_interval: Duration::from_millis(600_000),
            member_id_seed: 0,
            consumer_session_timeout: Duration::from_millis(45_000),
            consumer_heartbeat_interval: Duration::from_millis(5_000),
            consumer_max_group_size: i32::MAX.unsigned_abs(),
        }
    }
}

/// The settings in the integer milliseconds the state machine computes with.
#[derive(Clone, Debug)]
pub(crate) struct Limits {
    pub(crate) min_session_timeout_ms: i64,
    pub(crate) max_session_timeout_ms: i64,
    pub(crate) initial_rebalance_delay_ms: i64,
    pub(crate) new_member_join_timeout_ms: i64,
    pub(crate) max_group_size: usize,
    pub(crate) offset_metadata_max_chars: usize,
    pub(crate) offsets_retention_ms: i64,
    pub(crate) offsets_retention_check_interval_ms: i64,
    pub(crate) consumer_session_timeout_ms: i64,
    pub(crate) consumer_heartbeat_interval_ms: i32,
    pub(crate) consumer_max_group_size: usize,
}

impl GroupConfig {
    /// Checks that the settings make sense together.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming the offending setting.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.limits().map(|_| ())
    }

    pub(crate) fn limits(&self) -> Result<Limits, ConfigError> {
        // Timeouts that Kafka keeps in an int of milliseconds must fit one.
        let int_ms = |setting: &'static str, value: Duration| -> Result<i64, ConfigError> {
            i32::try_from(value.as_millis())
                .map(i64::from)
                .map_err(|_| ConfigError::TooLarge { setting })
        };
        let long_ms = |setting: &'static str, value: Duration| -> Result<i64, ConfigError> {
            i64::try_from(value.as_millis()).map_err(|_| ConfigError::TooLarge { setting })
        };
        let limits = Limits {
            min_session_timeout_ms: int_ms(
                "group.min.session.timeout.ms",
                self.min_session_timeout,
            )?,
            max_session_timeout_ms: int_ms(
                "group.max.session.timeout.ms",
                self.max_session_timeout,
            )?,
            initial_rebalance_delay_ms: int_ms(
                "group.initial.rebalance.delay.ms",
                self.initial_rebalance_delay,
            )?,
            new_member_join_timeout_ms: int_ms(
                "new member join timeout",
                self.new_member_join_timeout,
            )?,
            max_group_size: usize::try_from(self.max_group_size).map_err(|_| {
                ConfigError::TooLarge {
                    setting: "group.max.size",
                }
            })?,
            offset_metadata_max_chars: self.offset_metadata_max_bytes,
            offsets_retention_ms: long_ms("offsets.retention.minutes", self.offsets_retention)?,
            offsets_retention_check_interval_ms: long_ms(
                "offsets.retention.check.interval.ms",
                self.offsets_retention_check_interval,
            )?,
            consumer_session_timeout_ms: int_ms(
                "group.consumer.session.timeout.ms",
                self.consumer_session_timeout,
            )?,
            consumer_heartbeat_interval_ms: i32::try_from(
                self.consumer_heartbeat_interval.as_millis(),
            )
            .map_err(|_| ConfigError::TooLarge {
                setting: "group.consumer.heartbeat.interval.ms",
            })?,
            consumer_max_group_size: usize::try_from(self.consumer_max_group_size).map_err(
                |_| ConfigError::TooLarge {
                    setting: "group.consumer.max.size",
                },
            )?,
        };
        if limits.min_session_timeout_ms > limits.max_session_timeout_ms {
            return Err(ConfigError::SessionTimeoutBounds {
                min: self.min_session_timeout,
                max: self.max_session_timeout,
            });
        }
        if limits.max_group_size == 0 {
            return Err(ConfigError::Zero {
                setting: "group.max.size",
            });
        }
        // Kafka requires the heartbeat interval to be below the session timeout, or
        // members would expire between heartbeats.
        if i64::from(limits.consumer_heartbeat_interval_ms) >= limits.consumer_session_timeout_ms {
            return Err(ConfigError::HeartbeatIntervalNotBelowSessionTimeout {
                heartbeat_interval: self.consumer_heartbeat_interval,
                session_timeout: self.consumer_session_timeout,
            });
        }
        for (setting, value) in [
            (
                "group.consumer.heartbeat.interval.ms",
                i64::from(limits.consumer_heartbeat_interval_ms),
            ),
            (
                "group.consumer.max.size",
                i64::try_from(limits.consumer_max_group_size).unwrap_or(i64::MAX),
            ),
        ] {
            if value == 0 {
                return Err(ConfigError::Zero { setting });
            }
        }
        if limits.offsets_retention_check_interval_ms == 0 {
            return Err(ConfigError::Zero {
                setting: "offsets.retention.check.interval.ms",
            });
        }
        Ok(limits)
    }
}

/// A [`GroupConfig`] that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The minimum session timeout exceeds the maximum.
    #[error(
        "group.min.session.timeout.ms ({min:?}) exceeds group.max.session.timeout.ms ({max:?})"
    )]
    SessionTimeoutBounds {
        /// The minimum given.
        min: Duration,
        /// The maximum given.
        max: Duration,
    },
    /// A duration does not fit the integer Kafka keeps it in.
    #[error("{setting} is too large")]
    TooLarge {
        /// The setting.
        setting: &'static str,
    },
    /// `group.consumer.heartbeat.interval.ms` is not below
    /// `group.consumer.session.timeout.ms`.
    #[error(
        "group.consumer.heartbeat.interval.ms ({heartbeat_interval:?}) must be below group.consumer.session.timeout.ms ({session_timeout:?})"
    )]
    HeartbeatIntervalNotBelowSessionTimeout {
        /// The heartbeat interval given.
        heartbeat_interval: Duration,
        /// The session timeout given.
        session_timeout: Duration,
    },
    /// A setting that must be positive is zero.
    #[error("{setting} must be positive")]
    Zero {
        /// The setting.
        setting: &'static str,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_match_kafka() {
        let limits = GroupConfig::default().limits().unwrap();
        assert_eq!(limits.min_session_timeout_ms, 6_000);
        assert_eq!(limits.max_session_timeout_ms, 1_800_000);
        assert_eq!(limits.initial_rebalance_delay_ms, 3_000);
        assert_eq!(limits.offsets_retention_ms, 7 * 24 * 3_600_000);
        assert_eq!(limits.offsets_retention_check_interval_ms, 600_000);
        assert_eq!(limits.offset_metadata_max_chars, 4096);
        assert_eq!(limits.consumer_session_timeout_ms, 45_000);
        assert_eq!(limits.consumer_heartbeat_interval_ms, 5_000);
    }

    #[test]
    fn inverted_session_bounds_are_rejected() {
        let config = GroupConfig {
            min_session_timeout: Duration::from_secs(10),
            max_session_timeout: Duration::from_secs(5),
            ..GroupConfig::default()
        };
        assert!(matches!(
            config.validate(),
            Err(ConfigError::SessionTimeoutBounds { .. })
        ));
    }

    #[test]
    fn session_timeout_beyond_an_int_is_rejected() {
        let config = GroupConfig {
            max_session_timeout: Duration::from_secs(u64::from(u32::MAX)),
            ..GroupConfig::default()
        };
        assert!(matches!(
            config.validate(),
            Err(ConfigError::TooLarge { .. })
        ));
    }
}
