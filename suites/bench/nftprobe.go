package bench

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
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
// chains that dnat), ours (the service chain's own rules dnat; endpoint
// chains only behind ClientIP affinity), or a mix. It reads chain and each
// chain that chain jumps or goes to, directly or through a verdict map:
// one level, which both shapes need and no more. A chain that is not there
// (yet, or any more) holds nothing.
func (c *nftChain) dnats(chain string) (map[string]bool, error) {
	out := map[string]bool{}
	first, err := c.read(chain)
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
		r, err := c.read(next)
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
func (c *nftChain) read(chain string) (chainRead, error) {
	rules, err := c.conn.GetRules(c.table, &nftables.Chain{Name: chain, Table: c.table})
	if err != nil {
		if errors.Is(err, syscall.ENOENT) || strings.Contains(err.Error(), "no such file") {
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
	}
	return out, nil
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
