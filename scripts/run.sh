#!/usr/bin/env bash
# Installs what the example app needs and starts it on 127.0.0.1:8000.
# Without KAFKA_BOOTSTRAP_SERVERS it produces to librdkafka's embedded mock
# cluster.  Extra arguments go to the app (--host, --port, --workers, ...).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh example
exec python3 -m aiokafka_c.example "$@"
