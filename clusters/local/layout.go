package local

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// Fixed addresses of the contract (/tmp/local-contract.md): everything
// lives in 198.18.0.0/24 (RFC 2544, never routed) inside namespaces the
// cluster owns, so two clusters reuse them without meeting.
const (
	underlayPrefix = "198.18.0.0/24"
	// ForwarderIP is the apiserver forwarder on the underlay bridge.
	ForwarderIP   = "198.18.0.1"
	ForwarderPort = 6443
	sinkIP        = "198.18.0.254"
	// ClusterCIDR and ServiceCIDR are the pod and Service ranges.
	ClusterCIDR = "10.244.0.0/16"
	ServiceCIDR = "10.96.0.0/16"
	// Ports the proxier serves on the node IP, as kube-proxy's defaults.
	proxierHealthzPort = 10256
	proxierMetricsPort = 10249
)

// stateRoot holds one directory per cluster; PROXYPROOF_STATE overrides
// it (tests, or a machine whose /run is small).
func stateRoot() string {
	if d := os.Getenv("PROXYPROOF_STATE"); d != "" {
		return d
	}
	return "/run/proxyproof"
}

// StateDir is the default state directory of cluster name.
func StateDir(name string) string { return filepath.Join(stateRoot(), name) }

// nodeIP is the underlay address of the i-th node (0-based).
func nodeIP(i int) string { return fmt.Sprintf("198.18.0.%d", 11+i) }

// Namespace names: the cluster name, a dash, then one of the suffixes
// below; ownsNamespace recognises them so a crashed run's namespaces are
// found without its state, and cluster "a" never claims those of "a-b".
func underlayNS(c string) string        { return c + "-ul" }
func sinkNS(c string) string            { return c + "-sink" }
func nodeNS(c, node string) string      { return c + "-" + node }
func podNSPrefix(c string) string       { return c + "-p-" }
func podNS(c string, uid string) string { return podNSPrefix(c) + firstN(uid, 12) }

var nsSuffixRE = regexp.MustCompile(`^(ul|sink|node-[0-9]+|p-[0-9a-f-]{1,12})$`)

func ownsNamespace(cluster, ns string) bool {
	rest, ok := strings.CutPrefix(ns, cluster+"-")
	return ok && nsSuffixRE.MatchString(rest)
}

func firstN(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// paths is the state directory layout of one cluster.
type paths struct{ dir string }

func (p paths) controlPlane() string       { return filepath.Join(p.dir, "controlplane") }
func (p paths) bin() string                { return filepath.Join(p.dir, "bin") }
func (p paths) pids() string               { return filepath.Join(p.dir, "pids") }
func (p paths) logs() string               { return filepath.Join(p.dir, "logs") }
func (p paths) kubeconfig() string         { return filepath.Join(p.dir, "kubeconfig") }
func (p paths) record() string             { return filepath.Join(p.dir, "cluster.json") }
func (p paths) creating() string           { return filepath.Join(p.dir, "creating") }
func (p paths) nodeDir(node string) string { return filepath.Join(p.dir, "nodes", node) }
func (p paths) kubeconfigs() string        { return filepath.Join(p.dir, "kubeconfigs") }

// underlay checks the constants agree (a test guards them).
func underlayContains(ip string) bool {
	a, err := netip.ParseAddr(ip)
	return err == nil && netip.MustParsePrefix(underlayPrefix).Contains(a)
}
