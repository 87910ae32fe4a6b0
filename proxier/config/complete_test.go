package config

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/spf13/pflag"
	"k8s.io/klog/v2"
)

// complete parses args as the proxier's command line and completes it, with
// the host name fixed to "Test-Host".
func complete(t *testing.T, args ...string) (*Config, error) {
	t.Helper()
	old := osHostname
	osHostname = func() (string, error) { return " Test-Host\n", nil }
	t.Cleanup(func() { osHostname = old })
	o := NewOptions()
	fs := pflag.NewFlagSet("proxier", pflag.ContinueOnError)
	o.AddFlags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatalf("parse %v: %v", args, err)
	}
	return o.Complete()
}

func mustComplete(t *testing.T, args ...string) *Config {
	t.Helper()
	cfg, err := complete(t, args...)
	if err != nil {
		t.Fatalf("Complete(%v): %v", args, err)
	}
	return cfg
}

func TestNoFlagsGiveUpstreamsEffectiveConfig(t *testing.T) {
	got := mustComplete(t)
	got.Raw = nil
	want := &Config{
		Mode: "iptables", NodeName: "test-host",
		BindAddress:        netip.MustParseAddr("0.0.0.0"),
		HealthzBindAddress: netip.MustParseAddrPort("0.0.0.0:10256"),
		MetricsBindAddress: netip.MustParseAddrPort("127.0.0.1:10249"),
		SyncPeriod:         30 * time.Second, MinSyncPeriod: time.Second, ConfigSyncPeriod: 15 * time.Minute,
		MasqueradeBit: 14, LocalhostNodePorts: true,
		DetectLocalMode: "ClusterCIDR", OOMScoreAdj: -999,
		Conntrack:            Conntrack{MaxPerCore: 32768, Min: 131072, TCPEstablishedTimeout: 24 * time.Hour, TCPCloseWaitTimeout: time.Hour},
		IPVS:                 IPVS{Scheduler: "rr"},
		ConntrackWarnPercent: 70, SyncBudgetPercent: 10,
		ClientConnection: ClientConnection{QPS: 5, Burst: 10, ContentType: "application/vnd.kubernetes.protobuf"},
	}
	if d := cmp.Diff(want, got, cmp.Comparer(func(a, b netip.Addr) bool { return a == b }), cmp.Comparer(func(a, b netip.AddrPort) bool { return a == b })); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
}

