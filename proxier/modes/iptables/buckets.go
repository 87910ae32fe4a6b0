package iptables

import (
	"fmt"
	"net/netip"

	v1 "k8s.io/api/core/v1"
)

// Dispatch buckets. Upstream's KUBE-SERVICES holds one rule per Service
// address and port, and every new connection (to a Service or not) walks
// it: ~20,000 rules at 10,000 Services. Above a threshold of Service ports
// we keep the chain model but put a two-level tree in front of the
// per-Service dispatch rules, keyed by the low byte of the destination
// address (ClusterIPs are allocated at random, so the byte is uniform):
//
//	KUBE-SERVICES  -d 0.0.0.10/0.0.0.15 -j KUBE-SVCB-A       16 rules
//	KUBE-SVCB-A    -d 0.0.0.58/0.0.0.255 -j KUBE-SVCB-3A     16 rules each
//	KUBE-SVCB-3A   upstream's dispatch rules whose destination ends in 0x3a
//	KUBE-SERVICES  ... -j KUBE-NODEPORTS                      last, as upstream
//
// A new connection then traverses at most 16+16 jumps plus 1/256 of the
// dispatch rules. Both iptables backends accept and match the
// non-contiguous masks (IPv6: "::3a/::ff"). The 272 chains always exist
// together while bucketing is on and are deleted, as stale chains, when
// the view drops below the threshold.
const (
	prefixSVCB = "KUBE-SVCB-"
	// defaultBucketThreshold is the number of Service ports above which
	// KUBE-SERVICES is bucketed; below it the ruleset is upstream's, byte
	// for byte.
	defaultBucketThreshold = 1000
	bucketLeaves           = 256
)

// bucketLevel1 is the chain for the low nibble n of the destination.
func bucketLevel1(n int) string { return fmt.Sprintf("%s%X", prefixSVCB, n&0xf) }

// bucketLeaf is the chain for low byte b of the destination.
func bucketLeaf(b int) string { return fmt.Sprintf("%s%02X", prefixSVCB, b&0xff) }

// lowByte is the last byte of an address that newSvcInfo already
// validated and printed.
func lowByte(addr string) int {
	a, err := netip.ParseAddr(addr)
	if err != nil {
		return 0
	}
	b := a.As16()
	return int(b[15])
}

// byteMatch is "-d <b>/<mask>" on the low byte of the destination.
func byteMatch(family v1.IPFamily, b, mask int) string {
	if family == v1.IPv6Protocol {
		return fmt.Sprintf("::%x/::%x", b, mask)
	}
	return fmt.Sprintf("0.0.0.%d/0.0.0.%d", b, mask)
}

// bucketThreshold is the configured threshold; negative turns bucketing off.
func (r *renderer) bucketThreshold() int {
	if r.cfg.bucketThreshold == 0 {
		return defaultBucketThreshold
	}
	return r.cfg.bucketThreshold
}

// bucketTree writes KUBE-SERVICES' jumps to the level-1 chains and their
// jumps to the leaves; the chains are declared by the caller.
func (r *renderer) bucketTree(st *syncState) {
	for n := range 16 {
		l1 := bucketLevel1(n)
		st.natL1Chains.chain(l1)
		st.natTop.write("-A", chainServices, "-d", byteMatch(r.cfg.family, n, 0xf), "-j", l1)
		st.out.active[l1] = struct{}{}
	}
	for n := range 16 {
		for hi := range 16 {
			b := hi<<4 | n
			st.natTop.write("-A", bucketLevel1(n), "-d", byteMatch(r.cfg.family, b, 0xff), "-j", bucketLeaf(b))
		}
	}
	for b := range bucketLeaves {
		st.out.active[bucketLeaf(b)] = struct{}{}
	}
}

// dispatch writes one rule of KUBE-SERVICES for destination addr: into
// the chain itself, or into addr's leaf when bucketed.
func (r *renderer) dispatch(st *syncState, addr string, words ...any) {
	if st.leaves == nil {
		st.natTop.write(append([]any{"-A", chainServices}, words...)...)
		return
	}
	b := lowByte(addr)
	st.leaves[b].write(append([]any{"-A", bucketLeaf(b)}, words...)...)
}
