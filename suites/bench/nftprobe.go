package bench

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	vnetns "github.com/vishvananda/netns"
)

// nftChain reads chains of table ip kube-proxy over netlink: the kernel
// filters each dump to one chain, where `nft list chain` would fetch every
// chain of the table first (100+ ms at 2,000 Services). One socket is kept
// open for the row: a probe reads several chains back to back.
type nftChain struct {
	ns    vnetns.NsHandle
	conn  *nftables.Conn
	table *nftables.Table
}

func openNFTChain(ns string) (*nftChain, error) {
	h, err := vnetns.GetFromName(ns)
	if err != nil {
		return nil, fmt.Errorf("network namespace %q: %w", ns, err)
	}
	conn, err := nftables.New(nftables.WithNetNSFd(int(h)), nftables.AsLasting())
	if err != nil {
		h.Close()
		return nil, fmt.Errorf("nftables in %q: %w", ns, err)
	}
	return &nftChain{ns: h, conn: conn, table: &nftables.Table{Name: "kube-proxy", Family: nftables.TableFamilyIPv4}}, nil
}

func (c *nftChain) close() {
	_ = c.conn.CloseLasting()
	c.ns.Close()
}

// chainRead is what one chain's rules say about where traffic goes: the
// dnat targets ("ip/port") and the chains it jumps or goes to.
type chainRead struct {
	dnats []string
	next  []string
}

// dnats are the endpoints traffic entering chain is DNATed to, whichever
// shape the proxier writes: upstream's (a `numgen ... vmap` to endpoint
// chains that dnat), ours (the service chain's own rules dnat, through a
// cascade of numgen rules or a numgen lookup in a map of endpoints shared
// by Services; endpoint chains only behind ClientIP affinity), or a mix.
// It reads chain and each chain that chain jumps or goes to, directly or
// through a verdict map: one level, which every shape needs and no more. A
// chain or map that is not there (yet, or any more) holds nothing. Nothing
// is kept from one call to the next (the bench polls for changes as they
// land), but within a call each map is read once however many rules look
// it up.
func (c *nftChain) dnats(chain string) (map[string]bool, error) {
	out := map[string]bool{}
	maps := map[string][]nftables.SetElement{}
	first, err := c.read(chain, maps)
	if err != nil {
		return nil, err
	}
	for _, d := range first.dnats {
		out[d] = true
	}
	seen := map[string]bool{chain: true}
	for _, next := range first.next {
		if seen[next] {
			continue
		}
		seen[next] = true
		r, err := c.read(next, maps)
		if err != nil {
			return nil, fmt.Errorf("nft chain %s: %w", chain, err)
		}
		for _, d := range r.dnats {
			out[d] = true
		}
	}
	return out, nil
}

// read dumps one chain's rules and reads each rule's dnat and verdicts.
// maps holds the elements of the named maps this dnats call has read.
func (c *nftChain) read(chain string, maps map[string][]nftables.SetElement) (chainRead, error) {
	rules, err := c.conn.GetRules(c.table, &nftables.Chain{Name: chain, Table: c.table})
	if err != nil {
		if notThere(err) {
			return chainRead{}, nil
		}
		return chainRead{}, fmt.Errorf("nft chain %s: %w", chain, err)
	}
	var out chainRead
	for _, r := range rules {
		next, err := c.ruleTargets(r.Exprs)
		if err != nil {
			return chainRead{}, fmt.Errorf("nft chain %s: %w", chain, err)
		}
		out.next = append(out.next, next...)
		out.dnats = append(out.dnats, ruleDNATs(r.Exprs)...)
		for _, m := range ruleMapDNATs(r.Exprs) {
			elems, ok := maps[m.set]
			if !ok {
				elems, err = c.elements(m.set)
				if err != nil {
					return chainRead{}, fmt.Errorf("nft chain %s: %w", chain, err)
				}
				maps[m.set] = elems
			}
			out.dnats = append(out.dnats, m.targets(elems)...)
		}
	}
	return out, nil
}

