package framework

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParamsComeFromTheEnvironmentMakeE2ESets(t *testing.T) {
	dir := t.TempDir()
	notExec := filepath.Join(dir, "proxier")
	if err := os.WriteFile(notExec, []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
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
		{"KEEP=true keeps and KEEP=false does not", map[string]string{"MODE": "ipvs", "RUN_DIR": "/r", "KEEP": "true"},
			Params{Provider: "local", Mode: "ipvs", Proxier: "ours", Nodes: 2, Keep: true, RunDir: "/r"}, ""},
		{"a proxier that is an executable file is taken as its path", map[string]string{"MODE": "iptables", "RUN_DIR": "/r", "PROXIER": "/bin/true"},
			Params{Provider: "local", Mode: "iptables", Proxier: "/bin/true", Nodes: 2, RunDir: "/r"}, ""},
		{"an unknown provider is refused", map[string]string{"PROVIDER": "gke", "MODE": "iptables", "RUN_DIR": "/r"}, Params{}, `PROVIDER="gke": want one of `},
		{"without MODE the suite was not started by make e2e", map[string]string{"RUN_DIR": "/r"}, Params{}, "MODE is not set"},
		{"without RUN_DIR there is nowhere to report", map[string]string{"MODE": "iptables"}, Params{}, "RUN_DIR is not set"},
		{"an unknown mode is refused", map[string]string{"MODE": "userspace", "RUN_DIR": "/r"}, Params{}, `MODE="userspace": want iptables, nftables, ipvs, mixed or all`},
		{"MODE=mixed takes a node per mode of NODE_MODES", map[string]string{"MODE": "mixed", "NODE_MODES": "nftables,ipvs,nftables", "RUN_DIR": "/r"},
			Params{Provider: "local", Mode: "mixed", NodeModes: "nftables,ipvs,nftables", Proxier: "ours", Nodes: 3, RunDir: "/r"}, ""},
		{"MODE=mixed alone is a node per mode", map[string]string{"MODE": "mixed", "RUN_DIR": "/r"},
			Params{Provider: "local", Mode: "mixed", NodeModes: "iptables,nftables,ipvs", Proxier: "ours", Nodes: 3, RunDir: "/r"}, ""},
		{"NODE_MODES names known modes", map[string]string{"MODE": "mixed", "NODE_MODES": "iptables,ebpf", "RUN_DIR": "/r"}, Params{}, `NODE_MODES="iptables,ebpf": want a mode per node, each one of iptables, nftables, ipvs (node 2 is "ebpf")`},
		{"NODE_MODES needs two nodes", map[string]string{"MODE": "mixed", "NODE_MODES": "ipvs", "RUN_DIR": "/r"}, Params{}, `NODE_MODES="ipvs": want at least 2 nodes`},
		{"NODE_MODES goes with MODE=mixed only", map[string]string{"MODE": "iptables", "NODE_MODES": "iptables,ipvs", "RUN_DIR": "/r"}, Params{}, `NODE_MODES="iptables,ipvs": want MODE=mixed with it`},
		{"a suite runs one mode, not all", map[string]string{"MODE": "all", "RUN_DIR": "/r"}, Params{}, `MODE="all": want one mode`},
		{"one node cannot show a remote backend", map[string]string{"MODE": "iptables", "RUN_DIR": "/r", "NODES": "1"}, Params{}, `NODES="1": want a whole number of nodes, at least 2`},
		{"a node count must be a number", map[string]string{"MODE": "iptables", "RUN_DIR": "/r", "NODES": "2x"}, Params{}, `NODES="2x": want a whole number`},
		{"KEEP is 1/0/true/false", map[string]string{"MODE": "iptables", "RUN_DIR": "/r", "KEEP": "yes"}, Params{}, `KEEP="yes": want 1 or true`},
		{"a proxier path that does not exist is refused", map[string]string{"MODE": "iptables", "RUN_DIR": "/r", "PROXIER": "/nonexistent"}, Params{}, `PROXIER="/nonexistent": want ours, kube-proxy or the path of an executable file`},
		{"a proxier file that is not executable is refused", map[string]string{"MODE": "iptables", "RUN_DIR": "/r", "PROXIER": notExec}, Params{}, "not an executable file"},
		{"NODE_KERNELS, one value, applies to every node", map[string]string{"MODE": "iptables", "RUN_DIR": "/r", "NODES": "3", "NODE_KERNELS": "vm"},
			Params{Provider: "local", Mode: "iptables", Proxier: "ours", Nodes: 3, NodeKernels: "vm", RunDir: "/r"}, ""},
		{"NODE_KERNELS gives one value per node in order, auto left to the provider", map[string]string{"MODE": "ipvs", "RUN_DIR": "/r", "NODE_KERNELS": "auto, vm"},
			Params{Provider: "local", Mode: "ipvs", Proxier: "ours", Nodes: 2, NodeKernels: "auto,vm", RunDir: "/r"}, ""},
		{"NODE_KERNELS with a count that is neither one nor NODES is refused", map[string]string{"MODE": "iptables", "RUN_DIR": "/r", "NODES": "3", "NODE_KERNELS": "host,vm"},
			Params{}, `NODE_KERNELS="host,vm": want auto, host or vm, once for every node or once per node of the 3 (2 values for 3 nodes`},
		{"NODE_KERNELS with an unknown word names the node", map[string]string{"MODE": "iptables", "RUN_DIR": "/r", "NODE_KERNELS": "host,qemu"},
			Params{}, `node 2: "qemu": want auto, host, vm`},
		{"an empty NODE_KERNELS item is refused, not taken as auto", map[string]string{"MODE": "iptables", "RUN_DIR": "/r", "NODE_KERNELS": "host,"},
			Params{}, `node 2: "": want auto, host, vm`},
		{"a run dir that is a file is refused", map[string]string{"MODE": "iptables", "RUN_DIR": notExec}, Params{}, `RUN_DIR="` + notExec + `": want a directory`},
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

func TestModeAllIsEveryModeWithTheSameParameters(t *testing.T) {
	ps, err := Given{Mode: "all", Nodes: "3", RunDir: "/r"}.Parse()
	if err != nil {
		t.Fatal(err)
	}
	var modes []string
	for _, p := range ps {
		modes = append(modes, p.Mode)
		if p.Nodes != 3 || p.RunDir != "/r" || p.Proxier != "ours" {
			t.Errorf("mode %s: %+v, want 3 nodes, run dir /r, proxier ours", p.Mode, p)
		}
	}
	if strings.Join(modes, ",") != "iptables,nftables,ipvs" {
		t.Errorf("MODE=all gave %v, want iptables,nftables,ipvs", modes)
	}
}

func TestARelativeProxierPathComesBackAbsolute(t *testing.T) {
	// The suite runs in its own package directory: a relative path would
	// name another file there.
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "my-proxy"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Chdir(dir)
	ps, err := Given{Mode: "iptables", Proxier: "./my-proxy"}.Parse()
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(dir, "my-proxy"); ps[0].Proxier != want {
		t.Errorf("PROXIER=./my-proxy became %q, want %q", ps[0].Proxier, want)
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
