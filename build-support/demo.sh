#!/usr/bin/env bash
# The README's main job: set up, then run examples/quickstart — a local tuning experiment (16 TPE
# trials, 2 at a time, each a process pushing its metric through the in-process DB manager on the
# embedded SQLite) with its progress; then the trials best first, the best hyperparameters, the
# HTML report's path and what to try next. State stays in ./.pykatib.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
build-support/bootstrap.sh
./pants --no-pantsd package examples/quickstart:quickstart libs/local:pykatib
python3.11 dist/quickstart.pex
echo
dist/pykatib.pex get trials -e quickstart
echo "HTML report: $(dist/pykatib.pex report quickstart)"
cat <<'EOF'

Next:
  dist/pykatib.pex get trials -e quickstart -o csv > trials.csv          every value, exact
  dist/pykatib.pex run examples/push-experiment/experiment.yaml --local  any Katib Experiment YAML
  examples/quickstart/quickstart.py                                      the script above: edit, rerun
  docs/local.md (local mode), docs/sdk.md (the SDK), docs/install.md (a cluster)
EOF