// elements dumps one named map of the table; a map that is not there (the
// proxier replaced it between the rule dump and this one) holds nothing.
func (c *nftChain) elements(set string) ([]nftables.SetElement, error) {
	elems, err := c.conn.GetSetElements(&nftables.Set{Table: c.table, Name: set})
	if err != nil {
		if notThere(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("map %s: %w", set, err)
	}
	return elems, nil
}

// notThere tells a dump of an object that does not exist: the library
// wraps the netlink error with %v, so the errno only shows in the text.
func notThere(err error) bool {
	return errors.Is(err, syscall.ENOENT) || strings.Contains(err.Error(), "no such file")
}

// ruleTargets are the chains one rule jumps or goes to: its own verdict,
// and every verdict of a map it looks up (upstream's `numgen random mod N
// vmap {...}` is an anonymous map of the table).
func (c *nftChain) ruleTargets(exprs []expr.Any) ([]string, error) {
	var out []string
	for _, e := range exprs {
		switch e := e.(type) {
		case *expr.Verdict:
			if e.Chain != "" {
				out = append(out, e.Chain)
			}
		case *expr.Lookup:
			if !e.IsDestRegSet || e.DestRegister != 0 {
				continue // a set match, or a data map: no verdicts
			}
			elems, err := c.conn.GetSetElements(&nftables.Set{Table: c.table, Name: e.SetName, ID: e.SetID})
			if err != nil {
				return nil, fmt.Errorf("map %s: %w", e.SetName, err)
			}
			for _, el := range elems {
				if ch := verdictChain(el.Val); ch != "" {
					out = append(out, ch)
				}
			}
		}
	}
	return out, nil
}

// ruleDNATs reads a rule's dnat: the address and port registers it names,
// as the immediates before it loaded them ("dnat to 172.16.0.1:8080" is
// immediate reg 1, immediate reg 2, nat dnat reg 1 reg 2). The token is
// "ip/port", or "ip" for a dnat that keeps the port.
func ruleDNATs(exprs []expr.Any) []string {
	var out []string
	regs := map[uint32][]byte{}
	for _, e := range exprs {
		switch e := e.(type) {
		case *expr.Immediate:
			regs[e.Register] = e.Data
		case *expr.NAT:
			if e.Type != expr.NATTypeDestNAT || e.RegAddrMin == 0 {
				continue
			}
			a, ok := netip.AddrFromSlice(regs[e.RegAddrMin])
			if !ok {
				continue
			}
			tok := a.Unmap().String()
			if p := regs[e.RegProtoMin]; e.RegProtoMin != 0 && len(p) >= 2 {
				tok += "/" + strconv.Itoa(int(binary.BigEndian.Uint16(p)))
			}
			out = append(out, tok)
		}
	}
	return out
}

// verdictChain is the chain a verdict map value jumps or goes to ("" for
// accept, drop...). The library hands the value over as the raw netlink
// attributes of NFTA_DATA_VERDICT: NFTA_VERDICT_CODE, NFTA_VERDICT_CHAIN
// (NUL-terminated), each a native-endian length and type, 4-byte aligned.
func verdictChain(b []byte) string {
	const verdictChainAttr = 2 // NFTA_VERDICT_CHAIN
	for len(b) >= 4 {
		l := int(binary.NativeEndian.Uint16(b))
		typ := binary.NativeEndian.Uint16(b[2:]) & 0x3fff // without the nested/byte-order flags
		if l < 4 || l > len(b) {
			return ""
		}
		if typ == verdictChainAttr {
			return strings.TrimRight(string(b[4:l]), "\x00")
		}
		b = b[min((l+3)&^3, len(b)):]
	}
	return ""
}

// mapDNAT is a dnat whose address and port a named map gives, looked up
// with a random number: `dnat ip to numgen random mod M offset O map @m`,
// i.e. numgen, byteorder hton, lookup into a register, nat from it. Several
// Services share one map, each owning the keys [offset, offset+modulus).
type mapDNAT struct {
	set             string
	modulus, offset uint32
	// portAt is where the port starts in a map value, from where the
	// dnat's port register lies after its address register; -1 for a
	// dnat that keeps the port.
	portAt int
}

// ruleMapDNATs reads a rule's dnats through a numgen map lookup, following
// the number and the looked-up value through the registers they are in.
// The byteorder between numgen and lookup is not seen: the library drops
// expressions it cannot decode, byteorder among them. It turns the number
// in place, which changes no register, and the map's keys are read in
// network order whatever it did (see mapRanges).
func ruleMapDNATs(exprs []expr.Any) []mapDNAT {
	type numgen struct{ modulus, offset uint32 }
	gens := map[uint32]numgen{}    // register -> the number it holds
	looked := map[uint32]mapDNAT{} // register -> the map value it holds
	var out []mapDNAT
	for _, e := range exprs {
		switch e := e.(type) {
		case *expr.Numgen:
			delete(looked, e.Register)
			gens[e.Register] = numgen{modulus: e.Modulus, offset: e.Offset}
		case *expr.Immediate:
			delete(gens, e.Register)
			delete(looked, e.Register)
		case *expr.Lookup:
			g, ok := gens[e.SourceRegister]
			if !ok || e.Invert || !e.IsDestRegSet || e.DestRegister == 0 {
				continue // not a number's lookup, or a verdict map's
			}
			delete(gens, e.DestRegister)
			looked[e.DestRegister] = mapDNAT{set: e.SetName, modulus: g.modulus, offset: g.offset}
		case *expr.NAT:
			if e.Type != expr.NATTypeDestNAT || e.RegAddrMin == 0 {
				continue
			}
			m, ok := looked[e.RegAddrMin]
			if !ok {
				continue
			}
			m.portAt = -1
			if e.RegProtoMin != 0 {
				m.portAt = regByte(e.RegProtoMin) - regByte(e.RegAddrMin)
			}
			out = append(out, m)
		}
	}
	return out
}

// regByte is where a register starts in the kernel's register file: 1-4
// are the 16-byte registers after the verdict's, 8-23 the 4-byte ones
// over the same bytes (nft puts a value's second field in reg 9 when the
// value was looked up into reg 1).
func regByte(r uint32) int {
	switch {
	case r >= 1 && r <= 4:
		return int(r) * 16
	case r >= 8 && r <= 23:
		return 16 + int(r-8)*4
	}
	return -1 << 20 // no such register: a port offset no value has
}

// targets are the "ip/port" tokens of the map elements in m's slot: those
// whose range starts within [offset, offset+modulus). A range the numgen
// can never produce (empty) is no endpoint.
func (m mapDNAT) targets(elems []nftables.SetElement) []string {
	var out []string
	lo, hi := uint64(m.offset), uint64(m.offset)+uint64(m.modulus)
	for _, r := range mapRanges(elems) {
		if r.from < lo || r.from >= hi || len(r.val) < 4 {
			continue
		}
		a, _ := netip.AddrFromSlice(r.val[:4])
		tok := a.String()
		if m.portAt >= 4 && m.portAt+2 <= len(r.val) {
			tok += "/" + strconv.Itoa(int(binary.BigEndian.Uint16(r.val[m.portAt:])))
		} else if m.portAt != -1 {
			continue // a port register the value does not hold: no target to name
		}
		out = append(out, tok)
	}
	return out
}

// mapRange is one element of an interval map: keys [from, to) give val.
type mapRange struct {
	from, to uint64
	val      []byte
}

// mapRanges pairs an interval map's elements into ranges. The kernel holds
// a range as a start element (its key, the value) and an end element
// (flagged, key one past the range), and dumps them in no promised order.
// Adjacent ranges share a key: the end of one and the start of the next. A
// start with an end at its own key and no range open before it is empty; a
// start with no end after it runs to the top of the key space (nft writes
// no end element there). Keys are numbers in network order: an interval
// map compares keys byte by byte, so nft turns the number (hton) before
// the lookup for its ranges to hold. Keys that are not 4 bytes are not
// numgen's.
func mapRanges(elems []nftables.SetElement) []mapRange {
	type bound struct {
		key  uint64
		end  bool
		val  []byte
		used bool
	}
	var bounds []bound
	for _, e := range elems {
		if len(e.Key) != 4 {
			continue
		}
		k := binary.BigEndian.Uint32(e.Key)
		bounds = append(bounds, bound{key: uint64(k), end: e.IntervalEnd, val: e.Val})
	}
	// By key, an end before a start at the same key: it closes what is open.
	slices.SortFunc(bounds, func(a, b bound) int {
		if c := cmp.Compare(a.key, b.key); c != 0 {
			return c
		}
		if a.end == b.end {
			return 0
		}
		if a.end {
			return -1
		}
		return 1
	})
	var out []mapRange
	var open *bound
	for i := range bounds {
		b := &bounds[i]
		if open != nil {
			out = append(out, mapRange{from: open.key, to: b.key, val: open.val})
			open = nil
			if b.end {
				continue
			}
		} else if b.end {
			// Nothing open: an empty range's end, if its start follows at
			// the same key; else a stray end, which holds nothing.
			if i+1 < len(bounds) && !bounds[i+1].end && bounds[i+1].key == b.key {
				bounds[i+1].used = true
			}
			continue
		}
		if !b.used {
			open = b
		}
	}
	if open != nil {
		out = append(out, mapRange{from: open.key, to: 1 << 32, val: open.val})
	}
	return out
}
