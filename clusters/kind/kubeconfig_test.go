package kind

import (
	"strings"
	"testing"

	"k8s.io/client-go/tools/clientcmd"
)

// The shape kind's KubeConfig(name, internal=true) returns.
const kindKubeconfig = `apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: Q0EK
    server: https://c1-control-plane:6443
  name: kind-c1
contexts:
- context:
    cluster: kind-c1
    user: kind-c1
  name: kind-c1
current-context: kind-c1
kind: Config
preferences: {}
users:
- name: kind-c1
  user:
    client-certificate-data: Q0VSVAo=
    client-key-data: S0VZCg==
`

func TestTheKubeconfigPointsAtTheControlPlanesAddressAndKeepsItsCredentials(t *testing.T) {
	b, err := rewriteServer([]byte(kindKubeconfig), apiServerURL("172.18.0.2"))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := clientcmd.Load(b)
	if err != nil {
		t.Fatalf("rewritten kubeconfig does not load: %v\n%s", err, b)
	}
	if got := cfg.Clusters["kind-c1"].Server; got != "https://172.18.0.2:6443" {
		t.Errorf("server %q, want https://172.18.0.2:6443", got)
	}
	if got := string(cfg.Clusters["kind-c1"].CertificateAuthorityData); got != "CA\n" {
		t.Errorf("CA data %q, want the original", got)
	}
	if got := string(cfg.AuthInfos["kind-c1"].ClientKeyData); got != "KEY\n" {
		t.Errorf("client key %q, want the original", got)
	}
	if cfg.CurrentContext != "kind-c1" {
		t.Errorf("current context %q, want kind-c1", cfg.CurrentContext)
	}
}

func TestAKubeconfigWithoutAClusterIsAnError(t *testing.T) {
	_, err := rewriteServer([]byte("apiVersion: v1\nkind: Config\n"), "https://10.0.0.1:6443")
	if err == nil || !strings.Contains(err.Error(), "no cluster") {
		t.Errorf("error %v, want one saying the kubeconfig has no cluster", err)
	}
	if _, err := rewriteServer([]byte("{not yaml"), "https://10.0.0.1:6443"); err == nil {
		t.Error("a kubeconfig that does not parse was accepted")
	}
}
