#!/usr/bin/env bash
# Build the DB manager and its benchmark, then run it against the local MariaDB (see
# dbmanager_bench.py for what is measured). Extra arguments go to the benchmark.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
command -v h2load >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nghttp2-client; }
build-support/services.sh
./pants --no-pantsd package services/dbmanager:katib-db-manager benchmarks:dbmanager-bench
exec python3.11 dist/dbmanager-bench.pex --db-manager-pex dist/katib-db-manager.pex "$@"
