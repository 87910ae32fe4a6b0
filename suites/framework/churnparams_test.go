package framework

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/proxyproof/proxyproof/clusters"
)

func TestChurnParametersAreCheckedWithTheirAcceptedRange(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		want    Churn
		wantErr string
	}{
		{"nothing set takes the defaults", nil, DefaultChurn, ""},
		{"every parameter is read", map[string]string{"CHURN_REPLICAS": "20", "CHURN_RATE": "7.5", "CHURN_KEEPALIVE": "0", "CHURN_MAX_SURGE": "2", "CHURN_MAX_UNAVAILABLE": "10%", "CHURN_SERVICES": "5", "CHURN_IDLE_SERVICES": "0"},
			Churn{Replicas: 20, Rate: 7.5, Keepalive: 0, MaxSurge: intstr.FromInt32(2), MaxUnavailable: intstr.FromString("10%"), Services: 5, IdleServices: 0}, ""},
		{"zero Services rolled is refused", map[string]string{"CHURN_SERVICES": "0"}, Churn{}, `CHURN_SERVICES="0": want a whole number of Services rolled at once, from 1 to 10`},
		{"negative idle Services are refused", map[string]string{"CHURN_IDLE_SERVICES": "-5"}, Churn{}, `CHURN_IDLE_SERVICES="-5": want a whole number of idle Services from 0 to 10000`},
		{"idle Services that are no number are refused", map[string]string{"CHURN_IDLE_SERVICES": "lots"}, Churn{}, `CHURN_IDLE_SERVICES="lots"`},
		{"zero replicas is refused", map[string]string{"CHURN_REPLICAS": "0"}, Churn{}, `CHURN_REPLICAS="0": want a whole number of replicas from 1 to 200`},
		{"too many replicas are refused", map[string]string{"CHURN_REPLICAS": "5000"}, Churn{}, `CHURN_REPLICAS="5000"`},
		{"a negative rate is refused", map[string]string{"CHURN_RATE": "-1"}, Churn{}, `CHURN_RATE="-1": want new connections a second, more than 0 and at most 200`},
		{"a rate that is no number is refused", map[string]string{"CHURN_RATE": "fast"}, Churn{}, `CHURN_RATE="fast"`},
		{"negative held connections are refused", map[string]string{"CHURN_KEEPALIVE": "-3"}, Churn{}, `CHURN_KEEPALIVE="-3"`},
		{"a surge over 100% is refused", map[string]string{"CHURN_MAX_SURGE": "150%"}, Churn{}, `CHURN_MAX_SURGE="150%": want a whole number of pods (0 or more) or a percentage`},
		{"a negative maxUnavailable is refused", map[string]string{"CHURN_MAX_UNAVAILABLE": "-1"}, Churn{}, `CHURN_MAX_UNAVAILABLE="-1"`},
		{"a rollout that cannot progress is refused", map[string]string{"CHURN_MAX_SURGE": "0%", "CHURN_MAX_UNAVAILABLE": "0"}, Churn{}, "with both 0 a Deployment cannot roll"},
	}
	def, err := ChurnFromEnv(func(string) (string, bool) { return "", false })
	if err != nil || def.ReplicasOn(false) != 50 || def.ReplicasOn(true) != 10 {
		t.Errorf("default replicas: namespace nodes %d, a kernel-VM node %d (%v); want 50 and 10", def.ReplicasOn(false), def.ReplicasOn(true), err)
	}
	if def.IdleOn(false) != 2000 || def.IdleOn(true) != 300 {
		t.Errorf("default idle Services: namespace nodes %d, a kernel-VM node %d; want 2000 and 300", def.IdleOn(false), def.IdleOn(true))
	}
	if c := (Churn{IdleServices: 0}); c.IdleOn(false) != 0 {
		t.Errorf("CHURN_IDLE_SERVICES=0 gave %d", c.IdleOn(false))
	}
	if c := (Churn{Replicas: 30}); c.ReplicasOn(true) != 30 {
		t.Errorf("CHURN_REPLICAS=30 with a kernel-VM node gave %d", c.ReplicasOn(true))
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ChurnFromEnv(func(k string) (string, bool) { v, ok := tt.env[k]; return v, ok })
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ChurnFromEnv = %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

func TestAKernelVMNodeAnywhereSetsTheChurnDefaults(t *testing.T) {
	def := DefaultChurn
	for _, tc := range []struct {
		name     string
		nodes    []clusters.Node
		replicas int
	}{
		{"namespace nodes, ipvs on a host kernel with ip_vs among them", []clusters.Node{{Name: "a", Mode: "iptables", Kernel: clusters.KernelHost}, {Name: "b", Mode: "ipvs", Kernel: clusters.KernelHost}}, 50},
		{"an iptables node in the kernel VM beside a namespace node", []clusters.Node{{Name: "a", Mode: "iptables", Kernel: clusters.KernelHost}, {Name: "b", Mode: "iptables", Kernel: clusters.KernelVM}}, 10},
		{"a cluster the suite did not make (kernel unknown)", []clusters.Node{{Name: "a", Mode: "ipvs"}}, 50},
	} {
		f := &Framework{Cluster: &fakeCluster{nodes: tc.nodes}}
		if got := def.ReplicasOn(f.KernelVMNodes()); got != tc.replicas {
			t.Errorf("%s: %d replicas, want %d", tc.name, got, tc.replicas)
		}
	}
}
