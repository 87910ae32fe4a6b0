package config

import (
	"errors"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/kube-proxy/config/v1alpha1"
)

func TestValidateNamesEachInvalidFieldAndTheFix(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(c *v1alpha1.KubeProxyConfiguration)
		want   string // the whole message a user sees
	}{
		{"a masquerade bit above 31 is out of range",
			func(c *v1alpha1.KubeProxyConfiguration) { c.IPTables.MasqueradeBit = ptr(int32(40)) },
			"iptables.masqueradeBit: 40 is out of range; must be 0..31"},
		{"nftables mode checks its own masquerade bit",
			func(c *v1alpha1.KubeProxyConfiguration) {
				c.Mode = "nftables"
				c.NFTables.MasqueradeBit = ptr(int32(-1))
			},
			"nftables.masqueradeBit: -1 is out of range; must be 0..31"},
		{"userspace mode was removed",
			func(c *v1alpha1.KubeProxyConfiguration) { c.Mode = "userspace" },
			`mode: "userspace" was removed in Kubernetes 1.26; use "iptables", "ipvs" or "nftables"`},
		{"kernelspace is for Windows",
			func(c *v1alpha1.KubeProxyConfiguration) { c.Mode = "kernelspace" },
			`mode: "kernelspace" is the Windows proxy; on Linux use "iptables", "ipvs" or "nftables"`},
		{"an unknown mode lists the valid ones",
			func(c *v1alpha1.KubeProxyConfiguration) { c.Mode = "ebpf" },
			`mode: "ebpf" is not a proxy mode; must be "iptables", "ipvs", "nftables" or empty (iptables)`},
		{"a zero sync period is refused for the selected mode",
			func(c *v1alpha1.KubeProxyConfiguration) {
				c.Mode = "nftables"
				c.NFTables.SyncPeriod = metav1.Duration{}
			},
			`nftables.syncPeriod: 0s must be greater than 0; use e.g. "30s"`},
		{"a min sync period above the sync period is refused",
			func(c *v1alpha1.KubeProxyConfiguration) {
				c.IPTables.MinSyncPeriod = metav1.Duration{Duration: time.Minute}
			},
			"iptables.minSyncPeriod: 1m0s is longer than iptables.syncPeriod (30s); must be <= syncPeriod"},
		{"a negative min sync period is refused",
			func(c *v1alpha1.KubeProxyConfiguration) {
				c.Mode = "ipvs"
				c.IPVS.MinSyncPeriod = metav1.Duration{Duration: -time.Second}
			},
			"ipvs.minSyncPeriod: -1s is negative; must be >= 0 (0 syncs on every change)"},
		{"a zero configSyncPeriod is refused",
			func(c *v1alpha1.KubeProxyConfiguration) { c.ConfigSyncPeriod = metav1.Duration{} },
			`configSyncPeriod: 0s must be greater than 0; use e.g. "15m"`},
		{"an unknown IPVS scheduler lists the known ones",
			func(c *v1alpha1.KubeProxyConfiguration) { c.Mode = "ipvs"; c.IPVS.Scheduler = "fastest" },
			`ipvs.scheduler: "fastest" is not a known IPVS scheduler; must be one of rr, wrr, lc, wlc, lblc, lblcr, sh, dh, sed, nq, mh, or empty (rr)`},
		{"a bad IPVS exclude CIDR is named by index",
			func(c *v1alpha1.KubeProxyConfiguration) {
				c.Mode = "ipvs"
				c.IPVS.ExcludeCIDRs = []string{"10.0.0.0/8", "10.1.2.3"}
			},
			`ipvs.excludeCIDRs[1]: "10.1.2.3" is not a CIDR; use e.g. "10.0.0.0/8"`},
		{"a negative IPVS timeout is refused",
			func(c *v1alpha1.KubeProxyConfiguration) {
				c.Mode = "ipvs"
				c.IPVS.TCPFinTimeout = metav1.Duration{Duration: -time.Second}
			},
			"ipvs.tcpFinTimeout: -1s is negative; must be >= 0 (0 leaves the kernel's value)"},
		{"a negative conntrack maxPerCore is refused",
			func(c *v1alpha1.KubeProxyConfiguration) { c.Conntrack.MaxPerCore = ptr(int32(-5)) },
			"conntrack.maxPerCore: -5 is negative; must be >= 0 (0 leaves the limit as is)"},
		{"a negative conntrack min is refused",
			func(c *v1alpha1.KubeProxyConfiguration) { c.Conntrack.Min = ptr(int32(-1)) },
			"conntrack.min: -1 is negative; must be >= 0"},
		{"a negative conntrack UDP stream timeout is refused",
			func(c *v1alpha1.KubeProxyConfiguration) {
				c.Conntrack.UDPStreamTimeout = metav1.Duration{Duration: -time.Minute}
			},
			"conntrack.udpStreamTimeout: -1m0s is negative; must be >= 0 (0 leaves the kernel's value)"},
		{"an out-of-range oomScoreAdj is refused",
			func(c *v1alpha1.KubeProxyConfiguration) { c.OOMScoreAdj = ptr(int32(2000)) },
			"oomScoreAdj: 2000 is out of range; must be -1000..1000"},
		{"a bind address that is not an IP is refused",
			func(c *v1alpha1.KubeProxyConfiguration) { c.BindAddress = "node-1" },
			`bindAddress: "node-1" is not an IP address; use e.g. "0.0.0.0" or "::"`},
		{"a healthz address with a host name is refused",
			func(c *v1alpha1.KubeProxyConfiguration) { c.HealthzBindAddress = "localhost:10256" },
			`healthzBindAddress: "localhost:10256" has "localhost", which is not an IP address; use IP:port, e.g. "0.0.0.0:10256"`},
		{"a metrics address with port 0 is refused",
			func(c *v1alpha1.KubeProxyConfiguration) { c.MetricsBindAddress = "127.0.0.1:0" },
			`metricsBindAddress: "127.0.0.1:0" has port "0"; must be 1..65535; use IP:port, e.g. "0.0.0.0:10249"`},
		{"a metrics address without a port is refused",
			func(c *v1alpha1.KubeProxyConfiguration) { c.MetricsBindAddress = "127.0.0.1:" + "x:y" },
			`metricsBindAddress: "127.0.0.1:x:y" is not IP:port; use IP:port, e.g. "0.0.0.0:10249"`},
		{"a cluster CIDR that is not a CIDR is refused",
			func(c *v1alpha1.KubeProxyConfiguration) { c.ClusterCIDR = "10.244.0.0/33" },
			`clusterCIDR: "10.244.0.0/33" is not a CIDR; use e.g. "10.244.0.0/16" or "10.244.0.0/16,fd00:10:244::/56"`},
		{"two cluster CIDRs of one family are refused",
			func(c *v1alpha1.KubeProxyConfiguration) { c.ClusterCIDR = "10.244.0.0/16,10.245.0.0/16" },
			`clusterCIDR: "10.244.0.0/16,10.245.0.0/16" has two CIDRs of the same IP family; give at most one per family, e.g. "10.244.0.0/16,fd00:10:244::/56"`},
		{"three cluster CIDRs are refused",
			func(c *v1alpha1.KubeProxyConfiguration) { c.ClusterCIDR = "10.0.0.0/8,fd00::/8,11.0.0.0/8" },
			`clusterCIDR: "10.0.0.0/8,fd00::/8,11.0.0.0/8" has 3 CIDRs; give at most one per IP family, e.g. "10.244.0.0/16,fd00:10:244::/56"`},
		{"an unknown detectLocalMode lists the modes",
			func(c *v1alpha1.KubeProxyConfiguration) { c.DetectLocalMode = "PodCIDR" },
			`detectLocalMode: "PodCIDR" is not a local-traffic detection mode; must be ClusterCIDR, NodeCIDR, BridgeInterface or InterfaceNamePrefix`},
		{"BridgeInterface detection needs the bridge",
			func(c *v1alpha1.KubeProxyConfiguration) { c.DetectLocalMode = "BridgeInterface" },
			`detectLocal.bridgeInterface: is empty; set it to the pod bridge, e.g. "cbr0"`},
		{"primary mixed with CIDRs in nodePortAddresses is refused",
			func(c *v1alpha1.KubeProxyConfiguration) { c.NodePortAddresses = []string{"10.0.0.0/8", "primary"} },
			`nodePortAddresses[1]: "primary" must be the only entry; use either "primary" or a list of CIDRs`},
		{"a nodePortAddresses entry that is not a CIDR is refused",
			func(c *v1alpha1.KubeProxyConfiguration) { c.NodePortAddresses = []string{"10.0.0.1"} },
			`nodePortAddresses[0]: "10.0.0.1" is not a CIDR; use CIDRs like "10.0.0.0/8" or the single word "primary"`},
		{"a negative API burst is refused",
			func(c *v1alpha1.KubeProxyConfiguration) { c.ClientConnection.Burst = -1 },
			"clientConnection.burst: -1 is negative; must be >= 0"},
		{"the json log format is refused as unsupported",
			func(c *v1alpha1.KubeProxyConfiguration) { c.Logging.Format = "json" },
			`logging.format: "json" is not supported by this proxier; use "text"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			obj := upstreamDefaults()
			tc.mutate(obj)
			err := Validate(obj)
			if err == nil {
				t.Fatalf("Validate accepted it")
			}
			if err.Error() != tc.want {
				t.Errorf("got  %s\nwant %s", err, tc.want)
			}
		})
	}
}

func TestValidateAcceptsWhatUpstreamAccepts(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(c *v1alpha1.KubeProxyConfiguration)
	}{
		{"the defaults", func(c *v1alpha1.KubeProxyConfiguration) {}},
		{"a min sync period of 0 (sync on every change)", func(c *v1alpha1.KubeProxyConfiguration) { c.IPTables.MinSyncPeriod = metav1.Duration{} }},
		{"ipvs with its default min sync period of 0", func(c *v1alpha1.KubeProxyConfiguration) { c.Mode = "ipvs" }},
		{"a dual-stack cluster CIDR with ClusterCIDR detection", func(c *v1alpha1.KubeProxyConfiguration) {
			c.ClusterCIDR = "10.244.0.0/16,fd00:10:244::/56"
			c.DetectLocalMode = "ClusterCIDR"
		}},
		{"an empty detectLocalMode without a cluster CIDR (upstream only logs)", func(c *v1alpha1.KubeProxyConfiguration) {}},
		{"ClusterCIDR detection without a cluster CIDR, as upstream writes it (upstream only logs)", func(c *v1alpha1.KubeProxyConfiguration) { c.DetectLocalMode = "ClusterCIDR" }},
		{"InterfaceNamePrefix detection with a prefix", func(c *v1alpha1.KubeProxyConfiguration) {
			c.DetectLocalMode = "InterfaceNamePrefix"
			c.DetectLocal.InterfaceNamePrefix = "veth"
		}},
		{"nodePortAddresses primary alone", func(c *v1alpha1.KubeProxyConfiguration) { c.NodePortAddresses = []string{"primary"} }},
		{"disabled healthz and metrics servers", func(c *v1alpha1.KubeProxyConfiguration) { c.HealthzBindAddress, c.MetricsBindAddress = "", "" }},
		{"an IPv6 metrics address", func(c *v1alpha1.KubeProxyConfiguration) { c.MetricsBindAddress = "[::1]:10249" }},
		{"a bad ipvs scheduler when the mode is not ipvs (upstream ignores the section)", func(c *v1alpha1.KubeProxyConfiguration) { c.IPVS.Scheduler = "fastest" }},
		{"a negative qps (no client-side rate limit)", func(c *v1alpha1.KubeProxyConfiguration) { c.ClientConnection.QPS = -1 }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			obj := upstreamDefaults()
			tc.mutate(obj)
			if err := Validate(obj); err != nil {
				t.Errorf("Validate refused it: %v", err)
			}
		})
	}
}

func TestSeveralInvalidFieldsAreAllReported(t *testing.T) {
	obj, err := Load("testdata/invalid.yaml")
	if err != nil {
		t.Fatal(err)
	}
	err = Validate(obj)
	var errs ErrorList
	if !errors.As(err, &errs) {
		t.Fatalf("want an ErrorList, got %v", err)
	}
	want := []string{
		"iptables.masqueradeBit: 40 is out of range",
		"ipvs.minSyncPeriod: 1m0s is longer than ipvs.syncPeriod (10s)",
		`ipvs.scheduler: "fastest" is not a known IPVS scheduler`,
		"conntrack.min: -1 is negative",
		`metricsBindAddress: "localhost:10249" has "localhost"`,
		`clusterCIDR: "10.244.0.0/33" is not a CIDR`,
		`nodePortAddresses[0]: "primary" must be the only entry`,
	}
	if len(errs) != len(want) {
		t.Errorf("got %d errors, want %d:\n%v", len(errs), len(want), err)
	}
	msg := err.Error()
	if !strings.HasPrefix(msg, "7 problems:\n  ") {
		t.Errorf("message does not start with the count: %q", msg)
	}
	for _, w := range want {
		if !strings.Contains(msg, w) {
			t.Errorf("missing %q in\n%s", w, msg)
		}
	}
}
