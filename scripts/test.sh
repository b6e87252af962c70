#!/usr/bin/env bash
# test.sh - build Basalt from a clean clone and run the test suites.
#
# Installs the Debian packages (scripts/install-deps.sh), configures ./build
# and runs every meson test suite except the benchmarks (suite "bench",
# which prints figures and never fails on timing). Extra arguments are
# passed to `meson test` (e.g. --suite unit, --setup valgrind). The exit code
# is meson's.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

bs_prepare
set +e
meson test -C "$BS_BUILD" --print-errorlogs --no-suite bench "$@"
rc=$?
exit "$rc"
