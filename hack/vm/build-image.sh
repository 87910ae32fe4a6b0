#!/usr/bin/env bash
# Builds the kernel VM image that lets tests run against a real IPVS kernel
# (this host's kernel has no ip_vs and cannot load modules): Debian's generic
# amd64 kernel plus a busybox initramfs holding only the modules the proxier
# needs. The image lives outside the checkout, in
#   ${PROXYPROOF_CACHE:-/var/cache/proxyproof}/vm/<key>
# where <key> hashes this script and the kernel package version, and
# .../vm/current points at the newest one. A second run with the same
# inputs only checks the cache (well under a second plus one apt-cache
# query). On success it prints the image directory and nothing else.
#
# Environment:
#   PROXYPROOF_CACHE       cache root (default /var/cache/proxyproof)
#   PROXYPROOF_VM_KERNEL   kernel package (default: what linux-image-amd64
#                          depends on, e.g. linux-image-6.1.0-56-amd64)
#
# The guest side (the init script below) is described in
# proxier/kernelvm/doc.go; the two must change together.
set -euo pipefail

die() { echo "build-image: $*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "must run as root (installs packages, builds in ${PROXYPROOF_CACHE:-/var/cache/proxyproof})"

script_path=$(readlink -f "${BASH_SOURCE[0]}")
cache_root=${PROXYPROOF_CACHE:-/var/cache/proxyproof}/vm
mkdir -p "$cache_root"

# One build at a time: test packages running in parallel may all ask.
exec 9>"$cache_root/.lock"
flock 9

# Host tools: qemu runs the VM; busybox, cpio and kmod build the image;
# ipvsadm is run inside the VM from the host's filesystem.
ensure_packages() {
  local missing=() p
  for p in qemu-system-x86 busybox-static cpio kmod xz-utils binutils ipvsadm ipset iptables nftables conntrack iproute2; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  ((${#missing[@]})) || return 0
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null || die "apt-get update failed"
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null 2>&1 ||
    die "apt-get install ${missing[*]} failed"
}
ensure_packages

# kernel_candidate prints "PACKAGE VERSION" for the kernel to use: the one
# the linux-image-amd64 metapackage pins (one apt-cache call: each costs
# about a second here), or PROXYPROOF_VM_KERNEL's candidate version.
kernel_candidate() {
  if [ -n "${PROXYPROOF_VM_KERNEL:-}" ]; then
    apt-cache show --no-all-versions "$PROXYPROOF_VM_KERNEL" 2>/dev/null |
      awk -v p="$PROXYPROOF_VM_KERNEL" '/^Version:/ {print p, $2; exit}'
  else
    apt-cache show --no-all-versions linux-image-amd64 2>/dev/null |
      sed -n 's/^Depends:.*\(linux-image-[^ ,]*\) (= \([^)]*\)).*/\1 \2/p' | head -1
  fi
}
read -r kernel_pkg kernel_pkg_version < <(kernel_candidate) || true
if [ -z "${kernel_pkg:-}" ]; then
  apt-get update -qq >/dev/null || die "apt-get update failed"
  read -r kernel_pkg kernel_pkg_version < <(kernel_candidate) || true
fi
[ -n "${kernel_pkg:-}" ] && [ -n "${kernel_pkg_version:-}" ] ||
  die "apt knows no kernel package ${PROXYPROOF_VM_KERNEL:-for linux-image-amd64}"
kver=${kernel_pkg#linux-image-}

key=$( { sha256sum <"$script_path"; echo "$kernel_pkg=$kernel_pkg_version"; } | sha256sum | cut -c1-16)
image_dir=$cache_root/$key

point_current() {
  ln -sfn "$key" "$cache_root/current.tmp"
  mv -T "$cache_root/current.tmp" "$cache_root/current"
}

if [ -f "$image_dir/ready" ]; then
  [ "$(readlink "$cache_root/current" 2>/dev/null)" = "$key" ] || point_current
  echo "$image_dir"
  exit 0
fi

# Modules the guest loads, in this order. crc32c_generic comes first:
# busybox modprobe ignores softdeps, and libcrc32c (needed by ip_vs, nf_*)
# fails with "unknown symbol" unless a crc32c provider is already loaded.
# The 9p and virtio modules come next because nothing works without them.
# A name may carry module parameters after it.
modules=(
  crc32c_generic
  virtio_pci virtio_net 9pnet_virtio 9p overlay
  nf_conntrack nf_nat nf_conntrack_netlink
  ip_vs ip_vs_rr ip_vs_wrr ip_vs_lc ip_vs_wlc ip_vs_lblc ip_vs_lblcr
  ip_vs_sh ip_vs_dh ip_vs_sed ip_vs_nq ip_vs_mh ip_vs_fo ip_vs_ovf
  nf_tables nft_ct nft_nat nft_masq nft_redir nft_chain_nat nft_compat
  nft_numgen nft_fib_inet nft_fib_ipv4 nft_fib_ipv6 nft_reject_inet
  nft_reject_ipv4 nft_reject_ipv6 nft_limit nft_log nft_hash nft_objref
  x_tables ip_tables ip6_tables iptable_nat iptable_filter iptable_mangle
  iptable_raw ip6table_nat ip6table_filter ip6table_mangle ip6table_raw
  xt_comment xt_mark xt_MASQUERADE xt_addrtype xt_conntrack xt_statistic
  xt_recent xt_multiport xt_set xt_nat xt_tcpudp xt_REDIRECT xt_CT
  xt_ipvs xt_limit xt_physdev ipt_REJECT ip6t_REJECT
  ip_set ip_set_hash_ip ip_set_hash_ipport ip_set_hash_ipportip
  ip_set_hash_ipportnet ip_set_hash_net ip_set_hash_netport
  ip_set_hash_netiface ip_set_hash_ipmark ip_set_bitmap_port
  ip_set_bitmap_ip ip_set_list_set
  "dummy numdummies=0" veth bridge br_netfilter tun
)

work=$(mktemp -d "$cache_root/.build-XXXXXX")
trap 'rm -rf "$work"' EXIT

# The .deb is kept beside the images so a change to this script alone
# does not download the kernel again.
deb_dir=$cache_root/debs
mkdir -p "$deb_dir"
deb=$deb_dir/${kernel_pkg}_${kernel_pkg_version//:/%3a}_amd64.deb
if [ ! -f "$deb" ]; then
  (cd "$work" && apt-get download -qq -o APT::Sandbox::User=root "$kernel_pkg=$kernel_pkg_version" >/dev/null 2>&1) ||
    die "apt-get download $kernel_pkg=$kernel_pkg_version failed"
  mv "$work"/*.deb "$deb"
fi

full=$work/full
dpkg-deb -x "$deb" "$full" || die "dpkg-deb -x $deb failed"
[ -f "$full/boot/vmlinuz-$kver" ] || die "$deb has no /boot/vmlinuz-$kver"
depmod -b "$full" "$kver" || die "depmod on the full module tree failed"

# Collect every module file each wanted module needs, softdeps included,
# as the host's kmod resolves them from the full modules.dep.
rd=$work/initramfs
mkdir -p "$rd"/{bin,dev,proc,sys,host,ovl,etc/kernelvm,lib/modules/"$kver"}
: >"$rd/etc/kernelvm/modules"
declare -A files=()
for entry in "${modules[@]}"; do
  name=${entry%% *}
  deps=$(modprobe -C /dev/null -d "$full" -S "$kver" --show-depends "$name" 2>&1) ||
    die "kernel $kver has no module $name: $deps"
  while read -r verb path _; do
    case $verb in
      insmod) files[$path]=1 ;;
      builtin) ;;
      *) die "unexpected dependency line for $name: $verb $path" ;;
    esac
  done <<<"$deps"
  echo "$entry" >>"$rd/etc/kernelvm/modules"
done
for path in "${!files[@]}"; do
  rel=${path#"$full"/}
  mkdir -p "$rd/$(dirname "$rel")"
  cp "$path" "$rd/$rel"
done
cp "$full/lib/modules/$kver"/modules.{builtin,builtin.modinfo,order} "$rd/lib/modules/$kver/"
depmod -b "$rd" "$kver" || die "depmod on the module subset failed"

# Check the subset is closed: every wanted module resolves inside it alone.
for entry in "${modules[@]}"; do
  name=${entry%% *}
  modprobe -C /dev/null -d "$rd" -S "$kver" --show-depends "$name" >/dev/null 2>&1 ||
    die "module subset is missing a dependency of $name"
done
while read -r line; do
  for dep in ${line#*:}; do
    [ -f "$rd/lib/modules/$kver/$dep" ] || die "modules.dep names $dep, which the subset lacks"
  done
done <"$rd/lib/modules/$kver/modules.dep"

cp /bin/busybox "$rd/bin/busybox"
for applet in $("$rd/bin/busybox" --list); do
  [ "$applet" = busybox ] || ln -s busybox "$rd/bin/$applet"
done
ln -s bin "$rd/sbin"

cat >"$rd/init" <<'INIT'
#!/bin/sh
# kernelvm guest init: load modules, mount the host read-only over 9p and
# the per-run share read-write, run /run/kernelvm/job chrooted into the
# host, record its exit code and power off. Lines starting "kernelvm:" on
# the console are read by the host (proxier/kernelvm).
export PATH=/bin
say() { echo "kernelvm: $*"; }
halt() { sync; poweroff -f; sleep 5; }
fatal() { say "error: $*"; halt; }

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
exec </dev/null >/dev/console 2>&1
hostname kernelvm
# Loopback up: tests use it, and without it the local routing table does
# not exist and IPVS refuses every real server ("address not unicast").
ip link set lo up || fatal "ip link set lo up failed"

# One modprobe for all modules (each exec costs time under TCG), then
# /sys/module tells exactly which ones did not load.
names=
while read -r name params; do
  if [ -n "$params" ]; then
    # shellcheck disable=SC2086
    modprobe "$name" $params || say "modprobe $name $params: exit $?"
  else
    names="$names $name"
  fi
done </etc/kernelvm/modules
# shellcheck disable=SC2086
modprobe -a $names || say "modprobe -a: exit $?"
failed=
while read -r name _; do
  [ -d "/sys/module/$name" ] || failed="$failed $name"
done </etc/kernelvm/modules
[ -z "$failed" ] || fatal "modprobe failed:$failed"

mount -t 9p -o trans=virtio,version=9p2000.L,ro,cache=loose,msize=512000 hostroot /host ||
  fatal "mount of the host over 9p failed"
mount -t proc proc /host/proc || fatal "mount /host/proc failed"
mount -t sysfs sysfs /host/sys || fatal "mount /host/sys failed"
mount -t devtmpfs devtmpfs /host/dev || fatal "mount /host/dev failed"
mkdir -p /host/dev/pts /host/dev/shm
mount -t devpts devpts /host/dev/pts
mount -t tmpfs tmpfs /host/dev/shm
mount -t tmpfs -o mode=755 tmpfs /host/run || fatal "mount /host/run failed"
# /tmp shows the host's /tmp (test binaries live there) with writes kept
# in guest memory.
mount -t tmpfs tmpfs /ovl || fatal "mount /ovl failed"
mkdir -p /ovl/upper /ovl/work
mount -t overlay overlay -o lowerdir=/host/tmp,upperdir=/ovl/upper,workdir=/ovl/work /host/tmp ||
  fatal "overlay on /tmp failed"
# The guest kernel's modules where the host's tools look for them: the
# host's /lib/modules has none for this kernel, and without them kmod's
# modprobe fails even for a module already loaded. kube-proxy's
# --cleanup runs "modprobe -va ip_vs" first and, when that fails, skips
# its whole IPVS clean-up without a word (the virtual servers and
# kube-ipvs0 stayed behind a hand switch out of ipvs).
if [ -d /host/lib/modules ]; then
  mount -o bind /lib/modules /host/lib/modules || fatal "bind of /lib/modules failed"
else
  say "the host has no /lib/modules: modprobe in the guest finds no module"
fi
mkdir -p /host/run/kernelvm
mount -t 9p -o trans=virtio,version=9p2000.L,rw,msize=512000 kernelvm /host/run/kernelvm ||
  fatal "mount of the run share failed"
[ -f /host/run/kernelvm/job ] || fatal "no job in the run share"

say running
chroot /host /bin/sh /run/kernelvm/job >/host/run/kernelvm/output 2>&1 </dev/null
rc=$?
echo "$rc" >/host/run/kernelvm/exit.tmp && mv /host/run/kernelvm/exit.tmp /host/run/kernelvm/exit
say "exit $rc"
umount /host/run/kernelvm
halt
INIT
chmod 755 "$rd/init"

mkdir -p "$work/image"
# qemu boots the uncompressed ELF through its PVH entry point: inflating
# the xz bzImage costs ~3 s under TCG on every boot.
offset=$(LC_ALL=C grep -obUaP '\xfd7zXZ\x00' "$full/boot/vmlinuz-$kver" | head -1 | cut -d: -f1)
[ -n "$offset" ] || die "vmlinuz-$kver holds no xz payload"
tail -c +$((offset + 1)) "$full/boot/vmlinuz-$kver" | xz -dcq >"$work/image/vmlinux" 2>/dev/null || true
readelf -n "$work/image/vmlinux" 2>/dev/null | grep -q 'Xen.*0x00000012' ||
  die "vmlinux extracted from vmlinuz-$kver has no PVH entry note"
# Uncompressed: TCG is slow at inflating, and the cpio is read from the
# host page cache anyway.
(cd "$rd" && find . -print0 | LC_ALL=C sort -z | cpio --null -o -H newc --quiet) >"$work/image/initrd.img" ||
  die "cpio of the initramfs failed"
echo "$kver" >"$work/image/kernel-version"
echo "$kernel_pkg=$kernel_pkg_version" >"$work/image/kernel-package"
cp "$rd/etc/kernelvm/modules" "$work/image/modules"
touch "$work/image/ready"

rm -rf "$image_dir"
mv "$work/image" "$image_dir"
point_current
# Older images are dead weight once current moves on.
for old in "$cache_root"/*/; do
  old=${old%/}
  case ${old##*/} in "$key" | debs | current) ;; *) rm -rf "$old" ;; esac
done
find "$deb_dir" -name '*.deb' ! -path "$deb" -delete
echo "$image_dir"
