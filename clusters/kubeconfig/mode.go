package kubeconfig

import (
	"context"
	"fmt"
	"strings"

	"github.com/proxyproof/proxyproof/clusters"
)

// metricsURL is kube-proxy's /proxyMode on its default metrics address,
// which our proxier serves too; the helper shares the node's loopback.
const metricsURL = "http://127.0.0.1:10249/proxyMode"

// modeOf is the mode node's proxier runs: what it declares on
// /proxyMode, else what the node's kernel carries. It is the one place
// the provider learns a node's mode, to be replaced by the mode census
// (issue 15) when that lands.
func (c *Cluster) modeOf(ctx context.Context, node string) (string, error) {
	if out, err := c.ExecOnNode(ctx, node, clusters.Probe, "http", metricsURL); err == nil {
		if m := strings.TrimSpace(string(out)); isMode(m) {
			return m, nil
		}
	}
	if _, err := c.ExecOnNode(ctx, node, "nft", "list", "table", "ip", "kube-proxy"); err == nil {
		return clusters.ModeNFTables, nil
	}
	if out, err := c.ExecOnNode(ctx, node, "ipset", "list", "-n"); err == nil && strings.Contains(string(out), "KUBE-CLUSTER-IP") {
		return clusters.ModeIPVS, nil
	}
	for _, save := range []string{"iptables-nft-save", "iptables-legacy-save"} {
		if out, err := c.ExecOnNode(ctx, node, save, "-t", "nat"); err == nil && strings.Contains(string(out), ":KUBE-SERVICES") {
			return clusters.ModeIPTables, nil
		}
	}
	return "", fmt.Errorf("node %s: no proxier answers on %s, and the node carries no kube-proxy rules (no nftables table kube-proxy, no KUBE-SERVICES chain, no KUBE-CLUSTER-IP ipset)", node, metricsURL)
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
