#!/usr/bin/env bash
# Build the push-vs-pull benchmark and run it on the real test control plane (see
# push_vs_pull_bench.py for what is measured). Extra arguments go to the benchmark, e.g.
#   benchmarks/run_push_vs_pull_bench.sh --trials 20 --parallel 2 [--json out.json]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
build-support/services.sh                 # MariaDB for the DB manager
infra/testcluster/build-k8s.sh            # kube-apiserver & co. (cached after the first build)
./pants --concurrent package benchmarks:push-vs-pull-bench
# The CRDs and webhook configurations are read from the tree (a pex has no repo around it).
PYKATIB_CRD_DIR="$PWD/infra/crds" PYKATIB_WEBHOOK_DIR="$PWD/infra/webhook" \
  exec python3.11 dist/push-vs-pull-bench.pex "$@"
