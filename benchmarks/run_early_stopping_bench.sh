#!/usr/bin/env bash
# Build and run the Push early-stopping benchmark (see early_stopping_bench.py). Extra arguments go to it.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
build-support/bootstrap.sh
./pants --no-pantsd package benchmarks:early-stopping-bench
exec python3.11 dist/early-stopping-bench.pex "$@"
