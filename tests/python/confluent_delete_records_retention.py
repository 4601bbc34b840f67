"""DeleteRecords and retention through confluent-kafka (librdkafka): the log start offset
moves, fetches below it are out of range and a consumer with auto.offset.reset=earliest
recovers; retention by bytes removes old segments while a producer keeps writing.
Usage: confluent_delete_records_retention.py BOOTSTRAP (the broker must run with a short
--log-retention-check-interval-ms). Exits non-zero on the first mismatch."""

import sys
import time
import uuid

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

bootstrap = sys.argv[1]
admin = AdminClient({"bootstrap.servers": bootstrap})


def check(cond, what):
    if not cond:
        print(f"FAIL: {what}", file=sys.stderr)
        sys.exit(1)
    print(f"ok: {what}")


def create(topic, config=None):
    fs = admin.create_topics([NewTopic(topic, 1, 1, config=config or {})])
    for f in fs.values():
        f.result(timeout=30)


def produce(topic, n, size=100):
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5})
    for i in range(n):
        p.produce(topic, value=(b"%08d" % i) + b"x" * (size - 8))
        if i % 1000 == 0:
            p.poll(0)
    check(p.flush(30) == 0, f"{n} records to {topic} delivered")


def watermarks(topic):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "wm"})
    lo, hi = c.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
    c.close()
    return lo, hi


# DeleteRecords
topic = f"delrec-{uuid.uuid4().hex[:8]}"
create(topic)
produce(topic, 1000)
fs = admin.delete_records([TopicPartition(topic, 0, 600)])
deleted = list(fs.values())[0].result(timeout=30)
check(deleted.low_watermark == 600, f"low watermark after DeleteRecords is {deleted.low_watermark}")
check(watermarks(topic) == (600, 1000), f"watermarks {watermarks(topic)}")

fs = admin.delete_records([TopicPartition(topic, 0, 5000)])
try:
    list(fs.values())[0].result(timeout=30)
    check(False, "deleting past the high watermark must fail")
except KafkaException as e:
    check(e.args[0].code() == KafkaError.OFFSET_OUT_OF_RANGE, f"past the end: {e.args[0]}")

# A consumer asking for offset 0 is out of range and resets to the earliest record.
c = Consumer({"bootstrap.servers": bootstrap, "group.id": "dr", "auto.offset.reset": "earliest",
              "enable.auto.commit": False})
c.assign([TopicPartition(topic, 0, 0)])
first = None
deadline = time.time() + 30
while first is None and time.time() < deadline:
    m = c.poll(1)
    if m is not None and m.error() is None:
        first = m
c.close()
check(first is not None and first.offset() == 600, f"consumer resumed at {first and first.offset()}")
check(first.value()[:8] == b"00000600", "first record after the trim is record 600")

fs = admin.delete_records([TopicPartition(topic, 0, -1)])
check(list(fs.values())[0].result(timeout=30).low_watermark == 1000, "OFFSET_END deletes everything")
check(watermarks(topic) == (1000, 1000), f"empty log {watermarks(topic)}")

# Retention by bytes: 1 MiB segments, keep about 2 MiB, write 8 MiB while consuming.
topic = f"retention-{uuid.uuid4().hex[:8]}"
create(topic, {"segment.bytes": "1048576", "retention.bytes": "2097152"})
produce(topic, 8000, size=1024)
deadline = time.time() + 30
lo, hi = watermarks(topic)
while lo == 0 and time.time() < deadline:
    time.sleep(0.2)
    lo, hi = watermarks(topic)
check(lo > 0, f"retention moved the log start offset to {lo} (high watermark {hi})")
check(hi == 8000, "the high watermark is untouched")
check((hi - lo) * 1024 >= 2 * 1024 * 1024 - 200 * 1024, f"at least retention.bytes kept ({hi - lo} records)")
produce(topic, 1000, size=1024)
check(watermarks(topic)[1] == 9000, "producing continues after retention")

# Retention by time: every record is older than retention.ms once the segment rolls.
topic = f"retention-ms-{uuid.uuid4().hex[:8]}"
create(topic, {"retention.ms": "1000", "segment.ms": "500"})
produce(topic, 100)
deadline = time.time() + 30
lo, hi = watermarks(topic)
while lo < 100 and time.time() < deadline:
    time.sleep(0.2)
    lo, hi = watermarks(topic)
check((lo, hi) == (100, 100), f"retention.ms removed everything: {(lo, hi)}")
print("all checks passed")
