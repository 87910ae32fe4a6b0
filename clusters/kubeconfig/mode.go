package kubeconfig

import (
	"context"
	"fmt"
	"strings"

	"github.com/proxyproof/proxyproof/clusters"
	"github.com/proxyproof/proxyproof/suites/census"
)

// modeOf is the mode node's proxier runs, as the mode census finds it:
// what the proxier declares on /proxyMode, else the mode whose state the
// node's kernel carries. Its problems (another mode's leftovers, a state
// not read) are the census's to report at the run's start and end; here
// only a node with no mode at all is refused.
func (c *Cluster) modeOf(ctx context.Context, node string) (string, error) {
	n := census.TakeNode(ctx, c, clusters.Node{Name: node})
	m := n.Declared
	if m == "" {
		m = n.Carried
	}
	if !isMode(m) {
		return "", fmt.Errorf("node %s: the mode census finds no proxier mode (no /proxyMode answer, no kube-proxy state in the kernel): %s", node, strings.Join(n.Problems, "; "))
	}
	return m, nil
}

func isMode(m string) bool {
	return m == clusters.ModeIPTables || m == clusters.ModeNFTables || m == clusters.ModeIPVS
}

// wantedMode is the one mode spec asks every node for, or "" for any.
func wantedMode(spec clusters.Spec) string {
	for _, n := range spec.Nodes {
		if n.Mode != "" && n.Mode != clusters.ModeExisting {
			return n.Mode
		}
	}
	return ""
}
