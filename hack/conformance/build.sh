#!/usr/bin/env bash
# Builds upstream's end-to-end test binary (e2e.test), the ginkgo CLI,
# agnhost (the test image most network specs run) and
# regression-issue-74839 (a conntrack spec's server) from source at the
# pinned Kubernetes version, into a cache outside the checkout keyed by
# version, as hack/controlplane/build.sh does for the control plane.
#
#   hack/conformance/build.sh        -> prints the binary directory (stdout)
#
# Same module graph as the control plane (this go.mod is that one plus the
# few modules only the tests import), same CGO_ENABLED=0 and -trimpath, so
# every package the two share comes from the Go build cache. Idempotent:
# when every binary exists and the stamp matches go.mod/go.sum and the
# flags, it prints the directory at once. Progress on stderr.
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
version=$(awk '{ sub(/^require[ \t]+/, "") } $1 == "k8s.io/kubernetes" && $2 ~ /^v[0-9]/ { print $2; exit }' "$here/go.mod")
if [[ -z "$version" ]]; then
  echo "conformance: no 'require k8s.io/kubernetes vX.Y.Z' line in $here/go.mod" >&2
  exit 1
fi
cache=${PROXYPROOF_CACHE:-/var/cache/proxyproof}/k8s/$version/conformance
bin=$cache/bin
stamp=$cache/stamp
bins=(e2e.test ginkgo agnhost regression-issue-74839)
images=(k8s.io/kubernetes/test/images/agnhost k8s.io/kubernetes/test/images/regression-issue-74839)

# Upstream's version ldflags (hack/lib/k8sldflags.sh).
ldflags=$(k8s_ldflags "$version")

want_stamp() { { cat "$here/go.mod" "$here/go.sum"; echo "$ldflags"; } | sha256sum | cut -d' ' -f1; }

fresh() {
  [[ -f "$stamp" && "$(cat "$stamp")" == "$(want_stamp)" ]] || return 1
  local b
  for b in "${bins[@]}"; do [[ -x "$bin/$b" ]] || return 1; done
}

start=$(date +%s)
use_cache_or_lock "$cache" "$bin"

echo "conformance: building e2e.test, ginkgo and agnhost at Kubernetes $version into $bin" >&2
tmp=$(mktemp -d "$cache/bin.tmp.XXXXXX")
chmod 755 "$tmp"
trap 'rm -rf "$tmp"' EXIT
(
  cd "$here"
  renice -n 19 "$BASHPID" >/dev/null
  export CGO_ENABLED=0
  e2e=k8s.io/kubernetes/test/e2e
  # go test -c prints nothing while it compiles; building the packages
  # e2e_test.go imports first (go build -v) gives progress, and leaves
  # go test -c only the test package and the link.
  read -ra imports <<<"$(go list -f '{{join .TestImports " "}}' "$e2e")"
  go_build_progress conformance -trimpath -- "${imports[@]}" "$e2e" github.com/onsi/ginkgo/v2/ginkgo "${images[@]}"
  echo "conformance: compiling the e2e test package and linking e2e.test" >&2
  # -vet=off: go test -c would vet every one of the ~2,200 packages
  # first (over 10 minutes here), for a binary nobody edits.
  go test -c -vet=off -trimpath -ldflags "$ldflags" -o "$tmp/e2e.test" "$e2e"
  go build -trimpath -ldflags "$ldflags" -o "$tmp/" github.com/onsi/ginkgo/v2/ginkgo "${images[@]}"
)
got=$("$tmp/e2e.test" --version 2>/dev/null | head -1 || true)
if [[ "$got" != *"$version"* ]]; then
  echo "conformance: built e2e.test --version says '$got', want $version" >&2
  exit 1
fi
rm -rf "$bin"
mv "$tmp" "$bin"
want_stamp >"$stamp"
echo "conformance: built in $(($(date +%s) - start)) s" >&2
echo "$bin"
