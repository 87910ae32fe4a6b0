// Package census reads, for every node of a cluster, which proxier mode it
// really runs: the check operators do by hand after a rollout that may have
// missed nodes. Per node it records
//
//   - kernel: `uname -r` on the node (a local IPVS node's is the kernel
//     VM's, not the host's);
//   - declared: what the node's proxier says at GET /proxyMode on its
//     metrics port (10249, as kube-proxy serves it);
//   - carried: the mode whose Service state the node's kernel holds:
//     kube-proxy's iptables chains (KUBE-SERVICES and the per-Service
//     chains, in nat or filter, either iptables backend), the "kube-proxy"
//     nftables table (ip or ip6), IPVS virtual servers or kube-ipvs0;
//   - leftovers: the state of any other mode found beside it.
//
// A node fails the census (Node.Problems) when its proxier declares or its
// kernel carries a mode other than the one it was made to run, when either
// cannot be read, or when another mode left state behind.
//
// The package holds the one reader per mode of a node's kernel (iptables.go,
// nftables.go, ipvs.go): the census, the suites' failure dumps (Dumps) and
// the bench's kernel probes all read through it. It speaks to a cluster only
// through clusters.Cluster (ExecOnNode, HTTP from the node with the probe),
// so it works on every provider that can reach its nodes. It must never
// change a node.
//
// JSON (run.json carries one Census per census taken, reports/run.ModeMeta):
//
//	{
//	  "when": "start",                  // "end", or the caller's label (e.g. "after migration")
//	  "at": "2026-12-06T11:40:00Z",
//	  "nodes": [{
//	    "name": "n3",
//	    "expected": "ipvs",             // the mode the node was made to run
//	    "kernel": "6.1.0-28-amd64",     // uname -r on the node
//	    "declared": "ipvs",             // GET /proxyMode; "" if unanswered
//	    "carried": "ipvs",              // "" when no mode's state is there
//	    "leftovers": ["nftables"],      // other modes' state found; omitted when none
//	    "evidence": {"ipvs": "3 virtual servers, kube-ipvs0", "nftables": "table ip kube-proxy"},
//	    "problems": ["leftover nftables state: table ip kube-proxy"] // omitted when the node is fine
//	  }]
//	}
//
// A census passes when no node has problems (Census.OK).
package census
