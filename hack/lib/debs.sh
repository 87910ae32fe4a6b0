# shellcheck shell=bash
# Debian packages as image content, no registry: the packages named and
# the libraries they link, unpacked with dpkg-deb -x (no maintainer
# scripts run). Used by hack/kind/build-images.sh and
# hack/conformance/images.sh.

# lib_closure prints the packages named and, recursively, the libraries
# they depend on (the first of alternatives). Only lib* packages are
# followed: maintainer-script tools (dpkg, perl, debconf) have no place in
# an image that never runs them. One apt-cache call per level: each call
# loads the whole package cache.
lib_closure() {
  local -A seen=()
  local level=("$@") next dep
  while ((${#level[@]})); do
    for dep in "${level[@]}"; do seen[$dep]=1; done
    next=()
    while read -r dep; do
      if [[ "$dep" == lib* && -z "${seen[$dep]:-}" ]]; then
        seen[$dep]=1
        next+=("$dep")
      fi
    done < <(apt-cache depends --no-recommends --no-suggests --no-conflicts --no-breaks \
      --no-replaces --no-enhances "${level[@]}" |
      awk '/^ *[|]?(Pre)?Depends:/ { if (!skip) print $2; skip = ($1 ~ /^[|]/) }' | grep -v '^<' | sort -u)
    level=("${next[@]}")
  done
  printf '%s\n' "${!seen[@]}" | sort
}


# debs_tree CACHE PKG... prints a directory holding PKGs and their library
# closure unpacked, cached under CACHE by the exact package versions apt
# would download (a changed package list gives a new tree).
debs_tree() {
  local cache=$1 uris closure key dir d lists
  shift
  # The closure takes apt-cache a minute on a busy machine and only
  # changes with the package lists: kept per lists state.
  lists=$cache/uris-$({ echo "$*"; declare -f lib_closure; stat -c '%n %Y %s' /var/lib/apt/lists/*Packages* 2>/dev/null; } |
    sha256sum | cut -c1-16)
  mkdir -p "$cache"
  if [[ ! -s "$lists" ]]; then
    # shellcheck disable=SC2046
    apt-get download --print-uris $(lib_closure "$@") >"$lists.tmp" ||
      { echo "debs: apt-get cannot find $* (run apt-get update)" >&2; return 1; }
    mv "$lists.tmp" "$lists"
  fi
  uris=$(<"$lists")
  closure=$(awk '{ sub(/_.*/, "", $2); print $2 }' <<<"$uris")
  key=$(sha256sum <<<"$uris" | cut -c1-16)
  dir=$cache/$key
  if [[ ! -d "$dir/root" ]]; then
    echo "debs: unpacking Debian packages: $(echo $closure)" >&2
    rm -rf "$dir" && mkdir -p "$dir/debs" "$dir/root.tmp"
    # shellcheck disable=SC2086
    (cd "$dir/debs" && apt-get download -q $closure) >&2
    for d in "$dir"/debs/*.deb; do dpkg-deb -x "$d" "$dir/root.tmp"; done
    # Documentation is a third of the bytes and nothing reads it.
    rm -rf "$dir"/root.tmp/usr/share/{doc,info,lintian,locale,man}
    mv "$dir/root.tmp" "$dir/root"
  fi
  echo "$dir/root"
}
