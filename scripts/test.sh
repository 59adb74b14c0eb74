#!/usr/bin/env bash
# Installs everything the tests need and runs the whole suite against a
# real Kafka broker that the tests start themselves.
#
#   bash scripts/test.sh          the suite (asyncio and uvloop loops)
#   bash scripts/test.sh --asan   the suite again with the extension built
#                                 under AddressSanitizer + UBSan, asyncio
#                                 debug mode and python -X dev
set -euo pipefail
cd "$(dirname "$0")/.."
mode="${1:-}"

bash scripts/setup.sh "test,example,bench"
python3 -m tests.kafkabroker jars >/dev/null   # Kafka's jars, from Maven

if [[ "$mode" != "--asan" ]]; then
    exec python3 -m pytest -p no:cacheprovider "${@:2}"
fi

# --- AddressSanitizer leg ----------------------------------------------
# The broker is started before libasan is preloaded (it must not reach
# java), and handed to the tests through KAFKA_BOOTSTRAP_SERVERS.
workdir="$(mktemp -d)"
broker_pid=""
cleanup() {
    [[ -n "$broker_pid" ]] && kill "$broker_pid" 2>/dev/null && wait "$broker_pid" 2>/dev/null
    rm -rf "$workdir"
    echo "== restoring the normal build"
    AIOKAFKA_C_WERROR=1 python3 setup.py -q build_ext --inplace --force >/dev/null 2>&1
}
trap cleanup EXIT
python3 -m tests.kafkabroker start --workdir "$workdir/broker" >"$workdir/bootstrap" &
broker_pid=$!
for _ in $(seq 1 120); do
    [[ -s "$workdir/bootstrap" ]] && break
    kill -0 "$broker_pid" 2>/dev/null || { echo "broker failed to start"; exit 1; }
    sleep 1
done
export KAFKA_BOOTSTRAP_SERVERS="$(head -1 "$workdir/bootstrap")"
echo "== broker at $KAFKA_BOOTSTRAP_SERVERS"

echo "== build aiokafka_c._core with -fsanitize=address,undefined"
rm -rf build/temp*
AIOKAFKA_C_ASAN=1 AIOKAFKA_C_WERROR=1 python3 setup.py -q build_ext --inplace --force >/dev/null 2>&1

# Browser and benchmark runs start non-Python programs (chromium, wrk,
# gcc) that must not get libasan either; they test no extra C of ours.
LD_PRELOAD="$(gcc -print-file-name=libasan.so)" \
ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:strict_init_order=1" \
UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1" \
PYTHONASYNCIODEBUG=1 PYTHONDEVMODE=1 \
    python3 -m pytest -p no:cacheprovider -m "not browser" \
        --ignore=tests/test_benchmarks_smoke.py "${@:2}"
