package framework

import (
	"fmt"
	"os"
	"path/filepath"
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

// ModeAll is MODE=all: the runner expands it to every mode, one suite run
// each; a suite itself runs one mode.
const ModeAll = "all"

// MinNodes: one node cannot show a Service reaching a remote backend.
const MinNodes = 2

// ParamError is a parameter that cannot work, in the one line a user
// needs: the parameter, the value given and what is accepted.
type ParamError struct {
	Name, Value, Want string
}

func (e *ParamError) Error() string { return fmt.Sprintf("%s=%q: want %s", e.Name, e.Value, e.Want) }

// Given are the parameters as make e2e passes them, not yet checked.
type Given struct {
	Provider, Mode, Proxier, Nodes, Keep, RunDir string
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

// Parse is the one check of the parameters, shared by the runner (before
// it creates anything) and the suite (ParamsFromEnv). It returns one Params
// per mode (MODE=all gives three) or the first bad parameter as a
// *ParamError. Empty PROVIDER, PROXIER and NODES take their defaults; a
// PROXIER path comes back absolute, since the suite runs in its own
// directory.
func (g Given) Parse() ([]Params, error) {
	p := Params{Provider: g.Provider, Proxier: g.Proxier, Nodes: MinNodes, RunDir: g.RunDir}
	if p.Provider == "" {
		p.Provider = ProviderLocal
	}
	if err := CheckProvider(p.Provider); err != nil {
		return nil, err
	}
	modes, err := modesOf(g.Mode)
	if err != nil {
		return nil, err
	}
	if p.Proxier, err = proxierOf(g.Proxier); err != nil {
		return nil, err
	}
	if g.Nodes != "" {
		n, err := strconv.Atoi(g.Nodes)
		if err != nil || n < MinNodes {
			return nil, &ParamError{EnvNodes, g.Nodes, fmt.Sprintf("a whole number of nodes, at least %d (one node cannot show a Service reaching a backend on another node)", MinNodes)}
		}
		p.Nodes = n
	}
	switch g.Keep {
	case "", "0", "false":
	case "1", "true":
		p.Keep = true
	default:
		return nil, &ParamError{EnvKeep, g.Keep, "1 or true to keep each mode's cluster, 0, false or nothing to delete it"}
	}
	if fi, err := os.Stat(g.RunDir); g.RunDir != "" && err == nil && !fi.IsDir() {
		return nil, &ParamError{EnvRunDir, g.RunDir, "a directory to create or an existing one; that path is a file"}
	}
	var out []Params
	for _, m := range modes {
		p.Mode = m
		out = append(out, p)
	}
	return out, nil
}

// CheckProvider accepts the providers registered in clusters/providers.
// The ones the design names but this checkout lacks get a clear refusal,
// never a silent fallback to another provider.
func CheckProvider(name string) error {
	if _, ok := providers.Get(name); ok {
		return nil
	}
	want := "one of " + strings.Join(providers.Names(), ", ")
	if planned := providers.Planned(); len(planned) > 0 {
		want += " (" + strings.Join(planned, ", ") + ": not built yet)"
	}
	return &ParamError{EnvProvider, name, want}
}

func modesOf(mode string) ([]string, error) {
	switch mode {
	case ModeAll:
		return []string{clusters.ModeIPTables, clusters.ModeNFTables, clusters.ModeIPVS}, nil
	case clusters.ModeIPTables, clusters.ModeNFTables, clusters.ModeIPVS:
		return []string{mode}, nil
	}
	return nil, &ParamError{EnvMode, mode, fmt.Sprintf("%s, %s, %s or %s", clusters.ModeIPTables, clusters.ModeNFTables, clusters.ModeIPVS, ModeAll)}
}

// proxierOf accepts ours, kube-proxy or an executable file, made absolute.
func proxierOf(p string) (string, error) {
	switch p {
	case "":
		return clusters.ProxierOurs, nil
	case clusters.ProxierOurs, clusters.ProxierKubeProxy:
		return p, nil
	}
	bad := &ParamError{EnvProxier, p, fmt.Sprintf("%s, %s or the path of an executable file", clusters.ProxierOurs, clusters.ProxierKubeProxy)}
	if err := clusters.Executable(p); err != nil {
		bad.Want += " (" + err.Error() + ")"
		return "", bad
	}
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", fmt.Errorf("%s=%q: %w", EnvProxier, p, err)
	}
	return abs, nil
}

// ParamsFromEnv reads Params with lookup (os.LookupEnv in the suite).
// MODE and RUN_DIR are required: without them the suite was not started by
// make e2e and must not bring up a cluster.
func ParamsFromEnv(lookup func(string) (string, bool)) (Params, error) {
	get := func(k string) string { v, _ := lookup(k); return v }
	g := Given{Provider: get(EnvProvider), Mode: get(EnvMode), Proxier: get(EnvProxier), Nodes: get(EnvNodes), Keep: get(EnvKeep), RunDir: get(EnvRunDir)}
	for _, kv := range [][2]string{{EnvMode, g.Mode}, {EnvRunDir, g.RunDir}} {
		if kv[1] == "" {
			return Params{}, fmt.Errorf("%s is not set (make e2e sets it)", kv[0])
		}
	}
	if g.Mode == ModeAll {
		return Params{}, &ParamError{EnvMode, g.Mode, "one mode: a suite runs one, make e2e runs it once per mode of all"}
	}
	ps, err := g.Parse()
	if err != nil {
		return Params{}, err
	}
	return ps[0], nil
}

// ParamsFromOS is ParamsFromEnv on the process environment.
func ParamsFromOS() (Params, error) { return ParamsFromEnv(os.LookupEnv) }
