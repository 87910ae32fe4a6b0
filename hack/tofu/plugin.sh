#!/usr/bin/env bash
# Builds our Terraform provider plugin (terraform-provider-proxyproof)
# from the checkout into the Go build cache, as a set-up step of make e2e
# PROVIDER=terraform. Every terraform cluster links its own copy into its
# work directory (clusters/terraform BuildPlugin, same package, same
# environment); done here first, a compile error shows before anything is
# applied, and the cluster's own build is a cache hit (its link step). On a
# cold cache this compiles terraform-plugin-framework and its gRPC stack.
# Progress on stderr; idempotent.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../lib/gobuild.sh
. "$here/../lib/gobuild.sh"
cd "$here/../.."
go_build_progress terraform-plugin -o /dev/null -- ./clusters/terraform/cmd/terraform-provider-proxyproof