func TestFlagsWithoutAConfigFileSetTheConfig(t *testing.T) {
	tests := []struct {
		name  string
		args  []string
		check func(c *Config) bool
	}{
		{"--proxy-mode selects the mode", []string{"--proxy-mode=ipvs"}, func(c *Config) bool { return c.Mode == "ipvs" }},
		{"ipvs without period flags gets upstream's internal 30s/1s, not the file default 0", []string{"--proxy-mode=ipvs"},
			func(c *Config) bool { return c.SyncPeriod == 30*time.Second && c.MinSyncPeriod == time.Second }},
		{"--ipvs-*-sync-period apply in ipvs mode", []string{"--proxy-mode=ipvs", "--ipvs-sync-period=1m", "--ipvs-min-sync-period=0", "--iptables-sync-period=5s"},
			func(c *Config) bool { return c.SyncPeriod == time.Minute && c.MinSyncPeriod == 0 }},
		{"--iptables-*-sync-period apply in nftables mode too", []string{"--proxy-mode=nftables", "--iptables-sync-period=45s", "--iptables-min-sync-period=2s", "--ipvs-sync-period=1h"},
			func(c *Config) bool { return c.SyncPeriod == 45*time.Second && c.MinSyncPeriod == 2*time.Second }},
		{"nftables without nodeport addresses means primary", []string{"--proxy-mode=nftables"},
			func(c *Config) bool { return c.NodePortPrimary && c.NodePortAddresses == nil }},
		{"--cluster-cidr takes a dual-stack pair", []string{"--cluster-cidr=10.244.0.0/16,fd00:10:244::/56"},
			func(c *Config) bool {
				return len(c.ClusterCIDRs) == 2 && c.ClusterCIDRs[1] == netip.MustParsePrefix("fd00:10:244::/56")
			}},
		{"--masquerade-all and --iptables-masquerade-bit apply to iptables", []string{"--masquerade-all", "--iptables-masquerade-bit=5"},
			func(c *Config) bool { return c.MasqueradeAll && c.MasqueradeBit == 5 }},
		{"--masquerade-all applies to nftables too", []string{"--proxy-mode=nftables", "--masquerade-all"},
			func(c *Config) bool { return c.MasqueradeAll && c.MasqueradeBit == 14 }},
		{"a bare IP in --healthz-bind-address gets the default port", []string{"--healthz-bind-address=10.1.2.3"},
			func(c *Config) bool { return c.HealthzBindAddress == netip.MustParseAddrPort("10.1.2.3:10256") }},
		{"an empty --metrics-bind-address disables metrics", []string{"--metrics-bind-address="},
			func(c *Config) bool { return !c.MetricsBindAddress.IsValid() }},
		{"--nodeport-addresses takes CIDRs", []string{"--nodeport-addresses=10.0.0.0/8,192.168.1.7/24"},
			func(c *Config) bool {
				return !c.NodePortPrimary && len(c.NodePortAddresses) == 2 && c.NodePortAddresses[1] == netip.MustParsePrefix("192.168.1.0/24")
			}},
		{"conntrack flags set conntrack", []string{"--conntrack-max-per-core=0", "--conntrack-min=1", "--conntrack-tcp-timeout-established=2h", "--conntrack-tcp-timeout-close-wait=0", "--conntrack-udp-timeout=30s", "--conntrack-udp-timeout-stream=2m"},
			func(c *Config) bool {
				return c.Conntrack == Conntrack{MaxPerCore: 0, Min: 1, TCPEstablishedTimeout: 2 * time.Hour, UDPTimeout: 30 * time.Second, UDPStreamTimeout: 2 * time.Minute}
			}},
		{"ipvs flags set ipvs", []string{"--proxy-mode=ipvs", "--ipvs-scheduler=mh", "--ipvs-strict-arp", "--ipvs-exclude-cidrs=10.0.0.0/8", "--ipvs-tcp-timeout=1m", "--ipvs-tcpfin-timeout=2s", "--ipvs-udp-timeout=3s"},
			func(c *Config) bool {
				return c.IPVS.Scheduler == "mh" && c.IPVS.StrictARP && c.IPVS.ExcludeCIDRs[0] == netip.MustParsePrefix("10.0.0.0/8") &&
					c.IPVS.TCPTimeout == time.Minute && c.IPVS.TCPFinTimeout == 2*time.Second && c.IPVS.UDPTimeout == 3*time.Second
			}},
		{"client flags set the client connection", []string{"--kubeconfig=/k", "--master=https://127.0.0.1:6443", "--kube-api-qps=20", "--kube-api-burst=40", "--kube-api-content-type=application/json"},
			func(c *Config) bool {
				return c.ClientConnection == ClientConnection{Kubeconfig: "/k", Master: "https://127.0.0.1:6443", QPS: 20, Burst: 40, ContentType: "application/json"}
			}},
		{"--iptables-localhost-nodeports=false turns them off", []string{"--iptables-localhost-nodeports=false"}, func(c *Config) bool { return !c.LocalhostNodePorts }},
		{"--detect-local-mode=NodeCIDR is kept", []string{"--detect-local-mode=NodeCIDR"}, func(c *Config) bool { return c.DetectLocalMode == "NodeCIDR" }},
		{"--hostname-override is trimmed and lower-cased", []string{"--hostname-override= Node-7 "}, func(c *Config) bool { return c.NodeName == "node-7" && c.HostnameOverride == "node-7" }},
		{"--cleanup, --netns and --write-config-to pass through", []string{"--cleanup", "--netns=config-42", "--write-config-to=/tmp/x"},
			func(c *Config) bool { return c.Cleanup && c.NetNS == "config-42" && c.WriteConfigTo == "/tmp/x" }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := mustComplete(t, tc.args...)
			if !tc.check(c) {
				raw := c.Raw
				c.Raw = nil
				t.Errorf("unexpected config for %v:\n%+v\nraw mode %q", tc.args, c, raw.Mode)
			}
		})
	}
}

