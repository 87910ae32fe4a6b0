package main

import (
	"reflect"
	"strings"
	"testing"
)

func TestArgsReachGinkgoAsItsCompiledSuiteFlags(t *testing.T) {
	tests := []struct {
		name string
		in   []string
		want []string
	}{
		{"a ginkgo CLI flag gets the ginkgo. prefix", []string{"--label-filter=feature:clusterip"}, []string{"-ginkgo.label-filter=feature:clusterip"}},
		{"a flag's separate value is kept as is", []string{"--focus", "UDP"}, []string{"-ginkgo.focus", "UDP"}},
		{"test and ginkgo flags pass through", []string{"-test.v", "-ginkgo.v"}, []string{"-test.v", "-ginkgo.v"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ginkgoArgs(tt.in); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ginkgoArgs(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestModesExpandAllToTheThreeAndRefuseAnUnknownOne(t *testing.T) {
	if got, err := modesOf("all"); err != nil || strings.Join(got, ",") != "iptables,nftables,ipvs" {
		t.Errorf("modesOf(all) = %v, %v; want iptables,nftables,ipvs", got, err)
	}
	if got, err := modesOf("ipvs"); err != nil || strings.Join(got, ",") != "ipvs" {
		t.Errorf("modesOf(ipvs) = %v, %v; want ipvs", got, err)
	}
	if _, err := modesOf("userspace"); err == nil {
		t.Error("modesOf(userspace) accepted an unknown mode")
	}
}
