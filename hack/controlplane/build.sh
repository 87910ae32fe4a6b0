#!/usr/bin/env bash
# Builds the pinned Kubernetes control plane (kube-apiserver,
# kube-controller-manager, kube-scheduler, upstream kube-proxy as the
# reference peer, kubectl; kubelet and kubeadm for the kind node image)
# from source through the Go module proxy, into a
# cache outside the checkout keyed by version, and installs Debian's etcd.
#
#   hack/controlplane/build.sh        -> prints the binary directory (stdout)
#
# Idempotent: when every binary exists and the stamp matches go.mod/go.sum,
# it prints the directory and exits at once. Progress goes to stderr so a
# caller can do BIN=$(hack/controlplane/build.sh).
#
# Environment: PROXYPROOF_CACHE (default /var/cache/proxyproof).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../lib/gobuild.sh
. "$here/../lib/gobuild.sh"
# shellcheck source=../lib/cachelock.sh
. "$here/../lib/cachelock.sh"
# shellcheck source=../lib/k8sldflags.sh
. "$here/../lib/k8sldflags.sh"
# shellcheck source=../lib/apt.sh
. "$here/../lib/apt.sh"
# The pinned version is the one go.mod requires (in or out of a block).
version=$(awk '{ sub(/^require[ \t]+/, "") } $1 == "k8s.io/kubernetes" && $2 ~ /^v[0-9]/ { print $2; exit }' "$here/go.mod")
if [[ -z "$version" ]]; then
  echo "controlplane: no 'require k8s.io/kubernetes vX.Y.Z' line in $here/go.mod" >&2
  exit 1
fi
cache=${PROXYPROOF_CACHE:-/var/cache/proxyproof}/k8s/$version
bin=$cache/bin
stamp=$cache/stamp
cmds=(kube-apiserver kube-controller-manager kube-scheduler kube-proxy kubectl kubelet kubeadm)

# Upstream's version ldflags (hack/lib/k8sldflags.sh).
ldflags=$(k8s_ldflags "$version")

# The stamp names exactly what was built: the module graph and the flags.
want_stamp() { { cat "$here/go.mod" "$here/go.sum"; echo "$ldflags"; } | sha256sum | cut -d' ' -f1; }

fresh() {
  [[ -f "$stamp" && "$(cat "$stamp")" == "$(want_stamp)" ]] || return 1
  local c
  for c in "${cmds[@]}"; do [[ -x "$bin/$c" ]] || return 1; done
  command -v etcd >/dev/null
}

start=$(date +%s)
use_cache_or_lock "$cache" "$bin"

install_etcd() {
  command -v etcd >/dev/null && return 0
  if [[ "$(id -u)" -ne 0 ]]; then
    echo "controlplane: need root to install etcd-server (run: sudo $0)" >&2
    exit 1
  fi
  echo "controlplane: installing Debian etcd-server" >&2
  local rc=0
  apt_install_quiet etcd-server || rc=$?
  if ((rc)); then
    echo "controlplane: apt-get install etcd-server failed (exit $rc)" >&2
    exit "$rc"
  fi
  if [[ -d /run/systemd/system ]]; then
    systemctl disable --now etcd.service >/dev/null 2>&1 || true
  fi
}
install_etcd

echo "controlplane: building Kubernetes $version (${cmds[*]}) into $bin" >&2
tmp=$(mktemp -d "$cache/bin.tmp.XXXXXX")
chmod 755 "$tmp" # mktemp makes it 0700; the binaries are for every user
trap 'rm -rf "$tmp"' EXIT
pkgs=()
for c in "${cmds[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$c"); done
(
  cd "$here"
  # Default -mod=readonly: the committed go.sum must already be complete.
  # Low priority: tests may be running beside a build.
  renice -n 19 "$BASHPID" >/dev/null
  export CGO_ENABLED=0
  go_build_progress controlplane -trimpath -ldflags "$ldflags" -o "$tmp/" -- "${pkgs[@]}"
)
got=$("$tmp/kube-apiserver" --version)
if [[ "$got" != "Kubernetes $version" ]]; then
  echo "controlplane: built kube-apiserver reports '$got', want 'Kubernetes $version'" >&2
  exit 1
fi
rm -rf "$bin"
mv "$tmp" "$bin"
want_stamp >"$stamp"
echo "controlplane: built in $(($(date +%s) - start)) s" >&2
echo "$bin"
