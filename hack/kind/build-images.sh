#!/usr/bin/env bash
# Builds every image a kind cluster needs here, with no registry: from
# source through the Go module proxy and from Debian packages.
#
#   hack/kind/build-images.sh    -> the image names, one a line (stdout)
#
#   proxyproof/kind-node:<k8s version>  the node image; the control-plane
#       images kubeadm asks for (kube-apiserver, kube-controller-manager,
#       kube-scheduler, kube-proxy, etcd, CoreDNS, pause) are inside it,
#       in containerd, under kubeadm's names
#   proxyproof/proxier:dev, proxyproof/kube-proxy:<k8s version>,
#   proxyproof/netserver:latest         loaded into Docker, for the
#       provider to load into nodes
#
# Everything is cached under $PROXYPROOF_CACHE/kind (default
# /var/cache/proxyproof/kind) keyed by its inputs; a second run with
# nothing changed takes seconds. Makes Docker usable first
# (hack/kind/docker.sh) and builds the control plane if needed
# (hack/controlplane/build.sh). Progress on stderr. Needs root.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cache=${PROXYPROOF_CACHE:-/var/cache/proxyproof}/kind
export CGO_ENABLED=0
goflags=(-trimpath -ldflags "-s -w")

# shellcheck source=../lib/debs.sh
. "$root/hack/lib/debs.sh"

say() { echo "kind-images: $*" >&2; }
die() {
  say "$*"
  exit 1
}
hash_of() { sha256sum "$@" | cut -d' ' -f1 | sha256sum | cut -c1-16; }

# go_tool NAME VERSION BUILD...: the binary NAME the command BUILD writes
# into $GOBIN, cached by version. Niced: the machine has other work.
go_tool() {
  local name=$1 ver=$2 dir
  shift 2
  dir=$cache/tools/$name-$ver-$(go env GOVERSION)
  if [[ ! -x "$dir/$name" ]]; then
    say "building $name $ver from source (minutes on a cold Go cache)"
    rm -rf "$dir.tmp" && mkdir -p "$dir.tmp"
    (renice -n 19 "$BASHPID" >/dev/null && export GOBIN=$dir.tmp && "$@") >&2
    rm -rf "$dir" && mv "$dir.tmp" "$dir"
  fi
  echo "$dir/$name"
}

build_etcd() {
  (cd "$root/hack/kind/etcd" && go build "${goflags[@]}" -o "$GOBIN/etcd" go.etcd.io/etcd/server/v3)
}

