package nftables

import (
	"encoding/binary"
	"encoding/hex"
	"slices"
	"strconv"
	"strings"

	v1 "k8s.io/api/core/v1"
	"sigs.k8s.io/knftables"

	"github.com/proxyproof/proxyproof/proxier/state"
)

// Load balancing that an endpoint change does not rewrite. Any rule change
// makes the kernel re-validate every chain reachable from the base chains
// when the transaction commits (30-60 ms at 10,000 Services x 10), while a
// batch of data-map elements is not validated at all. So a policy chain
// picks its endpoint with one rule that never changes while the chain lives,
//
//	meta l4proto tcp dnat ip to numgen random mod 65536 offset K map @endpoints-B
//
// and its endpoints are interval elements "K+lo-K+hi : addr . port" of the
// shared map endpoints-B, the 65,536 draws split evenly between them: adding,
// removing or replacing an endpoint is element deletes and adds only.
//
// Why maps shared by slotsPerMap chains (measured at 10,000 x 10, kernel
// 6.18): the kernel finds a set by name walking the table's set list, so a
// map per Service made a full sync quadratic (10.8 s of kernel time in nft
// -f, against 0.5 s shared by 32); one map for every Service is bound by
// 10,000 rules and the kernel walks all of a map's elements at each binding
// (21.6 s).
const (
	slotWidth          = 1 << 16
	slotsPerMap        = 32
	endpointsMapPrefix = "endpoints-"
)

// slotTable hands each policy chain a slot: a map and an offset in it. A
// chain keeps its slot while it exists, so its rule never changes; freed
// slots are reused lowest first, which keeps the maps few and full.
type slotTable struct {
	byChain map[string]int
	used    []bool
	low     int // no free slot below this
}

func newSlotTable() *slotTable { return &slotTable{byChain: map[string]int{}} }

func (s *slotTable) slot(chain string) int {
	if n, ok := s.byChain[chain]; ok {
		return n
	}
	n := s.low
	for n < len(s.used) && s.used[n] {
		n++
	}
	if n == len(s.used) {
		s.used = append(s.used, false)
	}
	s.used[n] = true
	s.low = n + 1
	s.byChain[chain] = n
	return n
}

func (s *slotTable) release(chain string) {
	n, ok := s.byChain[chain]
	if !ok {
		return
	}
	delete(s.byChain, chain)
	s.used[n] = false
	s.low = min(s.low, n)
}

// retain releases every slot whose chain is not in keep.
func (s *slotTable) retain(keep map[string]bool) {
	for chain := range s.byChain {
		if !keep[chain] {
			s.release(chain)
		}
	}
}

func endpointsMapName(slot int) string {
	return endpointsMapPrefix + strconv.Itoa(slot/slotsPerMap)
}

