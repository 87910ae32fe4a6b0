# shellcheck shell=bash
# apt_install_quiet PACKAGE...: installs Debian packages without letting
# their maintainer scripts start services (etcd-server would start a
# system etcd on :2379, docker.io a dockerd before our runtime shim is in
# place): the callers start what they need themselves. Runs apt-get update
# only when the first try fails (a fresh machine has no package lists).
# Returns apt-get's status.
apt_install_quiet() {
  local policy=/usr/sbin/policy-rc.d made_policy="" rc=0
  if [[ ! -e "$policy" ]]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod 755 "$policy"
    made_policy=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null ||
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null; } || rc=$?
  if [[ -n "$made_policy" ]]; then rm -f "$policy"; fi
  return "$rc"
}
