package local

import (
	"context"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/e2e-framework/pkg/envconf"
	"sigs.k8s.io/e2e-framework/pkg/envfuncs"
)

// e2e-framework's own env funcs bring a local cluster up, hand its
// kubeconfig to the test config, and take it down leaving nothing.
func TestE2EFrameworkEnvFuncsDriveTheLocalProvider(t *testing.T) {
	requireRoot(t)
	name := testClusterName(t)
	t.Cleanup(func() { _ = Destroy(context.Background(), name) })
	ctx := context.Background()
	cfg := envconf.New()
	ctx, err := envfuncs.CreateClusterWithOpts(NewE2EProvider(), name,
		WithSpec(Spec{Name: name, Nodes: []NodeSpec{{Mode: "iptables"}}}))(ctx, cfg)
	if err != nil {
		t.Fatalf("envfuncs.CreateClusterWithOpts: %v", err)
	}
	if cfg.KubeconfigFile() == "" {
		t.Fatal("the env config got no kubeconfig")
	}
	rc, err := cfg.NewClient()
	if err != nil {
		t.Fatal(err)
	}
	client := kubernetes.NewForConfigOrDie(rc.RESTConfig())
	nodes, err := client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil || len(nodes.Items) != 1 {
		t.Fatalf("nodes through the env's client: %v (err %v), want 1", nodes, err)
	}
	if _, err := envfuncs.DestroyCluster(name)(ctx, cfg); err != nil {
		t.Fatalf("envfuncs.DestroyCluster: %v", err)
	}
	if left := leftovers(t, name); len(left) > 0 {
		t.Fatalf("left behind: %v", left)
	}
}
