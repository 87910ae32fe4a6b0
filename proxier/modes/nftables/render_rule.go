package nftables

import (
	"encoding/binary"
	"net/netip"
	"strconv"
	"strings"

	v1 "k8s.io/api/core/v1"
)

// ruleBuilder writes one rule twice, as nft text (golden files, the Fake,
// nft -c) and as netlink expressions (what the kernel gets), from the same
// calls so the two cannot drift apart; TestKernelNetlinkMatchesNFTText
// checks that the kernel lists both the same.
type ruleBuilder struct {
	c    *renderCtx
	text []string
	nl   nlbuf
}

func (c *renderCtx) rule() *ruleBuilder {
	return &ruleBuilder{c: c, text: make([]string, 0, 6), nl: nlbuf{b: make([]byte, 0, 256)}}
}

// Registers and verdicts of linux/netfilter/nf_tables.h.
const (
	regVerdict = 0
	reg1       = 1
	reg2       = 2

	verdictDrop   = 0
	verdictJump   = -3
	verdictGoto   = -4
	verdictReturn = -5
)

// expr appends one expression: NFTA_LIST_ELEM { NFTA_EXPR_NAME, NFTA_EXPR_DATA }.
func (b *ruleBuilder) expr(name string, data func(n *nlbuf)) {
	el := b.nl.begin(1)
	b.nl.str(1, name)
	d := b.nl.begin(2)
	data(&b.nl)
	b.nl.end(d)
	b.nl.end(el)
}

func (b *ruleBuilder) payload(base, offset, length uint32) {
	b.expr("payload", func(n *nlbuf) {
		n.be32(1, reg1) // DREG
		n.be32(2, base) // 1 network header, 2 transport header
		n.be32(3, offset)
		n.be32(4, length)
	})
}

func (b *ruleBuilder) cmp(neq bool, value []byte) {
	b.expr("cmp", func(n *nlbuf) {
		n.be32(1, reg1)
		op := uint32(0) // NFT_CMP_EQ
		if neq {
			op = 1
		}
		n.be32(2, op)
		d := n.begin(3)
		n.attr(1, value)
		n.end(d)
	})
}

// addrOffset is where "ip saddr"/"ip daddr" (or ip6) sit in the header.
func (c *renderCtx) addrOffset(field string) (uint32, uint32) {
	if c.family == v1.IPv6Protocol {
		if field == "saddr" {
			return 8, 16
		}
		return 24, 16
	}
	if field == "saddr" {
		return 12, 4
	}
	return 16, 4
}

func (c *renderCtx) addrBytes(a netip.Addr) []byte {
	if c.family == v1.IPv6Protocol {
		b := a.As16()
		return b[:]
	}
	b := a.Unmap().As4()
	return b[:]
}

// addr matches "ip saddr|daddr [!=] prefix"; a full-length prefix is an
// address.
func (b *ruleBuilder) addr(field string, p netip.Prefix, neg bool) *ruleBuilder {
	p = p.Masked()
	op := " "
	if neg {
		op = " != "
	}
	s := p.String()
	if p.IsSingleIP() {
		s = p.Addr().String()
	}
	b.text = append(b.text, b.c.ipX+" "+field+op+s)
	off, l := b.c.addrOffset(field)
	b.payload(1, off, l)
	if !p.IsSingleIP() {
		mask := make([]byte, l)
		for i := 0; i < p.Bits(); i++ {
			mask[i/8] |= 0x80 >> (i % 8)
		}
		b.expr("bitwise", func(n *nlbuf) {
			n.be32(1, reg1) // SREG
			n.be32(2, reg1) // DREG
			n.be32(3, l)    // LEN
			m := n.begin(4) // MASK
			n.attr(1, mask)
			n.end(m)
			x := n.begin(5) // XOR
			n.attr(1, make([]byte, l))
			n.end(x)
		})
	}
	b.cmp(neg, b.c.addrBytes(p.Addr()))
	return b
}

func (b *ruleBuilder) addrIs(field string, a netip.Addr) *ruleBuilder {
	return b.addr(field, netip.PrefixFrom(a, a.BitLen()), false)
}

// inSet matches "ip saddr @set".
func (b *ruleBuilder) inSet(field, set string) *ruleBuilder {
	b.text = append(b.text, b.c.ipX+" "+field+" @"+set)
	off, l := b.c.addrOffset(field)
	b.payload(1, off, l)
	b.expr("lookup", func(n *nlbuf) {
		n.str(1, set)   // NFTA_LOOKUP_SET
		n.be32(2, reg1) // SREG
	})
	return b
}

