#!/usr/bin/env bash
# Warms the Go build cache for the programs every local cluster builds
# statically (CGO_ENABLED=0) from the checkout: the proxier, the node
# agent, the netserver, localcluster, and the suite's probe. On a cold
# cache this takes ~4 minutes here; done in `make deps`, a cluster's own
# build is only its link steps. Progress on stderr; idempotent.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib/gobuild.sh
. "$here/lib/gobuild.sh"
cd "$here/.."
export CGO_ENABLED=0
go_build_progress programs -- ./proxier/cmd/... ./clusters/local/cmd/... ./suites/framework/cmd/...
