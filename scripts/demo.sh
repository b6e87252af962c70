#!/usr/bin/env bash
# demo.sh - build Basalt from a clean clone and run the demo.
#
# Installs the Debian packages (scripts/install-deps.sh), configures and
# builds ./build, then runs `basalt demo`: a local cluster of three real
# node processes on loopback that etcdctl and `basalt kv` talk to; it
# prints the endpoints and an example, and stops every node on Ctrl-C.
# Extra arguments are passed to `basalt demo` (e.g. --nodes 5, --dir DIR,
# --check to bring the cluster up, check it serves, and stop).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

bs_prepare
echo "demo.sh: building $BS_BUILD (log: $BS_BUILD/compile.log)" >&2
meson compile -C "$BS_BUILD" >"$BS_BUILD/compile.log" 2>&1 || {
    tail -n 60 "$BS_BUILD/compile.log" >&2
    echo "demo.sh: error: build failed (full log: $BS_BUILD/compile.log)" >&2
    exit 1
}
basalt="$BS_BUILD/cli/basalt"
[[ -x "$basalt" ]] || {
    echo "demo.sh: error: $basalt was not built" >&2
    exit 1
}
exec "$basalt" demo "$@"
