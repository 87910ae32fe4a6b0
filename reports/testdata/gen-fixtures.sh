#!/usr/bin/env bash
# Regenerates the Ginkgo JSON fixtures under reports/testdata/runs from the
# fake suite, with real Ginkgo. Needs no cluster. The fake suite imports the
# Ginkgo DSL, whose dependencies (Masterminds/semver, x/mod, x/tools) go.mod
# may not list yet, so
# this runs with a scratch copy of go.mod (-modfile) and never edits the real one.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
cp "$root/go.mod" "$scratch/go.mod"; cp "$root/go.sum" "$scratch/go.sum"
cd "$root"
go list -modfile="$scratch/go.mod" -mod=mod -test ./reports/testdata/fakesuite >/dev/null
go test -modfile="$scratch/go.mod" -c -o "$scratch/fake.test" ./reports/testdata/fakesuite

run() { # run <run dir> <mode> [variant] [ginkgo args...]
	local dir=$1 mode=$2 variant=$3; shift 3
	rm -rf "$dir/$mode"; mkdir -p "$dir/$mode"
	FAKE_MODE=$mode FAKE_VARIANT=$variant FAKE_MODE_DIR="$dir/$mode" \
		"$scratch/fake.test" -ginkgo.seed=1 -ginkgo.json-report="$dir/$mode/ginkgo.json" "$@" >/dev/null || true
}
for m in iptables nftables ipvs; do
	run "$here/runs/before" "$m" ""
	run "$here/runs/after" "$m" after
done
run "$here/runs/filtered" iptables "" -ginkgo.label-filter=nothing-matches
# Ginkgo paths are absolute; keep fixtures independent of the checkout.
find "$here/runs" -name ginkgo.json -exec sed -i -e "s|$root/||g" -e "s|\"$root\"|\".\"|g" {} +
echo "fixtures regenerated under $here/runs"
