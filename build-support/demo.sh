#!/usr/bin/env bash
# The README's main job (until local mode lands): build the DB manager, start it on an embedded
# SQLite database, push a trial's metrics to it over gRPC as a Katib trial does, read them back.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
build-support/bootstrap.sh
./pants --no-pantsd package services/dbmanager:katib-db-manager examples/dbmanager_demo:push-and-read
work=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; rm -rf "$work"' EXIT
python3.11 dist/katib-db-manager.pex --listen-address 127.0.0.1:0 --db-url "sqlite:///$work/katib.db" >"$work/out" 2>"$work/log" &
pid=$!
for _ in $(seq 100); do grep -q serving "$work/out" 2>/dev/null && break; sleep 0.1; done
cat "$work/out"
address=$(sed -n 's/.* on \([0-9.]*:[0-9]*\) .*/\1/p' "$work/out")
[ -n "$address" ] || { cat "$work/log" >&2; exit 1; }
python3.11 dist/push-and-read.pex --address "$address"
