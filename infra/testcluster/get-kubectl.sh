#!/usr/bin/env bash
# Fetch kubectl from Debian's `kubectl` package (trixie: kubectl 1.32 with kustomize v5) into the
# shared cache and print its path. Tests use it for `kubectl kustomize` and
# `kubectl apply --dry-run=server` (tests/manifests). Idempotent: prints the cached path at once.
#
#   KUBECTL=$(infra/testcluster/get-kubectl.sh)
#
# Why not bookworm's kubernetes-client (kubectl 1.20.2, the test apiserver's version): its embedded
# kustomize v2.0.3 knows no `components` or `labels`, which current kubectl (what operators and the
# kind e2e job use) builds. kubectl 1.32 talks to the 1.20 apiserver with a version-skew warning.
# The package is only downloaded and unpacked (apt-get download + dpkg-deb -x) through a private
# apt config: the system's sources and installed packages are not touched, and no root is needed.
#
# Env: PYKATIB_CACHE (default ~/.cache/pykatib); KUBECTL_SUITE (default trixie).
set -euo pipefail

CACHE=${PYKATIB_CACHE:-$HOME/.cache/pykatib}
SUITE=${KUBECTL_SUITE:-trixie}
DEST=$CACHE/kubectl-$SUITE

if [[ -x $DEST/kubectl ]]; then
  echo "$DEST/kubectl"
  exit 0
fi

mkdir -p "$CACHE"
exec 9>"$CACHE/.get-kubectl.lock"
flock 9
if [[ -x $DEST/kubectl ]]; then  # fetched by the run we waited for
  echo "$DEST/kubectl"
  exit 0
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/get-kubectl.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
chmod 755 "$WORK"  # apt-get downloads as user _apt when run as root
mirror=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
mirror=${mirror:-http://deb.debian.org/debian}
mkdir -p "$WORK"/lists/partial "$WORK"/cache/archives/partial "$WORK"/out
chmod 777 "$WORK/out"
touch "$WORK/status"  # an empty dpkg status: the candidate is the suite's version, whatever is installed
echo "deb $mirror $SUITE main" >"$WORK/sources.list"
printf 'Dir::State::Lists "%s";\nDir::State::status "%s";\nDir::Cache "%s";\nDir::Etc::SourceList "%s";\nDir::Etc::SourceParts "/nonexistent";\n' \
  "$WORK/lists" "$WORK/status" "$WORK/cache" "$WORK/sources.list" >"$WORK/apt.conf"
export APT_CONFIG=$WORK/apt.conf
echo "[get-kubectl] downloading Debian $SUITE's kubectl from $mirror" >&2
apt-get update -qq >&2
(cd "$WORK/out" && apt-get download -qq kubectl >&2)
dpkg-deb -x "$WORK"/out/kubectl_*.deb "$WORK/root"
staging=$(mktemp -d "$CACHE/.kubectl.XXXXXX")
cp "$WORK/root/usr/bin/kubectl" "$staging/kubectl"
chmod 755 "$staging" "$staging/kubectl"
"$staging/kubectl" version --client >&2
mv "$staging" "$DEST"
echo "$DEST/kubectl"
