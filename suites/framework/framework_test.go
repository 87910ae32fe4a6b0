package framework

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	"github.com/proxyproof/proxyproof/clusters"
	"github.com/proxyproof/proxyproof/suites/census"
)

// fakeCluster is a clusters.Cluster with no cluster behind it: it records
// every exec and answers with answer, so the framework's plumbing is
// tested without any provider.
type fakeCluster struct {
	server    string // the API server RestConfig points at
	nodes     []clusters.Node
	execs     []string // "<where>: <argv>"
	answer    func(where string, cmd []string) ([]byte, error)
	destroyed bool
}

var _ clusters.Cluster = (*fakeCluster)(nil)

func (c *fakeCluster) Name() string       { return "fake" }
func (c *fakeCluster) Provider() string   { return "fake" }
func (c *fakeCluster) Kubeconfig() string { return "/nonexistent/kubeconfig" }
func (c *fakeCluster) RestConfig() (*rest.Config, error) {
	return &rest.Config{Host: c.server}, nil
}
func (c *fakeCluster) Nodes() []clusters.Node { return c.nodes }
func (c *fakeCluster) OutsideIP() string      { return "192.0.2.1" }
func (c *fakeCluster) RouteOutside(ctx context.Context, ip, node string) error {
	c.execs = append(c.execs, fmt.Sprintf("route: %s via %s", ip, node))
	return nil
}
func (c *fakeCluster) Destroy(ctx context.Context) error { c.destroyed = true; return nil }

func (c *fakeCluster) exec(where string, cmd []string) ([]byte, error) {
	c.execs = append(c.execs, where+": "+strings.Join(cmd, " "))
	return c.answer(where, cmd)
}
func (c *fakeCluster) ExecOnNode(ctx context.Context, node string, cmd ...string) ([]byte, error) {
	return c.exec("node "+node, cmd)
}
func (c *fakeCluster) ExecInPod(ctx context.Context, ns, name string, cmd ...string) ([]byte, error) {
	return c.exec("pod "+ns+"/"+name, cmd)
}
func (c *fakeCluster) ExecOutside(ctx context.Context, cmd ...string) ([]byte, error) {
	return c.exec("outside", cmd)
}

// fakeProvider makes one fakeCluster per Create and keeps the spec.
type fakeProvider struct {
	cluster  *fakeCluster
	checkErr error
	spec     clusters.Spec
	created  bool
}

func (p *fakeProvider) Name() string { return "fake" }
func (p *fakeProvider) Check(spec clusters.Spec) error {
	p.spec = spec
	return p.checkErr
}
func (p *fakeProvider) Create(ctx context.Context, spec clusters.Spec) (clusters.Cluster, error) {
	p.created = true
	for _, n := range spec.Nodes {
		i := len(p.cluster.nodes) + 1
		p.cluster.nodes = append(p.cluster.nodes, clusters.Node{Name: fmt.Sprintf("n%d", i), IP: fmt.Sprintf("192.0.2.%d", 10+i), Mode: n.Mode})
	}
	return p.cluster, nil
}

// apiServer answers /version only, as the version the environment records.
func apiServer(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/version" {
			http.NotFound(w, r)
			return
		}
		fmt.Fprint(w, `{"major":"1","minor":"34","gitVersion":"v1.34.4"}`)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestSetupAsksTheProviderForTheModesClusterAndRecordsWhatItGot(t *testing.T) {
	fc := &fakeCluster{server: apiServer(t), answer: func(string, []string) ([]byte, error) {
		return nil, errors.New("no node behind the fake")
	}}
	prov := &fakeProvider{cluster: fc}
	p := Params{Provider: "fake", Mode: clusters.ModeNFTables, Proxier: clusters.ProxierKubeProxy, Nodes: 3, RunDir: t.TempDir()}
	f, err := SetupWith(context.Background(), p, prov)
	if err != nil {
		t.Fatalf("SetupWith: %v", err)
	}
	want := clusters.Spec{Name: ClusterName(p.Mode), Proxier: clusters.ProxierKubeProxy,
		Nodes: []clusters.NodeSpec{{Mode: "nftables"}, {Mode: "nftables"}, {Mode: "nftables"}}}
	if !reflect.DeepEqual(prov.spec, want) {
		t.Errorf("the provider checked spec %+v, want %+v", prov.spec, want)
	}
	b, err := os.ReadFile(filepath.Join(p.ModeDir(), EnvironmentFile))
	if err != nil {
		t.Fatalf("environment not written: %v", err)
	}
	var env Environment
	if err := json.Unmarshal(b, &env); err != nil {
		t.Fatal(err)
	}
	wantEnv := Environment{Cluster: "fake", KubernetesVersion: "v1.34.4", Proxier: "kube-proxy",
		Nodes: map[string]string{"n1": "nftables", "n2": "nftables", "n3": "nftables"}}
	if !reflect.DeepEqual(env, wantEnv) {
		t.Errorf("environment.json = %+v, want %+v", env, wantEnv)
	}
	if got := f.NodeNames(); !reflect.DeepEqual(got, []string{"n1", "n2", "n3"}) {
		t.Errorf("NodeNames = %v", got)
	}
	if err := f.Teardown(context.Background()); err != nil || !fc.destroyed {
		t.Errorf("Teardown without KEEP: err %v, destroyed %v; want the cluster destroyed", err, fc.destroyed)
	}
	// A census at the start and one at the end, every node in each: here
	// none can be read, and each says so for its node.
	cs, err := census.Load(p.ModeDir())
	if err != nil || len(cs) != 2 || cs[0].When != census.Start || cs[1].When != census.End {
		t.Fatalf("census file: %d censuses, %v; want the start's and the end's", len(cs), err)
	}
	for _, c := range cs {
		if len(c.Nodes) != 3 || c.OK() || !strings.Contains(c.Failures()[0], "node n1: kernel not read (uname -r): no node behind the fake") {
			t.Errorf("census at the %s: %d nodes, failures %q; want 3 nodes, each failing as unread", c.When, len(c.Nodes), c.Failures())
		}
	}
}

