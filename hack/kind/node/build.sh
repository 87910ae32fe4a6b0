#!/usr/bin/env bash
# Builds the kind node image from source and Debian packages, no registry:
#
#   hack/kind/node/build.sh IMAGE VERSION KUBE_BIN CRICTL CONTROLPLANE_TAR IMAGES
#
# IMAGE (e.g. proxyproof/kind-node:v1.34.4) becomes a Docker image that
# `kind create cluster --image` accepts as it accepts kindest/node:
#   1. a bookworm rootfs by debootstrap (systemd, containerd, runc, CNI
#      plugins, iptables, nftables, ...), cached as a tarball and loaded
#      into Docker once with kind's node config (IMAGES is the
#      hack/kind/images program, which writes it);
#   2. kind's node files (hack/kind/node/files), kubelet, kubeadm and
#      kubectl from KUBE_BIN, crictl, /kind/version = VERSION;
#   3. the control-plane images of CONTROLPLANE_TAR imported into the
#      image's containerd content store, as kind's own node build does
#      (containerd in a throwaway container, ctr import, docker commit).
# Called by hack/kind/build-images.sh; quick when IMAGE already carries the
# same inputs (its proxyproof.inputs label). Progress on stderr.
#
# Environment: PROXYPROOF_CACHE, DEBIAN_MIRROR (default: this host's apt
# source for bookworm).
set -euo pipefail

