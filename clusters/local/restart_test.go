package local

import (
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/proxyproof/proxyproof/clusters"
	"github.com/proxyproof/proxyproof/clusters/hostkernel"
	"github.com/proxyproof/proxyproof/proxier/state"
)

func TestARestartChangeKeepsWhatItDoesNotSayAndRefusesWhatTheNodeCannotRun(t *testing.T) {
	ns := NodeStatus{Name: "node-1", Mode: ModeIPTables, Namespace: "x-node-1", Scheduler: "sh", ProxierFlags: []string{"--v=4"}}
	tests := []struct {
		name    string
		change  clusters.ProxierChange
		want    NodeStatus
		wantErr string
	}{
		{"an empty change keeps everything", clusters.ProxierChange{}, ns, ""},
		{"a new scheduler replaces the old", clusters.ProxierChange{Scheduler: "lc"}, func() NodeStatus { n := ns; n.Scheduler = "lc"; return n }(), ""},
		{"new flags replace the old", clusters.ProxierChange{Flags: []string{}}, func() NodeStatus { n := ns; n.ProxierFlags = []string{}; return n }(), ""},
		{"iptables to nftables stays in the namespace", clusters.ProxierChange{Mode: ModeNFTables}, func() NodeStatus { n := ns; n.Mode = ModeNFTables; return n }(), ""},
		{"an unknown scheduler is refused by name", clusters.ProxierChange{Scheduler: "fastest"}, ns, `IPVS scheduler "fastest"`},
		{"an unknown mode is refused", clusters.ProxierChange{Mode: "userspace"}, ns, `"userspace"`},
	}
	if !hostkernel.HasIPVS() {
		tests = append(tests, struct {
			name    string
			change  clusters.ProxierChange
			want    NodeStatus
			wantErr string
		}{"a namespace node cannot switch to a mode only the VM has", clusters.ProxierChange{Mode: ModeIPVS}, ns, "kernel VM"})
	}
	vm := NodeStatus{Name: "node-2", Mode: ModeIPTables, VM: true}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := applyChange(ns, tt.change)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("applyChange error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("applyChange = %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
	// A node made in the VM (make validate's, for a switch to or from ipvs)
	// runs every mode there.
	for _, m := range []string{ModeIPVS, ModeNFTables} {
		got, err := applyChange(vm, clusters.ProxierChange{Mode: m})
		if err != nil || got.Mode != m || !got.VM {
			t.Errorf("VM node to %s: %+v, %v; want mode %s in the VM", m, got, err, m)
		}
	}
}

func TestTheProxierConfigCarriesTheNodesSchedulerAndTheVMStartItsFlags(t *testing.T) {
	dir := t.TempDir()
	c := &Cluster{paths: paths{dir}, rec: record{Spec: Spec{Name: "x"}, Proxier: "/bin/proxier"}}
	n := NodeStatus{Name: "node-1", Mode: ModeIPVS, IP: "198.18.0.11", Scheduler: "wlc", ProxierFlags: []string{"--ipvs-strict-arp"}}
	cfg, err := c.writeProxierConfig(n, "/k/proxier.kubeconfig")
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "\nipvs:\n  scheduler: wlc\n") || !strings.Contains(string(b), "mode: ipvs\n") {
		t.Errorf("config lacks mode ipvs and scheduler wlc:\n%s", b)
	}
	start := c.vmProxierStart(n, cfg)
	if !strings.Contains(start, "--ipvs-strict-arp") || !strings.Contains(start, "echo $! >") {
		t.Errorf("VM start line %q lacks the flag or the pid file", start)
	}
	n.Scheduler = ""
	if cfg, _ = c.writeProxierConfig(n, "/k/proxier.kubeconfig"); cfg != "" {
		if b, _ := os.ReadFile(cfg); strings.Contains(string(b), "ipvs:") {
			t.Errorf("no scheduler asked, yet the config sets one:\n%s", b)
		}
	}
}

func TestTheDeclaredSchedulerExtensionIsTheAnnotationOurProxierReads(t *testing.T) {
	if clusters.ExtensionIPVSSchedulerAnnotation != state.SchedulerAnnotation {
		t.Errorf("declared %q, our proxier reads %q", clusters.ExtensionIPVSSchedulerAnnotation, state.SchedulerAnnotation)
	}
	ours := &Cluster{rec: record{Spec: Spec{Proxier: ProxierOurs}}}
	upstream := &Cluster{rec: record{Spec: Spec{Proxier: ProxierKubeProxy}}}
	if len(ours.ProxierExtensions()) != 1 || len(upstream.ProxierExtensions()) != 0 {
		t.Errorf("extensions: ours %v, kube-proxy %v; want the annotation for ours only", ours.ProxierExtensions(), upstream.ProxierExtensions())
	}
}
