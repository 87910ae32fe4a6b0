package terraform

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/proxyproof/proxyproof/clusters"
	"github.com/proxyproof/proxyproof/clusters/kind"
	"github.com/proxyproof/proxyproof/clusters/local"
)

// ProviderName is what PROVIDER= says.
const ProviderName = "terraform"

// Provider is PROVIDER=terraform. The cluster is what TF_DIR's module
// makes; the spec's name and proxier are offered to the module as the
// variables name and proxier, and its modes must include the run's MODE.
type Provider struct {
	// Lookup reads the parameters (os.LookupEnv when nil).
	Lookup func(string) (string, bool)
}

var (
	_ clusters.Provider    = &Provider{}
	_ clusters.Prechecker  = &Provider{}
	_ clusters.SetupNeeder = &Provider{}
)

// Name is "terraform".
func (p *Provider) Name() string { return ProviderName }

func (p *Provider) lookup(k string) (string, bool) {
	if p.Lookup != nil {
		return p.Lookup(k)
	}
	return os.LookupEnv(k)
}

// Precheck checks TF_DIR, TF_VARS and TF_BIN before any set-up.
func (p *Provider) Precheck(clusters.Spec) error {
	_, err := ConfigFromEnv(p.lookup)
	return err
}

// SetupSteps builds our tofu unless TF_BIN names another binary, then
// our provider plugin, which every module may use (into the Go build
// cache: a cluster's BuildPlugin then only links it), then what the
// module's proxyproof_cluster resources need to make their clusters: the
// set-up of each registry provider they name (kind: the Docker engine and
// the images; local: the control plane), as make e2e PROVIDER=kind or
// local would run it. Without it a kind cluster declared in HCL failed on
// a machine where nothing had started dockerd yet.
func (p *Provider) SetupSteps(specs []clusters.Spec) []string {
	cfg, err := ConfigFromEnv(p.lookup)
	steps := []string{"hack/tofu/build.sh", "hack/tofu/plugin.sh"}
	if err != nil {
		return steps // Precheck has refused the run already, naming why
	}
	if cfg.Bin != "" {
		steps = steps[1:]
	}
	// A module that does not parse gets no more steps: apply names its
	// error better than set-up could.
	names, _ := clusterProviders(cfg.Dir)
	for _, n := range names {
		var more []string
		switch n {
		case kind.ProviderName:
			more = kind.NewProvider().SetupSteps(specs)
		case local.ProviderName:
			more = local.Provider{}.SetupSteps(specs)
		case "": // unknown until apply: ready both
			more = append(kind.NewProvider().SetupSteps(specs), local.Provider{}.SetupSteps(specs)...)
		}
		for _, s := range more {
			if !slices.Contains(steps, s) {
				steps = append(steps, s)
			}
		}
	}
	return steps
}

// Check is Precheck plus the binary, which set-up may have built.
func (p *Provider) Check(clusters.Spec) error {
	cfg, err := ConfigFromEnv(p.lookup)
	if err != nil {
		return err
	}
	_, err = cfg.bin()
	return err
}

// workDir is RUN_DIR/<mode>/terraform, beside the mode's report files;
// without RUN_DIR (a caller other than make e2e), _output/terraform/<name>.
func (p *Provider) workDir(spec clusters.Spec) (string, error) {
	if rd, _ := p.lookup("RUN_DIR"); rd != "" && len(spec.Nodes) > 0 {
		return filepath.Abs(filepath.Join(rd, runMode(spec), "terraform"))
	}
	return filepath.Abs(filepath.Join("_output", "terraform", spec.Name))
}

// Create runs init, apply and output on TF_DIR, then hands the cluster
// the outputs describe to the kubeconfig provider. Any failure after init
// destroys what the module made (unless spec.Keep) and keeps the state
// and the log in the work dir; the error names the step.
func (p *Provider) Create(ctx context.Context, spec clusters.Spec) (clusters.Cluster, error) {
	cfg, err := ConfigFromEnv(p.lookup)
	if err != nil {
		return nil, err
	}
	dir, err := p.workDir(spec)
	if err != nil {
		return nil, err
	}
	r, err := newRun(ctx, cfg, dir, spec)
	if err != nil {
		return nil, err
	}
	c, err := p.create(ctx, r, spec)
	if err != nil {
		return nil, r.fail(ctx, err, spec.Keep)
	}
	return c, nil
}

