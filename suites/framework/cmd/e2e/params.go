package main

import (
	"errors"
	"fmt"
	"github.com/proxyproof/proxyproof/clusters"
	"github.com/proxyproof/proxyproof/clusters/providers"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/onsi/ginkgo/v2/types"

	"github.com/proxyproof/proxyproof/reports/run"
	"github.com/proxyproof/proxyproof/suites/framework"
)

// envArgs is the make variable ARGS comes from, named in its errors.
const envArgs = "ARGS"

// checkParams checks every parameter before anything exists: the suite's
// own check (framework.Given.Parse), then what only the runner can see, a
// run directory that already holds a run and ARGS Ginkgo would refuse
// after a cluster was up. It fills in the default run directory.
func checkParams(o *options) ([]framework.Params, error) {
	if o.runDir == "" {
		mode := o.mode
		if mode == "" { // PROVIDER=kubeconfig: whatever the nodes run
			mode = clusters.ModeExisting
		}
		o.runDir = filepath.Join("runs", time.Now().UTC().Format("20060102-150405")+"-"+mode)
	}
	abs, err := filepath.Abs(o.runDir)
	if err != nil {
		return nil, fmt.Errorf("run dir %s: %w", o.runDir, err)
	}
	o.runDir = abs
	ps, err := framework.Given{Provider: o.provider, Mode: o.mode, NodeModes: o.nodeModes, Proxier: o.proxier, Nodes: o.nodes, Keep: o.keep, RunDir: o.runDir,
		Kubeconfig: o.kubeconfig, Context: o.context, BackendImage: o.backendImage, TakeOver: o.takeOver, NodeKernels: o.nodeKernels}.Parse()
	if err != nil {
		return nil, err
	}
	if ps, err = precheck(ps, o.mode == framework.ModeAll, o.nodeModes != ""); err != nil {
		return nil, err
	}
	if err := checkNoRunIn(o.runDir); err != nil {
		return nil, err
	}
	// The churn specs read theirs from the environment the suite inherits.
	if _, err := framework.ChurnFromEnv(os.LookupEnv); err != nil {
		return nil, err
	}
	if _, err := framework.LowerHostLimitFromEnv(os.LookupEnv); err != nil {
		return nil, err
	}
	return ps, checkArgs(o.args)
}

// precheck asks the provider, before any set-up, whether it can run each
// mode here (kind cannot run ipvs on a kernel without ip_vs). MODE=all
// keeps the modes it can run, saying which it leaves out and why; a mode
// named alone that it cannot run refuses the run. MODE=mixed is checked
// by precheckMixed (explicit: NODE_MODES was given).
func precheck(ps []framework.Params, all, explicit bool) ([]framework.Params, error) {
	p, ok := providers.Get(ps[0].Provider)
	pc, can := p.(clusters.Prechecker)
	if !ok || !can {
		return ps, nil
	}
	if ps[0].Mode == framework.ModeMixed {
		m, err := precheckMixed(pc, ps[0], explicit)
		if err == nil && m.NodeKernels != "" {
			if kerr := pc.Precheck(m.Spec("e2e")); kerr != nil {
				err = &framework.ParamError{Name: framework.EnvNodeKernels, Value: m.NodeKernels,
					Want: fmt.Sprintf("kernels PROVIDER=%s can give nodes %s (%v)", m.Provider, m.NodeModes, kerr)}
			}
		}
		return []framework.Params{m}, err
	}
	var keep []framework.Params
	for _, m := range ps {
		err := pc.Precheck(m.Spec("e2e"))
		switch {
		case err == nil:
			keep = append(keep, m)
		case errors.Is(err, clusters.ErrNodeKernelUnsupported):
			return nil, &framework.ParamError{Name: framework.EnvNodeKernels, Value: m.NodeKernels,
				Want: fmt.Sprintf("kernels PROVIDER=%s can give its nodes (%v)", m.Provider, err)}
		case all && errors.Is(err, clusters.ErrModeUnsupported):
			fmt.Printf("e2e: MODE=all on PROVIDER=%s leaves out %s: %v\n", m.Provider, m.Mode, err)
		case m.Kubeconfig != "":
			// A cluster reached, not made: the kubeconfig, the context,
			// the server or a permission, each named in err.
			return nil, &framework.ParamError{Name: framework.EnvProvider, Value: m.Provider, Want: "a cluster it can reach and run the suite in (" + err.Error() + ")"}
		default:
			return nil, &framework.ParamError{Name: framework.EnvMode, Value: m.Mode,
				Want: fmt.Sprintf("a mode PROVIDER=%s can run here (%v)", m.Provider, err)}
		}
	}
	if len(keep) == 0 {
		return nil, &framework.ParamError{Name: framework.EnvMode, Value: framework.ModeAll, Want: "a mode PROVIDER=" + ps[0].Provider + " can run here"}
	}
	return keep, nil
}

