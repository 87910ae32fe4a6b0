package clusters

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestNodeKernelsAreOneValueForAllOrOnePerNode(t *testing.T) {
	tests := []struct {
		name    string
		list    string
		nodes   int
		want    []string
		wantErr string
	}{
		{"nothing leaves every node to the provider", "", 3, nil, ""},
		{"one value applies to every node", "vm", 3, []string{KernelVM, KernelVM, KernelVM}, ""},
		{"one value per node, in node order, auto left empty", "host, vm,auto", 3, []string{KernelHost, KernelVM, KernelAuto}, ""},
		{"two values for three nodes is refused", "host,vm", 3, nil, "2 values for 3 nodes"},
		{"an unknown word names the node and the choices", "host,kvm", 2, nil, `node 2: "kvm": want auto, host, vm`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseNodeKernels(tt.list, tt.nodes)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || !slices.Equal(got, tt.want) {
				t.Fatalf("ParseNodeKernels(%q, %d) = %q, %v; want %q", tt.list, tt.nodes, got, err, tt.want)
			}
			// What a child process is given parses back to the same.
			back, err := ParseNodeKernels(NodeKernelsParam(got), tt.nodes)
			if err != nil || (got != nil && !slices.Equal(back, got)) {
				t.Errorf("round trip of %q gave %q, %v", got, back, err)
			}
		})
	}
}

func TestSysctlByExecReturnsTheValueItReplacesAndNeverTouchesTheHostForANodeOfItsOwnKernel(t *testing.T) {
	var ran [][]string
	readOnly := func(_ context.Context, cmd ...string) ([]byte, error) {
		ran = append(ran, cmd)
		if cmd[1] == "-w" {
			return []byte("sysctl: permission denied"), errors.New("exit status 1")
		}
		return []byte("262144\n"), nil
	}
	prev, err := SysctlByExec(context.Background(), readOnly, false, "node-2", "net.netfilter.nf_conntrack_max", "512")
	if prev != "262144" || err == nil || !strings.Contains(err.Error(), "node-2") {
		t.Fatalf("a write the VM node refused: %q, %v; want the old value and an error naming the node", prev, err)
	}
	if len(ran) != 2 || ran[1][2] != "net.netfilter.nf_conntrack_max=512" {
		t.Errorf("commands run: %q", ran)
	}
	for _, bad := range []string{"", "net/netfilter/x", "a=b", "../../etc"} {
		if _, err := SysctlByExec(context.Background(), readOnly, true, "node-1", bad, "1"); err == nil {
			t.Errorf("sysctl name %q accepted", bad)
		}
	}
}
