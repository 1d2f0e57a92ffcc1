#!/usr/bin/env bash
# Build every pykatib distribution into dist/wheelhouse, for
#   pip install --find-links dist/wheelhouse 'pykatib[local]'    (or pykatib, 'pykatib[client]')
# Third-party dependencies come from the package index as usual. See docs/install.md.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
DISTS=(
  libs/sdk/pykatib:dist          # pykatib: report_metrics (Python 3.8+)
  libs/core/katib_core:dist      # pykatib-core (Python 3.8+)
  libs/sdk:client-dist           # pykatib-client: KatibClient, search
  libs/core:domain-dist          # pykatib-domain: models, validation, planning
  libs/local:dist                # pykatib-local: local mode and the `pykatib` CLI
  libs/suggest/katib_suggest:dist
  libs/dbmanager:dist           # pykatib-dbmanager: the DB manager local mode runs in-process
  libs/pushauth:dist            # pykatib-pushauth: the push secret file
  protos/katib_api/v1beta1:dist
)
./pants --no-pantsd package "${DISTS[@]}" >&2
rm -rf dist/wheelhouse
mkdir -p dist/wheelhouse
for name in pykatib pykatib_core pykatib_client pykatib_domain pykatib_local pykatib_suggest pykatib_dbmanager pykatib_pushauth pykatib_api; do
  cp dist/"$name"-*.whl dist/wheelhouse/
done
ls dist/wheelhouse
