package kubeconfig

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/proxyproof/proxyproof/clusters"
)

// twoContexts is a kubeconfig whose server is a loopback port nothing
// listens on: an API server that does not answer, with nothing sent off
// the machine.
const twoContexts = `apiVersion: v1
kind: Config
clusters:
- name: c
  cluster: {server: "https://127.0.0.1:1"}
users:
- name: u
  user: {token: t}
contexts:
- name: alpha
  context: {cluster: c, user: u}
- name: beta
  context: {cluster: c, user: u}
current-context: alpha
`

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestBadInputIsRefusedBeforeAnythingIsCreated: each bad kubeconfig,
// context or server is refused by Check (what make e2e runs before any
// set-up) with the file, the context or the server named, and what would
// work.
func TestBadInputIsRefusedBeforeAnythingIsCreated(t *testing.T) {
	good := writeFile(t, "kubeconfig", twoContexts)
	for _, tt := range []struct {
		name    string
		spec    clusters.Spec
		wantAll []string
	}{
		{"no kubeconfig given", clusters.Spec{Name: "r"}, []string{"KUBECONFIG is empty"}},
		{"a kubeconfig that does not exist is named", clusters.Spec{Name: "r", Kubeconfig: "/nonexistent/kc"}, []string{"KUBECONFIG=/nonexistent/kc", "not a readable kubeconfig"}},
		{"a file that is no kubeconfig is named", clusters.Spec{Name: "r", Kubeconfig: writeFile(t, "junk", "{{{ not yaml")}, []string{"junk", "not a readable kubeconfig"}},
		{"a context that does not exist is named with the ones that do", clusters.Spec{Name: "r", Kubeconfig: good, Context: "gamma"},
			[]string{`CONTEXT="gamma"`, "no such context", "alpha, beta"}},
		{"a server that does not answer is named", clusters.Spec{Name: "r", Kubeconfig: good, Context: "beta"},
			[]string{"API server https://127.0.0.1:1", "does not answer", "context beta"}},
		{"our proxier without the take-over opt-in", clusters.Spec{Name: "r", Kubeconfig: good, Proxier: clusters.ProxierOurs},
			[]string{"PROXIER=ours", "TAKE_OVER=1"}},
		{"a binary path", clusters.Spec{Name: "r", Kubeconfig: good, Proxier: "/usr/bin/kube-proxy"}, []string{"not a binary of this machine"}},
		{"a take-over without a mode", clusters.Spec{Name: "r", Kubeconfig: good, Proxier: clusters.ProxierOurs, TakeOver: true,
			Nodes: []clusters.NodeSpec{{Mode: clusters.ModeExisting}}}, []string{"MODE="}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := NewProvider().Check(tt.spec)
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tt.wantAll {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}

func TestCreateRefusesBadInputAsCheckDoes(t *testing.T) {
	_, err := NewProvider().Create(context.Background(), clusters.Spec{Name: "r", Kubeconfig: "/nonexistent/kc"})
	if err == nil || !strings.Contains(err.Error(), "/nonexistent/kc") {
		t.Fatalf("Create: %v, want the kubeconfig named", err)
	}
}
