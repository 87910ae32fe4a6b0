package bench

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"syscall"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	vnetns "github.com/vishvananda/netns"
)

// nftChain reads one chain of table ip kube-proxy over netlink: the
// kernel filters the dump to that chain, where `nft list chain` would
// fetch every chain of the table first (100+ ms at 2,000 Services).
type nftChain struct {
	ns   vnetns.NsHandle
	conn *nftables.Conn
}

func openNFTChain(ns string) (*nftChain, error) {
	h, err := vnetns.GetFromName(ns)
	if err != nil {
		return nil, fmt.Errorf("network namespace %q: %w", ns, err)
	}
	conn, err := nftables.New(nftables.WithNetNSFd(int(h)))
	if err != nil {
		h.Close()
		return nil, fmt.Errorf("nftables in %q: %w", ns, err)
	}
	return &nftChain{ns: h, conn: conn}, nil
}

func (c *nftChain) close() { c.ns.Close() }

// jumps are the chains that chain's rules goto or jump to, directly or
// through a verdict map (upstream's `numgen random mod N vmap {...}`).
func (c *nftChain) jumps(chain string) ([]string, error) {
	table := &nftables.Table{Name: "kube-proxy", Family: nftables.TableFamilyIPv4}
	rules, err := c.conn.GetRules(table, &nftables.Chain{Name: chain, Table: table})
	if err != nil {
		if errors.Is(err, syscall.ENOENT) || strings.Contains(err.Error(), "no such file") {
			return nil, nil
		}
		return nil, fmt.Errorf("nft chain %s: %w", chain, err)
	}
	var out []string
	for _, r := range rules {
		for _, e := range r.Exprs {
			switch e := e.(type) {
			case *expr.Verdict:
				if e.Chain != "" {
					out = append(out, e.Chain)
				}
			case *expr.Lookup:
				if !e.IsDestRegSet {
					continue // a set match, not a map
				}
				elems, err := c.conn.GetSetElements(&nftables.Set{Table: table, Name: e.SetName, ID: e.SetID})
				if err != nil {
					return nil, fmt.Errorf("nft chain %s: map %s: %w", chain, e.SetName, err)
				}
				for _, el := range elems {
					out = append(out, verdictChains(el.Val)...)
				}
			}
		}
	}
	return out, nil
}

// verdictChains finds the chain names in a verdict map value: the library
// hands it over as raw netlink attributes (code, then the chain name,
// NUL-terminated).
func verdictChains(b []byte) []string {
	var out []string
	for {
		i := bytes.Index(b, []byte("endpoint-"))
		if i < 0 {
			return out
		}
		b = b[i:]
		end := bytes.IndexByte(b, 0)
		if end < 0 {
			end = len(b)
		}
		out = append(out, string(b[:end]))
		b = b[end:]
	}
}
