package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	logsapi "k8s.io/component-base/logs/api/v1"
	"k8s.io/kube-proxy/config/v1alpha1"
)

func TestGoodFilesLoad(t *testing.T) {
	tests := []struct {
		name  string
		file  string
		check func(t *testing.T, obj *v1alpha1.KubeProxyConfiguration)
	}{
		{"a full ipvs YAML file keeps every value it sets", "testdata/ipvs.yaml", func(t *testing.T, obj *v1alpha1.KubeProxyConfiguration) {
			want := []any{obj.Mode, obj.IPVS.Scheduler, obj.IPVS.SyncPeriod.Duration, obj.IPVS.MinSyncPeriod.Duration, *obj.IPTables.MasqueradeBit, *obj.Conntrack.MaxPerCore, obj.ClientConnection.QPS, obj.IPVS.ExcludeCIDRs[0]}
			got := []any{v1alpha1.ProxyMode("ipvs"), "wrr", time.Minute, 2 * time.Second, int32(12), int32(0), float32(50), "192.168.0.0/16"}
			if d := cmp.Diff(got, want); d != "" {
				t.Errorf("values (-want +got):\n%s", d)
			}
		}},
		{"a bare healthz IP gets upstream's port", "testdata/ipvs.yaml", func(t *testing.T, obj *v1alpha1.KubeProxyConfiguration) {
			if obj.HealthzBindAddress != "10.0.0.5:10256" {
				t.Errorf("healthzBindAddress = %q, want 10.0.0.5:10256", obj.HealthzBindAddress)
			}
		}},
		{"a JSON file loads like YAML", "testdata/nftables.json", func(t *testing.T, obj *v1alpha1.KubeProxyConfiguration) {
			if obj.Mode != "nftables" || *obj.NFTables.MasqueradeBit != 7 || obj.NFTables.SyncPeriod.Duration != 45*time.Second || *obj.IPTables.LocalhostNodePorts {
				t.Errorf("got mode %q nftables %+v localhostNodePorts %v", obj.Mode, obj.NFTables, *obj.IPTables.LocalhostNodePorts)
			}
		}},
		{"an explicit zero conntrack timeout is kept, not defaulted", "testdata/nftables.json", func(t *testing.T, obj *v1alpha1.KubeProxyConfiguration) {
			if obj.Conntrack.TCPCloseWaitTimeout.Duration != 0 || obj.Conntrack.TCPEstablishedTimeout.Duration != time.Hour {
				t.Errorf("conntrack = %+v", obj.Conntrack)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			obj, err := Load(tc.file)
			if err != nil {
				t.Fatalf("Load(%s): %v", tc.file, err)
			}
			tc.check(t, obj)
		})
	}
}

// upstreamDefaults is what kube-proxy v1.34 makes of a file holding only
// apiVersion and kind (pkg/proxy/apis/config/v1alpha1/defaults.go).
func upstreamDefaults() *v1alpha1.KubeProxyConfiguration {
	d := func(x time.Duration) metav1.Duration { return metav1.Duration{Duration: x} }
	obj := &v1alpha1.KubeProxyConfiguration{
		TypeMeta:           metav1.TypeMeta{APIVersion: APIVersion, Kind: Kind},
		FeatureGates:       map[string]bool{},
		BindAddress:        "0.0.0.0",
		HealthzBindAddress: "0.0.0.0:10256",
		MetricsBindAddress: "127.0.0.1:10249",
		OOMScoreAdj:        ptr(int32(-999)),
		IPTables: v1alpha1.KubeProxyIPTablesConfiguration{
			MasqueradeBit: ptr(int32(14)), LocalhostNodePorts: ptr(true),
			SyncPeriod: d(30 * time.Second), MinSyncPeriod: d(time.Second),
		},
		IPVS: v1alpha1.KubeProxyIPVSConfiguration{SyncPeriod: d(30 * time.Second)},
		NFTables: v1alpha1.KubeProxyNFTablesConfiguration{
			MasqueradeBit: ptr(int32(14)), SyncPeriod: d(30 * time.Second), MinSyncPeriod: d(time.Second),
		},
		Conntrack: v1alpha1.KubeProxyConntrackConfiguration{
			MaxPerCore: ptr(int32(32768)), Min: ptr(int32(131072)),
			TCPEstablishedTimeout: ptr(d(24 * time.Hour)), TCPCloseWaitTimeout: ptr(d(time.Hour)),
		},
		ConfigSyncPeriod: d(15 * time.Minute),
	}
	obj.ClientConnection.ContentType = "application/vnd.kubernetes.protobuf"
	obj.ClientConnection.QPS = 5
	obj.ClientConnection.Burst = 10
	logsapi.SetRecommendedLoggingConfiguration(&obj.Logging)
	return obj
}

func TestDefaultsEqualUpstreams(t *testing.T) {
	obj, err := Load("testdata/minimal.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(upstreamDefaults(), obj); d != "" {
		t.Errorf("defaults differ from upstream (-upstream +ours):\n%s", d)
	}
}

func TestDefaultsFollowAnIPv6BindAddress(t *testing.T) {
	obj, err := Decode([]byte("apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\nbindAddress: '::'\n"))
	if err != nil {
		t.Fatal(err)
	}
	if obj.HealthzBindAddress != "[::]:10256" || obj.MetricsBindAddress != "[::1]:10249" {
		t.Errorf("healthz %q metrics %q, want [::]:10256 and [::1]:10249", obj.HealthzBindAddress, obj.MetricsBindAddress)
	}
}

func TestBadFilesAreRejectedNamingTheProblem(t *testing.T) {
	const head = "apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\n"
	tests := []struct {
		name string
		data string
		want []string // each must appear in the error a user sees
	}{
		{"a misspelled field is unknown and the near spelling suggested",
			head + "iptables:\n  masqueradeBitt: 14\n",
			[]string{`line 4: unknown field "iptables.masqueradeBitt"; did you mean "masqueradeBit"?`}},
		{"a field with the wrong case is unknown (matching is case-sensitive, as upstream)",
			head + "Mode: ipvs\n",
			[]string{`unknown field "Mode"; did you mean "mode"?`}},
		{"a top-level syncPeriod points at the per-mode ones",
			head + "syncPeriod: 10s\n",
			[]string{`unknown field "syncPeriod"; did you mean one of "iptables.syncPeriod", "ipvs.syncPeriod", "nftables.syncPeriod"?`}},
		{"a field nothing resembles gets no suggestion",
			head + "zzzzzzzz: 1\n",
			[]string{`unknown field "zzzzzzzz"` + "\n"}},
		{"a duplicate field is rejected with both lines",
			head + "mode: ipvs\nmode: iptables\n",
			[]string{`line 4: duplicate field "mode" (first set on line 3)`}},
		{"a nested duplicate field names its path",
			head + "ipvs:\n  scheduler: rr\n  scheduler: wrr\n",
			[]string{`duplicate field "ipvs.scheduler"`}},
		{"a duplicate key in JSON is rejected too",
			`{"apiVersion":"kubeproxy.config.k8s.io/v1alpha1","kind":"KubeProxyConfiguration","mode":"ipvs","mode":"iptables"}`,
			[]string{`duplicate field "mode"`}},
		{"a string where a number belongs names the field",
			head + "iptables:\n  masqueradeBit: fourteen\n",
			[]string{`line 4: iptables.masqueradeBit: "fourteen" is a string; must be an integer`}},
		{"a number too big for its field names the field",
			head + "conntrack:\n  min: 99999999999\n",
			[]string{`conntrack.min: 99999999999 is not an integer that fits in int32`}},
		{"a bad duration names the field and shows the form",
			head + "ipvs:\n  tcpTimeout: 15 minutes\n",
			[]string{`ipvs.tcpTimeout: "15 minutes" is not a duration; use e.g. "30s"`}},
		{"a number where a duration belongs is not a duration",
			head + "iptables:\n  syncPeriod: 30\n",
			[]string{`iptables.syncPeriod: 30 is not a duration`}},
		{"a string where a list belongs names the field",
			head + "nodePortAddresses: 10.0.0.0/8\n",
			[]string{`nodePortAddresses: "10.0.0.0/8" is a string; must be a list`}},
		{"a list element of the wrong type is named by index",
			head + "ipvs:\n  excludeCIDRs: [10.0.0.0/8, 7]\n",
			[]string{`ipvs.excludeCIDRs[1]: 7 is a number; must be a string`}},
		{"a mistyped boolean names the field",
			head + "ipvs:\n  strictARP: \"maybe\"\n",
			[]string{`ipvs.strictARP: "maybe" is a string; must be true or false`}},
		{"every field problem is reported, not just the first",
			head + "mdoe: ipvs\niptables:\n  masqueradeBit: x\nconntrack:\n  maxPerCor: 1\n",
			[]string{"3 problems", `unknown field "mdoe"; did you mean "mode"?`, `iptables.masqueradeBit: "x"`, `unknown field "conntrack.maxPerCor"; did you mean "maxPerCore"?`}},
		{"a wrong apiVersion is rejected with the one we read",
			"apiVersion: kubeproxy.config.k8s.io/v1alpha2\nkind: KubeProxyConfiguration\n",
			[]string{`apiVersion "kubeproxy.config.k8s.io/v1alpha2" is not supported; this proxier reads apiVersion: kubeproxy.config.k8s.io/v1alpha1`}},
		{"a missing apiVersion is rejected",
			"kind: KubeProxyConfiguration\n",
			[]string{`apiVersion is missing; set apiVersion: kubeproxy.config.k8s.io/v1alpha1`}},
		{"a wrong kind is rejected",
			"apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeletConfiguration\n",
			[]string{`kind "KubeletConfiguration" is not supported; this proxier reads kind: KubeProxyConfiguration`}},
		{"a missing kind is rejected",
			"apiVersion: kubeproxy.config.k8s.io/v1alpha1\n",
			[]string{`kind is missing; set kind: KubeProxyConfiguration`}},
		{"an empty file is rejected",
			"\n  \n",
			[]string{"is empty"}},
		{"a list at the top is rejected",
			"- a\n- b\n",
			[]string{"must be a YAML mapping or JSON object"}},
		{"broken YAML is rejected with its line",
			head + "iptables:\n  syncPeriod: [\n",
			[]string{"not valid YAML or JSON", "line"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "kube-proxy.yaml")
			if err := os.WriteFile(path, []byte(tc.data), 0o600); err != nil {
				t.Fatal(err)
			}
			obj, err := Load(path)
			if err == nil {
				t.Fatalf("Load accepted it: %+v", obj)
			}
			msg := err.Error() + "\n"
			if !strings.HasPrefix(msg, "config file "+path+": ") {
				t.Errorf("error does not name the file: %q", msg)
			}
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error\n%s\ndoes not contain\n%s", msg, w)
				}
			}
		})
	}
}

