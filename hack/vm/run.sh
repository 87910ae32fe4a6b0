#!/usr/bin/env bash
# Runs one host command inside the kernel VM (a real kernel with ip_vs) and
# exits with its exit code; its stdout and stderr come out on stdout as the
# command writes them. The shell twin of proxier/kernelvm.Run (see doc.go
# there for the guest side); build the image first with build-image.sh.
#
#   hack/vm/run.sh [options] -- COMMAND [ARGS...]
#     -e KEY=VALUE   add to the command's (otherwise clean) environment
#     -m MB          guest memory (default 1024)
#     -n NETNS       run qemu in network namespace NETNS (with -t)
#     -t TAP         give the guest eth0, backed by tap TAP (create it first
#                    to configure its host side)
#     -a CIDR        guest eth0 address (with -t)
#     -g ADDR        guest default gateway (with -t)
#     -T SECONDS     timeout for the whole run (default 600)
#     -c             copy the guest console to stderr
#
# Example: hack/vm/run.sh -- ipvsadm -Ln
set -euo pipefail

die() { echo "run.sh: $*" >&2; exit 125; }
q() { printf "'%s'" "${1//\'/\'\\\'\'}"; }

mem=1024 netns= tap= addr= gw= timeout=600 console=false env=()
while getopts "e:m:n:t:a:g:T:ch" opt; do
  case $opt in
    e) [[ $OPTARG == *=* ]] || die "-e $OPTARG: want KEY=VALUE"; env+=("$OPTARG") ;;
    m) mem=$OPTARG ;;
    n) netns=$OPTARG ;;
    t) tap=$OPTARG ;;
    a) addr=$OPTARG ;;
    g) gw=$OPTARG ;;
    T) timeout=$OPTARG ;;
    c) console=true ;;
    *) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 125 ;;
  esac
done
shift $((OPTIND - 1))
[ "${1:-}" != -- ] || shift
(($#)) || die "no command (see -h)"

image=$(readlink -f "${PROXYPROOF_CACHE:-/var/cache/proxyproof}/vm/current") ||
  die "no kernel VM image: run hack/vm/build-image.sh as root"
[ -f "$image/ready" ] || die "kernel VM image $image incomplete: run hack/vm/build-image.sh"

run=$(mktemp -d /tmp/kernelvm-run-XXXXXX)
trap 'rm -rf "$run"' EXIT
bin=$1
shift
[[ $bin != */* || $bin == /* ]] || bin=$PWD/$bin
{
  echo "#!/bin/sh"
  echo "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
  if [ -n "$tap" ]; then
    echo "ip link set eth0 up || exit 125"
    [ -z "$addr" ] || echo "ip addr add $(q "$addr") dev eth0 || exit 125"
    [ -z "$gw" ] || echo "ip route add default via $(q "$gw") dev eth0 || exit 125"
  fi
  echo "cd $(q "$PWD") || exit 125"
  printf 'exec /usr/bin/env -i PATH=$PATH HOME=/root PROXYPROOF_IN_VM=1'
  for kv in "${env[@]}"; do printf ' %s' "$(q "$kv")"; done
  printf ' %s' "$(q "$bin")"
  for a in "$@"; do printf ' %s' "$(q "$a")"; done
  echo
} >"$run/job"
: >"$run/output"

nic=(-nic none)
if [ -n "$tap" ]; then
  nic=(-netdev "tap,id=net0,ifname=$tap,script=no,downscript=no" -device virtio-net-pci,netdev=net0)
fi
prefix=()
[ -z "$netns" ] || prefix=(ip netns exec "$netns")

tail -f -n +1 "$run/output" &
tailpid=$!
qemu_rc=0
timeout --kill-after=5 "$timeout" "${prefix[@]}" qemu-system-x86_64 \
  -accel tcg -cpu max -m "$mem" -nographic -no-reboot \
  -kernel "$image/vmlinux" -initrd "$image/initrd.img" \
  -append "console=ttyS0 panic=-1 quiet mitigations=off cryptomgr.notests" \
  -fsdev local,id=hostroot,path=/,security_model=none,readonly=on,multidevs=remap \
  -device virtio-9p-pci,fsdev=hostroot,mount_tag=hostroot \
  -fsdev "local,id=kernelvm,path=$run,security_model=none" \
  -device virtio-9p-pci,fsdev=kernelvm,mount_tag=kernelvm \
  "${nic[@]}" </dev/null >"$run/console" 2>&1 || qemu_rc=$?
sleep 0.2 # let tail print the last lines
kill "$tailpid" 2>/dev/null || true
wait "$tailpid" 2>/dev/null || true

if $console; then cat "$run/console" >&2; fi
if [ ! -f "$run/exit" ]; then
  $console || tail -n 30 "$run/console" >&2
  [ "$qemu_rc" -ne 124 ] || die "timed out after ${timeout}s"
  die "the VM recorded no exit code (qemu exit $qemu_rc)"
fi
exit "$(cat "$run/exit")"
