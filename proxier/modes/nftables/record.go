package nftables

import (
	"encoding/binary"
	"hash/maphash"
)

// svcRecord is what the mode remembers of one ServicePort between syncs:
// what a partial sync must find again to replace it. Rules and elements
// are not kept (they were most of the mode's heap, rendered again for the
// few Services a change touches): a chain is known by name here and by
// digest in familyState.chains, an element by its id in familyState.elems.
type svcRecord struct {
	chains   []string
	elemIDs  []string
	affinity []affinitySet
	lbs      []lbSlot
}

// record keeps o's names; ids are its elements' ids, in order.
func (o *svcObjects) record(ids []string) *svcRecord {
	r := &svcRecord{chains: make([]string, len(o.chains)), elemIDs: ids, affinity: o.affinity, lbs: o.lbs}
	for i := range o.chains {
		r.chains[i] = o.chains[i].name
	}
	return r
}

// chainSum stands for a chain's rule list: equal lists have equal sums,
// and different ones differ but for a 2^-64 chance per comparison.
type chainSum struct {
	n   int
	sum uint64
}

var chainSeed = maphash.MakeSeed()

func sumRules(rules []rule) chainSum {
	if len(rules) == 0 {
		return chainSum{}
	}
	var h maphash.Hash
	h.SetSeed(chainSeed)
	field := func(s string) {
		// Length-prefixed, so that no two lists write the same bytes.
		var n [8]byte
		binary.LittleEndian.PutUint64(n[:], uint64(len(s)))
		_, _ = h.Write(n[:])
		_, _ = h.WriteString(s)
	}
	for _, r := range rules {
		field(r.text)
		field(r.comment)
		field(r.nl)
	}
	return chainSum{n: len(rules), sum: h.Sum64()}
}
