package iptables

import (
	"context"
	"strings"

	"github.com/proxyproof/proxyproof/proxier/netns"
)

// Split restores for the nft backend.
//
// iptables-nft-restore (1.8.x) keeps the names of the chains a transaction
// mentions (each rule's chain and jump target) in a sorted linked list,
// inserting each command's names by linear search (nft-cache.c,
// cache_chain_list_insert). One transaction of N rules over C chains costs
// N*C/2 string compares in userspace: at 10,000 Services x 10 endpoints
// (434,000 lines, 130,000 chains) that is hours at 100% CPU, while the
// kernel needs seconds. Bounded transactions make it linear again.
//
// The order keeps every Service atomic from a client's point of view: a
// Service's chains are complete before anything dispatches to them, and
// a chain is deleted only after nothing refers to it.
//
//  1. filter, whole, as before;
//  2. KUBE-POSTROUTING and KUBE-MARK-MASQ, which Service chains jump to;
//  3. groups of whole Services' own chains (KUBE-SVC/SVL/EXT/FW/SEP),
//     each chain flushed and refilled in one transaction; new chains are
//     unreachable until step 5;
//  4. changed bucket leaves, each whole in one transaction;
//  5. KUBE-SERVICES, KUBE-NODEPORTS and the level-1 bucket chains;
//  6. stale chains: flushed in bounded transactions, then deleted.
//
// A failure part-way leaves earlier transactions applied: still a
// consistent ruleset, and the next sync is full. The legacy backend
// replaces the whole table at each COMMIT, so it gets one transaction.

// defaultTxnLines bounds one nft transaction. Measured at 10,000 x 10:
// 500 lines 9.6 s, 2,000 lines 8.8 s (fewer round trips, still cheap
// lookups); at 2,500 x 10, 8,000 lines already cost 2.7 s against 1.5 s.
const defaultTxnLines = 2000

// addToGroup adds the Service just rendered to the current transaction,
// closing it first when it is full. A Service is never split.
func (r *renderer) addToGroup(st *syncState) {
	if n := st.group.n + st.groupRules.n; n > 0 && n+st.svcChains.n+st.svcRules.n > r.cfg.txnLines {
		r.closeGroup(st)
	}
	st.svcChains.appendTo(&st.group)
	st.svcRules.appendTo(&st.groupRules)
}

// closeGroup moves the current Service group into st.groups as one
// transaction: declarations first, then rules.
func (r *renderer) closeGroup(st *syncState) {
	if st.group.n+st.groupRules.n == 0 {
		return
	}
	st.groups.buf.WriteString("*nat\n")
	st.group.appendTo(&st.groups)
	st.groupRules.appendTo(&st.groups)
	st.groups.buf.WriteString("COMMIT\n")
	st.group.reset()
	st.groupRules.reset()
}

// splitNAT appends the nat table to b (the filter table, if any) as the
// transactions described above.
func (r *renderer) splitNAT(st *syncState, b []byte, writeTop bool, leaves []int) []byte {
	commit := func() { b = append(b, "COMMIT\n"...) }
	if writeTop {
		b = append(b, "*nat\n"...)
		b = appendChain(b, chainPostrouting)
		b = appendChain(b, chainMarkMasq)
		b = append(b, st.natMasq.buf.Bytes()...)
		commit()
	}
	r.closeGroup(st)
	b = append(b, st.groups.buf.Bytes()...)
	open := 0
	for _, i := range leaves {
		if open > 0 && open+st.leaves[i].n+1 > r.cfg.txnLines {
			commit()
			open = 0
		}
		if open == 0 {
			b = append(b, "*nat\n"...)
		}
		b = appendChain(b, bucketLeaf(i))
		b = append(b, st.leaves[i].buf.Bytes()...)
		open += st.leaves[i].n + 1
	}
	if open > 0 {
		commit()
	}
	if writeTop {
		b = append(b, "*nat\n"...)
		b = appendChain(b, chainServices)
		b = appendChain(b, chainNodePorts)
		b = append(b, st.natL1Chains.buf.Bytes()...)
		b = append(b, st.natTop.buf.Bytes()...)
		commit()
	}
	return deleteChains(b, tableNAT, st.out.deleted, r.cfg.txnLines)
}

// deleteChains appends transactions that flush, then delete, chains of
// table, at most chunk chains per transaction (all in one when chunk <= 0).
// Flushing first removes every reference among them, so the deletions
// may then go in any grouping.
func deleteChains(b []byte, table string, chains []string, chunk int) []byte {
	if len(chains) == 0 {
		return b
	}
	head := "*" + table + "\n"
	if chunk <= 0 {
		b = append(b, head...)
		for _, c := range chains {
			b = appendChain(b, c)
		}
		for _, c := range chains {
			b = appendDelete(b, c)
		}
		return append(b, "COMMIT\n"...)
	}
	for _, del := range []bool{false, true} {
		for i := 0; i < len(chains); i += chunk {
			b = append(b, head...)
			for _, c := range chains[i:min(i+chunk, len(chains))] {
				if del {
					b = appendDelete(b, c)
				} else {
					b = appendChain(b, c)
				}
			}
			b = append(b, "COMMIT\n"...)
		}
	}
	return b
}

func appendDelete(b []byte, chain string) []byte {
	b = append(b, "-X "...)
	b = append(b, chain...)
	return append(b, '\n')
}

// isNFT reports whether the iptables this runner uses is the nft backend.
func (e *Exec) isNFT(ctx context.Context) bool {
	switch e.Backend {
	case "nft":
		return true
	case "legacy":
		return false
	}
	out, err := run(ctx, netns.Cmd(e.NetNS, e.binary(""), "--version"))
	return err == nil && strings.Contains(string(out), "nf_tables")
}
