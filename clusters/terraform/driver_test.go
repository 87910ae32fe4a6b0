package terraform

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/proxyproof/proxyproof/clusters"
)

// binaries are the terraform binaries to run each test with: our built
// tofu and the terraform on PATH, where present.
func binaries(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	if clusters.Executable(tofuCache()) == nil {
		out["tofu"] = tofuCache()
	}
	if p, err := exec.LookPath("terraform"); err == nil {
		out["terraform"] = p
	}
	if len(out) == 0 {
		t.Skip("neither our tofu (hack/tofu/build.sh, make deps builds it) nor terraform on PATH")
	}
	return out
}

// eachBinary runs f per binary, with the module's directory checked to be
// as it was (the driver writes nothing into TF_DIR).
func eachBinary(t *testing.T, module string, f func(t *testing.T, p *Provider, runDir string)) {
	for name, bin := range binaries(t) {
		t.Run(name, func(t *testing.T) {
			before := listDir(t, "../../"+module)
			runDir := t.TempDir()
			p := &Provider{Lookup: mapLookup(map[string]string{EnvDir: module, EnvBin: bin, "RUN_DIR": runDir})}
			f(t, p, runDir)
			if after := listDir(t, "../../"+module); !slices.Equal(before, after) {
				t.Errorf("TF_DIR %s changed: %v, was %v", module, after, before)
			}
		})
	}
}

func listDir(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

func spec(name string) clusters.Spec {
	return clusters.Spec{Name: name, Proxier: clusters.ProxierOurs, Nodes: []clusters.NodeSpec{{Mode: clusters.ModeIPTables}, {Mode: clusters.ModeIPTables}}}
}

// stepError is Create's error as a *StepError.
func stepError(t *testing.T, err error) *StepError {
	t.Helper()
	var se *StepError
	if !errors.As(err, &se) {
		t.Fatalf("got %v, want a StepError", err)
	}
	t.Logf("the error a user sees:\n%v", err)
	return se
}

func TestAnApplyThatFailsHalfWayDestroysWhatWasMadeAndKeepsStateAndLog(t *testing.T) {
	eachBinary(t, "clusters/terraform/testdata/fail-half", func(t *testing.T, p *Provider, runDir string) {
		_, err := p.Create(context.Background(), spec("h4-half"))
		se := stepError(t, err)
		if se.Step != "apply" || !strings.Contains(se.Cause, "proxyproof_cluster.bad") || !strings.Contains(se.Cause, "Cluster refused by the kind provider") {
			t.Errorf("step %q cause %q: want the apply step naming proxyproof_cluster.bad and the kind provider's refusal", se.Step, se.Cause)
		}
		if !slices.Equal(se.Made, []string{"terraform_data.first"}) || !se.Destroyed {
			t.Errorf("made %v destroyed %v: want terraform_data.first, destroyed", se.Made, se.Destroyed)
		}
		dir := filepath.Join(runDir, "iptables", "terraform")
		if left := stateResources(t, filepath.Join(dir, StateFile)); len(left) > 0 {
			t.Errorf("state still holds %v after the destroy", left)
		}
		log, err := os.ReadFile(filepath.Join(dir, LogFile))
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"apply (module", "=== apply: failed", "destroy (module", "=== destroy: done", "terraform_data.first: Creation complete"} {
			if !strings.Contains(string(log), want) {
				t.Errorf("log %s lacks %q", filepath.Join(dir, LogFile), want)
			}
		}
	})
}

func TestAModuleWithoutTheKubeconfigOutputIsRefusedNamingTheOutputAndDestroyed(t *testing.T) {
	eachBinary(t, "clusters/terraform/testdata/no-output", func(t *testing.T, p *Provider, _ string) {
		_, err := p.Create(context.Background(), spec("h4-noout"))
		se := stepError(t, err)
		if se.Step != "output check" || !strings.Contains(se.Cause, `no output "kubeconfig"`) || !strings.Contains(se.Cause, "its outputs: endpoint") {
			t.Errorf("step %q cause %q: want the output check naming the missing output and the module's", se.Step, se.Cause)
		}
		if !slices.Equal(se.Made, []string{"terraform_data.endpoint"}) || !se.Destroyed {
			t.Errorf("made %v destroyed %v: want terraform_data.endpoint, destroyed", se.Made, se.Destroyed)
		}
	})
}

func TestAnUnknownModeAndABadNodeCountAreRefusedAtPlanMakingNothing(t *testing.T) {
	eachBinary(t, "clusters/terraform/testdata/bad-mode", func(t *testing.T, p *Provider, _ string) {
		_, err := p.Create(context.Background(), spec("h4-badmode"))
		se := stepError(t, err)
		for _, want := range []string{"Unknown mode", `mode = "ipvx": want iptables, nftables, ipvs`, "Bad node count", "nodes = 0: want 1 to 16"} {
			if !strings.Contains(se.Cause, want) {
				t.Errorf("cause lacks %q:\n%s", want, se.Cause)
			}
		}
		if se.Step != "apply" || len(se.Made) != 0 {
			t.Errorf("step %q made %v: want apply, nothing made", se.Step, se.Made)
		}
	})
}

// stateResources reads a state file (format version 4, the same for
// terraform and tofu) for the resources it holds.
func stateResources(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("state: %v", err)
	}
	var st struct {
		Resources []struct {
			Type, Name string
			Instances  []json.RawMessage
		}
	}
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatalf("state %s: %v", path, err)
	}
	var out []string
	for _, r := range st.Resources {
		if len(r.Instances) > 0 {
			out = append(out, r.Type+"."+r.Name)
		}
	}
	return out
}
