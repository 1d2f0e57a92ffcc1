#!/usr/bin/env bash
# Build the DB manager and the hostile-input benchmark, then run it (see hostile_bench.py); extra
# arguments go to the script.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
./pants --no-pantsd package services/dbmanager:katib-db-manager benchmarks:hostile-bench
exec python3.11 dist/hostile-bench.pex --db-manager-pex dist/katib-db-manager.pex "$@"
