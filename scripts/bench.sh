#!/usr/bin/env bash
# Reproduces the figures in benches/RESULTS.md: this machine's disk (dd) and loopback
# bandwidth, then a release broker driven by benches/loadgen (librdkafka through rdkafka):
# 1,000,000 records of 1 KiB with acks=1 and acks=all (produce then consume), and the
# end-to-end latency at 5,000 records/s with linger.ms=1. Reports the broker's CPU
# seconds per GB moved, read from /proc.
#
# Usage: scripts/bench.sh [RECORDS]   (default 1000000)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/sluice-target}"
records="${1:-1000000}"
size=1024

cargo build --release -q -p sluice -p sluice-benches --bin sluice --bin loadgen
sluice="$CARGO_TARGET_DIR/release/sluice"
loadgen="$CARGO_TARGET_DIR/release/loadgen"
work=$(mktemp -d "${TMPDIR:-/tmp}/sluice-bench.XXXXXX")
broker_pid=""
cleanup() {
    [ -n "$broker_pid" ] && kill "$broker_pid" 2>/dev/null && wait "$broker_pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

echo "== machine"
echo "cpus: $(nproc), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "memory: $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo), kernel $(uname -r)"

echo "== disk (dd, 1 GiB into the bench directory)"
dd if=/dev/zero of="$work/dd" bs=1M count=1024 conv=fdatasync 2>&1 | tail -1 | sed 's/^/dd with fdatasync: /'
rm -f "$work/dd"
dd if=/dev/zero of="$work/dd" bs=1M count=1024 2>&1 | tail -1 | sed 's/^/dd page cache:     /'
rm -f "$work/dd"

echo "== loopback (one TCP stream, 4 GiB)"
python3 - <<'PY'
import socket, threading, time
total = 4 << 30
chunk = b"\0" * (1 << 20)
srv = socket.socket(); srv.bind(("127.0.0.1", 0)); srv.listen(1)
port = srv.getsockname()[1]
def sink():
    conn, _ = srv.accept(); got = 0
    buf = bytearray(1 << 20)
    while True:
        n = conn.recv_into(buf)
        if n == 0: break
        got += n
threading.Thread(target=sink, daemon=True).start()
c = socket.create_connection(("127.0.0.1", port))
start = time.time(); sent = 0
while sent < total:
    c.sendall(chunk); sent += len(chunk)
c.close(); elapsed = time.time() - start
print(f"loopback copy: {sent / elapsed / 1e6:.0f} MB/s")
PY

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$sluice" broker --data-dir "$work/data" --kafka-addr "127.0.0.1:$port" \
    --rpc-addr 127.0.0.1:0 --admin-addr 127.0.0.1:0 --log-level warn 2>"$work/broker.log" &
broker_pid=$!
for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    sleep 0.1
done
cpu_seconds() { awk '{printf "%.2f", ($14 + $15) / 100}' "/proc/$broker_pid/stat"; }

run() {
    local acks=$1
    local before after
    before=$(cpu_seconds)
    echo "== $records records of $size bytes, acks=$acks"
    "$loadgen" --brokers "127.0.0.1:$port" --topic "bench-acks-$acks" --records "$records" \
        --size "$size" --acks "$acks" | tee "$work/out" | grep -E '^(produce|consume):'
    after=$(cpu_seconds)
    awk -v b="$before" -v a="$after" -v n="$records" -v s="$size" \
        'BEGIN { gb = 2 * n * s / 1e9; printf "broker CPU: %.2f s for %.2f GB moved (in + out) = %.2f CPU-s/GB\n", a - b, gb, (a - b) / gb }'
}
run 1
run all

echo "== end-to-end latency, 5000 records/s of $size bytes, linger.ms=1, 20 s"
"$loadgen" --brokers "127.0.0.1:$port" --topic bench-e2e --e2e-rate 5000 --duration-s 20 \
    --size "$size" | grep -E '^e2e:'
