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
	EnvMode     = "MODE"       // iptables | nftables | ipvs | mixed
	EnvNodeMode = "NODE_MODES" // MODE=mixed: a mode per node, m1,m2,...
	EnvProxier  = "PROXIER"    // ours | kube-proxy | a path
	EnvNodes    = "NODES"      // node count, default 2
	EnvKeep     = "KEEP"       // 1 keeps the cluster after the suite
	EnvRunDir   = "RUN_DIR"    // the run directory (reports/doc.go)
	EnvProvider = "PROVIDER"   // where clusters come from, default local
	// PROVIDER=kubeconfig (and terraform, which hands over to it).
	EnvKubeconfig   = "KUBECONFIG"    // the cluster under test's kubeconfig
	EnvContext      = "CONTEXT"       // its context, default the current one
	EnvBackendImage = "BACKEND_IMAGE" // the netserver image the cluster pulls
	EnvTakeOver     = "TAKE_OVER"     // 1 lets PROXIER=ours|kube-proxy replace the cluster's kube-proxy
	// EnvCluster names a running cluster of PROVIDER to attach to instead
	// of making one (make validate's runs share one cluster); the suite
	// leaves it running for whoever made it.
	EnvCluster = "CLUSTER"
	// EnvNodeKernels chooses each node's kernel: auto, host or vm, one
	// for all nodes or one per node (clusters.ParseNodeKernels).
	EnvNodeKernels = clusters.EnvNodeKernels
)

// providerKubeconfig is the provider for clusters the suite did not make.
const providerKubeconfig = "kubeconfig"

// ProviderLocal is the built-in provider (clusters/local), the default.
const ProviderLocal = providers.Default

// ModeAll is MODE=all: the runner expands it to every mode, one suite run
// each; a suite itself runs one mode.
const ModeAll = "all"

// ModeMixed is MODE=mixed: one cluster whose nodes run different modes
// (NODE_MODES, by default one node per mode the provider can run here).
const ModeMixed = "mixed"

// Modes are the modes a node can run, in the order MODE=all and the
// default MODE=mixed take them.
var Modes = []string{clusters.ModeIPTables, clusters.ModeNFTables, clusters.ModeIPVS}

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
	Provider, Mode, NodeModes, Proxier, Nodes, Keep, RunDir string
	Kubeconfig, Context, BackendImage, TakeOver             string
	// Cluster is CLUSTER: attach to this running cluster.
	Cluster string
	// NodeKernels is NODE_KERNELS: each node's kernel.
	NodeKernels string
}

// Params are one mode's run parameters.
type Params struct {
	Provider string
	// Mode is one mode, or ModeMixed with NodeModes.
	Mode string
	// NodeModes is MODE=mixed's list, a mode per node joined by commas
	// (a string keeps Params comparable); empty otherwise.
	NodeModes string
	Proxier   string
	Nodes     int
	Keep      bool
	// NodeKernels is NODE_KERNELS as checked: one word for every node or
	// one per node joined by commas (auto, host, vm), or empty: every
	// node's kernel left to the provider.
	NodeKernels string
	// RunDir is the run directory; ModeDir is RunDir/<Mode>.
	RunDir string
	// Kubeconfig, Context, BackendImage, TakeOver: see clusters.Spec.
	Kubeconfig, Context, BackendImage string
	TakeOver                          bool
	// Cluster, when set, is a running cluster to attach to (Setup) rather
	// than one to make; Teardown leaves it.
	Cluster string
}

// Backend is the image of the suite's backend and client pods.
func (p Params) Backend() string {
	if p.BackendImage != "" {
		return p.BackendImage
	}
	return clusters.DefaultBackendImage
}

