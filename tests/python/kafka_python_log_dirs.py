"""DescribeLogDirs through kafka-python's admin client: the data directory, its
partitions with their on-disk sizes, and the file system's totals. Exits non-zero on
the first mismatch."""

import sys
import uuid

from kafka import KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic

bootstrap = sys.argv[1]
topic = f"logdirs-{uuid.uuid4().hex[:8]}"
admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=30000)
admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)])
producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
for i in range(100):
    producer.send(topic, value=b"x" * 1000, partition=0)
producer.flush()

result = admin.describe_log_dirs()
print(result)


def fail(what):
    print(f"FAIL: {what}", file=sys.stderr)
    sys.exit(1)


# kafka-python 3 answers [{'broker': id, 'log_dirs': [{error_code, log_dir, topics, ...}]}].
if len(result) != 1 or result[0]["broker"] != 1:
    fail(f"expected one broker, got {result}")
entries = result[0]["log_dirs"]
sizes = {}
if len(entries) != 1:
    fail(f"expected one log dir, got {len(entries)}")
entry = entries[0]
if entry["error_code"] != 0:
    fail(f"log dir error {entry['error_code']}")
for t in entry["topics"]:
    sizes[t["name"]] = {p["partition_index"]: p["partition_size"] for p in t["partitions"]}
if topic not in sizes:
    fail(f"{topic} missing from {sorted(sizes)}")
if sorted(sizes[topic]) != [0, 1]:
    fail(f"partitions {sorted(sizes[topic])}")
if not sizes[topic][0] >= 100 * 1000:
    fail(f"partition 0 size {sizes[topic][0]} is below what was written")
if sizes[topic][1] != 0:
    fail(f"partition 1 size {sizes[topic][1]} should be empty")
print("all checks passed")
