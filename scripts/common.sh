# common.sh - shared by demo.sh and test.sh (sourced, not run).
#
# bs_prepare: cd to the repository root, install missing Debian packages,
# and make sure the meson build directory ($BASALT_BUILD_DIR, default
# "build") is configured. A directory that meson already configured is
# reconfigured in place, so running the scripts again never fails on an
# existing build/ and picks up newly installed packages.

BS_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BS_BUILD=${BASALT_BUILD_DIR:-build}

bs_prepare() {
    cd "$BS_ROOT" || return 1
    bash scripts/install-deps.sh || return 1
    if [[ -f "$BS_BUILD/meson-private/coredata.dat" ]]; then
        meson setup --reconfigure "$BS_BUILD" >"$BS_BUILD/setup.log" 2>&1 || {
            cat "$BS_BUILD/setup.log" >&2
            echo "error: meson setup --reconfigure $BS_BUILD failed" \
                "(delete $BS_BUILD/ and retry)" >&2
            return 1
        }
    else
        mkdir -p "$BS_BUILD"
        meson setup "$BS_BUILD" >"$BS_BUILD/setup.log" 2>&1 || {
            cat "$BS_BUILD/setup.log" >&2
            echo "error: meson setup $BS_BUILD failed" >&2
            return 1
        }
    fi
}
