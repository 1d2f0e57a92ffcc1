#!/usr/bin/env bash
# Build and run the local-mode overhead benchmark (see local_bench.py). Extra arguments go to it.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
build-support/bootstrap.sh
./pants --no-pantsd package benchmarks:local-bench
exec python3.11 dist/local-bench.pex "$@"