func TestAConfigFileWinsOverConfigFlagsAsUpstream(t *testing.T) {
	cfg := mustComplete(t, "--config=testdata/ipvs.yaml",
		"--proxy-mode=iptables", "--ipvs-scheduler=rr", "--ipvs-sync-period=5s", "--cluster-cidr=1.0.0.0/8",
		"--kubeconfig=/flag", "--conntrack-min=1", "--metrics-bind-address=1.2.3.4:1",
		"--hostname-override=From-Flag", "--master=https://m:6443", "--netns=ns1", "--cleanup")
	// The file's values stand; config-field flags are ignored.
	if cfg.Mode != "ipvs" || cfg.IPVS.Scheduler != "wrr" || cfg.SyncPeriod != time.Minute || cfg.MinSyncPeriod != 2*time.Second ||
		cfg.ClusterCIDRs[0] != netip.MustParsePrefix("10.244.0.0/16") || cfg.ClientConnection.Kubeconfig != "/var/lib/kube-proxy/kubeconfig.conf" ||
		cfg.Conntrack.Min != 65536 || cfg.MetricsBindAddress != netip.MustParseAddrPort("0.0.0.0:10249") {
		t.Errorf("a config-field flag overrode the file: %+v", cfg)
	}
	// --hostname-override and the process flags still apply.
	if cfg.NodeName != "from-flag" || cfg.ClientConnection.Master != "https://m:6443" || cfg.NetNS != "ns1" || !cfg.Cleanup {
		t.Errorf("a process flag was lost: node %q master %q netns %q cleanup %v", cfg.NodeName, cfg.ClientConnection.Master, cfg.NetNS, cfg.Cleanup)
	}
}

func TestTheFilesValuesAreParsed(t *testing.T) {
	cfg := mustComplete(t, "--config=testdata/ipvs.yaml")
	if cfg.NodeName != "node-1.example" || cfg.HostnameOverride != "Node-1.Example" {
		t.Errorf("node name %q from override %q, want node-1.example", cfg.NodeName, cfg.HostnameOverride)
	}
	if !cfg.MasqueradeAll || cfg.MasqueradeBit != 12 || cfg.HealthzBindAddress != netip.MustParseAddrPort("10.0.0.5:10256") ||
		cfg.NodePortAddresses[0] != netip.MustParsePrefix("10.0.0.0/24") || cfg.Conntrack.MaxPerCore != 0 || cfg.ClientConnection.Burst != 100 {
		t.Errorf("file values not parsed: %+v", cfg)
	}
	cfg = mustComplete(t, "--config=testdata/nftables.json")
	// An explicit "0s" nftables.minSyncPeriod reads as unset and defaults
	// to 1s: upstream's defaulting does the same.
	if cfg.Mode != "nftables" || cfg.MasqueradeBit != 7 || !cfg.MasqueradeAll || cfg.SyncPeriod != 45*time.Second || cfg.MinSyncPeriod != time.Second ||
		!cfg.NodePortPrimary || cfg.DetectLocalMode != "NodeCIDR" || cfg.LocalhostNodePorts {
		t.Errorf("nftables file values not parsed: %+v", cfg)
	}
}

func TestTheVerbosityFlagWinsOverTheFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "c.yaml")
	data := "apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\nlogging:\n  verbosity: 3\n"
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { setKlogV(t, "0") })

	cfg := mustComplete(t, "--config="+path)
	if !klog.V(3).Enabled() || klog.V(4).Enabled() || cfg.Raw.Logging.Verbosity != 3 {
		t.Errorf("the file's verbosity 3 was not applied (raw %d)", cfg.Raw.Logging.Verbosity)
	}
	cfg = mustComplete(t, "--config="+path, "-v=5")
	if !klog.V(5).Enabled() || cfg.Raw.Logging.Verbosity != 5 {
		t.Errorf("-v=5 did not win over the file (raw %d)", cfg.Raw.Logging.Verbosity)
	}
}

func setKlogV(t *testing.T, v string) {
	fs := pflag.NewFlagSet("reset", pflag.ContinueOnError)
	addKlogFlags(fs)
	if err := fs.Set("v", v); err != nil {
		t.Error(err)
	}
}

