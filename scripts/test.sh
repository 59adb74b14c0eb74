#!/usr/bin/env bash
# Installs everything the tests need and runs the whole suite against a
# real Kafka broker that the tests start themselves.
#
#   bash scripts/test.sh          the suite (asyncio and uvloop loops),
#                                 with the `cluster` group (a 3-node
#                                 KRaft cluster whose brokers the tests
#                                 kill; a few minutes, this leg only)
#                                 and the `security` group (TLS, SASL
#                                 and ACLs on a broker of its own; this
#                                 leg only)
#   bash scripts/test.sh --asan   the suite again with the extension built
#                                 under AddressSanitizer + UBSan, asyncio
#                                 debug mode and python -X dev
#   bash scripts/test.sh --python 3.10[,3.12,...]
#                                 the suite on other interpreters (pyenv's
#                                 or pythonX.Y on PATH), each in its own
#                                 venv .venv-X.Y with the extension built
#                                 for it; one broker serves them all;
#                                 asyncio's loop only.  The
#                                 browser, benchmark-smoke, wheel,
#                                 cluster and security tests run only in
#                                 the main leg
#                                 (--asan leaves them out too).
#
# Further arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
mode="${1:-}"
case "$mode" in
    --asan) shift ;;
    --python) versions="${2:?usage: scripts/test.sh --python X.Y[,X.Y...]}"; shift 2 ;;
    *) mode="" ;;
esac

# The legs other than the main one leave out what starts non-Python
# programs (chromium, wrk, gcc for the wheel, the three JVMs of the
# cluster group, the TLS/SASL/ACL broker of the security group, the
# soak's broker) and tests no extra C of ours.
NOT_HEAVY=(-m "not browser and not wheel and not cluster and not security and not soak" --ignore=tests/test_benchmarks_smoke.py)

