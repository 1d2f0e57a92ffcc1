#!/usr/bin/env bash
# The README's test command: set up everything the suite needs on a fresh machine, then run
# every check — `pants test` (forced: results depend on live services, never replayed from
# cache), then `lint check package`. Prints `N passed, N failed` last; exits non-zero on any
# failure. Skipped tests count as failed: a missing component must fail, never skip.
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

failed_goals=0
step() { printf '\n== %s\n' "$*" >&2; }

step "bootstrap (Pants, protoc)"
build-support/bootstrap.sh || { echo "0 passed, 1 failed"; exit 1; }
step "databases"
build-support/services.sh || { echo "0 passed, 1 failed"; exit 1; }
step "headless Chromium (local mode's HTML report test)"
build-support/browser.sh || { echo "0 passed, 1 failed"; exit 1; }
step "Kubernetes test control plane (built once per machine, 5-13 min; cached after)"
infra/testcluster/build-k8s.sh || { echo "0 passed, 1 failed"; exit 1; }

REPORTS=dist/test/reports
rm -rf "$REPORTS"
step "pants test ::"
./pants --no-pantsd test --test-force --test-report --test-report-dir="$REPORTS" :: "$@" || failed_goals=$((failed_goals + 1))
step "pants lint check package ::"
./pants --no-pantsd lint check package :: || failed_goals=$((failed_goals + 1))

counts=$(python3 - "$REPORTS" <<'PY'
import glob, sys, xml.etree.ElementTree as ET
passed = failed = 0
for path in glob.glob(f"{sys.argv[1]}/**/*.xml", recursive=True):
    root = ET.parse(path).getroot()
    for suite in ([root] if root.tag == "testsuite" else root.iter("testsuite")):
        tests = int(suite.get("tests", 0))
        bad = int(suite.get("failures", 0)) + int(suite.get("errors", 0)) + int(suite.get("skipped", 0))
        passed += tests - bad
        failed += bad
print(passed, failed)
PY
)
read -r passed failed <<<"${counts:-0 0}"
if [ "$failed_goals" -gt 0 ] && [ "$failed" -eq 0 ]; then
  failed=$failed_goals  # a goal failed outside any test case (lint, types, packaging, collection)
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$failed_goals" -eq 0 ]
