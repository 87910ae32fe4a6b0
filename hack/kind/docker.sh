#!/usr/bin/env bash
# Makes a Docker engine usable for kind clusters on this machine:
#   1. installs Debian's docker.io when there is no dockerd (the machine
#      image ships only a docker CLI);
#   2. on a host whose capability bounding set lacks CAP_SYS_RESOURCE,
#      installs hack/kind/runcshim and makes it dockerd's default runtime,
#      so --privileged containers (kind nodes) start;
#   3. raises the host's inotify limits to what kind's known-issues page
#      asks for (every kind node runs systemd, containerd and a kubelet,
#      each holding inotify instances; at Debian's default of 128 per user
#      a third cluster's nodes died in kubeadm init here, SIGKILLed after
#      "failed to reload systemd", and kube-proxy exited with "too many
#      open files"). Only raised, never lowered;
#   4. starts dockerd in the background when it is not running (there is no
#      systemd here), its log in /var/log/proxyproof-dockerd.log, and waits
#      until `docker info` answers.
# Idempotent and quick when done. Nothing here configures a registry or
# mirror; the clusters run on --internal networks.
#
# Environment: DOCKERD_LOG (default /var/log/proxyproof-dockerd.log).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=../lib/apt.sh
. "$root/hack/lib/apt.sh"
shim=/usr/local/libexec/proxyproof/runcshim
runtime_name=proxyproof-runc
daemon_json=/etc/docker/daemon.json
log=${DOCKERD_LOG:-/var/log/proxyproof-dockerd.log}

say() { echo "docker: $*" >&2; }
die() {
  say "$*"
  exit 1
}

need_root() {
  [[ "$(id -u)" -eq 0 ]] || die "need root to $1 (run: sudo $0)"
}

# CAP_SYS_RESOURCE is capability 24.
host_lacks_sys_resource() {
  local bnd
  bnd=$(awk '/^CapBnd:/ { print $2 }' /proc/self/status)
  (( ((0x$bnd >> 24) & 1) == 0 ))
}

install_engine() {
  command -v dockerd >/dev/null && return 0
  need_root "install docker.io"
  say "installing Debian's docker.io (dockerd, containerd, runc)"
  # apt_install_quiet: the package would start dockerd through its init
  # script before the runtime shim is in place; this script starts it.
  local rc=0
  apt_install_quiet docker.io || rc=$?
  ((rc == 0)) || die "apt-get install docker.io failed (exit $rc)"
}

# install_shim builds the shim into $shim when missing or older than its
# source.
install_shim() {
  local src=$root/hack/kind/runcshim
  if [[ -x "$shim" && -z "$(find "$src" -name '*.go' ! -name '*_test.go' -newer "$shim")" ]]; then
    return 0
  fi
  need_root "install the runtime shim"
  say "building the runtime shim into $shim"
  mkdir -p "$(dirname "$shim")"
  (cd "$root" && CGO_ENABLED=0 go build -trimpath -o "$shim.tmp" ./hack/kind/runcshim)
  mv "$shim.tmp" "$shim"
}

# configure_runtime makes the shim dockerd's default runtime, keeping
# whatever else daemon.json says; sets config_changed when it edited it.
configure_runtime() {
  local want
  want=$(printf '{"runtimes":{"%s":{"path":"%s"}},"default-runtime":"%s"}' "$runtime_name" "$shim" "$runtime_name")
  if [[ ! -s "$daemon_json" ]]; then
    need_root "write $daemon_json"
    mkdir -p "$(dirname "$daemon_json")"
    echo "$want" | jq . >"$daemon_json.tmp" 2>/dev/null || echo "$want" >"$daemon_json.tmp"
    mv "$daemon_json.tmp" "$daemon_json"
    config_changed=1
    return 0
  fi
  command -v jq >/dev/null || die "$daemon_json exists; need jq to add the runtime $runtime_name to it (apt-get install jq)"
  if jq -e --arg n "$runtime_name" --arg p "$shim" \
    '.["default-runtime"] == $n and .runtimes[$n].path == $p' "$daemon_json" >/dev/null 2>&1; then
    return 0
  fi
  need_root "edit $daemon_json"
  jq --argjson w "$want" '. * $w' "$daemon_json" >"$daemon_json.tmp" ||
    die "$daemon_json is not valid JSON; fix or remove it"
  mv "$daemon_json.tmp" "$daemon_json"
  say "made $runtime_name ($shim) the default runtime in $daemon_json"
  config_changed=1
}

wait_for_docker() {
  local i
  for ((i = 0; i < 120; i++)); do
    docker info >/dev/null 2>&1 && return 0
    if [[ -n "${1:-}" ]] && ! kill -0 "$1" 2>/dev/null; then
      die "dockerd exited at once; its log $log ends with:
$(tail -n 20 "$log")"
    fi
    sleep 0.5
  done
  die "dockerd did not answer within 60 s; see $log"
}

start_daemon() {
  need_root "start dockerd"
  say "starting dockerd (log: $log)"
  # setsid: the daemon outlives this script and the make that ran it.
  setsid dockerd >>"$log" 2>&1 </dev/null &
  local pid=$!
  wait_for_docker "$pid"
  say "dockerd running (pid $pid)"
}

# raise_inotify sets a sysctl to at least want.
raise_inotify() {
  local key=$1 want=$2 have
  have=$(sysctl -n "$key")
  if (( have < want )); then
    need_root "raise $key"
    sysctl -qw "$key=$want"
    say "raised $key from $have to $want (kind nodes: one systemd, containerd and kubelet each)"
  fi
}

install_engine
raise_inotify fs.inotify.max_user_instances 512
raise_inotify fs.inotify.max_user_watches 524288
config_changed=
if host_lacks_sys_resource; then
  install_shim
  configure_runtime
fi

if docker info >/dev/null 2>&1; then
  if [[ -n "$config_changed" ]]; then
    # runtimes and default-runtime are reloadable: SIGHUP, no restart.
    pid=$(pidof dockerd || true)
    [[ -n "$pid" ]] || die "docker answers but no dockerd runs here to reload $daemon_json; restart the engine yourself"
    say "reloading dockerd ($pid) for the new $daemon_json"
    kill -HUP $pid
    sleep 1
  fi
else
  start_daemon
fi

if host_lacks_sys_resource; then
  got=$(docker info --format '{{.DefaultRuntime}}')
  [[ "$got" == "$runtime_name" ]] ||
    die "dockerd's default runtime is '$got', want $runtime_name: privileged containers would fail here (no CAP_SYS_RESOURCE)"
fi