// precheckMixed checks a mixed cluster's node modes. The default list
// (every mode) keeps the modes the provider can run here, saying which it
// leaves out; a NODE_MODES list naming one it cannot run is refused with
// the modes that work. Fewer than two modes left is no mixed cluster.
func precheckMixed(pc clusters.Prechecker, m framework.Params, explicit bool) (framework.Params, error) {
	var works, left []string
	var why error
	for _, mode := range framework.Modes {
		one := m
		one.Mode, one.Nodes, one.NodeKernels = mode, framework.MinNodes, ""
		if err := pc.Precheck(one.Spec("e2e")); err == nil {
			works = append(works, mode)
		} else if errors.Is(err, clusters.ErrModeUnsupported) {
			left, why = append(left, mode), err
		} else {
			return m, &framework.ParamError{Name: framework.EnvMode, Value: m.Mode, Want: fmt.Sprintf("a cluster PROVIDER=%s can run here (%v)", m.Provider, err)}
		}
	}
	want := fmt.Sprintf("modes PROVIDER=%s can run here: %s", m.Provider, strings.Join(works, ", "))
	if explicit {
		for _, mode := range m.NodeModeList() {
			if !slices.Contains(works, mode) {
				return m, &framework.ParamError{Name: framework.EnvNodeMode, Value: m.NodeModes, Want: fmt.Sprintf("%s (%v)", want, why)}
			}
		}
		return m, nil
	}
	if len(left) > 0 {
		fmt.Printf("e2e: MODE=mixed on PROVIDER=%s leaves out %s: %v\n", m.Provider, strings.Join(left, ", "), why)
	}
	if len(works) < framework.MinNodes {
		return m, &framework.ParamError{Name: framework.EnvMode, Value: m.Mode, Want: fmt.Sprintf("at least %d %s", framework.MinNodes, want)}
	}
	m.NodeModes, m.Nodes = strings.Join(works, ","), len(works)
	return m, nil
}

// checkNoRunIn refuses a run directory that holds a run already: a second
// run would mix its modes and log into the first one's report.
func checkNoRunIn(dir string) error {
	for _, f := range []string{run.MetaFile, run.LogFile} {
		if _, err := os.Stat(filepath.Join(dir, f)); err == nil {
			return &framework.ParamError{Name: framework.EnvRunDir, Value: dir,
				Want: fmt.Sprintf("a directory holding no run yet (this one has %s: choose another RUN_DIR or leave it empty for runs/<time>-<mode>)", f)}
		}
	}
	return nil
}

// selector is a flag in ARGS that chooses which specs run.
type selector struct{ name, value string }

func (s selector) String() string { return "--" + s.name + "=" + s.value }

var selectorFlags = []string{"label-filter", "focus", "skip", "focus-file", "skip-file"}

// selectors finds them in args (as ginkgoArgs rewrote them), in either
// --name=value or --name value form.
func selectors(args []string) ([]selector, error) {
	var out []selector
	for i, a := range args {
		name, value, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		name = strings.TrimPrefix(name, "ginkgo.")
		if !slices.Contains(selectorFlags, name) {
			continue
		}
		if !hasValue {
			if i+1 >= len(args) {
				return nil, &framework.ParamError{Name: envArgs, Value: "--" + name, Want: "--" + name + " followed by its value"}
			}
			value = args[i+1]
		}
		out = append(out, selector{name, value})
	}
	return out, nil
}

// checkArgs parses the label filter, focus and skip in ARGS the way the
// suite's Ginkgo will, so a typo fails here rather than after a cluster
// came up.
func checkArgs(args []string) error {
	sels, err := selectors(args)
	if err != nil {
		return err
	}
	for _, s := range sels {
		var err error
		want := "a Go regular expression"
		switch s.name {
		case "label-filter":
			want = "a Ginkgo label filter: labels joined by &&, || and !, with parentheses"
			_, err = types.ParseLabelFilter(s.value)
		case "focus", "skip":
			_, err = regexp.Compile(s.value)
		}
		if err != nil {
			return &framework.ParamError{Name: envArgs, Value: s.String(), Want: want + " (" + ginkgoReason(err) + ")"}
		}
	}
	return nil
}

// markup is Ginkgo's console formatting ({{red}}...{{/}}) in its messages.
var markup = regexp.MustCompile(`\{\{[^}]*\}\}`)

// ginkgoReason is the last line of a Ginkgo error's message (the filter
// echoed with the bad spot marked, then the reason): one line for ours.
func ginkgoReason(err error) string {
	msg := err.Error()
	var g types.GinkgoError
	if errors.As(err, &g) {
		msg = g.Message
	}
	msg = strings.TrimSpace(markup.ReplaceAllString(msg, ""))
	if i := strings.LastIndexByte(msg, '\n'); i >= 0 {
		msg = msg[i+1:]
	}
	return strings.TrimSpace(msg)
}
