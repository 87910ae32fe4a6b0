#!/usr/bin/env bash
# Builds OpenTofu from source at a pinned version, through the Go module
# proxy (no GitHub download, no registry), into a cache outside the checkout
# keyed by version: the binary PROVIDER=terraform runs by default (TF_BIN).
#
#   hack/tofu/build.sh        -> prints the tofu binary's path (stdout)
#
# `go install github.com/opentofu/opentofu/cmd/tofu@vX` refuses (the module
# has replace directives), so the build runs inside the module's own
# directory from `go mod download -json`, where its go.mod and replaces
# apply. Idempotent: when the binary and its stamp are there it prints the
# path at once. Progress on stderr, like hack/controlplane/build.sh.
#
# Environment: PROXYPROOF_CACHE (default /var/cache/proxyproof),
# TOFU_VERSION (default the pinned one below).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../lib/gobuild.sh
. "$here/../lib/gobuild.sh"
# shellcheck source=../lib/cachelock.sh
. "$here/../lib/cachelock.sh"
version=${TOFU_VERSION:-v1.12.6}
module=github.com/opentofu/opentofu
cache=${PROXYPROOF_CACHE:-/var/cache/proxyproof}/tofu/$version
bin=$cache/tofu
stamp=$cache/stamp
# dev=no: a release build, so `tofu version` says the plain version.
ldflags="-s -w -X $module/version.dev=no"
want_stamp() { echo "$module@$version $ldflags $(go env GOVERSION)" | sha256sum | cut -d' ' -f1; }
fresh() { [[ -x "$bin" && -f "$stamp" && "$(cat "$stamp")" == "$(want_stamp)" ]]; }

start=$(date +%s)
use_cache_or_lock "$cache" "$bin"

echo "tofu: downloading $module@$version through the Go module proxy" >&2
dir=$(cd "$cache" && GOFLAGS=-mod=mod go mod download -json "$module@$version" |
  sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
if [[ -z "$dir" || ! -f "$dir/go.mod" ]]; then
  echo "tofu: go mod download $module@$version gave no module directory" >&2
  exit 1
fi
tmp=$(mktemp -d "$cache/bin.tmp.XXXXXX")
chmod 755 "$tmp"
trap 'rm -rf "$tmp"' EXIT
(
  cd "$dir"
  # Low priority: tests may be running beside a build.
  renice -n 19 "$BASHPID" >/dev/null
  export CGO_ENABLED=0
  go_build_progress tofu -trimpath -ldflags "$ldflags" -o "$tmp/tofu" -- ./cmd/tofu
)
# An empty CLI config: a TF_CLI_CONFIG_FILE naming a missing file makes
# tofu print a warning before its version.
got=$(TF_CLI_CONFIG_FILE=/dev/null "$tmp/tofu" version | grep -m1 '^OpenTofu ' || true)
if [[ "$got" != "OpenTofu $version" ]]; then
  echo "tofu: built binary reports '$got', want 'OpenTofu $version'" >&2
  exit 1
fi
mv "$tmp/tofu" "$bin"
want_stamp >"$stamp"
echo "tofu: built $version in $(($(date +%s) - start)) s" >&2
echo "$bin"