if (($# != 6)); then
  echo "usage: $0 IMAGE VERSION KUBE_BIN CRICTL CONTROLPLANE_TAR IMAGES" >&2
  exit 2
fi
image=$1 version=$2 kube_bin=$3 crictl=$4 controlplane=$5 images=$6
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cache=${PROXYPROOF_CACHE:-/var/cache/proxyproof}/kind
suite=bookworm

# What the node runs or kind's entrypoint and kubelet call.
packages=(systemd systemd-sysv dbus containerd runc containernetworking-plugins
  iptables nftables ipset conntrack iproute2 kmod procps socat ethtool
  util-linux mount jq ca-certificates libseccomp2 bash)

say() { echo "node-image: $*" >&2; }

debian_mirror() {
  if [[ -n "${DEBIAN_MIRROR:-}" ]]; then
    echo "$DEBIAN_MIRROR"
    return
  fi
  local m
  m=$(awk '/^URIs:/ { u = $2 } /^Suites:/ && / '"$suite"'( |$)/ { print u; exit }' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
  if [[ -z "$m" ]]; then
    m=$(awk '$1 == "deb" && $3 == "'"$suite"'" { print $2; exit }' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null || true)
  fi
  echo "${m:-http://deb.debian.org/debian}"
}

# make_rootfs OUT: debootstrap, then what kind's base Dockerfile does to
# the packages (only our units start; journald leaves /dev/kmsg alone).
make_rootfs() {
  local out=$1 tmp
  command -v debootstrap >/dev/null || {
    say "installing debootstrap"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
  }
  tmp=$(mktemp -d "$cache/rootfs/build.XXXXXX")
  # shellcheck disable=SC2064
  trap "rm -rf '$tmp'" RETURN
  mkdir -p "$cache/debootstrap"
  say "debootstrap $suite from $mirror (${#packages[@]} packages); about a minute"
  debootstrap --variant=minbase --cache-dir="$cache/debootstrap" \
    --include="$(
      IFS=,
      echo "${packages[*]}"
    )" "$suite" "$tmp/root" "$mirror" >&2
  chroot "$tmp/root" sh -euc '
    find /lib/systemd/system/sysinit.target.wants/ -name systemd-tmpfiles-setup.service -delete
    rm -f /lib/systemd/system/multi-user.target.wants/* /etc/systemd/system/*.wants/* \
      /lib/systemd/system/local-fs.target.wants/* /lib/systemd/system/sockets.target.wants/*udev* \
      /lib/systemd/system/sockets.target.wants/*initctl* /lib/systemd/system/basic.target.wants/*
    echo ReadKMsg=no >>/etc/systemd/journald.conf
    rm -rf /var/cache/apt/archives/*.deb /var/lib/apt/lists/* /var/log/*.log
    : >/etc/resolv.conf; : >/etc/hostname'
  tar -C "$tmp/root" --numeric-owner -cf "$out.tmp" .
  mv "$out.tmp" "$out"
}

# rootfs_image prints the Docker image of the cached rootfs, importing it
# (and building the rootfs) when missing.
rootfs_image() {
  local key tar ref
  key=$({ echo "$suite $mirror ${packages[*]}"; declare -f make_rootfs; } | sha256sum | cut -c1-16)
  tar=$cache/rootfs/$key.tar
  ref=proxyproof/kind-node-rootfs:$key
  if docker image inspect "$ref" >/dev/null 2>&1; then
    echo "$ref"
    return
  fi
  mkdir -p "$cache/rootfs"
  [[ -f "$tar" ]] || make_rootfs "$tar"
  say "docker load of $tar as $ref"
  "$images" rootfs --rootfs "$tar" --name "$ref" | docker load -q >&2
  echo "$ref"
}

# inputs_key names everything the node image is made of.
inputs_key() {
  {
    echo "$version $base"
    sha256sum "$kube_bin"/kubelet "$kube_bin"/kubeadm "$kube_bin"/kubectl "$crictl" | cut -d' ' -f1
    cat "$controlplane.ids"
    (cd "$here/files" && find . -type f -print0 | sort -z | xargs -0 sha256sum)
    declare -f configure import_images
  } | sha256sum | cut -c1-16
}

# configure runs in the build container: what kind's Dockerfile and node
# build do after copying the files in.
configure() {
  set -euo pipefail
  local version=$1 pause=$2
  chmod 755 /kind/bin/* /usr/local/bin/entrypoint /usr/bin/kubelet /usr/bin/kubeadm /usr/bin/kubectl /usr/local/bin/crictl
  # Debian puts the CNI plugins under /usr/lib/cni; kubelet and every CNI
  # config look in /opt/cni/bin.
  mkdir -p /opt/cni/bin /etc/kubernetes/manifests /kind/manifests
  for p in /usr/lib/cni/*; do ln -sf "$p" "/opt/cni/bin/${p##*/}"; done
  ctr oci spec |
    jq '.hooks.createContainer[.hooks.createContainer | length] |= . + {"path": "/kind/bin/mount-product-files.sh"}' |
    jq 'del(.process.rlimits)' >/etc/containerd/cri-base.json
  sed -i "s#@PAUSE_IMAGE@#$pause#" /etc/containerd/config.toml
  systemctl enable kubelet.service containerd.service undo-mount-hacks.service
  systemctl mask systemd-binfmt.service
  printf '%s' "$version" >/kind/version
}

# import_images runs in the build container: containerd just for the
# import; --no-unpack keeps only the content (no snapshots on this
# container's overlay). ctr 1.6 cannot pin (--label); kind's kubelet
# config (imageGCHighThresholdPercent: 100) keeps them.
import_images() {
  set -euo pipefail
  nohup containerd >/tmp/containerd.log 2>&1 &
  local i
  for ((i = 0; i < 50; i++)); do
    [[ -S /run/containerd/containerd.sock ]] && break
    sleep 0.2
  done
  ctr version >/dev/null || { cat /tmp/containerd.log >&2; return 1; }
  ctr --namespace=k8s.io images import \
    --all-platforms --no-unpack --digests - >&2
  ctr --namespace=k8s.io images list -q
  pkill containerd
  for ((i = 0; i < 50; i++)); do pgrep -x containerd >/dev/null || break; sleep 0.2; done
  rm -rf /tmp/containerd.log /run/containerd
}

for f in "$kube_bin"/kubelet "$kube_bin"/kubeadm "$kube_bin"/kubectl "$crictl" "$controlplane" "$controlplane.ids" "$images"; do
  [[ -f "$f" ]] || { say "no $f: run hack/kind/build-images.sh, which makes it"; exit 1; }
done
mirror=$(debian_mirror)
base=$(rootfs_image)
key=$(inputs_key)
if [[ "$(docker image inspect -f '{{index .Config.Labels "proxyproof.inputs"}}' "$image" 2>/dev/null)" == "$key" ]]; then
  exit 0
fi

start=$(date +%s)
pause=$(grep -o '^registry.k8s.io/pause:[^ ]*' "$controlplane.ids" | head -1)
[[ -n "$pause" ]] || { say "$controlplane.ids names no pause image"; exit 1; }
ctr_name=proxyproof-node-build-$$
trap 'docker rm -f -v "$ctr_name" >/dev/null 2>&1 || true' EXIT
docker run -d --name "$ctr_name" --entrypoint sleep "$base" infinity >/dev/null
say "building $image in container $ctr_name"
tar -C "$here/files" --owner=0 --group=0 --exclude=README.md -cf - . | docker cp - "$ctr_name:/"
for b in kubelet kubeadm kubectl; do docker cp "$kube_bin/$b" "$ctr_name:/usr/bin/$b"; done
docker cp "$crictl" "$ctr_name:/usr/local/bin/crictl"
docker exec "$ctr_name" bash -c "$(declare -f configure); configure '$version' '$pause'"
have=$(docker exec -i "$ctr_name" bash -c "$(declare -f import_images); import_images" <"$controlplane")
# Every image kubeadm asks for must be in the node, or it would pull.
while read -r name _; do
  # containerd spells Docker Hub names in full.
  [[ "${name%%/*}" == *.* ]] || name=docker.io/$name
  grep -qxF "$name" <<<"$have" || { say "$name missing from the node's containerd after import"; exit 1; }
done <"$controlplane.ids"
previous=$(docker image inspect -f '{{.Id}}' "$image" 2>/dev/null || true)
docker commit \
  --change 'ENTRYPOINT ["/usr/local/bin/entrypoint", "/sbin/init"]' \
  --change "LABEL proxyproof.inputs=$key" \
  "$ctr_name" "$image" >/dev/null
# The image the name pointed at before goes, unless a node still runs it.
if [[ -n "$previous" ]]; then docker rmi "$previous" >/dev/null 2>&1 || true; fi
say "built $image in $(($(date +%s) - start)) s"
