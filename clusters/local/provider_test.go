package local

import (
	"errors"

	"github.com/proxyproof/proxyproof/clusters/hostkernel"
	"reflect"
	"strings"
	"testing"

	"github.com/proxyproof/proxyproof/clusters"
)

func TestTheSeamShowsNodesAndResolvesTheProbeToTheBuiltCopy(t *testing.T) {
	c := seamCluster{&Cluster{paths: paths{"/run/proxyproof/x"}, rec: record{
		Spec:  Spec{Name: "x"},
		Nodes: []NodeStatus{{Name: "node-1", Mode: "iptables", IP: "198.18.0.11", Namespace: "x-node-1"}, {Name: "node-2", Mode: "ipvs", IP: "198.18.0.12", VM: true}},
	}}}
	want := []clusters.Node{{Name: "node-1", IP: "198.18.0.11", Mode: "iptables", Kernel: clusters.KernelHost}, {Name: "node-2", IP: "198.18.0.12", Mode: "ipvs", Kernel: clusters.KernelVM}}
	if got := c.Nodes(); !reflect.DeepEqual(got, want) {
		t.Errorf("Nodes = %+v, want %+v", got, want)
	}
	if got, want := c.resolve([]string{clusters.Probe, "tcp", "10.96.0.1:80"}), []string{c.Bin("netprobe"), "tcp", "10.96.0.1:80"}; !reflect.DeepEqual(got, want) {
		t.Errorf("the probe resolved to %v, want %v", got, want)
	}
	if !strings.HasPrefix(c.Bin("netprobe"), "/run/proxyproof/x/") {
		t.Errorf("the probe %s is outside the cluster's state dir, which VM nodes share", c.Bin("netprobe"))
	}
	if got := c.resolve([]string{"nft", "list", "ruleset"}); !reflect.DeepEqual(got, []string{"nft", "list", "ruleset"}) {
		t.Errorf("another command was changed: %v", got)
	}
	if c.OutsideIP() != ForwarderIP {
		t.Errorf("OutsideIP = %s, want the underlay's %s", c.OutsideIP(), ForwarderIP)
	}
}

func TestTheProviderChecksASpecBeforeAnythingExists(t *testing.T) {
	tests := []struct {
		name    string
		spec    clusters.Spec
		wantErr string
	}{
		{"a good spec passes", clusters.Spec{Name: "ok", Nodes: []clusters.NodeSpec{{Mode: "iptables"}, {Mode: "nftables"}}, Proxier: "ours"}, ""},
		{"a name too long for the namespaces is refused", clusters.Spec{Name: "much-too-long-name", Nodes: []clusters.NodeSpec{{Mode: "iptables"}}}, `cluster name "much-too-long-name"`},
		{"an unknown mode is refused", clusters.Spec{Name: "ok", Nodes: []clusters.NodeSpec{{Mode: "userspace"}}}, `mode "userspace"`},
		{"a proxier that is no executable is refused", clusters.Spec{Name: "ok", Proxier: "/nonexistent/kube-proxy"}, `proxier "/nonexistent/kube-proxy"`},
		{"an unknown kernel is refused naming NODE_KERNELS", clusters.Spec{Name: "ok", Nodes: []clusters.NodeSpec{{Mode: "iptables", Kernel: "qemu"}}}, `kernel "qemu": want host or vm (NODE_KERNELS)`},
		{"the existing proxier is for clusters the suite did not make", clusters.Spec{Name: "ok", Proxier: clusters.ProxierExisting}, "a cluster the suite did not make"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Provider{}.Check(tt.spec)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Check: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Check error %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestAKeptClusterOutlivesTheSuite(t *testing.T) {
	s, err := localSpec(clusters.Spec{Name: "k", Keep: true, Proxier: "kube-proxy", Nodes: []clusters.NodeSpec{{Mode: "nftables"}}})
	if err != nil {
		t.Fatal(err)
	}
	want := Spec{Name: "k", Proxier: "kube-proxy", OutliveCaller: true, Nodes: []NodeSpec{{Mode: "nftables"}}}
	if !reflect.DeepEqual(s, want) {
		t.Errorf("local spec %+v, want %+v", s, want)
	}
}

func TestPrecheckRefusesAnIPVSNodeOnAHostKernelWithoutIPVSBeforeSetUp(t *testing.T) {
	ipvsOnHost := clusters.Spec{Name: "ok", Proxier: "ours", Nodes: []clusters.NodeSpec{{Mode: "ipvs", Kernel: clusters.KernelHost}}}
	err := Provider{}.Precheck(ipvsOnHost)
	if hostkernel.HasIPVS() {
		if err != nil {
			t.Fatalf("this kernel has ip_vs, yet Precheck refused an ipvs node on it: %v", err)
		}
		return
	}
	if err == nil || !errors.Is(err, clusters.ErrModeUnsupported) || !strings.Contains(err.Error(), "NODE_KERNELS=host with mode ipvs") || !strings.Contains(err.Error(), "vm or auto") {
		t.Fatalf("Precheck error %v: want ErrModeUnsupported naming NODE_KERNELS=host, mode ipvs and the fix (vm or auto)", err)
	}
	// The VM needs no image yet: set-up builds it after Precheck.
	inVM := clusters.Spec{Name: "ok", Proxier: "ours", Nodes: []clusters.NodeSpec{{Mode: "iptables", Kernel: clusters.KernelVM}, {Mode: "ipvs"}}}
	if err := (Provider{}).Precheck(inVM); err != nil {
		t.Fatalf("Precheck refused VM nodes before set-up: %v", err)
	}
}
