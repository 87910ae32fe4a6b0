#!/usr/bin/env bash
# Builds upstream's e2e test images with no registry and loads them into
# Docker under the exact names e2e.test asks for, so the kind provider
# loads them into every node and nothing is ever pulled:
#
#   hack/conformance/images.sh REF...    e.g. registry.k8s.io/e2e-test-images/agnhost:2.56
#
# agnhost and regression-issue-74839 come from the Kubernetes tree at the
# pinned version (hack/conformance/build.sh), userlands from Debian
# packages (hack/lib/debs.sh); the recipes are suites/conformance/images.go.
# An image without a recipe is an error naming it. Cached under
# $PROXYPROOF_CACHE/k8s/<version>/conformance/images by every input; a
# second run with nothing changed takes seconds. Needs root (Docker).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
# shellcheck source=../lib/debs.sh
. "$root/hack/lib/debs.sh"
say() { echo "conformance-images: $*" >&2; }
(($#)) || { say "usage: $0 IMAGE..."; exit 2; }

bin=$("$here/build.sh")
cache=$(dirname "$bin")/images
mkdir -p "$cache"
exec 9>"$cache/.lock"
flock 9

tool=$cache/testimages
(cd "$root" && CGO_ENABLED=0 go build -o "$tool" ./suites/conformance/cmd/testimages)
src=$(cd "$here" && go list -m -f '{{.Dir}}' k8s.io/kubernetes)
args=()
trees=()
for ref in "$@"; do
  repo=${ref%:*}
  repo=${repo##*/}
  read -ra pkgs <<<"$("$tool" debs "$ref")"
  if ((${#pkgs[@]})); then
    tree=$(debs_tree "$cache/debs" "${pkgs[@]}")
    args+=(--debs "$repo=$tree")
    trees+=("$tree")
  fi
done

key=$({
  printf '%s\n' "$@" "${trees[@]}"
  sha256sum "$bin"/agnhost "$bin"/regression-issue-74839 "$tool" | cut -d' ' -f1
} | sha256sum | cut -c1-16)
archive=$cache/$key.tar
if [[ ! -f "$archive.ids" ]]; then
  say "writing $archive"
  "$tool" write --out "$archive.tmp" --bin "$bin" --source "$src" "${args[@]}" "$@" >"$archive.ids.tmp"
  mv "$archive.tmp" "$archive"
  mv "$archive.ids.tmp" "$archive.ids"
  # Earlier keys' archives are dead weight.
  find "$cache" -maxdepth 1 -name '*.tar*' ! -name "$key.tar*" -delete
fi

# docker load only when an image is missing or another image holds its name.
while read -r name id; do
  if [[ "$(docker image inspect -f '{{.Id}}' "$name" 2>/dev/null || true)" != "$id" ]]; then
    say "docker load $archive"
    docker load -q -i "$archive" >/dev/null
    break
  fi
done <"$archive.ids"
cut -d' ' -f1 "$archive.ids"
