//! What the coordinator knows of the cluster's topics: the broker hands it a snapshot of
//! its catalog with each consumer group request, since server-side assignment needs topic
//! ids and partition counts (Kafka's coordinator reads its metadata image instead).

use std::collections::BTreeMap;

use uuid::Uuid;

/// One topic: its id, name and partition count.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicInfo {
    /// Topic id.
    pub id: Uuid,
    /// Topic name.
    pub name: String,
    /// Number of partitions.
    pub partitions: i32,
}

/// A snapshot of the topics of the cluster.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TopicsImage {
    by_name: BTreeMap<String, TopicInfo>,
    name_by_id: BTreeMap<Uuid, String>,
}

impl TopicsImage {
    /// A snapshot of these topics.
    pub fn new(topics: impl IntoIterator<Item = TopicInfo>) -> Self {
        let mut image = Self::default();
        for topic in topics {
            image.name_by_id.insert(topic.id, topic.name.clone());
            image.by_name.insert(topic.name.clone(), topic);
        }
        image
    }

    /// The topic named `name`.
    pub fn by_name(&self, name: &str) -> Option<&TopicInfo> {
        self.by_name.get(name)
    }

    /// The topic with id `id`.
    pub fn by_id(&self, id: &Uuid) -> Option<&TopicInfo> {
        self.name_by_id
            .get(id)
            .and_then(|name| self.by_name.get(name))
    }

    /// Every topic, in name order.
    pub fn topics(&self) -> impl Iterator<Item = &TopicInfo> {
        self.by_name.values()
    }
}
