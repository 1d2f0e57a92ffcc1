#!/usr/bin/env bash
# Build the DB manager and the chaos script, then run it (see chaos_dbmanager.py); extra
# arguments go to the script. Needs Debian's mariadb-server (build-support/services.sh installs it).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
build-support/services.sh
./pants --no-pantsd package services/dbmanager:katib-db-manager benchmarks:chaos-dbmanager
exec python3.11 dist/chaos-dbmanager.pex --db-manager-pex dist/katib-db-manager.pex "$@"
