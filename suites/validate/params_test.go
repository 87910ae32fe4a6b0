package validate

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/proxyproof/proxyproof/clusters/hostkernel"
	"github.com/proxyproof/proxyproof/suites/framework"
)

func TestBadParametersAreRefusedNamingTheValueAndWhatWouldWork(t *testing.T) {
	tests := []struct {
		name       string
		given      Given
		param      string
		wantInText string
	}{
		{"FROM equal to TO", Given{From: "iptables", To: "iptables"}, "TO", "nftables or ipvs"},
		{"an unknown TO", Given{From: "iptables", To: "ipvsx"}, "TO", "iptables, nftables, ipvs"},
		{"an unknown FROM", Given{From: "userspace", To: "ipvs"}, "FROM", "iptables, nftables, ipvs"},
		{"no FROM at all", Given{To: "ipvs"}, "FROM", "one mode"},
		{"an unknown provider", Given{From: "iptables", To: "nftables", Provider: "gke"}, "PROVIDER", "local"},
		{"one node", Given{From: "iptables", To: "nftables", Nodes: "1"}, "NODES", "at least 2"},
		{"a bad label filter", Given{From: "iptables", To: "nftables", Label: "a &&"}, "LABEL", "label filter"},
	}
	if !hostkernel.HasIPVS() {
		tests = append(tests, struct {
			name       string
			given      Given
			param      string
			wantInText string
		}{"ipvs on kind on a kernel without ip_vs", Given{From: "iptables", To: "ipvs", Provider: "kind"}, "TO", "PROVIDER=local"})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.given.RunDir = t.TempDir()
			_, err := tt.given.Check(1, time.Now())
			var bad *framework.ParamError
			if !errors.As(err, &bad) || bad.Name != tt.param || !strings.Contains(err.Error(), tt.wantInText) {
				t.Fatalf("error %v; want a parameter error on %s saying %q", err, tt.param, tt.wantInText)
			}
		})
	}
}

func TestGoodParametersTakeTheirDefaults(t *testing.T) {
	p, err := Given{From: "iptables", To: "nftables", RunDir: t.TempDir()}.Check(4242, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if p.Name != "val4242" || p.Suite.Provider != "local" || p.Suite.Nodes != 2 || p.Suite.Mode != "iptables" {
		t.Errorf("params %+v: want cluster val4242 on local, 2 nodes, suite in iptables", p)
	}
	if p.SuiteLabel() != "!migration" {
		t.Errorf("suite label %q: the suite phases must leave the switch out", p.SuiteLabel())
	}
	p.Label = "feature:clusterip || churn"
	if p.SuiteLabel() != "(feature:clusterip || churn) && !migration" {
		t.Errorf("suite label %q", p.SuiteLabel())
	}
}
