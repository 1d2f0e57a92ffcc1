#!/usr/bin/env bash
# Build the webhook and its benchmark, then run it (see webhook_bench.py for what is measured).
# Extra arguments go to the benchmark, e.g. --seconds 10 for a quick run.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
command -v h2load >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nghttp2-client; }
./pants --no-pantsd package services/webhook:katib-webhook benchmarks:webhook-bench
export PYKATIB_CRD_DIR="$PWD/infra/crds"    # for --with-cluster
exec python3.11 dist/webhook-bench.pex --webhook-pex dist/katib-webhook.pex --json benchmarks/results/webhook.json "$@"
