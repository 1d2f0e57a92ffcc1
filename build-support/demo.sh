#!/usr/bin/env bash
# The README's main job: set up, then run examples/quickstart — a local tuning experiment (16 TPE
# trials, 2 at a time, each a process pushing its metric through the in-process DB manager on the
# embedded SQLite) — and print the best hyperparameters. State stays in ./.pykatib: look at it
# with `dist/pykatib.pex get trials -e quickstart` or `dist/pykatib.pex report quickstart`.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
build-support/bootstrap.sh
./pants --no-pantsd package examples/quickstart:quickstart libs/local:pykatib
python3.11 dist/quickstart.pex
