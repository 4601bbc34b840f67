#!/usr/bin/env python3
"""confluent-kafka (librdkafka) round trip against a Sluice broker.

Usage: confluent_kafka_roundtrip.py BOOTSTRAP

Creates a topic with AdminClient, produces 1,000 records (acks=all, every delivery
report checked), consumes them with assign() and no group, and checks them.
Exits non-zero on any mismatch.
"""

import sys
import time
import uuid

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition, OFFSET_BEGINNING
from confluent_kafka.admin import AdminClient, NewTopic

N = 1000
PARTITIONS = 2


def fail(msg):
    print(f"FAIL: {msg}", file=sys.stderr)
    sys.exit(1)


def main():
    if len(sys.argv) != 2:
        fail("usage: confluent_kafka_roundtrip.py BOOTSTRAP")
    bootstrap = sys.argv[1]
    topic = f"confluent-{uuid.uuid4().hex[:12]}"

    admin = AdminClient({"bootstrap.servers": bootstrap})
    for t, f in admin.create_topics([NewTopic(topic, num_partitions=PARTITIONS,
                                              replication_factor=1)],
                                    operation_timeout=30, request_timeout=30).items():
        f.result(timeout=60)

    # Duplicate creation must fail with TOPIC_ALREADY_EXISTS.
    for t, f in admin.create_topics([NewTopic(topic, num_partitions=PARTITIONS,
                                              replication_factor=1)]).items():
        try:
            f.result(timeout=60)
            fail("creating an existing topic succeeded")
        except Exception as e:  # KafkaException wrapping a KafkaError
            err = e.args[0] if e.args else None
            if not isinstance(err, KafkaError) or err.code() != KafkaError.TOPIC_ALREADY_EXISTS:
                fail(f"unexpected error for duplicate topic: {e!r}")

    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5,
                         "compression.type": "lz4"})
    reports = {}

    def on_delivery(err, msg):
        i = int(msg.value().decode().split("-")[1])
        reports[i] = (err, msg.partition(), msg.offset())

    for i in range(N):
        producer.produce(topic, key=f"k{i}".encode(), value=f"value-{i}".encode(),
                         partition=i % PARTITIONS, headers=[("h", b"x"), ("n", None)],
                         on_delivery=on_delivery)
        producer.poll(0)
    left = producer.flush(60)
    if left:
        fail(f"{left} records not delivered")
    bad = [(i, r) for i, r in reports.items() if r[0] is not None]
    if len(reports) != N or bad:
        fail(f"{len(reports)} reports, errors: {bad[:5]}")

    # confluent-kafka insists on a group.id even for assign(); nothing is committed and no
    # group is joined (the broker has no group support yet), so group errors are tolerated.
    consumer = Consumer({"bootstrap.servers": bootstrap, "enable.auto.commit": False,
                         "group.id": "sluice-e2e-assign-only",
                         "enable.auto.offset.store": False})
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(PARTITIONS)])
    got = {}
    deadline = time.time() + 60
    while len(got) < N and time.time() < deadline:
        m = consumer.poll(0.5)
        if m is None:
            continue
        if m.error():
            if m.error().fatal() or m.partition() is not None and m.partition() >= 0:
                fail(f"consumer error: {m.error()}")
            print(f"consumer (non-partition) error: {m.error()}", file=sys.stderr)
            continue
        k = (m.partition(), m.offset())
        if k in got:
            fail(f"duplicate at {k}")
        got[k] = m
    if len(got) != N:
        fail(f"consumed {len(got)} of {N}")
    for i, (err, p, off) in reports.items():
        m = got.get((p, off))
        if m is None:
            fail(f"record {i} missing at {p}/{off}")
        if m.key() != f"k{i}".encode() or m.value() != f"value-{i}".encode():
            fail(f"record {i}: {m.key()!r} {m.value()!r}")
        if m.headers() != [("h", b"x"), ("n", None)]:
            fail(f"record {i}: headers {m.headers()!r}")
    consumer.close()
    print(f"OK confluent-kafka: {N} records on {topic}")


if __name__ == "__main__":
    main()
