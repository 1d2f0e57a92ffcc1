#!/usr/bin/env bash
# Headless Chromium for the local-mode HTML report test (libs/local: report_browser_test.py).
# Installs Debian's `chromium` once per machine; prints nothing when it is already there.
set -euo pipefail
command -v chromium >/dev/null 2>&1 && exit 0
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
for i in $(seq 60); do
  # apt/dpkg locks are held by other installs (e.g. the Kubernetes build): wait for them.
  if $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium >/tmp/pykatib-chromium.log 2>&1; then
    exit 0
  fi
  if [ "$i" -eq 1 ]; then $SUDO apt-get update -q >/dev/null 2>&1 || true; fi
  echo "browser.sh: apt-get install chromium failed (try $i/60), retrying in 10 s" >&2
  sleep 10
done
cat /tmp/pykatib-chromium.log >&2
exit 1
