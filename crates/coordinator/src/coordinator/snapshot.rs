//! Read-only views of the coordinator's durable state for monitoring (the broker's
//! group lag metric). Nothing here changes state or emits effects.

use super::GroupCoordinator;

impl GroupCoordinator {
    /// Every durable committed offset as `(group, topic, partition, offset)`, in group,
    /// then topic and partition order.
    pub fn committed_offsets(&self) -> Vec<(String, String, i32, i64)> {
        self.offsets
            .groups()
            .flat_map(|group| {
                self.offsets
                    .of_group(group)
                    .map(move |(topic, partition, value)| {
                        (group.to_owned(), topic.to_owned(), partition, value.offset)
                    })
            })
            .collect()
    }
}
