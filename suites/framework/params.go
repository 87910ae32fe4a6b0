package framework

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/proxyproof/proxyproof/clusters"
	"github.com/proxyproof/proxyproof/clusters/providers"
)

// Environment variables make e2e sets for one mode's run of a suite.
const (
	EnvMode     = "MODE"     // iptables | nftables | ipvs
	EnvProxier  = "PROXIER"  // ours | kube-proxy | a path
	EnvNodes    = "NODES"    // node count, default 2
	EnvKeep     = "KEEP"     // 1 keeps the cluster after the suite
	EnvRunDir   = "RUN_DIR"  // the run directory (reports/doc.go)
	EnvProvider = "PROVIDER" // where clusters come from, default local
)

// ProviderLocal is the built-in provider (clusters/local), the default.
const ProviderLocal = providers.Default

// CheckProvider accepts the providers registered in clusters/providers.
// The ones the design names but this checkout lacks get a clear refusal,
// never a silent fallback to another provider.
func CheckProvider(name string) error {
	if _, ok := providers.Get(name); ok {
		return nil
	}
	have := strings.Join(providers.Names(), ", ")
	planned := providers.Planned()
	if slices.Contains(planned, name) {
		return fmt.Errorf("%s=%s: that provider is not built yet; this checkout has %s (%s=%s is the default)", EnvProvider, name, have, EnvProvider, ProviderLocal)
	}
	if len(planned) == 0 {
		return fmt.Errorf("%s=%q: want one of %s", EnvProvider, name, have)
	}
	return fmt.Errorf("%s=%q: want one of %s (%s: not built yet)", EnvProvider, name, have, strings.Join(planned, ", "))
}

// Params are one mode's run parameters.
type Params struct {
	Provider string
	Mode     string
	Proxier  string
	Nodes    int
	Keep     bool
	// RunDir is the run directory; ModeDir is RunDir/<Mode>.
	RunDir string
}

// ModeDir is where this mode's ginkgo.json, dumps and environment go.
func (p Params) ModeDir() string { return filepath.Join(p.RunDir, p.Mode) }

// ParamsFromEnv reads Params with lookup (os.LookupEnv in the suite).
// MODE and RUN_DIR are required: without them the suite was not started by
// make e2e and must not bring up a cluster.
func ParamsFromEnv(lookup func(string) (string, bool)) (Params, error) {
	get := func(k string) string { v, _ := lookup(k); return v }
	p := Params{Mode: get(EnvMode), Proxier: get(EnvProxier), RunDir: get(EnvRunDir), Nodes: 2}
	switch p.Mode {
	case clusters.ModeIPTables, clusters.ModeNFTables, clusters.ModeIPVS:
	case "":
		return p, fmt.Errorf("%s is not set (make e2e sets it)", EnvMode)
	default:
		return p, fmt.Errorf("%s=%q: want %s, %s or %s", EnvMode, p.Mode, clusters.ModeIPTables, clusters.ModeNFTables, clusters.ModeIPVS)
	}
	if p.RunDir == "" {
		return p, fmt.Errorf("%s is not set (make e2e sets it)", EnvRunDir)
	}
	if p.Provider = get(EnvProvider); p.Provider == "" {
		p.Provider = ProviderLocal
	}
	if err := CheckProvider(p.Provider); err != nil {
		return p, err
	}
	if p.Proxier == "" {
		p.Proxier = clusters.ProxierOurs
	}
	if s := get(EnvNodes); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 2 {
			// One node cannot show a Service reaching a remote backend.
			return p, fmt.Errorf("%s=%q: want a number of nodes >= 2", EnvNodes, s)
		}
		p.Nodes = n
	}
	switch k := get(EnvKeep); k {
	case "", "0", "false":
	case "1", "true":
		p.Keep = true
	default:
		return p, fmt.Errorf("%s=%q: want 1 or 0", EnvKeep, k)
	}
	return p, nil
}

// ParamsFromOS is ParamsFromEnv on the process environment.
func ParamsFromOS() (Params, error) { return ParamsFromEnv(os.LookupEnv) }
