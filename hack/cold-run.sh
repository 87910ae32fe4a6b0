#!/usr/bin/env bash
# Runs a command the way a fresh machine would meet it: in a fresh clone of
# the committed HEAD, with an empty Go build cache, Go module cache and
# proxyproof cache (kernel VM image, control plane, ...). The caches are
# new directories handed over through GOCACHE, GOMODCACHE and
# PROXYPROOF_CACHE, so this machine's own caches stay as they are and other
# work can go on beside the run. Debian packages stay installed (a fresh
# machine's install-deps takes about a minute more).
#
#   hack/cold-run.sh                      bash .ci/run, as CI does (CI=true)
#   hack/cold-run.sh -- make e2e MODE=ipvs    any command instead
#
# Options: --keep keeps the clone and caches (printed at the end);
# --rev REV clones REV instead of HEAD. Prints the wall time and exits with
# the command's status. Needs root, as CI does.
set -uo pipefail

keep=""
rev=HEAD
while (($#)); do
  case $1 in
    --keep) keep=1 ;;
    --rev) rev=$2; shift ;;
    --) shift; break ;;
    *) echo "cold-run: unknown option $1 (want --keep, --rev REV, -- COMMAND...)" >&2; exit 2 ;;
  esac
  shift
done
cmd=("$@")
((${#cmd[@]})) || cmd=(bash .ci/run)

top=$(git -C "$(dirname "$0")" rev-parse --show-toplevel) || exit 2
commit=$(git -C "$top" rev-parse --verify "$rev^{commit}") || { echo "cold-run: no commit $rev" >&2; exit 2; }
root=$(mktemp -d /var/tmp/proxyproof-cold.XXXXXX)
cleanup() {
  if [[ -n $keep ]]; then
    echo "cold-run: kept $root (clone in src/, caches in gocache/ gomodcache/ cache/)" >&2
    return
  fi
  # The module cache is read-only by design; make it removable first.
  chmod -R u+w "$root" 2>/dev/null
  rm -rf "$root"
}
trap cleanup EXIT

git clone -q --no-local "$top" "$root/src" && git -C "$root/src" checkout -q "$commit" || exit 2
mkdir -p "$root/gocache" "$root/gomodcache" "$root/cache"
echo "cold-run: ${cmd[*]} at $(git -C "$root/src" log --oneline -1) with empty caches under $root" >&2
start=$(date +%s)
(
  cd "$root/src" &&
    env CI=true GOCACHE="$root/gocache" GOMODCACHE="$root/gomodcache" PROXYPROOF_CACHE="$root/cache" \
      PATH="$PATH:/usr/local/go/bin" "${cmd[@]}" </dev/null
)
rc=$?
secs=$(($(date +%s) - start))
echo "cold-run: '${cmd[*]}' exited $rc after ${secs} s ($((secs / 60)) min $((secs % 60)) s) on empty caches" >&2
exit "$rc"
