//! Durable committed offsets: what `__consumer_offsets` holds once every append so far has
//! been applied in order. OffsetFetch reads only this, so a commit becomes visible when its
//! batch is durable, never before.

use std::collections::BTreeMap;

use crate::record::OffsetCommitValue;

/// Offsets by group, then by (topic, partition) so listings come out sorted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct OffsetStore {
    by_group: BTreeMap<String, BTreeMap<(String, i32), OffsetCommitValue>>,
}

impl OffsetStore {
    pub(crate) fn get(
        &self,
        group: &str,
        topic: &str,
        partition: i32,
    ) -> Option<&OffsetCommitValue> {
        self.by_group
            .get(group)?
            .get(&(topic.to_string(), partition))
    }

    pub(crate) fn put(
        &mut self,
        group: &str,
        topic: &str,
        partition: i32,
        value: OffsetCommitValue,
    ) {
        self.by_group
            .entry(group.to_string())
            .or_default()
            .insert((topic.to_string(), partition), value);
    }

    pub(crate) fn remove(&mut self, group: &str, topic: &str, partition: i32) {
        if let Some(offsets) = self.by_group.get_mut(group) {
            offsets.remove(&(topic.to_string(), partition));
            if offsets.is_empty() {
                self.by_group.remove(group);
            }
        }
    }

    /// The group's offsets in (topic, partition) order.
    pub(crate) fn of_group(
        &self,
        group: &str,
    ) -> impl Iterator<Item = (&str, i32, &OffsetCommitValue)> {
        self.by_group
            .get(group)
            .into_iter()
            .flatten()
            .map(|((topic, partition), value)| (topic.as_str(), *partition, value))
    }

    pub(crate) fn has_group(&self, group: &str) -> bool {
        self.by_group.contains_key(group)
    }

    pub(crate) fn groups(&self) -> impl Iterator<Item = &str> {
        self.by_group.keys().map(String::as_str)
    }

    pub(crate) fn len(&self) -> usize {
        self.by_group.values().map(BTreeMap::len).sum()
    }
}
