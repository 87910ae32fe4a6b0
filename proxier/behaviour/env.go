package behaviour

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
)

// Env is one running test environment: the topology, an API (a fake
// clientset; the local provider brings the real API server) and the proxier
// under test, running for node1 with its kernel in Topo.Node1.
type Env struct {
	Topo   *Topology
	Client kubernetes.Interface
	// Settle bounds how long a change may take to reach the kernel. The
	// kernel VM is slow (TCG), so modes tested there raise it.
	Settle time.Duration
}

// StartFunc starts the proxier under test for node "node1", its kernel in
// network namespace env.Topo.Node1, with cluster CIDR ClusterCIDR, reading
// env.Client. It must return once the proxier runs, and stop it when ctx ends.
type StartFunc func(ctx context.Context, env *Env) error

// NodeName is the node the proxier under test runs as.
const NodeName = "node1"

// Setup builds an environment and starts the proxier; everything is torn
// down when the test ends. It skips only when the test cannot make network
// namespaces (not root).
func Setup(t *testing.T, start StartFunc) *Env {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: the behaviour table builds network namespaces and programs their kernel")
	}
	env := &Env{Topo: NewTopology(t), Client: fake.NewClientset(), Settle: 15 * time.Second}
	for _, n := range nodes() {
		if _, err := env.Client.CoreV1().Nodes().Create(context.Background(), n, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	srv := &servers{}
	t.Cleanup(srv.stop)
	for _, name := range []string{"a", "b", "d"} {
		if err := srv.start(env.Topo.Pods[name]); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if err := start(ctx, env); err != nil {
		t.Fatalf("start the proxier: %v", err)
	}
	return env
}

// eventually calls check until it succeeds or Settle passes, and then fails
// the test with the last thing check saw.
func (e *Env) eventually(t *testing.T, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(e.Settle)
	var last error
	for {
		if last = check(); last == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not true after %v; last seen: %v", what, e.Settle, last)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// seen probes up to n times and returns which pods answered and what they
// saw as client address; probe errors are counted by outcome.
func seen(n int, probe func() (Answer, Outcome, error)) (pods map[string]int, clients map[string]int, failures map[Outcome]int, last error) {
	pods, clients, failures = map[string]int{}, map[string]int{}, map[Outcome]int{}
	for i := 0; i < n; i++ {
		a, o, err := probe()
		if err != nil {
			failures[o]++
			last = err
			continue
		}
		pods[a.Pod]++
		clients[a.ClientIP]++
	}
	return
}

func sameKeys(got map[string]int, want ...string) error {
	if len(got) != len(want) {
		return fmt.Errorf("answered by %v, want exactly %v", got, want)
	}
	for _, w := range want {
		if got[w] == 0 {
			return fmt.Errorf("answered by %v, want exactly %v", got, want)
		}
	}
	return nil
}
