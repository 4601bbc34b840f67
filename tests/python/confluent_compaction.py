"""Log compaction through confluent-kafka: a compacted topic ends up with only the latest
value per key, tombstones (null values) disappear after delete.retention.ms, offsets
never change, and a producer can keep writing meanwhile. The broker must run with a
short --log-retention-check-interval-ms. Exits non-zero on the first mismatch."""

import sys
import time
import uuid

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

bootstrap = sys.argv[1]
admin = AdminClient({"bootstrap.servers": bootstrap})
topic = f"compact-{uuid.uuid4().hex[:8]}"
KEYS = 100
ROUNDS = 30


def check(cond, what):
    if not cond:
        print(f"FAIL: {what}", file=sys.stderr)
        sys.exit(1)
    print(f"ok: {what}")


config = {
    "cleanup.policy": "compact",
    "segment.bytes": "1048576",
    "segment.ms": "500",
    "min.cleanable.dirty.ratio": "0.01",
    "delete.retention.ms": "0",
}
for f in admin.create_topics([NewTopic(topic, 1, 1, config=config)]).values():
    f.result(timeout=30)

p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5})
latest = {}
sent = 0
for r in range(ROUNDS):
    for k in range(KEYS):
        value = f"{r:04d}-{k:04d}-".encode() + b"v" * 1000
        p.produce(topic, key=f"key-{k}".encode(), value=value)
        latest[f"key-{k}"] = value
        sent += 1
    p.poll(0)
# Tombstones for the first ten keys.
for k in range(10):
    p.produce(topic, key=f"key-{k}".encode(), value=None)
    latest.pop(f"key-{k}")
    sent += 1
check(p.flush(30) == 0, f"{sent} records delivered")


def read_all():
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "compaction-check",
                  "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    lo, hi = c.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
    c.assign([TopicPartition(topic, 0, lo)])
    records = []
    deadline = time.time() + 30
    idle = 0
    while time.time() < deadline:
        m = c.poll(0.5)
        if m is None:
            # Compaction leaves gaps, also at the end: stop once nothing more comes.
            idle += 1
            if records and idle >= 2:
                break
            continue
        idle = 0
        if m.error():
            continue
        records.append((m.offset(), m.key().decode(), m.value()))
        if m.offset() >= hi - 1:
            break
    c.close()
    return hi, records


deadline = time.time() + 60
while True:
    hi, records = read_all()
    keys = [k for _, k, _ in records]
    compacted = len(keys) == len(set(keys)) and all(v is not None for _, _, v in records)
    if compacted or time.time() > deadline:
        break
    time.sleep(0.5)
check(hi == sent, f"the high watermark stays at {sent} ({hi})")
check(compacted, f"one record per key and no tombstones left ({len(records)} records, {len(set(keys))} keys)")
check({k: v for _, k, v in records} == latest, "each key has its latest value; deleted keys are gone")
offsets = [o for o, _, _ in records]
check(offsets == sorted(offsets), "offsets keep their order")
moved = [(o, k) for o, k, v in records if o != int(v[:4]) * KEYS + int(k.split("-")[1])]
check(not moved, f"every record keeps its original offset ({moved[:3]})")

# The compacted topic keeps taking writes.
p.produce(topic, key=b"key-50", value=b"after")
check(p.flush(30) == 0, "a write after compaction is delivered")
print("all checks passed")
