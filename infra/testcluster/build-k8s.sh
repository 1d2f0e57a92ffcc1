#!/usr/bin/env bash
# Build kube-apiserver, kube-controller-manager and kube-scheduler v1.20.2 from Debian bookworm's
# `kubernetes` source package and cache them outside the repo, for infra/testcluster's fixtures.
#
#   infra/testcluster/build-k8s.sh          # idempotent: seconds when already cached
#
# Env: PYKATIB_CACHE (default ~/.cache/pykatib); binaries land in $PYKATIB_CACHE/k8s-1.20.2/.
#      KUBE_DEB_VERSION pins the Debian source version ("" = whatever apt offers).
# Needs root for apt-get (skipped when the packages are already installed). Cold build: 5-13 min.
set -euo pipefail

K8S_VERSION=1.20.2
KUBE_DEB_VERSION=${KUBE_DEB_VERSION-1.20.5+really1.20.2-1.1+deb12u1}
CACHE=${PYKATIB_CACHE:-$HOME/.cache/pykatib}
DEST=$CACHE/k8s-$K8S_VERSION
BINARIES=(kube-apiserver kube-controller-manager kube-scheduler)
PACKAGES=(golang-go rsync golang-github-modern-go-reflect2-dev etcd-server openssl)
START=$SECONDS

log() { printf '[build-k8s %3ds] %s\n' "$((SECONDS - START))" "$*" >&2; }

binaries_cached() {
  local b
  for b in "${BINARIES[@]}"; do [[ -x $DEST/$b ]] || return 1; done
}

missing_packages() {
  local p
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$' || echo "$p"
  done
}

# apt-get that waits for another apt/dpkg run (its locks are fcntl locks, so poll).
apt_retry() {
  local i
  for i in $(seq 1 60); do
    if apt-get -o DPkg::Lock::Timeout=60 "$@"; then return 0; fi
    log "apt-get $1 failed (try $i/60; another apt run holding the lock?), retrying in 10s"
    sleep 10
  done
  return 1
}

install_packages() {
  local missing
  missing=$(missing_packages)
  [[ -z $missing ]] && return 0
  log "installing apt packages: $(echo $missing)"
  apt_retry update -qq
  # shellcheck disable=SC2086  # word splitting wanted
  DEBIAN_FRONTEND=noninteractive apt_retry install -y -qq --no-install-recommends $missing >&2
}

fetch_source() {  # $1 = work dir; leaves the unpacked tree in $1/k
  local work=$1 mirror spec tarball
  mirror=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
  mirror=${mirror:-http://deb.debian.org/debian}
  mkdir -p "$work"/apt/lists/partial "$work"/apt/cache/archives/partial "$work"/src
  # A private apt config adds deb-src without touching the system's sources.
  echo "deb-src $mirror bookworm main" >"$work/apt/sources.list"
  printf 'Dir::State::Lists "%s";\nDir::Cache "%s";\nDir::Etc::SourceList "%s";\nDir::Etc::SourceParts "/nonexistent";\n' \
    "$work/apt/lists" "$work/apt/cache" "$work/apt/sources.list" >"$work/apt/apt.conf"
  log "fetching Debian source kubernetes${KUBE_DEB_VERSION:+=$KUBE_DEB_VERSION} from $mirror"
  spec=kubernetes${KUBE_DEB_VERSION:+=$KUBE_DEB_VERSION}
  (
    export APT_CONFIG=$work/apt/apt.conf
    apt-get update -qq
    cd "$work/src" && apt-get source --download-only -qq "$spec"
  ) >&2
  tarball=$(ls "$work"/src/kubernetes_*.orig.tar.gz)
  log "unpacking $(basename "$tarball")"
  mkdir "$work/k"
  tar xzf "$tarball" -C "$work/k" --strip-components=1
}

swap_reflect2() {  # vendored reflect2 1.0.1 breaks with Go >= 1.18 (apiserver segfaults on CR create)
  local r=$1/vendor/github.com/modern-go/reflect2 sys=/usr/share/gocode/src/github.com/modern-go/reflect2
  log "swapping vendored reflect2 for Debian's $(dpkg-query -W -f='${Version}' golang-github-modern-go-reflect2-dev)"
  rm -f "$r"/*.go "$r"/*.s
  cp "$sys"/*.go "$r"/
  if compgen -G "$sys/*.s" >/dev/null; then cp "$sys"/*.s "$r"/; fi
}

compile() {  # $1 = source tree, $2 = work dir
  local tree=$1 work=$2 what
  what=$(printf 'cmd/%s ' "${BINARIES[@]}")
  log "compiling ${BINARIES[*]} (Go $(go env GOVERSION), offline; 5-13 min on 2 cores)"
  mkdir -p "$tree/.go/src/k8s.io" "$work/home"
  ln -sfn ../../.. "$tree/.go/src/k8s.io/kubernetes"
  (
    cd "$tree"
    export GOPATH=$tree/.go CGO_ENABLED=0 GOFLAGS=-mod=vendor GOPROXY=off HOME=$work/home
    nice -n 10 make WHAT="${what% }" GOLDFLAGS="-s -w"
  ) >"$work/make.log" 2>&1 || { tail -n 40 "$work/make.log" >&2; log "make failed"; return 1; }
}

install_binaries() {  # $1 = source tree; atomic: fill a sibling dir, then rename it into place
  local tree=$1 staging old b
  staging=$(mktemp -d "$CACHE/.k8s-$K8S_VERSION.XXXXXX")
  for b in "${BINARIES[@]}"; do
    cp "$tree/_output/local/bin/linux/amd64/$b" "$staging/$b"
    "$staging/$b" --version >&2
  done
  chmod 755 "$staging"
  if [[ -e $DEST ]]; then  # an incomplete older cache (e.g. without the scheduler)
    old=$(mktemp -d "$CACHE/.k8s-old.XXXXXX")
    mv "$DEST" "$old/"
    mv "$staging" "$DEST"
    rm -rf "$old"
  else
    mv "$staging" "$DEST"
  fi
  log "installed to $DEST"
}

main() {
  mkdir -p "$CACHE"
  if binaries_cached && [[ -z $(missing_packages) ]]; then
    log "up to date: $DEST"
    return 0
  fi
  exec 9>"$CACHE/.build-k8s.lock"
  if ! flock -n 9; then
    log "another build holds $CACHE/.build-k8s.lock; waiting for it"
    flock 9
  fi
  install_packages
  if binaries_cached; then  # built by the run we waited for
    log "up to date: $DEST"
    return 0
  fi
  WORK=$(mktemp -d "${TMPDIR:-/tmp}/build-k8s.XXXXXX")
  chmod 755 "$WORK"  # apt-get downloads as user _apt
  trap 'chmod -R u+w "$WORK" 2>/dev/null; rm -rf "$WORK"' EXIT
  fetch_source "$WORK"
  swap_reflect2 "$WORK/k"
  compile "$WORK/k" "$WORK"
  install_binaries "$WORK/k"
  log "done in $((SECONDS - START))s"
}

main "$@"
