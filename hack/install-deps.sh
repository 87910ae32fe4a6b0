#!/usr/bin/env bash
# Installs the Debian packages the proxier, its tests and the suites need.
# Idempotent: a second run installs nothing and takes about a second.
set -euo pipefail

packages=(
  iptables      # iptables-restore/-save, nft and legacy backends
  nftables      # nft, for the nftables mode
  ipset         # the ipset CLI, for IPVS mode debugging and tests
  ipvsadm       # the IPVS CLI, for tests and rule dumps
  conntrack     # conntrack CLI, for tests and debugging
  iproute2      # ip netns, veth
  procps        # sysctl
  kmod          # modinfo/modprobe used by preflight checks
  chromium      # the report's browser test loads report.html headless
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "install-deps: installing ${missing[*]}"
  if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps: need root to install ${missing[*]} (run: sudo $0)" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