func TestAMixedClusterAsksForEachNodesMode(t *testing.T) {
	fc := &fakeCluster{server: apiServer(t), answer: func(string, []string) ([]byte, error) { return nil, errors.New("fake") }}
	prov := &fakeProvider{cluster: fc}
	ps, err := Given{Mode: ModeMixed, NodeModes: "ipvs, iptables,nftables,iptables", Nodes: "2", RunDir: t.TempDir()}.Parse()
	if err != nil {
		t.Fatal(err)
	}
	f, err := SetupWith(context.Background(), ps[0], prov)
	if err != nil {
		t.Fatalf("SetupWith: %v", err)
	}
	var got []string
	for _, n := range prov.spec.Nodes {
		got = append(got, n.Mode)
	}
	if strings.Join(got, ",") != "ipvs,iptables,nftables,iptables" || f.Nodes != 4 {
		t.Errorf("mixed spec nodes %v (Nodes %d), want ipvs,iptables,nftables,iptables: NODE_MODES sets the nodes, not NODES", got, f.Nodes)
	}
	if m, _ := f.NodeMode("n3"); m != "nftables" || f.ModeDir() != filepath.Join(ps[0].RunDir, "mixed") {
		t.Errorf("node n3 mode %q, mode dir %s; want nftables and <run dir>/mixed", m, f.ModeDir())
	}
}

func TestSetupCreatesNothingForASpecTheProviderRefuses(t *testing.T) {
	prov := &fakeProvider{cluster: &fakeCluster{}, checkErr: errors.New("mode ipvs: no ip_vs")}
	_, err := SetupWith(context.Background(), Params{Mode: "ipvs", Proxier: "ours", Nodes: 2, RunDir: t.TempDir()}, prov)
	if err == nil || !strings.Contains(err.Error(), "no ip_vs") || !strings.Contains(err.Error(), "provider fake") {
		t.Fatalf("error %v, want the provider's refusal naming the provider", err)
	}
	if prov.created {
		t.Error("Create was called after Check refused the spec")
	}
}

func TestKeptClusterIsNotDestroyed(t *testing.T) {
	fc := &fakeCluster{}
	f := &Framework{Params: Params{Keep: true}, Cluster: fc}
	if err := f.Teardown(context.Background()); err != nil || fc.destroyed {
		t.Fatalf("Teardown with KEEP=1: err %v, destroyed %v; want it kept", err, fc.destroyed)
	}
}

func TestProbesRunTheProbeByNameWhereTheSourceSays(t *testing.T) {
	fc := &fakeCluster{
		nodes: []clusters.Node{{Name: "n1", Mode: "iptables"}},
		answer: func(where string, cmd []string) ([]byte, error) {
			if where == "outside" {
				return []byte("refused 1.5 dial tcp: connection refused\n"), errors.New("exit status 1")
			}
			return []byte("backend-a 10.0.0.1:4000\n"), nil
		},
	}
	f := &Framework{Cluster: fc}
	pod := corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "client"}, Spec: corev1.PodSpec{NodeName: "n1"}}
	ctx := context.Background()

	for _, src := range []Source{f.FromPod(pod), f.FromNode("n1")} {
		r := f.Probe(ctx, src, UDP, "10.96.0.10:81", time.Second)
		if !r.OK || r.Backend() != "backend-a" {
			t.Errorf("%s: %+v, want an answer from backend-a", src.Description, r)
		}
	}
	out := f.FromOutside()
	if !strings.Contains(out.Description, "192.0.2.1") {
		t.Errorf("outside source %q does not name the cluster's outside IP", out.Description)
	}
	r := f.Probe(ctx, out, TCP, "192.0.2.11:30080", time.Second)
	if r.OK || r.Class != "refused" || r.Elapsed != 1500*time.Microsecond {
		t.Errorf("outside probe: %+v, want refused after 1.5ms as the probe measured", r)
	}
	want := []string{
		"pod ns/client: netprobe -timeout 1s udp 10.96.0.10:81",
		"node n1: netprobe -timeout 1s udp 10.96.0.10:81",
		"outside: netprobe -timeout 1s tcp 192.0.2.11:30080",
	}
	if !reflect.DeepEqual(fc.execs, want) {
		t.Errorf("execs:\n%s\nwant:\n%s", strings.Join(fc.execs, "\n"), strings.Join(want, "\n"))
	}
}

