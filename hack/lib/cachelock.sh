# Sourced by the build scripts that cache one binary per version.
#
# use_cache_or_lock CACHE BIN: when the caller's `fresh` says the cache
# holds BIN, prints BIN and exits the calling script. Otherwise it takes
# CACHE's lock (two test binaries may call a build at once: one builds,
# the other waits) and checks again, since the one it waited for may have
# built it; it returns holding the lock (file descriptor 9) to build.
use_cache_or_lock() {
  local cache=$1 bin=$2
  if fresh; then
    echo "$bin"
    exit 0
  fi
  mkdir -p "$cache"
  exec 9>"$cache/.lock"
  flock 9
  if fresh; then
    echo "$bin"
    exit 0
  fi
}