func TestTheTypoFileGivesTheBriefsMessage(t *testing.T) {
	_, err := Load("testdata/typo.yaml")
	want := `config file testdata/typo.yaml: line 5: unknown field "iptables.masqueradeBitt"; did you mean "masqueradeBit"?`
	if err == nil || err.Error() != want {
		t.Errorf("got  %v\nwant %s", err, want)
	}
}

func TestAMissingFileIsNamed(t *testing.T) {
	_, err := Load("testdata/nope.yaml")
	if err == nil || !strings.Contains(err.Error(), "config file testdata/nope.yaml: ") || !os.IsNotExist(unwrapAll(err)) {
		t.Errorf("got %v", err)
	}
}

func unwrapAll(err error) error {
	for {
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return err
		}
		err = u.Unwrap()
	}
}

func TestClosestSuggestsOnlyNearSpellings(t *testing.T) {
	cands := []string{"masqueradeBit", "masqueradeAll", "syncPeriod", "minSyncPeriod"}
	tests := []struct{ key, want string }{
		{"masqueradeBitt", "masqueradeBit"},
		{"MASQUERADEALL", "masqueradeAll"},
		{"synPeriod", "syncPeriod"},
		{"minsyncperiod", "minSyncPeriod"},
		{"scheduler", ""},
	}
	for _, tc := range tests {
		if got := closest(tc.key, cands); got != tc.want {
			t.Errorf("closest(%q) = %q, want %q", tc.key, got, tc.want)
		}
	}
}