func isEndpointsMapName(set string) bool {
	n, ok := strings.CutPrefix(set, endpointsMapPrefix)
	if !ok || n == "" {
		return false
	}
	for _, c := range n {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// lbSlot is one policy chain's share of an endpoints map: its slot and the
// endpoints spread over it. Beliefs keep this, not the elements: those are
// most of a table's objects (100,000 at 10,000 x 10) and cheap to derive
// again for the one Service a change touches.
type lbSlot struct {
	chain string
	slot  int
	eps   []state.Endpoint
}

func (l *lbSlot) mapName() string { return endpointsMapName(l.slot) }

// sameSpread: the two put the same endpoints on the same draws.
func (l *lbSlot) sameSpread(o *lbSlot) bool {
	return l.slot == o.slot && slices.EqualFunc(l.eps, o.eps, func(a, b state.Endpoint) bool {
		return a.IP == b.IP && a.Port == b.Port
	})
}

// mapDNAT is policy chain name's load-balancing rule and its slot.
func (c *renderCtx) mapDNAT(sp *state.ServicePort, name string, eps []state.Endpoint) (rule, lbSlot) {
	lb := lbSlot{chain: name, slot: c.slots.slot(name), eps: eps}
	proto := strings.ToLower(string(sp.Protocol))
	return c.rule().l4proto(proto).dnatMap(lb.mapName(), lb.offset()), lb
}

func (l *lbSlot) offset() uint32 { return uint32(l.slot%slotsPerMap) * slotWidth }

// rangesOnlyIn lists a's elements that other (nil: none) does not hold
// with the same value: what must go when a becomes other, or come when
// other becomes a.
func (c *renderCtx) rangesOnlyIn(a, other *lbSlot) []elem {
	if other != nil && a.sameSpread(other) {
		return nil
	}
	held := map[string]string{}
	if other != nil {
		for _, e := range c.lbElems(other) {
			held[e.key[0]] = e.value
		}
	}
	var out []elem
	for _, e := range c.lbElems(a) {
		if v, ok := held[e.key[0]]; !ok || v != e.value {
			out = append(out, e)
		}
	}
	return out
}

// elems are the map elements splitting the slot's draws evenly between the
// endpoints, in order.
func (c *renderCtx) lbElems(l *lbSlot) []elem {
	m, offset := l.mapName(), l.offset()
	elems := make([]elem, 0, len(l.eps))
	n := uint32(len(l.eps))
	for i, ep := range l.eps {
		// In 64 bits: (i+1) x 65,536 overflows 32 at 65,536 endpoints.
		lo := offset + uint32(uint64(i)*slotWidth/uint64(n))
		hi := offset + uint32(uint64(i+1)*slotWidth/uint64(n))
		a := ep.IP.Unmap()
		data := c.addrBytes(a)
		data = binary.BigEndian.AppendUint16(data, uint16(ep.Port))
		key := strconv.AppendUint(make([]byte, 0, 24), uint64(lo), 10)
		key = strconv.AppendUint(append(key, '-'), uint64(hi-1), 10)
		elems = append(elems, elem{
			container: m,
			key:       []string{string(key)},
			value:     a.String() + " . " + strconv.Itoa(int(ep.Port)),
			nkey:      string(binary.BigEndian.AppendUint32(nil, lo)),
			nend:      string(binary.BigEndian.AppendUint32(nil, hi)),
			data:      string(append(data, 0, 0)),
		})
	}
	return elems
}

// dnatMap is "dnat ip to numgen random mod 65536 offset K map @m": the draw
// in network order (interval keys compare as big-endian bytes), looked up
// into address . port, both NATed to.
func (b *ruleBuilder) dnatMap(m string, offset uint32) rule {
	text := b.c.ipX + " to numgen random mod " + strconv.Itoa(slotWidth)
	if offset != 0 {
		text += " offset " + strconv.FormatUint(uint64(offset), 10)
	}
	b.text = append(b.text, "dnat "+text+" map @"+m)
	b.expr("numgen", func(n *nlbuf) {
		n.be32(1, reg1)
		n.be32(2, slotWidth)
		n.be32(3, 1) // NFT_NG_RANDOM
		n.be32(4, offset)
	})
	b.expr("byteorder", func(n *nlbuf) {
		n.be32(1, reg1) // SREG
		n.be32(2, reg1) // DREG
		n.be32(3, 1)    // NFT_BYTEORDER_HTON
		n.be32(4, 4)    // LEN
		n.be32(5, 4)    // SIZE
	})
	b.expr("lookup", func(n *nlbuf) {
		n.str(1, m)     // SET
		n.be32(2, reg1) // SREG
		n.be32(3, reg1) // DREG
	})
	// The port follows the address in the registers: 32-bit register
	// NFT_REG32_01 after an IPv4 address, NFT_REG_2 after an IPv6 one.
	fam, portReg := uint32(2), uint32(9)
	if b.c.family == v1.IPv6Protocol {
		fam, portReg = 10, reg2
	}
	b.expr("nat", func(n *nlbuf) {
		n.be32(1, 1) // NFT_NAT_DNAT
		n.be32(2, fam)
		n.be32(3, reg1) // REG_ADDR_MIN
		n.be32(5, portReg)
	})
	return b.done()
}

// endpointsMapTypeOf is how nft declares an endpoints map; endpointsMapUdata
// is the same declaration as nft stores it in the kernel (libnftnl's
// userdata TLVs: key and data byte order, then the typeof expressions),
// captured from `nft --debug=mnl`, so `nft list` prints netlink-made maps
// as it prints its own.
func (c *renderCtx) endpointsMapTypeOf() string {
	return "numgen random mod " + strconv.Itoa(slotWidth) + " : " + c.ipX + " daddr . th dport"
}

var (
	endpointsMapUdataV4 = unhex("000401000000010400000000031a0004170000000112000401000000010400000100020400000000043400040d000000012c0014000407000000010c00040c00000001040c0000000114000407000000010c00040b000000010402000000060400000000")
	endpointsMapUdataV6 = unhex("000401000000010400000000031a0004170000000112000401000000010400000100020400000000043400040d000000012c0014000407000000010c00040d0000000104090000000114000407000000010c00040b000000010402000000060400000000")
)

// unhex decodes a constant above; a typo there is a bug, found by any test.
func unhex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

func endpointsMapObject(rc *renderCtx, name string) *knftables.Map {
	return &knftables.Map{Name: name, TypeOf: rc.endpointsMapTypeOf(), Flags: []knftables.SetFlag{knftables.IntervalFlag}}
}

// mapsOf lists the endpoints maps lbs use, each once.
func mapsOf(lbs []lbSlot) []string {
	var out []string
	for i := range lbs {
		if m := lbs[i].mapName(); !slices.Contains(out, m) {
			out = append(out, m)
		}
	}
	return out
}
