#!/usr/bin/env python3
"""kafka-python round trip against a Sluice broker.

Usage: kafka_python_roundtrip.py BOOTSTRAP

Creates a 3-partition topic with KafkaAdminClient, produces 1,000 keyed records with
KafkaProducer (acks=all), reads them back with a group-less KafkaConsumer (assign +
seek_to_beginning) and checks every record. Exits non-zero on any mismatch.
"""

import sys
import time
import uuid

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic

N = 1000
PARTITIONS = 3


def fail(msg):
    print(f"FAIL: {msg}", file=sys.stderr)
    sys.exit(1)


def main():
    if len(sys.argv) != 2:
        fail("usage: kafka_python_roundtrip.py BOOTSTRAP")
    bootstrap = sys.argv[1]
    topic = f"kafka-python-{uuid.uuid4().hex[:12]}"

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="e2e-admin",
                             request_timeout_ms=30000)
    admin.create_topics([NewTopic(name=topic, num_partitions=PARTITIONS,
                                  replication_factor=1)], timeout_ms=30000)
    admin.close()

    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5,
                             request_timeout_ms=30000, max_block_ms=30000)
    futures = []
    for i in range(N):
        key = f"k{i % 50}".encode()
        value = f"value-{i}".encode()
        headers = [("i", str(i).encode())]
        futures.append((i, producer.send(topic, key=key, value=value,
                                         partition=i % PARTITIONS, headers=headers)))
    producer.flush(timeout=60)
    placed = {}
    for i, f in futures:
        md = f.get(timeout=60)
        if md.partition != i % PARTITIONS:
            fail(f"record {i} went to partition {md.partition}")
        placed[(md.partition, md.offset)] = i
    producer.close()
    if len(placed) != N:
        fail(f"{N - len(placed)} records share an acknowledged offset")

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None,
                             enable_auto_commit=False, auto_offset_reset="earliest",
                             consumer_timeout_ms=1000, request_timeout_ms=30000)
    tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
    consumer.assign(tps)
    consumer.seek_to_beginning(*tps)
    end = consumer.end_offsets(tps)
    want_end = {TopicPartition(topic, p): len([i for i in range(N) if i % PARTITIONS == p])
                for p in range(PARTITIONS)}
    if end != want_end:
        fail(f"end offsets {end} != {want_end}")

    got = {}
    deadline = time.time() + 60
    while len(got) < N and time.time() < deadline:
        batches = consumer.poll(timeout_ms=500)
        for tp, msgs in batches.items():
            for m in msgs:
                k = (m.partition, m.offset)
                if k in got:
                    fail(f"duplicate record at {k}")
                got[k] = m
    consumer.close()
    if len(got) != N:
        fail(f"consumed {len(got)} of {N} records")

    last = {}
    for (p, off), m in sorted(got.items()):
        i = placed.get((p, off))
        if i is None:
            fail(f"unexpected record at partition {p} offset {off}")
        if m.key != f"k{i % 50}".encode():
            fail(f"record {i}: key {m.key!r}")
        if m.value != f"value-{i}".encode():
            fail(f"record {i}: value {m.value!r}")
        if list(m.headers) != [("i", str(i).encode())]:
            fail(f"record {i}: headers {m.headers!r}")
        if p in last and last[p] >= i:
            fail(f"partition {p} out of order: {last[p]} then {i}")
        last[p] = i
    print(f"OK kafka-python: {N} records over {PARTITIONS} partitions on {topic}")


if __name__ == "__main__":
    main()
