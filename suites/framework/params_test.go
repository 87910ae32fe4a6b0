package framework

import (
	"strings"
	"testing"
)

func TestParamsComeFromTheEnvironmentMakeE2ESets(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		want    Params
		wantErr string
	}{
		{"mode and run dir alone take the defaults", map[string]string{"MODE": "nftables", "RUN_DIR": "/r"},
			Params{Provider: "local", Mode: "nftables", Proxier: "ours", Nodes: 2, RunDir: "/r"}, ""},
		{"every parameter is read", map[string]string{"PROVIDER": "local", "MODE": "iptables", "RUN_DIR": "/r", "PROXIER": "kube-proxy", "NODES": "3", "KEEP": "1"},
			Params{Provider: "local", Mode: "iptables", Proxier: "kube-proxy", Nodes: 3, Keep: true, RunDir: "/r"}, ""},
		{"a provider not built yet is refused, not replaced by local", map[string]string{"PROVIDER": "kind", "MODE": "iptables", "RUN_DIR": "/r"}, Params{}, "PROVIDER=kind: that provider is not built yet"},
		{"an unknown provider is refused", map[string]string{"PROVIDER": "gke", "MODE": "iptables", "RUN_DIR": "/r"}, Params{}, `PROVIDER="gke": want one of `},
		{"without MODE the suite was not started by make e2e", map[string]string{"RUN_DIR": "/r"}, Params{}, "MODE is not set"},
		{"without RUN_DIR there is nowhere to report", map[string]string{"MODE": "iptables"}, Params{}, "RUN_DIR is not set"},
		{"an unknown mode is refused", map[string]string{"MODE": "userspace", "RUN_DIR": "/r"}, Params{}, `"userspace"`},
		{"one node cannot show a remote backend", map[string]string{"MODE": "iptables", "RUN_DIR": "/r", "NODES": "1"}, Params{}, ">= 2"},
		{"KEEP is 1 or 0", map[string]string{"MODE": "iptables", "RUN_DIR": "/r", "KEEP": "yes"}, Params{}, `KEEP="yes"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParamsFromEnv(func(k string) (string, bool) { v, ok := tt.env[k]; return v, ok })
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParamsFromEnv = %+v, %v; want %+v", got, err, tt.want)
			}
			if got.ModeDir() != "/r/"+tt.want.Mode {
				t.Errorf("ModeDir = %s, want /r/%s", got.ModeDir(), tt.want.Mode)
			}
		})
	}
}

func TestClusterNamesFitTheProviderAndTellModesApart(t *testing.T) {
	a, b := ClusterName("iptables"), ClusterName("nftables")
	if a == b || len(a) > 10 || len(b) > 10 {
		t.Errorf("cluster names %q and %q: want distinct names of at most 10 characters", a, b)
	}
}

func TestResultNamesTheBackendThatAnswered(t *testing.T) {
	tests := []struct {
		name string
		r    Result
		want string
	}{
		{"an HTTP answer is the hostname", Result{OK: true, Answer: "backend-abc"}, "backend-abc"},
		{"a UDP answer starts with the hostname", Result{OK: true, Answer: "backend-abc 10.244.0.4:5000"}, "backend-abc"},
		{"a failure names no backend", Result{Class: "refused", Answer: "backend-abc"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.r.Backend(); got != tt.want {
				t.Errorf("Backend() = %q, want %q", got, tt.want)
			}
		})
	}
}
