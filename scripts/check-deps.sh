#!/usr/bin/env bash
# Enforces the crate dependency direction of DESIGN.md / STYLE.md: a crate may depend
# only on the Sluice crates listed for it (normal dependencies, not dev).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

declare -A allowed=(
    [sluice-protocol]=""
    [sluice-storage]="sluice-protocol"
    [sluice-coordinator]="sluice-protocol"
    [sluice-client]="sluice-protocol"
    [sluice-broker]="sluice-protocol sluice-storage sluice-coordinator sluice-processor"
    [sluice-processor]="sluice-protocol"
    [sluice]="sluice-broker sluice-client sluice-protocol"
)

status=0
for crate in "${!allowed[@]}"; do
    deps=$(cargo tree -e normal -p "$crate" --depth 1 --prefix none 2>/dev/null \
        | awk '{print $1}' | grep '^sluice' | grep -vx "$crate" | sort -u || true)
    for dep in $deps; do
        if [[ " ${allowed[$crate]} " != *" $dep "* ]]; then
            echo "$crate must not depend on $dep" >&2
            status=1
        fi
    done
done
[ "$status" -eq 0 ] && echo "dependency direction ok"
exit "$status"
