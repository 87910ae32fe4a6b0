package terraform

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hashicorp/terraform-exec/tfexec"
	tfjson "github.com/hashicorp/terraform-json"

	"github.com/proxyproof/proxyproof/clusters"
)

// Files of a run's work directory: everything needed to look at or
// destroy what the module made, TF_DIR left untouched.
const (
	StateFile = "terraform.tfstate"
	LogFile   = "terraform.log"
	// PluginLogFile gets the providers' logs (TF_LOG_PROVIDER=DEBUG).
	PluginLogFile = "providers.log"
	DestroyFile   = "destroy.sh"
	ourVarsFile   = "proxyproof.tfvars.json"
)

// run is one root module's terraform commands, state and log in dir.
type run struct {
	cfg  Config
	dir  string
	bin  string
	tf   *tfexec.Terraform
	log  *os.File
	vars []string // -var-file paths then -var assignments, as flags
}

// newRun prepares dir: our plugin and its CLI config, the log, the
// variables the driver offers every module (name, proxier).
func newRun(ctx context.Context, cfg Config, dir string, spec clusters.Spec) (*run, error) {
	bin, err := cfg.bin()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("terraform work dir: %w", err)
	}
	cli, err := BuildPlugin(ctx, dir)
	if err != nil {
		return nil, err
	}
	log, err := os.OpenFile(filepath.Join(dir, LogFile), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("terraform log: %w", err)
	}
	tf, err := tfexec.NewTerraform(cfg.Dir, bin)
	if err != nil {
		log.Close()
		return nil, fmt.Errorf("%s=%s: %w", EnvBin, bin, err)
	}
	// The process environment minus what terraform-exec sets itself (it
	// refuses TF_VAR_*, TF_LOG...: variables come through TF_VARS).
	env := tfexec.CleanEnv(envMap(os.Environ()))
	env["TF_CLI_CONFIG_FILE"] = cli
	env["TF_DATA_DIR"] = filepath.Join(dir, "data")
	if err := tf.SetEnv(env); err != nil {
		log.Close()
		return nil, err
	}
	tf.SetStdout(log)
	tf.SetStderr(log)
	// Our provider's own log (a kind or local cluster's steps, minutes
	// long) goes nowhere unless asked for: into the work dir.
	if err := tf.SetLogProvider("DEBUG"); err == nil {
		_ = tf.SetLogPath(filepath.Join(dir, PluginLogFile))
	}
	r := &run{cfg: cfg, dir: dir, bin: bin, tf: tf, log: log}
	// A var file, not -var: a module that does not declare these gets a
	// warning, not an error. TF_VARS come after it and win.
	ours, _ := json.Marshal(map[string]string{"name": spec.Name, "proxier": spec.Proxier})
	if err := os.WriteFile(filepath.Join(dir, ourVarsFile), ours, 0o644); err != nil {
		return nil, err
	}
	r.vars = append(r.vars, "-var-file="+filepath.Join(dir, ourVarsFile))
	for _, f := range cfg.VarFiles {
		r.vars = append(r.vars, "-var-file="+f)
	}
	for _, v := range cfg.Vars {
		r.vars = append(r.vars, "-var="+v)
	}
	return r, r.writeDestroyScript()
}

func envMap(env []string) map[string]string {
	m := make(map[string]string, len(env))
	for _, kv := range env {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = v
		}
	}
	return m
}

func (r *run) close() { r.log.Close() }

// step runs one command with a header in the log, and names the step and
// the module in its error, with terraform's own account of why.
func (r *run) step(name string, f func() error) error {
	began := time.Now()
	fmt.Fprintf(r.log, "\n=== %s %s (module %s) at %s\n", filepath.Base(r.bin), name, r.cfg.Dir, began.UTC().Format(time.RFC3339))
	err := f()
	fmt.Fprintf(r.log, "=== %s: %s\n", name, outcome(err, time.Since(began)))
	if err != nil {
		return &StepError{Step: name, Module: r.cfg.Dir, Dir: r.dir, Cause: summary(err)}
	}
	return nil
}

func outcome(err error, took time.Duration) string {
	if err != nil {
		return "failed after " + took.Round(time.Millisecond).String()
	}
	return "done in " + took.Round(time.Millisecond).String()
}

