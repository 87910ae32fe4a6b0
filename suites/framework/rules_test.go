package framework

import (
	"strings"
	"testing"
)

func TestKubeChainDeletionRemovesJumpsThenRulesThenChains(t *testing.T) {
	dump := `*mangle
:PREROUTING ACCEPT [0:0]
:KUBE-PROXY-CANARY - [0:0]
COMMIT
*nat
:PREROUTING ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:KUBE-SERVICES - [0:0]
:KUBE-SVC-ABC - [0:0]
-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A OUTPUT -j ACCEPT
-A KUBE-SERVICES -d 10.96.0.10/32 -j KUBE-SVC-ABC
COMMIT
`
	script, err := kubeChainDeletion(dump, "iptables-nft")
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Split(script, "\n")
	want := []string{
		`iptables-nft -w -t nat -D PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES || true`,
		"iptables-nft -w -t mangle -F KUBE-PROXY-CANARY || true",
		"iptables-nft -w -t nat -F KUBE-SERVICES || true",
		"iptables-nft -w -t nat -F KUBE-SVC-ABC || true",
		"iptables-nft -w -t mangle -X KUBE-PROXY-CANARY || true",
		"iptables-nft -w -t nat -X KUBE-SERVICES || true",
		"iptables-nft -w -t nat -X KUBE-SVC-ABC || true",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("script:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if s, err := kubeChainDeletion("*nat\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING -j ACCEPT\nCOMMIT\n", "iptables"); s != "" || err != nil {
		t.Errorf("a dump without KUBE-* chains gave a script: %q", s)
	}
}

func TestHealthCheckAnswersAreReadAsKubeProxyWritesThem(t *testing.T) {
	tests := []struct {
		name    string
		r       Result
		code    int
		local   int
		wantErr string
	}{
		{"a node with a local endpoint answers 200", Result{OK: true, Answer: `200 {"service":{"namespace":"a","name":"b"},"localEndpoints":1,"serviceProxyHealthy":true}`}, 200, 1, ""},
		{"a node without one answers 503 with zero", Result{OK: true, Answer: "503 {\n\t\"service\": {\"namespace\": \"a\", \"name\": \"b\"},\n\t\"localEndpoints\": 0\n}"}, 503, 0, ""},
		{"a body without localEndpoints is not kube-proxy's", Result{OK: true, Answer: `200 {"service":{"namespace":"a","name":"b"}}`}, 0, 0, "no localEndpoints"},
		{"a body that is not JSON is refused", Result{OK: true, Answer: "200 ok"}, 0, 0, "not kube-proxy's JSON"},
		{"no answer is an error", Result{Class: "timeout"}, 0, 0, "no health check answer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hc, err := ParseHealthCheck(tt.r)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || hc.Code != tt.code || hc.LocalEndpoints != tt.local || hc.Service.Name != "b" {
				t.Fatalf("ParseHealthCheck = %+v, %v; want code %d, localEndpoints %d, service a/b", hc, err, tt.code, tt.local)
			}
		})
	}
}
