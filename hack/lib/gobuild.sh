# shellcheck shell=bash
# go_build_progress LABEL [GO BUILD FLAGS...] -- PACKAGES...
#
# Runs `go build -v` and, instead of its list of package names, says on
# stderr how far along the build is every 20 s: packages compiled of those
# the build may need, and roughly how long is left at the rate so far. On
# a cold build cache the pinned Kubernetes takes ~9 minutes here; a silent
# wait that long reads as a hang. Compiler errors pass through. Set the
# environment (CGO_ENABLED...) in the caller: `go list` sees the same one.
# Returns go build's exit status. (A bash loop, not awk: Debian's mawk
# reads a pipe in blocks and would report everything at the end.)
go_build_progress() {
  local label=$1 flags=() pkgs=() total
  shift
  while (($#)); do
    if [[ $1 == -- ]]; then
      shift
      pkgs=("$@")
      break
    fi
    flags+=("$1")
    shift
  done
  echo "$label: resolving packages (a cold module cache downloads them first)" >&2
  total=$(go list -deps "${pkgs[@]}" 2>/dev/null | wc -l)
  echo "$label: compiling up to $total packages; a cold Go build cache takes minutes (progress every 20 s)" >&2
  go build -v "${flags[@]}" "${pkgs[@]}" 2>&1 | _go_build_count "$label" "$total"
  return "${PIPESTATUS[0]}"
}

# _go_build_count LABEL TOTAL reads go build -v's output.
_go_build_count() {
  local label=$1 total=$2 n=0 start=$SECONDS last=$SECONDS line now left
  while IFS= read -r line; do
    # go build -v prints one import path per compiled package.
    if [[ $line =~ ^[^[:space:]:#]+$ ]]; then
      n=$((n + 1))
      now=$SECONDS
      if ((now - last >= 20)); then
        last=$now
        left=""
        # An estimate from a handful of packages is noise (on a warm
        # cache most are never compiled at all): wait for 50.
        if ((total > n && n >= 50)); then
          left=", about $(((total - n) * (now - start) / n)) s left"
        fi
        echo "$label: $n/$total packages compiled ($((total ? 100 * n / total : 0))%) in $((now - start)) s$left" >&2
      fi
      continue
    fi
    echo "$line" >&2
  done
  echo "$label: compiled $n packages in $((SECONDS - start)) s (the rest were cached)" >&2
}
