"""Parses the broker's /metrics with prometheus_client's own text parser.

Usage: prometheus_metrics.py ADMIN_HOST:PORT TOPIC

Fails (exit 1) if the exposition does not parse, if a family the broker documents is
missing, if a histogram's buckets are not cumulative or its +Inf bucket differs from
_count, or if TOPIC has no bytes-in sample.
"""

import math
import sys
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

EXPECTED = {
    # family name as the parser reports it (counters lose "_total") -> type
    "sluice_kafka_requests": "counter",
    "sluice_kafka_request_errors": "counter",
    "sluice_kafka_request_duration_seconds": "histogram",
    "sluice_kafka_produce_bytes": "counter",
    "sluice_kafka_fetch_bytes": "counter",
    "sluice_kafka_produce_batch_size_bytes": "histogram",
    "sluice_kafka_fetch_wait_seconds": "histogram",
    "sluice_storage_fsync_duration_seconds": "histogram",
    "sluice_kafka_connections_active": "gauge",
    "sluice_kafka_connections_accepted": "counter",
    "sluice_partition_high_watermark": "gauge",
    "sluice_partition_log_start_offset": "gauge",
    "sluice_partition_size_bytes": "gauge",
    "sluice_group_lag_records": "gauge",
}


def main():
    admin, topic = sys.argv[1], sys.argv[2]
    with urllib.request.urlopen(f"http://{admin}/metrics", timeout=30) as response:
        content_type = response.headers.get("Content-Type", "")
        text = response.read().decode("utf-8")
    assert content_type.startswith("text/plain; version=0.0.4"), content_type

    families = {f.name: f for f in text_string_to_metric_families(text)}
    for name, kind in EXPECTED.items():
        assert name in families, f"missing family {name}; have {sorted(families)}"
        assert families[name].type == kind, f"{name} is {families[name].type}, not {kind}"

    for family in families.values():
        if family.type != "histogram":
            continue
        series = {}
        for s in family.samples:
            key = tuple(sorted((k, v) for k, v in s.labels.items() if k != "le"))
            entry = series.setdefault(key, {"buckets": [], "count": None})
            if s.name.endswith("_bucket"):
                entry["buckets"].append((float(s.labels["le"]), s.value))
            elif s.name.endswith("_count"):
                entry["count"] = s.value
        for key, entry in series.items():
            buckets = sorted(entry["buckets"])
            assert buckets and math.isinf(buckets[-1][0]), f"{family.name}{key}: no +Inf bucket"
            counts = [c for _, c in buckets]
            assert counts == sorted(counts), f"{family.name}{key}: buckets not cumulative"
            assert counts[-1] == entry["count"], f"{family.name}{key}: +Inf != _count"

    produced = [
        s for s in families["sluice_kafka_produce_bytes"].samples
        if s.labels.get("topic") == topic
    ]
    assert produced and produced[0].value > 0, f"no bytes in for {topic}"
    print(f"parsed {len(families)} families, {sum(len(f.samples) for f in families.values())} samples")


if __name__ == "__main__":
    main()
