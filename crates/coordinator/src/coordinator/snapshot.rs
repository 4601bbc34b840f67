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

#[cfg(all(test, feature = "testing"))]
mod tests {
    use crate::input::GroupRequest;
    use crate::testing::{Harness, commit_request, test_config};

    #[test]
    fn committed_offsets_list_only_durable_commits_in_order() {
        let mut h = Harness::new(test_config());
        let commit = |group: &str, offsets: &[(&str, i32, i64)]| {
            GroupRequest::OffsetCommit(commit_request(group, "", -1, offsets))
        };
        h.send(8, commit("g2", &[("t", 1, 7)]));
        h.send(8, commit("g1", &[("u", 0, 3), ("t", 0, 5)]));
        h.auto_append = false;
        h.send(8, commit("g1", &[("t", 0, 9)]));
        let durable = vec![
            ("g1".to_owned(), "t".to_owned(), 0, 5),
            ("g1".to_owned(), "u".to_owned(), 0, 3),
            ("g2".to_owned(), "t".to_owned(), 1, 7),
        ];
        assert_eq!(h.coordinator.committed_offsets(), durable);
        h.complete_all_appends();
        assert_eq!(
            h.coordinator.committed_offsets().first(),
            Some(&("g1".to_owned(), "t".to_owned(), 0, 9))
        );
    }
}
