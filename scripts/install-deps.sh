#!/usr/bin/env bash
# install-deps.sh - install every package Basalt needs to build and test.
#
# Debian 12 (bookworm). Installs with apt-get only the packages that are not
# installed yet; runs `apt-get update` at most once, and only if something is
# missing. Safe to run again (idempotent) and quiet when nothing is to do.
# Needs root, or sudo for a normal user. Exit code 0 on success, 1 with a
# message on stderr otherwise.
set -euo pipefail

PACKAGES=(
    # toolchain and build system
    gcc meson ninja-build pkg-config
    # libraries (headers + pkg-config files)
    librocksdb-dev libgrpc-dev libnanopb-dev libjemalloc-dev libcjson-dev
    libyaml-dev libmicrohttpd-dev
    # code generators
    nanopb protobuf-compiler
    # tests: unit framework, memory checker, etcd for side-by-side runs,
    # jq for the integration tests that read the CLI's JSON
    check valgrind etcd-server etcd-client jq
    # formatting
    clang-format
)

die() {
    echo "install-deps.sh: error: $*" >&2
    exit 1
}

command -v dpkg-query >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 ||
    die "apt-get/dpkg not found: this script supports Debian 12 only; install by hand: ${PACKAGES[*]}"

missing=()
for p in "${PACKAGES[@]}"; do
    status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    [[ "$status" == "install ok installed" ]] || missing+=("$p")
done

if ((${#missing[@]} == 0)); then
    exit 0
fi

SUDO=()
if ((EUID != 0)); then
    command -v sudo >/dev/null 2>&1 ||
        die "not root and sudo not found; run as root: apt-get install ${missing[*]}"
    SUDO=(sudo)
fi

echo "install-deps.sh: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
log=$(mktemp)
trap 'rm -f "$log"' EXIT

# Try installing from the current package lists first; refresh them once if
# that fails (fresh containers ship without lists).
if ! "${SUDO[@]}" apt-get install -y -q --no-install-recommends \
        "${missing[@]}" >"$log" 2>&1; then
    "${SUDO[@]}" apt-get update -q >>"$log" 2>&1 || {
        tail -n 20 "$log" >&2
        die "apt-get update failed (network or sources.list?)"
    }
    "${SUDO[@]}" apt-get install -y -q --no-install-recommends \
            "${missing[@]}" >>"$log" 2>&1 || {
        tail -n 20 "$log" >&2
        die "apt-get install failed for: ${missing[*]}"
    }
fi

# Verify: a package apt-get skipped would otherwise surface as a confusing
# meson error later.
still=()
for p in "${missing[@]}"; do
    status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    [[ "$status" == "install ok installed" ]] || still+=("$p")
done
((${#still[@]} == 0)) || die "still not installed after apt-get: ${still[*]}"
echo "install-deps.sh: done" >&2