func TestBadFlagsAreReportedNamingTheFlag(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"an out-of-range masquerade bit names the flag",
			[]string{"--iptables-masquerade-bit=40"},
			[]string{"invalid flags: iptables.masqueradeBit (--iptables-masquerade-bit): 40 is out of range; must be 0..31"}},
		{"an iptables min sync period above the sync period in nftables mode names the flag",
			[]string{"--proxy-mode=nftables", "--iptables-min-sync-period=2m"},
			[]string{"nftables.minSyncPeriod (--iptables-min-sync-period): 2m0s is longer than nftables.syncPeriod (30s)"}},
		{"several bad flags are all reported",
			[]string{"--proxy-mode=userspace", "--cluster-cidr=nope", "--conntrack-min=-3", "--bind-address=x"},
			[]string{"4 problems:", `mode (--proxy-mode): "userspace" was removed`, `clusterCIDR (--cluster-cidr): "nope" is not a CIDR`,
				"conntrack.min (--conntrack-min): -3 is negative", `bindAddress (--bind-address): "x" is not an IP address`}},
		{"a blank --hostname-override is refused",
			[]string{"--hostname-override=  "},
			[]string{"--hostname-override: empty hostname-override is invalid"}},
		{"a bad --detect-local-mode names the flag",
			[]string{"--detect-local-mode=PodCIDR"},
			[]string{`detectLocalMode (--detect-local-mode): "PodCIDR" is not a local-traffic detection mode`}},
		{"errors in a config file name the file",
			[]string{"--config=testdata/invalid.yaml"},
			[]string{"config file testdata/invalid.yaml: invalid: 7 problems:"}},
		{"an unknown field in a config file fails Complete",
			[]string{"--config=testdata/typo.yaml"},
			[]string{`did you mean "masqueradeBit"?`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := complete(t, tc.args...)
			if err == nil {
				t.Fatalf("Complete accepted %v: %+v", tc.args, cfg)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error\n%v\ndoes not contain\n%s", err, w)
				}
			}
		})
	}
}

func TestAnEmptyHostNameIsRefused(t *testing.T) {
	old := osHostname
	t.Cleanup(func() { osHostname = old })
	osHostname = func() (string, error) { return "  ", nil }
	if _, err := nodeName(""); err == nil || !strings.Contains(err.Error(), "empty hostname is invalid") {
		t.Errorf("got %v", err)
	}
	osHostname = func() (string, error) { return "", errors.New("uts broken") }
	if _, err := nodeName(""); err == nil || !strings.Contains(err.Error(), "uts broken") {
		t.Errorf("got %v", err)
	}
}

func TestCompleteWithoutAddFlagsIsAnError(t *testing.T) {
	if _, err := NewOptions().Complete(); err == nil {
		t.Error("Complete without AddFlags succeeded")
	}
}

func TestWriteConfigToRoundTripsThroughLoad(t *testing.T) {
	tests := []struct {
		name string
		args []string
	}{
		{"the defaults", nil},
		{"an ipvs file", []string{"--config=testdata/ipvs.yaml"}},
		{"a JSON nftables file", []string{"--config=testdata/nftables.json"}},
		// Not "--metrics-bind-address=": an empty address in a file means
		// the default, in upstream's format too, so "disabled" cannot
		// round-trip.
		{"flags only", []string{"--proxy-mode=ipvs", "--ipvs-min-sync-period=0", "--cluster-cidr=10.0.0.0/8", "--masquerade-all", "--ipvs-exclude-cidrs=10.9.0.0/16"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			first := mustComplete(t, tc.args...)
			path := filepath.Join(t.TempDir(), "written.yaml")
			if err := first.WriteFile(path); err != nil {
				t.Fatal(err)
			}
			if _, err := Load(path); err != nil {
				t.Fatalf("Load of the written file: %v", err)
			}
			second := mustComplete(t, "--config="+path)
			// Process flags are not in the file.
			second.Cleanup, second.NetNS, second.WriteConfigTo, second.ClientConnection.Master = first.Cleanup, first.NetNS, first.WriteConfigTo, first.ClientConnection.Master
			opts := []cmp.Option{cmp.Comparer(func(a, b netip.Addr) bool { return a == b }), cmp.Comparer(func(a, b netip.AddrPort) bool { return a == b }), cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })}
			if d := cmp.Diff(first, second, opts...); d != "" {
				b, _ := os.ReadFile(path)
				t.Errorf("config changed across write and load (-written +loaded):\n%s\nfile:\n%s", d, b)
			}
		})
	}
}