if [[ "$mode" == "--python" ]]; then
    # What these legs need from apt (scripts/setup.sh installs more, and
    # the system Python's packages, which these legs do not use).
    apt_need=()
    have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "ok installed"; }
    for pkg in librdkafka-dev pkg-config gcc kafkacat; do
        have_pkg "$pkg" || apt_need+=("$pkg")
    done
    command -v java >/dev/null || apt_need+=(openjdk-17-jre-headless)
    command -v mvn >/dev/null || apt_need+=(maven)
    if ((${#apt_need[@]})); then
        echo "== apt-get install ${apt_need[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends "${apt_need[@]}" >/dev/null
    fi
else
    bash scripts/setup.sh "test,example,bench"
fi
python3 -m tests.kafkabroker jars >/dev/null   # Kafka's jars, from Maven

if [[ -z "$mode" ]]; then
    exec python3 -m pytest -p no:cacheprovider "$@"
fi

# --- one broker for the legs below -------------------------------------
# Started before libasan is preloaded (it must not reach java), and handed
# to the tests through KAFKA_BOOTSTRAP_SERVERS (an external one, if that
# is already set, is used as is).
workdir="$(mktemp -d)"
broker_pid=""
on_exit=()
cleanup() {
    local step
    for step in "${on_exit[@]}"; do "$step"; done
    if [[ -n "$broker_pid" ]]; then
        kill "$broker_pid" 2>/dev/null && wait "$broker_pid" 2>/dev/null
    fi
    rm -rf "$workdir"
}
trap cleanup EXIT
if [[ -z "${KAFKA_BOOTSTRAP_SERVERS:-}" ]]; then
    python3 -m tests.kafkabroker start --workdir "$workdir/broker" >"$workdir/bootstrap" &
    broker_pid=$!
    for _ in $(seq 1 120); do
        [[ -s "$workdir/bootstrap" ]] && break
        kill -0 "$broker_pid" 2>/dev/null || { echo "broker failed to start"; exit 1; }
        sleep 1
    done
    [[ -s "$workdir/bootstrap" ]] || { echo "broker not ready after 120 s"; exit 1; }
    KAFKA_BOOTSTRAP_SERVERS="$(head -1 "$workdir/bootstrap")"
    export KAFKA_BOOTSTRAP_SERVERS
fi
echo "== broker at $KAFKA_BOOTSTRAP_SERVERS"

# --- AddressSanitizer leg ----------------------------------------------
if [[ "$mode" == "--asan" ]]; then
    restore_build() {
        echo "== restoring the normal build"
        AIOKAFKA_C_WERROR=1 python3 setup.py -q build_ext --inplace --force >/dev/null 2>&1
    }
    on_exit+=(restore_build)
    echo "== build aiokafka_c._core with -fsanitize=address,undefined"
    rm -rf build/temp*
    AIOKAFKA_C_ASAN=1 AIOKAFKA_C_WERROR=1 python3 setup.py -q build_ext --inplace --force >/dev/null 2>&1

    LD_PRELOAD="$(gcc -print-file-name=libasan.so)" \
    ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:strict_init_order=1" \
    UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1" \
    PYTHONASYNCIODEBUG=1 PYTHONDEVMODE=1 \
        python3 -m pytest -p no:cacheprovider "${NOT_HEAVY[@]}" "$@"
    exit
fi

# --- other interpreters, one venv each ---------------------------------
find_python() {  # X.Y -> path of that interpreter
    local ver="$1" prefix
    if command -v pyenv >/dev/null && prefix="$(pyenv prefix "$ver" 2>/dev/null)" \
        && [[ -x "$prefix/bin/python$ver" ]]; then
        echo "$prefix/bin/python$ver"
    elif [[ -x "/usr/bin/python$ver" ]]; then
        echo "/usr/bin/python$ver"
    else
        return 1
    fi
}

version_leg() {  # X.Y [pytest args]
    local ver="$1"; shift
    local base venv=".venv-$ver"
    base="$(find_python "$ver")" || {
        echo "== Python $ver: no interpreter (pyenv install $ver, or python$ver on PATH)"
        return 1
    }
    local vpy="$venv/bin/python"
    if ! "$vpy" -c "import sys; sys.exit(f'{sys.version_info[0]}.{sys.version_info[1]}' != '$ver')" 2>/dev/null; then
        echo "== venv $venv from $base"
        rm -rf "$venv"
        "$base" -m venv "$venv" || return 1
    fi
    # Reinstall the dependencies only when what declares them changed.
    local stamp="$venv/.deps-stamp" want
    want="$(cat pyproject.toml setup.py | sha256sum | cut -c1-16)"
    if [[ "$(cat "$stamp" 2>/dev/null)" != "$want" ]]; then
        echo "== $venv: pip install -e .[test,example]"
        # setuptools for the in-place build below (3.12+ venvs have none).
        "$vpy" -m pip install -q --disable-pip-version-check --root-user-action=ignore \
            "setuptools>=64" -e ".[test,example]" || return 1
        echo "$want" >"$stamp"
    fi
    # In place, warnings as errors (so a clean build has nothing to show),
    # next to the other versions' builds: aiokafka_c/_core.cpython-3XX-*.so;
    # each interpreter loads only its own, which the check below makes sure of.
    echo "== build aiokafka_c._core for Python $ver"
    local log="$workdir/build-$ver.log"
    AIOKAFKA_C_WERROR=1 "$vpy" setup.py -q build_ext --inplace --force \
        --build-temp "build/temp-py$ver" >"$log" 2>&1 || {
        cat "$log"; echo "== Python $ver: the build failed"; return 1
    }
    "$vpy" - <<'EOF' || return 1
import sysconfig
from pathlib import Path

import aiokafka_c
import aiokafka_c._core as core

want = Path("aiokafka_c", "_core" + sysconfig.get_config_var("EXT_SUFFIX"))
got = Path(core.__file__)
assert got.resolve() == want.resolve(), f"imported {got}, not {want}"
print(f"== {got} (librdkafka {aiokafka_c.librdkafka_version()[0]})")
EOF
    # asyncio's loop only: uvloop is the same on every Python, and the main
    # and ASan legs run every test on it.
    AIOKAFKA_C_TEST_LOOPS=asyncio \
        "$vpy" -m pytest -p no:cacheprovider "${NOT_HEAVY[@]}" "$@"
}

# A module that any interpreter would load in preference to its own build.
for stray in aiokafka_c/_core.abi3.so aiokafka_c/_core.so; do
    [[ -e "$stray" ]] && { echo "remove $stray: every Python would import it"; exit 1; }
done

failed=()
summary=()
IFS=, read -ra vers <<<"$versions"
for ver in "${vers[@]}"; do
    echo "===== Python $ver"
    start=$SECONDS
    if version_leg "$ver" "$@"; then status=ok; else status=FAILED; failed+=("$ver"); fi
    summary+=("Python $ver: $status in $((SECONDS - start)) s")
done
printf '== %s\n' "${summary[@]}"
((${#failed[@]} == 0)) || { echo "== failed on Python ${failed[*]}"; exit 1; }