# tools_tree prints a directory with the Debian packages image.ToolPackages
# names (and the libraries they need) unpacked.
tools_tree() {
  local pkgs closure uris key dir
  read -ra pkgs <<<"$("$images" tool-packages)"
  # apt reads every package list on each call (seconds); the answer only
  # changes with the lists, so it is kept per lists state.
  local lists
  lists=$({ echo "${pkgs[*]}"; declare -f tools_tree lib_closure; stat -c '%n %Y %s' /var/lib/apt/lists/*Packages* 2>/dev/null; } |
    sha256sum | cut -c1-16)
  mkdir -p "$cache/debs"
  if [[ ! -s "$cache/debs/lists-$lists" ]]; then
    closure=$(lib_closure "${pkgs[@]}")
    # shellcheck disable=SC2086
    apt-get download --print-uris $closure >"$cache/debs/lists-$lists.tmp" ||
      die "apt-get cannot find the tool packages ($closure); run apt-get update"
    mv "$cache/debs/lists-$lists.tmp" "$cache/debs/lists-$lists"
  fi
  uris=$(<"$cache/debs/lists-$lists")
  closure=$(awk '{ sub(/_.*/, "", $2); print $2 }' <<<"$uris")
  key=$(sha256sum <<<"$uris" | cut -c1-16)
  dir=$cache/debs/$key
  if [[ ! -d "$dir/root" ]]; then
    say "unpacking Debian packages: $(echo $closure)"
    rm -rf "$dir" && mkdir -p "$dir/debs" "$dir/root.tmp"
    # shellcheck disable=SC2086
    (cd "$dir/debs" && apt-get download -q $closure) >&2
    local d
    for d in "$dir"/debs/*.deb; do dpkg-deb -x "$d" "$dir/root.tmp"; done
    # Documentation is a third of the bytes and nothing reads it.
    rm -rf "$dir"/root.tmp/usr/share/{doc,info,lintian,locale,man}
    mv "$dir/root.tmp" "$dir/root"
  fi
  echo "$dir/root"
}

# ours builds our static programs into $1.
build_ours() {
  local out=$1
  mkdir -p "$out"
  (cd "$root" && go build "${goflags[@]}" -o "$out/" ./proxier/cmd/proxier ./clusters/local/cmd/netserver \
    ./suites/framework/cmd/netprobe ./hack/kind/pause)
}

# load_archive docker-loads an archive unless Docker has each of its
# images under each name already; the images the names pointed at before
# are removed when nothing else uses them.
load_archive() {
  local tar=$1 name id old stale=()
  while read -r name id; do
    old=$(docker image inspect -f '{{.Id}}' "$name" 2>/dev/null || true)
    if [[ "$old" != "$id" ]]; then
      if [[ -n "$old" ]]; then stale+=("$old"); fi
    fi
  done <"$tar.ids"
  if ((${#stale[@]} == 0)) && docker image inspect $(cut -d' ' -f1 "$tar.ids") >/dev/null 2>&1; then
    return
  fi
  say "docker load $tar"
  docker load -q -i "$tar" >/dev/null
  if ((${#stale[@]})); then docker rmi "${stale[@]}" >/dev/null 2>&1 || true; fi
}

[[ "$(id -u)" -eq 0 ]] || die "need root (Docker, debootstrap): run sudo $0"
"$root/hack/kind/docker.sh"
kube_bin=$("$root/hack/controlplane/build.sh")
version=$("$kube_bin/kube-apiserver" --version | awk '{ print $2 }')
mkdir -p "$cache/bin"
exec 9>"$cache/.lock"
flock 9

start=$(date +%s)
images=$cache/bin/images
(cd "$root" && go build -o "$images" ./hack/kind/images)
names=$("$images" names --version "$version")
etcd_tag=$(sed -n 's#^registry.k8s.io/etcd:\(.*\)-0$#\1#p' <<<"$names")
coredns_tag=$(sed -n 's#^registry.k8s.io/coredns/coredns:##p' <<<"$names")
etcd_pinned=$(awk '$1 == "go.etcd.io/etcd/server/v3" { print $2 }' "$root/hack/kind/etcd/go.mod")
[[ "v$etcd_tag" == "$etcd_pinned" ]] ||
  die "kubeadm $version asks for etcd $etcd_tag, hack/kind/etcd/go.mod pins $etcd_pinned: go get go.etcd.io/etcd/server/v3@v$etcd_tag there"
minor=${version%.*}
etcd=$(go_tool etcd "$etcd_pinned-$(hash_of "$root/hack/kind/etcd/go.sum")" build_etcd)
coredns=$(go_tool coredns "$coredns_tag" go install "${goflags[@]}" "github.com/coredns/coredns@$coredns_tag")
crictl=$(go_tool crictl "$minor.0" go install -trimpath \
  -ldflags "-s -w -X sigs.k8s.io/cri-tools/pkg/version.Version=$minor.0" "sigs.k8s.io/cri-tools/cmd/crictl@$minor.0")
tools=$(tools_tree)

# Our programs change with the checkout: rebuilt each run (seconds with a
# warm Go cache); the archives are rewritten only when a binary changed.
ours=$cache/ours
build_ours "$ours"
key=$({
  echo "$version"
  sha256sum "$kube_bin"/kube-{apiserver,controller-manager,scheduler,proxy} "$etcd" "$coredns" \
    "$ours"/{pause,proxier,netserver,netprobe} "$images" | cut -d' ' -f1
  echo "$tools"
} | sha256sum | cut -c1-16)
out=$cache/images/$key
if [[ ! -f "$out/done" ]]; then
  rm -rf "$out" && mkdir -p "$out"
  "$images" write --version "$version" --out "$out" --kube-bin "$kube_bin" --tools "$tools" \
    --etcd "$etcd" --coredns "$coredns" --pause "$ours/pause" \
    --proxier "$ours/proxier" --netserver "$ours/netserver" --netprobe "$ours/netprobe"
  touch "$out/done"
  # Earlier keys' archives are dead weight (hundreds of MB each).
  find "$cache/images" -mindepth 1 -maxdepth 1 ! -name "$key" -exec rm -rf {} +
fi

node_image=proxyproof/kind-node:$version
"$root/hack/kind/node/build.sh" "$node_image" "$version" "$kube_bin" "$crictl" "$out/controlplane.tar" "$images"
for a in proxier kube-proxy netserver; do load_archive "$out/$a.tar"; done
say "images ready in $(($(date +%s) - start)) s (archives in $out)"
echo "$node_image"
for a in proxier kube-proxy netserver; do cut -d' ' -f1 "$out/$a.tar.ids"; done
