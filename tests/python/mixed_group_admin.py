#!/usr/bin/env python3
"""Consumer groups across client libraries, and the group admin API, against Sluice.

Usage: mixed_group_admin.py BOOTSTRAP

A kafka-python consumer and a confluent-kafka (librdkafka) consumer join one group,
split a 4-partition topic disjointly, read all 400 records between them and commit.
While they are members, the admin API (confluent-kafka) lists and describes the group
(Stable, two members with their assignments) and refuses to delete it. After they
leave: the group is Empty, its committed offsets are listed (100 per partition), an
alter moves one, and the group is deleted. Exits non-zero on any mismatch.
"""

import sys
import time
import uuid

from confluent_kafka import (Consumer, ConsumerGroupTopicPartitions, KafkaException,
                             Producer, TopicPartition)
from confluent_kafka.admin import AdminClient, NewTopic
from kafka import KafkaConsumer
from kafka import TopicPartition as KpTopicPartition
from kafka.structs import OffsetAndMetadata

PARTITIONS = 4
PER_PARTITION = 100
TIMEOUT = 60


def fail(msg):
    print(f"FAIL: {msg}", file=sys.stderr)
    sys.exit(1)


def check(cond, msg):
    if not cond:
        fail(msg)


def state_name(state):
    return getattr(state, "name", str(state)).upper()


def main():
    if len(sys.argv) != 2:
        fail("usage: mixed_group_admin.py BOOTSTRAP")
    bootstrap = sys.argv[1]
    topic = f"mixed-{uuid.uuid4().hex[:10]}"
    group = f"mixed-group-{uuid.uuid4().hex[:10]}"

    admin = AdminClient({"bootstrap.servers": bootstrap})
    for f in admin.create_topics([NewTopic(topic, PARTITIONS, 1)]).values():
        f.result(TIMEOUT)

    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
    for i in range(PARTITIONS * PER_PARTITION):
        producer.produce(topic, value=f"v{i}".encode(), partition=i % PARTITIONS)
    check(producer.flush(TIMEOUT) == 0, "produce did not finish")

    librdkafka = Consumer({
        "bootstrap.servers": bootstrap, "group.id": group, "client.id": "rdkafka-member",
        "auto.offset.reset": "earliest", "enable.auto.commit": False,
        "session.timeout.ms": 10000, "heartbeat.interval.ms": 500,
        "partition.assignment.strategy": "range",
    })
    librdkafka.subscribe([topic])
    python = KafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=group, client_id="python-member",
        auto_offset_reset="earliest", enable_auto_commit=False,
        session_timeout_ms=10000, heartbeat_interval_ms=500,
        request_timeout_ms=30000, consumer_timeout_ms=200)

    seen = {}
    deadline = time.time() + TIMEOUT
    while True:
        msg = librdkafka.poll(0.1)
        if msg is not None and msg.error() is None:
            seen[(msg.partition(), msg.offset())] = "rdkafka"
        for tp, records in python.poll(timeout_ms=100).items():
            for r in records:
                seen[(r.partition, r.offset)] = "python"
        rd_parts = {tp.partition for tp in librdkafka.assignment()}
        py_parts = {tp.partition for tp in python.assignment()}
        split = (rd_parts and py_parts and not (rd_parts & py_parts)
                 and rd_parts | py_parts == set(range(PARTITIONS)))
        if split and len(seen) == PARTITIONS * PER_PARTITION:
            break
        if time.time() > deadline:
            fail(f"group did not settle: rdkafka={rd_parts} python={py_parts} seen={len(seen)}")
    for (p, _), who in seen.items():
        owner = "rdkafka" if p in rd_parts else "python"
        check(who == owner, f"partition {p} read by {who}, assigned to {owner}")

    librdkafka.commit(offsets=[TopicPartition(topic, p, PER_PARTITION) for p in rd_parts],
                      asynchronous=False)
    python.commit({KpTopicPartition(topic, p): OffsetAndMetadata(PER_PARTITION, "", -1)
                   for p in py_parts})

    # While both are members.
    listed = admin.list_consumer_groups(request_timeout=TIMEOUT).result()
    ids = {g.group_id: g for g in listed.valid}
    check(group in ids, f"group missing from list: {sorted(ids)}")
    described = admin.describe_consumer_groups([group])[group].result()
    check(state_name(described.state) == "STABLE", f"state {described.state}")
    members = {m.client_id: m for m in described.members}
    check(set(members) == {"rdkafka-member", "python-member"}, f"members {sorted(members)}")
    got_rd = {tp.partition for tp in members["rdkafka-member"].assignment.topic_partitions}
    check(got_rd == rd_parts, f"described assignment {got_rd} != {rd_parts}")
    try:
        admin.delete_consumer_groups([group])[group].result()
        fail("deleting a group with members succeeded")
    except KafkaException as e:
        check("NON_EMPTY_GROUP" in str(e) or "not empty" in str(e).lower(), f"delete: {e}")

    librdkafka.close()
    python.close()

    deadline = time.time() + TIMEOUT
    while True:
        described = admin.describe_consumer_groups([group])[group].result()
        if state_name(described.state) == "EMPTY":
            break
        if time.time() > deadline:
            fail(f"group not empty after both left: {described.state}")
        time.sleep(0.2)

    request = [ConsumerGroupTopicPartitions(group)]
    offsets = admin.list_consumer_group_offsets(request)[group].result()
    by_partition = {tp.partition: tp.offset for tp in offsets.topic_partitions
                    if tp.topic == topic}
    check(by_partition == {p: PER_PARTITION for p in range(PARTITIONS)},
          f"committed offsets {by_partition}")

    alter = [ConsumerGroupTopicPartitions(group, [TopicPartition(topic, 0, 7)])]
    admin.alter_consumer_group_offsets(alter)[group].result()
    offsets = admin.list_consumer_group_offsets(
        [ConsumerGroupTopicPartitions(group, [TopicPartition(topic, 0)])])[group].result()
    check([tp.offset for tp in offsets.topic_partitions] == [7],
          f"altered offset {offsets.topic_partitions}")

    admin.delete_consumer_groups([group])[group].result()
    listed = admin.list_consumer_groups(request_timeout=TIMEOUT).result()
    check(group not in {g.group_id for g in listed.valid}, "deleted group still listed")
    offsets = admin.list_consumer_group_offsets(request)[group].result()
    check(all(tp.offset < 0 for tp in offsets.topic_partitions),
          f"offsets survive delete: {offsets.topic_partitions}")
    print("OK")


if __name__ == "__main__":
    main()
