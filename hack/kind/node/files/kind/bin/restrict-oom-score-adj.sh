#!/bin/sh
# proxyproof: lowering a process's oom_score_adj needs CAP_SYS_RESOURCE.
# Where the host's capability bounding set lacks it (so this privileged node
# lacks it too), runc fails every pod whose oom_score_adj kubelet lowers
# (static pods ask for -998) with "can't get final child's PID from pipe".
# containerd's restrict_oom_score_adj keeps pods at or above containerd's
# own score instead, as kind does for rootless nodes.
set -eu
bnd=$(awk '/^CapBnd:/ { print $2 }' /proc/self/status)
if [ $(((0x$bnd >> 24) & 1)) -eq 0 ]; then
  sed -i 's/restrict_oom_score_adj = false/restrict_oom_score_adj = true/' /etc/containerd/config.toml
fi