func TestRuleDumpsRunEachNodesModeCommandsOnTheNode(t *testing.T) {
	fc := &fakeCluster{
		nodes: []clusters.Node{{Name: "n1", Mode: "nftables"}, {Name: "n2", Mode: "ipvs"}},
		answer: func(where string, cmd []string) ([]byte, error) {
			return []byte("rules of " + where), nil
		},
	}
	f := &Framework{Params: Params{Mode: "mixed", RunDir: t.TempDir()}, Cluster: fc}
	f.DumpRules(context.Background(), "Services a spec")
	want := []string{"node n1: nft list ruleset", "node n2: ipvsadm -Ln", "node n2: iptables-save"}
	if !reflect.DeepEqual(fc.execs, want) {
		t.Errorf("dump commands %v, want %v", fc.execs, want)
	}
	dumps, _ := filepath.Glob(filepath.Join(f.ModeDir(), "dumps", "*", "n2.txt"))
	if len(dumps) != 1 {
		t.Fatalf("dump files of n2: %v, want one", dumps)
	}
	b, _ := os.ReadFile(dumps[0])
	if !strings.Contains(string(b), "### ipvsadm -Ln\nrules of node n2") {
		t.Errorf("n2's dump:\n%s\nwant the command and its output", b)
	}
}

// loggingCluster keeps its proxiers' logs (clusters.ProxierLogs).
type loggingCluster struct{ *fakeCluster }

func (loggingCluster) ProxierLog(_ context.Context, node string, _ int64) ([]byte, error) {
	if node == "n2" {
		return nil, errors.New("no log file")
	}
	return []byte("I1207 drain: 2 connections through the new mode on IPVS's ports\n"), nil
}

func TestRuleDumpsKeepEachNodesProxierLogBesideTheRules(t *testing.T) {
	fc := &fakeCluster{
		nodes:  []clusters.Node{{Name: "n1", Mode: "ipvs"}, {Name: "n2", Mode: "iptables"}},
		answer: func(string, []string) ([]byte, error) { return nil, nil },
	}
	f := &Framework{Params: Params{Mode: "mixed", RunDir: t.TempDir()}, Cluster: loggingCluster{fc}}
	f.DumpRules(context.Background(), "Live mode switch switches")
	logs, _ := filepath.Glob(filepath.Join(f.ModeDir(), "dumps", "*", "*.proxier.log"))
	if len(logs) != 2 {
		t.Fatalf("proxier logs dumped: %v, want n1's and n2's", logs)
	}
	for node, want := range map[string]string{"n1": "on IPVS's ports", "n2": "(the proxier's log: no log file)"} {
		b, _ := os.ReadFile(filepath.Join(filepath.Dir(logs[0]), node+".proxier.log"))
		if !strings.Contains(string(b), want) {
			t.Errorf("%s's proxier log dump %q, want %q", node, b, want)
		}
	}
}

// moduleCluster is a cluster whose provider knows the proxier it runs, as
// a Terraform module's own cluster does (clusters.RunningProxier), behind
// a wrapper as terraform's is.
type moduleCluster struct{ *fakeCluster }

func (moduleCluster) RunningProxier() string { return clusters.ProxierExisting }

type moduleWrapper struct{ clusters.Cluster }

func (w moduleWrapper) Unwrap() clusters.Cluster { return w.Cluster }

type moduleProvider struct{ *fakeProvider }

func (p moduleProvider) Create(ctx context.Context, spec clusters.Spec) (clusters.Cluster, error) {
	c, err := p.fakeProvider.Create(ctx, spec)
	return moduleWrapper{moduleCluster{c.(*fakeCluster)}}, err
}

// PROXIER defaults to ours, but a module's own cluster runs its own
// kube-proxy: the environment (and so the report) must name that.
func TestTheEnvironmentNamesTheProxierTheClusterRunsNotPROXIER(t *testing.T) {
	fc := &fakeCluster{server: apiServer(t), answer: func(string, []string) ([]byte, error) { return nil, errors.New("fake") }}
	p := Params{Provider: "fake", Mode: clusters.ModeIPTables, Proxier: clusters.ProxierOurs, Nodes: 1, RunDir: t.TempDir()}
	f, err := SetupWith(context.Background(), p, moduleProvider{&fakeProvider{cluster: fc}})
	if err != nil {
		t.Fatalf("SetupWith: %v", err)
	}
	b, err := os.ReadFile(filepath.Join(p.ModeDir(), EnvironmentFile))
	if err != nil {
		t.Fatal(err)
	}
	var env Environment
	if err := json.Unmarshal(b, &env); err != nil {
		t.Fatal(err)
	}
	if env.Proxier != clusters.ProxierExisting || f.Proxier != clusters.ProxierExisting {
		t.Errorf("environment.json proxier %q, the framework's %q; want %q, what the cluster runs", env.Proxier, f.Proxier, clusters.ProxierExisting)
	}
}
