package nftables

import (
	"context"
	"errors"
	"fmt"
	"syscall"

	v1 "k8s.io/api/core/v1"
	"k8s.io/klog/v2"
	"sigs.k8s.io/knftables"
)

// batch is one transaction of per-Service objects: chains, their rules,
// affinity sets and the elements of the dispatch maps.
type batch interface {
	addChain(name string)
	flushChain(name string)
	deleteChain(name string)
	addRule(chain string, r rule)
	addAffinitySet(a affinitySet)
	addEndpointsMap(name string)
	deleteSet(name string)
	flushSet(name string)
	addElem(e elem)
	deleteElem(e elem)
	size() int
}

// backend is where per-Service objects go. The skeleton (table, base and
// stock chains, map definitions) always goes through knftables; it is small
// and written only on full syncs.
type backend interface {
	// newBatch starts a transaction; sizeHint is the bytes it is expected
	// to take, so a full sync's buffer does not double its way up.
	newBatch(rc *renderCtx, sizeHint int) batch
	// run sends b as one transaction; b is spent afterwards.
	run(ctx context.Context, b batch) error
	// owned lists the per-Service chains and affinity sets in the kernel.
	owned(ctx context.Context) (chains, sets map[string]bool, err error)
	// generation is the ruleset generation now; ok is false when the
	// backend cannot tell, and then every requested full sync runs.
	generation() (gen uint32, ok bool)
}

// nlBackend writes straight to the kernel over netlink; see kernel.go for
// why it is the default.
type nlBackend struct {
	conn *nlConn
	fam  byte
}

func newNLBackend(conn *nlConn, f v1.IPFamily) *nlBackend {
	fam := byte(2) // NFPROTO_IPV4
	if f == v1.IPv6Protocol {
		fam = 10
	}
	return &nlBackend{conn: conn, fam: fam}
}

type nlWriter struct {
	*nlBatch
	keyType, keyLen uint32
	epUdata         []byte
}

func (w *nlWriter) addAffinitySet(a affinitySet) { w.nlBatch.addAffinitySet(a, w.keyType, w.keyLen) }

func (w *nlWriter) addEndpointsMap(name string) {
	// data: address . inet_service, each field padded to 4 bytes
	w.nlBatch.addEndpointsMap(name, w.keyType<<6|13, w.keyLen+4, w.epUdata)
}

func (be *nlBackend) newBatch(rc *renderCtx, sizeHint int) batch {
	w := &nlWriter{nlBatch: newNLBatch(be.fam, tableName, sizeHint), keyType: 7, keyLen: 4, epUdata: endpointsMapUdataV4} // TYPE_IPADDR
	if rc.family == v1.IPv6Protocol {
		w.keyType, w.keyLen, w.epUdata = 8, 16, endpointsMapUdataV6 // TYPE_IP6ADDR
	}
	return w
}

func (be *nlBackend) run(_ context.Context, b batch) error {
	nb := b.(*nlWriter).nlBatch
	defer nb.release()
	return be.conn.run(nb)
}

func (be *nlBackend) generation() (uint32, bool) {
	gen, err := be.conn.generation()
	if err != nil {
		klog.V(2).InfoS("Reading the nftables ruleset generation failed; the next requested full sync runs", "err", err)
		return 0, false
	}
	return gen, true
}

func (be *nlBackend) owned(_ context.Context) (chains, sets map[string]bool, err error) {
	chains, sets = map[string]bool{}, map[string]bool{}
	all, err := be.conn.names(be.fam, tableName, nftMsgGetChain)
	if err != nil {
		return chains, sets, fmt.Errorf("list chains: %w", err)
	}
	for n := range all {
		if isServiceChainName(n) {
			chains[n] = true
		}
	}
	all, err = be.conn.names(be.fam, tableName, nftMsgGetSet)
	if err != nil && !errors.Is(err, syscall.ENOENT) {
		return chains, sets, fmt.Errorf("list sets: %w", err)
	}
	for n := range all {
		if isAffinitySetName(n) || isEndpointsMapName(n) {
			sets[n] = true
		}
	}
	return chains, sets, nil
}

// nftBackend sends per-Service objects as nft text through knftables: the
// Fake in unit tests, and the real nft for comparison in the benchmark.
type nftBackend struct{ nft knftables.Interface }

type nftWriter struct {
	tx *knftables.Transaction
	rc *renderCtx
}

func (be *nftBackend) newBatch(rc *renderCtx, _ int) batch {
	return &nftWriter{tx: be.nft.NewTransaction(), rc: rc}
}

func (be *nftBackend) run(ctx context.Context, b batch) error {
	return be.nft.Run(ctx, b.(*nftWriter).tx)
}

// generation: knftables does not say, so requested full syncs always run.
func (be *nftBackend) generation() (uint32, bool) { return 0, false }

func (w *nftWriter) addChain(name string)   { w.tx.Add(&knftables.Chain{Name: name}) }
func (w *nftWriter) flushChain(name string) { w.tx.Flush(&knftables.Chain{Name: name}) }
func (w *nftWriter) deleteChain(name string) {
	w.tx.Delete(&knftables.Chain{Name: name})
}
func (w *nftWriter) addRule(chain string, r rule) { w.tx.Add(r.object(chain)) }
func (w *nftWriter) addAffinitySet(a affinitySet) { w.tx.Add(affinityObject(w.rc, a)) }
func (w *nftWriter) addEndpointsMap(name string)  { w.tx.Add(endpointsMapObject(w.rc, name)) }
func (w *nftWriter) deleteSet(name string)        { w.tx.Delete(&knftables.Set{Name: name}) }
func (w *nftWriter) flushSet(name string) {
	if name == clusterIPsSet || name == hairpinSet {
		w.tx.Flush(&knftables.Set{Name: name})
	} else {
		w.tx.Flush(&knftables.Map{Name: name})
	}
}
func (w *nftWriter) addElem(e elem)    { w.tx.Add(e.object()) }
func (w *nftWriter) deleteElem(e elem) { w.tx.Delete(e.object()) }
func (w *nftWriter) size() int         { return w.tx.NumOperations() }

func (be *nftBackend) owned(ctx context.Context) (chains, sets map[string]bool, err error) {
	chains, sets = map[string]bool{}, map[string]bool{}
	if names, err := be.nft.List(ctx, "chains"); err == nil {
		for _, n := range names {
			if isServiceChainName(n) {
				chains[n] = true
			}
		}
	} else if !knftables.IsNotFound(err) {
		return chains, sets, fmt.Errorf("list chains: %w", err)
	}
	if names, err := be.nft.List(ctx, "sets"); err == nil {
		for _, n := range names {
			if isAffinitySetName(n) || isEndpointsMapName(n) {
				sets[n] = true
			}
		}
	} else if !knftables.IsNotFound(err) {
		return chains, sets, fmt.Errorf("list sets: %w", err)
	}
	return chains, sets, nil
}
