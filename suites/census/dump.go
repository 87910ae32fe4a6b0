package census

import "github.com/proxyproof/proxyproof/clusters"

// Dumps are the commands that show a person a mode's state on a node, as
// the suites' failure dumps and Rules write it: the text form of what the
// readers above parse (the node's own iptables backend: the census reads
// both).
func Dumps(mode string) [][]string {
	switch mode {
	case clusters.ModeNFTables:
		return [][]string{{"nft", "list", "ruleset"}}
	case clusters.ModeIPVS:
		return [][]string{{"ipvsadm", "-Ln"}, {"iptables-save"}}
	}
	return [][]string{{"iptables-save"}}
}
