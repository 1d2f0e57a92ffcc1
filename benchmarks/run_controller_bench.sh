#!/usr/bin/env bash
# Build the controllers benchmark and run it on the real test control plane (see
# controller_bench.py for what is measured). Extra arguments go to the benchmark, e.g.
#   benchmarks/run_controller_bench.sh --trials 1000 --parallel 50 [--kcm-qps 200] [--mode prepushed]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
build-support/services.sh                 # MariaDB for the DB manager
infra/testcluster/build-k8s.sh            # kube-apiserver & co. (cached after the first build)
./pants --no-pantsd package benchmarks:controller-bench
# The CRDs are read from the tree (a pex has no repo around it).
PYKATIB_CRD_DIR="$PWD/infra/crds" exec python3.11 dist/controller-bench.pex "$@"
