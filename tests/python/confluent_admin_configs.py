"""Topic configs and partitions through confluent-kafka's AdminClient (librdkafka):
describe (with sources and synonyms), incremental alter (SET, DELETE, APPEND,
SUBTRACT), legacy alter, invalid values, create partitions with Kafka's errors, and the
broker resource. Exits non-zero on the first mismatch."""

import sys
import uuid

from confluent_kafka import KafkaException, KafkaError
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ConfigSource,
    NewPartitions,
    NewTopic,
    ResourceType,
)

bootstrap = sys.argv[1]
admin = AdminClient({"bootstrap.servers": bootstrap})
topic = f"cfg-{uuid.uuid4().hex[:8]}"


def check(cond, what):
    if not cond:
        print(f"FAIL: {what}", file=sys.stderr)
        sys.exit(1)
    print(f"ok: {what}")


def wait(futures):
    return {k: f.result(timeout=30) for k, f in futures.items()}


def describe(name):
    res = ConfigResource(ResourceType.TOPIC, name)
    return wait(admin.describe_configs([res]))[res]


def kafka_error(fn):
    try:
        fn()
    except KafkaException as e:
        return e.args[0]
    return None


wait(admin.create_topics([NewTopic(topic, 2, 1, config={"retention.ms": "3600000"})]))
configs = describe(topic)
check(configs["retention.ms"].value == "3600000", "override from CreateTopics")
check(configs["retention.ms"].source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value, "override source is topic")
check(configs["cleanup.policy"].value == "delete", "default cleanup.policy")
check(configs["cleanup.policy"].source == ConfigSource.DEFAULT_CONFIG.value, "default source")
check(configs["max.message.bytes"].value == "1048588", "default max.message.bytes")
for name in ["segment.bytes", "segment.ms", "retention.bytes", "min.cleanable.dirty.ratio",
             "delete.retention.ms", "min.compaction.lag.ms", "flush.messages", "flush.ms",
             "compression.type", "message.timestamp.type"]:
    check(name in configs, f"{name} is described")

res = ConfigResource(ResourceType.TOPIC, topic, incremental_configs=[
    ConfigEntry("retention.bytes", "1048576", incremental_operation=AlterConfigOpType.SET),
    ConfigEntry("retention.ms", None, incremental_operation=AlterConfigOpType.DELETE),
    ConfigEntry("cleanup.policy", "compact", incremental_operation=AlterConfigOpType.APPEND),
])
wait(admin.incremental_alter_configs([res]))
configs = describe(topic)
check(configs["retention.bytes"].value == "1048576", "SET retention.bytes")
check(configs["retention.ms"].value == "604800000", "DELETE restores the default retention.ms")
check(configs["retention.ms"].source == ConfigSource.DEFAULT_CONFIG.value, "DELETE restores the default source")
check(configs["cleanup.policy"].value == "delete,compact", "APPEND to cleanup.policy")

res = ConfigResource(ResourceType.TOPIC, topic, incremental_configs=[
    ConfigEntry("cleanup.policy", "delete", incremental_operation=AlterConfigOpType.SUBTRACT),
])
wait(admin.incremental_alter_configs([res]))
check(describe(topic)["cleanup.policy"].value == "compact", "SUBTRACT from cleanup.policy")

bad = ConfigResource(ResourceType.TOPIC, topic, incremental_configs=[
    ConfigEntry("retention.ms", "soon", incremental_operation=AlterConfigOpType.SET),
])
err = kafka_error(lambda: wait(admin.incremental_alter_configs([bad])))
check(err is not None and err.code() == KafkaError.INVALID_CONFIG, f"invalid value refused: {err}")
check(err is not None and "retention.ms" in err.str(), "the error names the key")
unknown = ConfigResource(ResourceType.TOPIC, topic, incremental_configs=[
    ConfigEntry("retention.msx", "1", incremental_operation=AlterConfigOpType.SET),
])
err = kafka_error(lambda: wait(admin.incremental_alter_configs([unknown])))
check(err is not None and err.code() == KafkaError.INVALID_CONFIG and "retention.msx" in err.str(),
      f"unknown key refused: {err}")
append_bad = ConfigResource(ResourceType.TOPIC, topic, incremental_configs=[
    ConfigEntry("retention.ms", "1", incremental_operation=AlterConfigOpType.APPEND),
])
err = kafka_error(lambda: wait(admin.incremental_alter_configs([append_bad])))
check(err is not None and err.code() == KafkaError.INVALID_CONFIG, f"APPEND on a non-list refused: {err}")

# Legacy AlterConfigs replaces every override.
wait(admin.alter_configs([ConfigResource(ResourceType.TOPIC, topic, set_config={"segment.ms": "60000"})]))
configs = describe(topic)
check(configs["segment.ms"].value == "60000", "AlterConfigs sets segment.ms")
check(configs["cleanup.policy"].value == "delete", "AlterConfigs dropped the other overrides")

missing = ConfigResource(ResourceType.TOPIC, "no-such-topic-" + topic)
err = kafka_error(lambda: wait(admin.describe_configs([missing])))
check(err is not None and err.code() == KafkaError.UNKNOWN_TOPIC_OR_PART, f"unknown topic: {err}")

broker = ConfigResource(ResourceType.BROKER, "1")
broker_configs = wait(admin.describe_configs([broker]))[broker]
check(broker_configs["log.retention.ms"].value == "604800000", "broker log.retention.ms")
check(broker_configs["num.partitions"].value == "1", "broker num.partitions")

# CreatePartitions: grow, then Kafka's errors for equal and smaller counts.
wait(admin.create_partitions([NewPartitions(topic, 4)]))
md = admin.list_topics(topic, timeout=10)
check(len(md.topics[topic].partitions) == 4, "grew to 4 partitions")
err = kafka_error(lambda: wait(admin.create_partitions([NewPartitions(topic, 4)])))
check(err is not None and err.code() == KafkaError.INVALID_PARTITIONS, f"same count refused: {err}")
err = kafka_error(lambda: wait(admin.create_partitions([NewPartitions(topic, 2)])))
check(err is not None and err.code() == KafkaError.INVALID_PARTITIONS, f"shrink refused: {err}")
err = kafka_error(lambda: wait(admin.create_partitions([NewPartitions("no-such-" + topic, 3)])))
check(err is not None and err.code() == KafkaError.UNKNOWN_TOPIC_OR_PART, f"unknown topic: {err}")
print("all checks passed")