// NodeModeList is the mode of each node the cluster is to have.
func (p Params) NodeModeList() []string {
	if p.Mode == ModeMixed {
		return strings.Split(p.NodeModes, ",")
	}
	out := make([]string, p.Nodes)
	for i := range out {
		out[i] = p.Mode
	}
	return out
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
	p := Params{Provider: g.Provider, Proxier: g.Proxier, Nodes: MinNodes, RunDir: g.RunDir,
		Kubeconfig: g.Kubeconfig, Context: g.Context, BackendImage: g.BackendImage, Cluster: g.Cluster}
	if p.Provider == "" {
		p.Provider = ProviderLocal
	}
	if err := CheckProvider(p.Provider); err != nil {
		return nil, err
	}
	if p.Provider == providerKubeconfig {
		return g.parseForeign(p)
	}
	modes, err := modesOf(g.Mode)
	if err != nil {
		return nil, err
	}
	if p.NodeModes, err = nodeModesOf(g.Mode, g.NodeModes); err != nil {
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
	if p.NodeModes != "" {
		p.Nodes = len(strings.Split(p.NodeModes, ","))
	}
	if g.NodeKernels != "" {
		kernels, err := clusters.ParseNodeKernels(g.NodeKernels, p.Nodes)
		if err != nil {
			return nil, &ParamError{EnvNodeKernels, g.NodeKernels, fmt.Sprintf("auto, host or vm, once for every node or once per node of the %d (%v)", p.Nodes, err)}
		}
		p.NodeKernels = clusters.NodeKernelsParam(kernels)
		if len(strings.Split(g.NodeKernels, ",")) == 1 {
			p.NodeKernels = strings.TrimSpace(g.NodeKernels) // one for every node, however many
		}
	}
	if err := g.parseCommon(&p); err != nil {
		return nil, err
	}
	var out []Params
	for _, m := range modes {
		p.Mode = m
		out = append(out, p)
	}
	return out, nil
}

// parseCommon checks what every provider reads alike: KEEP, RUN_DIR.
func (g Given) parseCommon(p *Params) error {
	switch g.Keep {
	case "", "0", "false":
	case "1", "true":
		p.Keep = true
	default:
		return &ParamError{EnvKeep, g.Keep, "1 or true to keep each mode's cluster, 0, false or nothing to delete it"}
	}
	if fi, err := os.Stat(g.RunDir); g.RunDir != "" && err == nil && !fi.IsDir() {
		return &ParamError{EnvRunDir, g.RunDir, "a directory to create or an existing one; that path is a file"}
	}
	return nil
}

// parseForeign is Parse for a cluster the suite did not make: one run
// (MODE=existing unless a mode is named, which every node must then
// run), PROXIER=existing unless TAKE_OVER=1 deploys ours or kube-proxy,
// the nodes the cluster has (NODES is not read).
func (g Given) parseForeign(p Params) ([]Params, error) {
	if g.NodeKernels != "" {
		return nil, &ParamError{EnvNodeKernels, g.NodeKernels, "nothing: a cluster the suite did not make runs on the kernels it has (its census names them)"}
	}
	p.Mode = g.Mode
	if p.Mode == "" {
		p.Mode = clusters.ModeExisting
	}
	if p.Mode != clusters.ModeExisting {
		if _, err := modesOf(p.Mode); err != nil || p.Mode == ModeAll {
			return nil, &ParamError{EnvMode, g.Mode, fmt.Sprintf("%s (whatever each node runs, found by the census; the default), or the one mode every node runs: %s, %s or %s",
				clusters.ModeExisting, clusters.ModeIPTables, clusters.ModeNFTables, clusters.ModeIPVS)}
		}
	}
	if p.Proxier == "" {
		p.Proxier = clusters.ProxierExisting
	}
	switch g.TakeOver {
	case "", "0", "false":
	case "1", "true":
		p.TakeOver = true
	default:
		return nil, &ParamError{EnvTakeOver, g.TakeOver, "1 to let PROXIER=ours|kube-proxy move the cluster's kube-proxy aside on the tested nodes (put back afterwards), 0 or nothing to leave it"}
	}
	if p.Kubeconfig == "" {
		return nil, &ParamError{EnvKubeconfig, "", "the path of a kubeconfig for the cluster under test (PROVIDER=kubeconfig reaches it through nothing else)"}
	}
	abs, err := filepath.Abs(p.Kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("%s=%q: %w", EnvKubeconfig, p.Kubeconfig, err)
	}
	p.Kubeconfig = abs
	if err := g.parseCommon(&p); err != nil {
		return nil, err
	}
	return []Params{p}, nil
}

// Spec is the cluster p asks the provider for, named name.
func (p Params) Spec(name string) clusters.Spec {
	spec := clusters.Spec{Name: name, Proxier: p.Proxier, Keep: p.Keep,
		Kubeconfig: p.Kubeconfig, Context: p.Context, BackendImage: p.BackendImage, TakeOver: p.TakeOver}
	modes := p.NodeModeList()
	kernels, _ := clusters.ParseNodeKernels(p.NodeKernels, len(modes)) // checked by Parse
	for i, m := range modes {
		n := clusters.NodeSpec{Mode: m}
		if i < len(kernels) {
			n.Kernel = kernels[i]
		}
		spec.Nodes = append(spec.Nodes, n)
	}
	return spec
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

// modesOf is the runs MODE asks for: all is one run per mode (mixed is
// not among them: it is a cluster of its own, asked for by name).
func modesOf(mode string) ([]string, error) {
	switch {
	case mode == ModeAll:
		return slices.Clone(Modes), nil
	case mode == ModeMixed, slices.Contains(Modes, mode):
		return []string{mode}, nil
	}
	return nil, &ParamError{EnvMode, mode, fmt.Sprintf("%s, %s or %s", strings.Join(Modes, ", "), ModeMixed, ModeAll)}
}

// nodeModesOf checks NODE_MODES: only with MODE=mixed, at least MinNodes
// known modes. MODE=mixed without it is every mode, one node each (the
// runner leaves out those the provider cannot run here).
func nodeModesOf(mode, list string) (string, error) {
	if mode != ModeMixed {
		if list != "" {
			return "", &ParamError{EnvNodeMode, list, fmt.Sprintf("MODE=%s with it (MODE=%s runs every node in that mode)", ModeMixed, mode)}
		}
		return "", nil
	}
	if list == "" {
		return strings.Join(Modes, ","), nil
	}
	modes := strings.Split(list, ",")
	for i, m := range modes {
		modes[i] = strings.TrimSpace(m)
		if !slices.Contains(Modes, modes[i]) {
			return "", &ParamError{EnvNodeMode, list, fmt.Sprintf("a mode per node, each one of %s (node %d is %q)", strings.Join(Modes, ", "), i+1, modes[i])}
		}
	}
	if len(modes) < MinNodes {
		return "", &ParamError{EnvNodeMode, list, fmt.Sprintf("at least %d nodes, a mode each, e.g. %s,%s", MinNodes, clusters.ModeIPTables, clusters.ModeNFTables)}
	}
	return strings.Join(modes, ","), nil
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
	g := Given{Provider: get(EnvProvider), Mode: get(EnvMode), NodeModes: get(EnvNodeMode), Proxier: get(EnvProxier), Nodes: get(EnvNodes), Keep: get(EnvKeep), RunDir: get(EnvRunDir),
		Kubeconfig: get(EnvKubeconfig), Context: get(EnvContext), BackendImage: get(EnvBackendImage), TakeOver: get(EnvTakeOver), Cluster: get(EnvCluster),
		NodeKernels: get(EnvNodeKernels)}
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