func (r *run) init(ctx context.Context) error {
	before, existed := readLockFile(r.cfg.Dir)
	return r.step("init", func() error {
		err := r.tf.Init(ctx, tfexec.Upgrade(false))
		return errors.Join(err, keepLockFile(r.cfg.Dir, before, existed))
	})
}

func (r *run) apply(ctx context.Context) error {
	return r.step("apply", func() error {
		opts := []tfexec.ApplyOption{tfexec.State(r.statePath()), tfexec.StateOut(r.statePath())}
		for _, v := range r.varOpts() {
			opts = append(opts, v)
		}
		return r.tf.Apply(ctx, opts...)
	})
}

func (r *run) outputs(ctx context.Context) (map[string]tfexec.OutputMeta, error) {
	var out map[string]tfexec.OutputMeta
	err := r.step("output", func() error {
		var err error
		out, err = r.tf.Output(ctx, tfexec.State(r.statePath()))
		return err
	})
	return out, err
}

func (r *run) destroy(ctx context.Context) error {
	return r.step("destroy", func() error {
		opts := []tfexec.DestroyOption{tfexec.State(r.statePath()), tfexec.StateOut(r.statePath())}
		for _, v := range r.varOpts() {
			opts = append(opts, v)
		}
		return r.tf.Destroy(ctx, opts...)
	})
}

// varOpts are r.vars as terraform-exec options (Var and VarFile satisfy
// both apply's and destroy's option interfaces).
func (r *run) varOpts() []interface {
	tfexec.ApplyOption
	tfexec.DestroyOption
} {
	var out []interface {
		tfexec.ApplyOption
		tfexec.DestroyOption
	}
	for _, v := range r.vars {
		if f, ok := strings.CutPrefix(v, "-var-file="); ok {
			out = append(out, tfexec.VarFile(f))
		} else {
			out = append(out, tfexec.Var(strings.TrimPrefix(v, "-var=")))
		}
	}
	return out
}

func (r *run) statePath() string { return filepath.Join(r.dir, StateFile) }

// resources lists the addresses of what the state holds (none when there
// is no state yet).
func (r *run) resources(ctx context.Context) []string {
	if _, err := os.Stat(r.statePath()); err != nil {
		return nil
	}
	st, err := r.tf.ShowStateFile(ctx, r.statePath())
	if err != nil || st.Values == nil || st.Values.RootModule == nil {
		return nil
	}
	var out []string
	var walk func(m *tfjson.StateModule)
	walk = func(m *tfjson.StateModule) {
		for _, res := range m.Resources {
			out = append(out, res.Address)
		}
		for _, c := range m.ChildModules {
			walk(c)
		}
	}
	walk(st.Values.RootModule)
	return out
}

// writeDestroyScript leaves the command that destroys what the module
// made, for KEEP=1 and for a destroy that failed.
func (r *run) writeDestroyScript() error {
	var b strings.Builder
	fmt.Fprintf(&b, "#!/bin/sh\n# Destroys what %s made in this run (state: %s).\n", r.cfg.Dir, r.statePath())
	fmt.Fprintf(&b, "export TF_CLI_CONFIG_FILE=%q TF_DATA_DIR=%q\n", filepath.Join(r.dir, "cli.tfrc"), filepath.Join(r.dir, "data"))
	fmt.Fprintf(&b, "exec %q -chdir=%q destroy -auto-approve -state=%q", r.bin, r.cfg.Dir, r.statePath())
	for _, v := range r.vars {
		fmt.Fprintf(&b, " %q", v)
	}
	b.WriteString(" \"$@\"\n")
	return os.WriteFile(filepath.Join(r.dir, DestroyFile), []byte(b.String()), 0o755)
}

// summary is terraform's error output without blank lines and the frame
// it draws around diagnostics: what a person reads in one go.
func summary(err error) string {
	var lines []string
	for _, l := range strings.Split(err.Error(), "\n") {
		l = strings.TrimSpace(strings.TrimLeft(l, "│╷╵ "))
		// "exit status 1" says nothing terraform's own lines do not.
		if l != "" && !strings.HasPrefix(l, "exit status ") {
			lines = append(lines, l)
		}
	}
	if len(lines) > 25 {
		lines = append(lines[:25], "...")
	}
	return strings.Join(lines, "\n")
}
