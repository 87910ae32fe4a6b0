package conformance

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/proxyproof/proxyproof/clusters"
	"github.com/proxyproof/proxyproof/reports/run"
	"github.com/proxyproof/proxyproof/suites/framework"
)

// Binaries hack/conformance/build.sh writes into its directory.
const (
	E2ETest = "e2e.test"
	Ginkgo  = "ginkgo"
)

// Files of a mode's directory as e2e.test writes them (doc.go).
const (
	JUnitFile = "junit_01.xml"
	LogFile   = "e2e.log"
)

// Options are one make conformance run, checked (CheckOptions).
type Options struct {
	Provider clusters.Provider
	// Runs are the modes to run, each a cluster (MODE=mixed: one cluster
	// whose nodes run different modes).
	Runs    []framework.Params
	Proxier string
	Keep    bool
	// Name prefixes each mode's cluster: <Name>-<mode>.
	Name   string
	RunDir string
	Specs  *Specs
	// SpecList is the file Specs came from, for conformance.json.
	SpecList string
	// Bin holds e2e.test and ginkgo (hack/conformance/build.sh).
	Bin string
	// Kubectl is the kubectl e2e.test runs (exec into pods): the one built
	// at the pinned version, not whatever PATH has.
	Kubectl string
	// Procs is how many specs run at once (ginkgo --procs); [Serial]
	// specs run alone at the end whatever it is.
	Procs int
	// Timeout bounds one mode's e2e.test run.
	Timeout time.Duration
	// Log receives the runner's progress; e2e.test's own output goes to
	// <mode>/e2e.log.
	Log io.Writer
}

// RunModes runs e2e.test once per mode on a fresh cluster and fills the
// run directory (doc.go) but for run.json and the report, which the
// caller writes with the returned Conformance. A mode that failed to come
// up or to run is recorded with its error and the next mode still runs.
func RunModes(ctx context.Context, o Options) (*run.Conformance, []run.ModeMeta) {
	conf := &run.Conformance{
		Provider: o.Provider.Name(),
		Proxier:  o.Proxier,
		SpecList: o.SpecList,
		Images:   o.Specs.Images,
		Args:     o.commonArgs(),
	}
	conf.Version = e2eVersion(ctx, o.Bin)
	for _, r := range o.Specs.Focus {
		conf.Focus = append(conf.Focus, run.ConformanceRule{Pattern: r.Pattern, Why: r.Why})
	}
	for _, r := range o.Specs.Skip {
		conf.Skip = append(conf.Skip, run.ConformanceRule{Pattern: r.Pattern, Why: r.Why, Reason: r.Reason})
	}
	var metas []run.ModeMeta
	for _, p := range o.Runs {
		mode := p.Mode
		if ctx.Err() != nil {
			o.say("mode %s: not started: %v", mode, context.Cause(ctx))
			break
		}
		cm := o.runMode(ctx, p)
		conf.Modes = append(conf.Modes, cm)
		metas = append(metas, run.ModeMeta{Name: mode, Start: cm.Start, End: cm.End})
		o.say("mode %s: %s in %s%s", mode, cm.Counts, cm.End.Sub(cm.Start).Round(time.Second), errSuffix(cm.Error))
	}
	return conf, metas
}

func errSuffix(e string) string {
	if e == "" {
		return ""
	}
	return "; " + e
}

func (o Options) say(format string, a ...any) {
	fmt.Fprintf(o.Log, "conformance: "+format+"\n", a...)
}

