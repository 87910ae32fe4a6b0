package census

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/proxyproof/proxyproof/clusters"
)

// NFTTable is the name kube-proxy's nftables mode (upstream's and ours)
// gives its table, in family ip and ip6.
const NFTTable = "kube-proxy"

// NFTDump is `nft -j list ruleset` (or list table) read per table.
type NFTDump struct {
	// Tables are keyed "family name", e.g. "ip kube-proxy".
	Tables map[string]*NFTTableState
}

// NFTTableState counts one table's objects.
type NFTTableState struct {
	Chains, Rules, Elements int
}

// ParseNFTJSON reads nft's JSON output: the tables and, per table, its
// chains, rules and set and map elements.
func ParseNFTJSON(b []byte) (NFTDump, error) {
	var doc struct {
		Nftables []map[string]json.RawMessage `json:"nftables"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return NFTDump{}, fmt.Errorf("nft -j output: %w", err)
	}
	d := NFTDump{Tables: map[string]*NFTTableState{}}
	table := func(family, name string) *NFTTableState {
		k := family + " " + name
		if d.Tables[k] == nil {
			d.Tables[k] = &NFTTableState{}
		}
		return d.Tables[k]
	}
	for _, obj := range doc.Nftables {
		for kind, raw := range obj {
			var o struct {
				Family string            `json:"family"`
				Name   string            `json:"name"`
				Table  string            `json:"table"`
				Elem   []json.RawMessage `json:"elem"`
			}
			if kind == "metainfo" || json.Unmarshal(raw, &o) != nil {
				continue
			}
			switch kind {
			case "table":
				table(o.Family, o.Name)
			case "chain":
				table(o.Family, o.Table).Chains++
			case "rule":
				table(o.Family, o.Table).Rules++
			case "set", "map":
				table(o.Family, o.Table).Elements += len(o.Elem)
			}
		}
	}
	return d, nil
}

// Table is the table family name ("ip", "kube-proxy"), nil if absent.
func (d NFTDump) Table(family, name string) *NFTTableState { return d.Tables[family+" "+name] }

// nftState says whether the dump holds kube-proxy's nftables table.
func nftState(d NFTDump) (present bool, evidence string) {
	var seen []string
	for _, family := range []string{"ip", "ip6"} {
		if t := d.Table(family, NFTTable); t != nil {
			seen = append(seen, fmt.Sprintf("table %s %s (%d chains, %d rules)", family, NFTTable, t.Chains, t.Rules))
		}
	}
	slices.Sort(seen)
	return len(seen) > 0, strings.Join(seen, ", ")
}

// readNFT reads node's nftables ruleset. A node without nft holds no table
// the census could read; that is an error unless no backend uses nftables,
// which the caller cannot know, so it is one.
func readNFT(ctx context.Context, c clusters.Cluster, node string) (NFTDump, error) {
	b, err := c.ExecOnNode(ctx, node, "nft", "-j", "list", "ruleset")
	if err != nil {
		return NFTDump{}, fmt.Errorf("node %s: nft -j list ruleset: %w: %s", node, err, firstLine(b))
	}
	d, err := ParseNFTJSON(b)
	if err != nil {
		return d, fmt.Errorf("node %s: %w", node, err)
	}
	return d, nil
}

func firstLine(b []byte) string {
	s, _, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
	return s
}
