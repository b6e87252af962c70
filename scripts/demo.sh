#!/usr/bin/env bash
# demo.sh - build Basalt from a clean clone and run the demo.
#
# Installs the Debian packages (scripts/install-deps.sh), configures and
# builds ./build, then runs the demo: for now the deterministic simulator's
# narrated run of a 5-node cluster under faults (chaos/sim/bs_sim --demo).
# Extra arguments are passed to bs_sim (e.g. --seed 7).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

bs_prepare
echo "demo.sh: building $BS_BUILD (log: $BS_BUILD/compile.log)" >&2
meson compile -C "$BS_BUILD" >"$BS_BUILD/compile.log" 2>&1 || {
    tail -n 60 "$BS_BUILD/compile.log" >&2
    echo "demo.sh: error: build failed (full log: $BS_BUILD/compile.log)" >&2
    exit 1
}
sim="$BS_BUILD/chaos/sim/bs_sim"
[[ -x "$sim" ]] || {
    echo "demo.sh: error: $sim was not built" >&2
    exit 1
}
exec "$sim" --demo "$@"
