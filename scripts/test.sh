#!/usr/bin/env bash
# Runs every test on a fresh Debian machine: installs the external clients the
# end-to-end tests drive (kcat, kafka-python, confluent-kafka, and prometheus-client's
# parser for /metrics), builds the broker,
# then runs the workspace tests (nextest when available) and the doctests.
#
# Environment:
#   CARGO_TARGET_DIR   build directory (default: $HOME/.cache/sluice-target)
#   SLUICE_BIN         broker binary for the e2e tests (default: $CARGO_TARGET_DIR/debug/sluice)
#   SKIP_INSTALL=1     do not try to install kcat or the Python packages
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/sluice-target}"

as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        echo "need root to run: $*" >&2
        return 1
    fi
}

if [ "${SKIP_INSTALL:-0}" != 1 ]; then
    if ! command -v kcat >/dev/null 2>&1; then
        echo "==> installing kcat"
        as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq kcat
    fi
    if ! command -v python3 >/dev/null 2>&1; then
        echo "==> installing python3"
        as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 python3-pip
    fi
    missing=()
    python3 -c 'import kafka' >/dev/null 2>&1 || missing+=(kafka-python)
    python3 -c 'import confluent_kafka' >/dev/null 2>&1 || missing+=(confluent-kafka)
    python3 -c 'import prometheus_client' >/dev/null 2>&1 || missing+=(prometheus-client)
    if [ "${#missing[@]}" -gt 0 ]; then
        echo "==> pip install ${missing[*]}"
        # Debian's system Python is "externally managed" (PEP 668); fall back accordingly.
        python3 -m pip install --quiet "${missing[@]}" \
            || python3 -m pip install --quiet --user --break-system-packages "${missing[@]}"
    fi
fi

echo "==> cargo build -p sluice"
cargo build -p sluice
export SLUICE_BIN="${SLUICE_BIN:-$CARGO_TARGET_DIR/debug/sluice}"

# Run the doctests even when a test failed, then report failure.
status=0
if cargo nextest --version >/dev/null 2>&1; then
    echo "==> cargo nextest run --workspace"
    cargo nextest run --workspace --no-fail-fast || status=$?
else
    echo "==> cargo test --workspace (cargo-nextest not installed)"
    cargo test --workspace --no-fail-fast || status=$?
fi

echo "==> cargo test --doc --workspace"
cargo test --doc --workspace || status=$?

exit "$status"