func (p *Provider) create(ctx context.Context, r *run, spec clusters.Spec) (*Cluster, error) {
	if err := r.init(ctx); err != nil {
		return nil, err
	}
	if err := r.apply(ctx); err != nil {
		return nil, err
	}
	out, err := r.outputs(ctx)
	if err != nil {
		return nil, err
	}
	o, err := readOutputs(out, r.cfg.Dir, r.dir)
	if err != nil {
		return nil, &StepError{Step: "output check", Module: r.cfg.Dir, Dir: r.dir, Cause: err.Error()}
	}
	inner, err := handOff(ctx, o, spec)
	if err != nil {
		return nil, &StepError{Step: "hand-off to the kubeconfig provider", Module: r.cfg.Dir, Dir: r.dir, Cause: err.Error()}
	}
	c := &Cluster{Cluster: inner, name: spec.Name, run: r, nodes: withModes(inner.Nodes(), o, spec)}
	if err := checkMode(c.nodes, spec); err != nil {
		_ = inner.Destroy(ctx)
		return nil, &StepError{Step: "output check", Module: r.cfg.Dir, Dir: r.dir, Cause: err.Error()}
	}
	return c, nil
}

// fail adds to a step's error what the state held and destroys it
// (unless keep); the state and the log stay in the work dir.
func (r *run) fail(ctx context.Context, err error, keep bool) error {
	defer r.close()
	se, ok := err.(*StepError)
	if !ok {
		se = &StepError{Step: "set-up", Module: r.cfg.Dir, Dir: r.dir, Cause: err.Error()}
	}
	se.Made = r.resources(ctx)
	switch {
	case len(se.Made) == 0:
	case keep:
		se.Kept = true
	default:
		// Finish the destroy even if the caller gave up: what a half
		// apply made must not outlive the run.
		if derr := r.destroy(context.WithoutCancel(ctx)); derr != nil {
			se.DestroyErr = derr
			if de, ok := derr.(*StepError); ok {
				se.DestroyErr = errors.New(de.Cause)
			}
		} else {
			se.Destroyed = true
		}
	}
	return se
}

// withModes gives each node its intended mode: the module's node_modes
// output, else the run's MODE.
func withModes(nodes []clusters.Node, o moduleOutputs, spec clusters.Spec) []clusters.Node {
	mode := runMode(spec)
	if mode == "mixed" {
		mode = ""
	}
	for i := range nodes {
		switch {
		case o.NodeModes != nil:
			if m, ok := o.NodeModes[nodes[i].Name]; ok {
				nodes[i].Mode = m
			}
		case i < len(o.NodeModeList):
			nodes[i].Mode = o.NodeModeList[i]
		case nodes[i].Mode == "":
			nodes[i].Mode = mode
		}
	}
	return nodes
}

// runMode is the run's MODE as the spec gives it: the one mode of every
// node, or "mixed".
func runMode(spec clusters.Spec) string {
	mode := ""
	for _, n := range spec.Nodes {
		if mode != "" && n.Mode != mode {
			return "mixed"
		}
		mode = n.Mode
	}
	return mode
}

// checkMode refuses a cluster none of whose nodes runs the run's MODE
// (the suite's mode-specific checks would judge the wrong rules), or for
// MODE=mixed a cluster whose nodes all run one mode.
func checkMode(nodes []clusters.Node, spec clusters.Spec) error {
	want := runMode(spec)
	if want == "" {
		return nil
	}
	var modes []string
	seen := map[string]bool{}
	for _, n := range nodes {
		if n.Mode == want {
			return nil
		}
		seen[n.Mode] = true
		modes = append(modes, n.Name+"="+n.Mode)
	}
	if want == "mixed" && len(seen) > 1 {
		return nil
	}
	slices.Sort(modes)
	return fmt.Errorf("output %q says the nodes run %s, which is not MODE=%s: run with MODE= the mode they run, or choose a module for %s",
		OutNodeModes, strings.Join(modes, ", "), want, want)
}