// numgen matches "numgen random mod m == v": a fresh random draw.
func (b *ruleBuilder) numgen(m, v int) *ruleBuilder {
	b.text = append(b.text, "numgen random mod "+strconv.Itoa(m)+" == "+strconv.Itoa(v))
	b.expr("numgen", func(n *nlbuf) {
		n.be32(1, reg1)
		n.be32(2, uint32(m))
		n.be32(3, 1) // NFT_NG_RANDOM
		n.be32(4, 0)
	})
	b.cmp(false, binary.NativeEndian.AppendUint32(nil, uint32(v)))
	return b
}

var protoNums = map[string]byte{"tcp": 6, "udp": 17, "sctp": 132}

// l4proto matches "meta l4proto tcp".
func (b *ruleBuilder) l4proto(proto string) *ruleBuilder {
	b.text = append(b.text, "meta l4proto "+proto)
	b.expr("meta", func(n *nlbuf) {
		n.be32(2, 16) // NFT_META_L4PROTO
		n.be32(1, reg1)
	})
	b.cmp(false, []byte{protoNums[proto]})
	return b
}

// fibSaddrLocal matches "fib saddr type local".
func (b *ruleBuilder) fibSaddrLocal() *ruleBuilder {
	b.text = append(b.text, "fib saddr type local")
	b.expr("fib", func(n *nlbuf) {
		n.be32(1, reg1)
		n.be32(2, 3) // NFT_FIB_RESULT_ADDRTYPE
		n.be32(3, 1) // NFTA_FIB_F_SADDR
	})
	b.cmp(false, binary.NativeEndian.AppendUint32(nil, 2)) // RTN_LOCAL
	return b
}

// update is "update @set { ip saddr }", refreshing the entry's timeout.
func (b *ruleBuilder) update(set string) *ruleBuilder {
	b.text = append(b.text, "update @"+set+" { "+b.c.ipX+" saddr }")
	off, l := b.c.addrOffset("saddr")
	b.payload(1, off, l)
	b.expr("dynset", func(n *nlbuf) {
		n.str(1, set)   // SET_NAME
		n.be32(3, 1)    // NFT_DYNSET_OP_UPDATE
		n.be32(4, reg1) // SREG_KEY
	})
	return b
}

func (b *ruleBuilder) verdict(word string, code int32, chain string) rule {
	if chain != "" {
		word += " " + chain
	}
	b.text = append(b.text, word)
	b.expr("immediate", func(n *nlbuf) {
		n.be32(1, regVerdict)
		d := n.begin(2)
		v := n.begin(2) // NFTA_DATA_VERDICT
		n.be32(1, uint32(code))
		if chain != "" {
			n.str(2, chain)
		}
		n.end(v)
		n.end(d)
	})
	return b.done()
}

func (b *ruleBuilder) jump(chain string) rule { return b.verdict("jump", verdictJump, chain) }
func (b *ruleBuilder) goTo(chain string) rule { return b.verdict("goto", verdictGoto, chain) }
func (b *ruleBuilder) ret() rule              { return b.verdict("return", verdictReturn, "") }
func (b *ruleBuilder) drop() rule             { return b.verdict("drop", verdictDrop, "") }

// dnat is "meta l4proto P dnat to ip:port", as upstream's endpoint chains.
func (b *ruleBuilder) dnat(proto string, ep netip.AddrPort) rule {
	b.l4proto(proto)
	b.text = append(b.text, "dnat to "+ep.String())
	imm := func(r uint32, v []byte) {
		b.expr("immediate", func(n *nlbuf) {
			n.be32(1, r)
			d := n.begin(2)
			n.attr(1, v)
			n.end(d)
		})
	}
	imm(reg1, b.c.addrBytes(ep.Addr()))
	imm(reg2, binary.BigEndian.AppendUint16(nil, ep.Port()))
	fam := uint32(2) // NFPROTO_IPV4
	if b.c.family == v1.IPv6Protocol {
		fam = 10
	}
	b.expr("nat", func(n *nlbuf) {
		n.be32(1, 1) // NFT_NAT_DNAT
		n.be32(2, fam)
		n.be32(3, reg1) // REG_ADDR_MIN
		n.be32(5, reg2) // REG_PROTO_MIN
	})
	return b.done()
}

func (b *ruleBuilder) done() rule {
	return rule{text: strings.Join(b.text, " "), nl: string(b.nl.b)}
}

// Element keys as the kernel stores them: each field of a concatenation
// padded to 4 bytes, addresses and ports in network order.

func (c *renderCtx) keyAddrProtoPort(a netip.Addr, proto string, port int32) string {
	k := c.addrBytes(a)
	k = append(k, protoNums[proto], 0, 0, 0)
	k = binary.BigEndian.AppendUint16(k, uint16(port))
	return string(append(k, 0, 0))
}

func keyProtoPort(proto string, port int32) string {
	k := []byte{protoNums[proto], 0, 0, 0}
	k = binary.BigEndian.AppendUint16(k, uint16(port))
	return string(append(k, 0, 0))
}