// runMode: cluster up, e2e.test, results, cluster down (unless Keep).
// The mode's ginkgo.json is written whatever happened, so the report shows
// a mode that did not run with why.
func (o Options) runMode(ctx context.Context, p framework.Params) (cm run.ConformanceMode) {
	mode := p.Mode
	cm = run.ConformanceMode{Mode: mode, Cluster: o.Name + "-" + mode, Start: time.Now().UTC()}
	dir := filepath.Join(o.RunDir, mode)
	defer func() {
		cm.End = time.Now().UTC()
		problems := cm.Problems
		if cm.Error != "" {
			problems = append([]string{cm.Error}, problems...)
		}
		if err := writeJSON(filepath.Join(dir, run.GinkgoFile), GinkgoReport(cm.Specs, problems, cm.Start, cm.End)); err != nil && cm.Error == "" {
			cm.Error = err.Error()
		}
	}()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		cm.Error = err.Error()
		return cm
	}
	spec := clusterSpec(cm.Cluster, p, o.Specs.Images)
	o.say("mode %s: creating cluster %s (%s, nodes %s, proxier %s)", mode, spec.Name, o.Provider.Name(), strings.Join(p.NodeModeList(), ","), o.Proxier)
	c, err := o.Provider.Create(ctx, spec)
	if err != nil {
		cm.Error = fmt.Sprintf("cluster %s: %v", spec.Name, err)
		return cm
	}
	defer func() {
		if o.Keep {
			o.say("mode %s: KEEP=1: cluster %s left running (kubeconfig %s)", mode, c.Name(), c.Kubeconfig())
			return
		}
		if err := c.Destroy(context.WithoutCancel(ctx)); err != nil {
			o.say("mode %s: destroy cluster %s: %v", mode, c.Name(), err)
		}
	}()
	o.say("mode %s: cluster up in %s; running e2e.test (output in %s)", mode,
		time.Since(cm.Start).Round(time.Second), filepath.Join(dir, LogFile))
	runErr := o.e2e(ctx, c.Kubeconfig(), dir, len(spec.Nodes))
	results, err := ReadJUnit(filepath.Join(dir, JUnitFile))
	if err != nil {
		cm.Error = errors.Join(runErr, err).Error()
		return cm
	}
	specs, problems := o.Specs.Judge(results)
	cm.Specs, cm.Problems, cm.Counts = specs, problems, run.CountUpstream(specs)
	if len(specs) == 0 {
		cm.Error = "no upstream spec matched the spec list's focus: is it the list for this e2e.test?"
	}
	return cm
}

// commonArgs are e2e.test's flags every mode shares. skeleton is the
// provider for a cluster e2e.test knows nothing of: no cloud, no SSH, so
// specs needing those skip themselves, saying so.
func (o Options) commonArgs() []string {
	args := []string{"--provider=skeleton", "--kubectl-path=" + o.Kubectl, "--ginkgo.no-color", "--ginkgo.focus=" + o.Specs.FocusRegexp()}
	if skip := o.Specs.SkipRegexp(); skip != "" {
		args = append(args, "--ginkgo.skip="+skip)
	}
	return args
}

// e2e runs e2e.test against kubeconfig, its output into dir/e2e.log and
// its JUnit into dir (--report-dir). With Procs > 1 the ginkgo CLI runs it
// in parallel; ginkgo's own flags then go before the binary.
func (o Options) e2e(ctx context.Context, kubeconfig, dir string, nodes int) error {
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	logf, err := os.Create(filepath.Join(dir, LogFile))
	if err != nil {
		return err
	}
	defer logf.Close()
	// --num-nodes: without it the Granular Checks and several Services
	// specs skip themselves ("Requires at least 2 nodes (not -1)").
	testArgs := []string{"--kubeconfig=" + kubeconfig, "--report-dir=" + dir, "--num-nodes=" + strconv.Itoa(nodes)}
	var cmd *exec.Cmd
	if o.Procs > 1 {
		var ginkgoFlags []string
		for _, a := range o.commonArgs() {
			if g, ok := strings.CutPrefix(a, "--ginkgo."); ok {
				ginkgoFlags = append(ginkgoFlags, "--"+g)
			} else {
				testArgs = append(testArgs, a)
			}
		}
		args := append([]string{"--procs=" + strconv.Itoa(o.Procs), "--timeout=" + o.Timeout.String()}, ginkgoFlags...)
		args = append(append(args, filepath.Join(o.Bin, E2ETest), "--"), testArgs...)
		cmd = exec.CommandContext(ctx, filepath.Join(o.Bin, Ginkgo), args...)
	} else {
		args := append(append(testArgs, o.commonArgs()...), "--ginkgo.timeout="+o.Timeout.String())
		cmd = exec.CommandContext(ctx, filepath.Join(o.Bin, E2ETest), args...)
	}
	cmd.Dir = dir // e2e.test writes nothing else, but a stray file lands here
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.WaitDelay = time.Minute
	fmt.Fprintf(logf, "# %s\n", strings.Join(cmd.Args, " "))
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("e2e.test: %w (see %s)", err, logf.Name())
	}
	return nil
}

// e2eVersion is what e2e.test --version says, "" when it says nothing.
func e2eVersion(ctx context.Context, bin string) string {
	out, err := exec.CommandContext(ctx, filepath.Join(bin, E2ETest), "--version").Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(string(out)), "Kubernetes"))
}

// writeJSON writes whole or not at all: the report must never read half.
func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(path+".tmp", append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return os.Rename(path+".tmp", path)
}
