#!/usr/bin/env bash
# Installs what aiokafka_c needs on a fresh Debian 12 machine, then builds
# the C extension in place.  Safe to run again: it only installs what is
# missing.  Usage: bash scripts/setup.sh [pip extras, default "example"]
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-example}"

apt_need=()
have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "ok installed"; }
for pkg in librdkafka-dev pkg-config gcc; do
    have_pkg "$pkg" || apt_need+=("$pkg")
done
if [[ "$extras" == *test* ]]; then
    # The test suite: a real Kafka broker (Java + Maven), kcat on the
    # system librdkafka, and a headless browser for the example page.
    command -v java >/dev/null || apt_need+=(openjdk-17-jre-headless)
    command -v mvn >/dev/null || apt_need+=(maven)
    for pkg in kafkacat chromium chromium-driver; do
        have_pkg "$pkg" || apt_need+=("$pkg")
    done
fi
if [[ "$extras" == *bench* ]]; then
    have_pkg wrk || apt_need+=(wrk)
fi
if ((${#apt_need[@]})); then
    echo "== apt-get install ${apt_need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${apt_need[@]}" >/dev/null
fi

echo "== pip install -e .[$extras]"
python3 -m pip install -q --disable-pip-version-check --root-user-action=ignore -e ".[$extras]"

# An in-place build with warnings as errors: the C code must build clean.
echo "== build aiokafka_c._core"
rm -rf build/temp*
AIOKAFKA_C_WERROR=1 python3 setup.py -q build_ext --inplace --force 2>&1 \
    | grep -v -e "_BetaConfiguration" -e "warnings.warn" -e "cannot be found" || true
python3 -c "import aiokafka_c; print('aiokafka_c', aiokafka_c.__version__, 'on librdkafka', aiokafka_c.librdkafka_version()[0])"
