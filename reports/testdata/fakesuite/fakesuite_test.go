// Package fakesuite is a stand-in for suites/services that produces real
// Ginkgo JSON reports for the report fixtures (gen-fixtures.sh runs it per
// mode). It also shows a suite author how to record figures, probes and
// rule dumps. FAKE_MODE picks the mode; FAKE_VARIANT=after is the "after an
// upgrade" run the compare fixtures need.
package fakesuite

import (
	"math/rand"
	"os"
	"path/filepath"
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/proxyproof/proxyproof/reports/entry"
)

var (
	mode    = os.Getenv("FAKE_MODE")
	variant = os.Getenv("FAKE_VARIANT")
	// modeDir is <run>/<mode>, where rule dumps go.
	modeDir = os.Getenv("FAKE_MODE_DIR")
)

func TestFake(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "Services")
}

// dump writes a rule dump the way the suite's framework would on failure.
func dump(node, kind, text string) {
	id := entry.SpecID(CurrentSpecReport().FullText())
	rel := filepath.Join("dumps", id, node+".txt")
	Expect(os.MkdirAll(filepath.Join(modeDir, filepath.Dir(rel)), 0o755)).To(Succeed())
	Expect(os.WriteFile(filepath.Join(modeDir, rel), []byte(text), 0o644)).To(Succeed())
	AddReportEntry(entry.DumpName, entry.Dump{Node: node, Kind: kind, Path: rel})
}

func samples(rng *rand.Rand, n int, base, spread float64) []float64 {
	out := make([]float64, n)
	for i := range out {
		out[i] = base + rng.ExpFloat64()*spread
		out[i] = float64(int(out[i]*10)) / 10
	}
	return out
}

var _ = Describe("ClusterIP", Label("feature:ClusterIP"), func() {
	It("reaches every backend over TCP", func() {
		By("creating 3 backends and Service default/web")
		By("probing 10.96.0.10:80 from pod client-a on node-1")
		Expect(3).To(Equal(3))
	})
	It("reaches every backend over UDP", func() {
		By("probing 10.96.0.11:53/UDP from pod client-a on node-1")
	})
	It("serves a multi-port Service with a named targetPort", func() {
		By("probing 10.96.0.12:80 and 10.96.0.12:443")
		if mode == "iptables" && variant == "after" {
			AddReportEntry(entry.ProbeName, entry.Probe{
				Description: "pod client-a on node-1 -> 10.96.0.12:443 (default/multi)",
				Node:        "node-1", Service: "default/multi",
				Expected: "an answer from a backend on port https (8443)",
				Seen:     "connection refused", Failed: true,
			})
			dump("node-1", "iptables-save", "*nat\n:KUBE-SERVICES - [0:0]\n-A KUBE-SERVICES -d 10.96.0.12/32 -p tcp --dport 80 -j KUBE-SVC-AAAA\n# no rule for port 443\nCOMMIT\n")
			Fail("probe pod client-a on node-1 -> 10.96.0.12:443 (default/multi): connection refused")
		}
	})
})

var _ = Describe("NodePort", Label("feature:NodePort"), func() {
	It("answers on every node, including nodes with no endpoint", func() {
		By("probing node-1 192.168.50.2:30080")
		By("probing node-2 192.168.50.3:30080 (no local endpoint)")
		if mode == "nftables" && variant != "after" {
			AddReportEntry(entry.ProbeName, entry.Probe{
				Description: "pod client-a on node-2 -> 192.168.50.3:30080 (default/web)",
				Node:        "node-2", Service: "default/web",
				Expected: "HTTP 200 from one of web-0, web-1, web-2",
				Seen:     "timeout after 5s (3 attempts); last error: i/o timeout",
				Failed:   true,
			})
			dump("node-2", "nft list ruleset", "table ip kube-proxy {\n\tchain nodeport-ips {\n\t\ttype filter hook prerouting priority dstnat; policy accept;\n\t}\n\tmap service-nodeports {\n\t\ttype inet_proto . inet_service : verdict\n\t\telements = { tcp . 30081 : goto external-XYZ-default/other/tcp/ }\n\t}\n}\n")
			Eventually(func() string { return "timeout" }).WithTimeout(200*1e6).WithPolling(50*1e6).Should(Equal("HTTP 200"), "probe pod client-a on node-2 -> 192.168.50.3:30080 (default/web)")
		}
	})
})

var _ = Describe("externalTrafficPolicy Local", Label("feature:TrafficPolicy"), func() {
	It("preserves the client source IP", func() {
		if mode == "ipvs" {
			Skip("needs a second node with the ip_vs module; this VM runs one node")
		}
		By("reading the source IP the backend saw")
	})
	PIt("answers healthCheckNodePort with 503 where no endpoint is local")
})

var _ = Describe("Endpoints", Label("feature:Endpoints"), func() {
	It("reflects endpoints added and removed, with the propagation time recorded", func() {
		seed := map[string]int64{"iptables": 1, "nftables": 2, "ipvs": 3}[mode]
		rng := rand.New(rand.NewSource(seed))
		base := map[string]float64{"iptables": 180, "nftables": 95, "ipvs": 120}[mode]
		if variant == "after" && mode == "iptables" {
			base = 120
		}
		By("scaling default/web from 3 to 6 backends, 40 times")
		AddReportEntry(entry.FigurePrefix+"endpoint-propagation", entry.Figure{
			Name: "endpoint-propagation", Title: "Endpoint added -> first probe that sees it",
			Unit: "ms", Mode: mode, Values: samples(rng, 40, base, base/3),
		})
		AddReportEntry(entry.FigurePrefix+"sync-duration", entry.Figure{
			Name: "sync-duration", Title: "Proxier sync duration (from its metrics)", Unit: "ms", Mode: mode,
			Percentiles: map[string]float64{"p50": base / 10, "p90": base / 6, "p99": base / 4, "max": base / 3},
		})
	})
})

var _ = Describe("Churn", Label("feature:Churn"), func() {
	It("keeps conntrack bounded and loses no probe during rule reloads", func() {
		lost := map[string]float64{"iptables": 0, "nftables": 0, "ipvs": 3}[mode]
		AddReportEntry(entry.FigurePrefix+"probes-lost-during-reload", entry.Figure{
			Name: "probes-lost-during-reload", Title: "Probes lost while 200 Services churn", Unit: "probes", Mode: mode,
			Values: []float64{lost},
		})
		fill := map[string]float64{"iptables": 40, "nftables": 35, "ipvs": 55}[mode]
		var pts []entry.Point
		for i := 0; i <= 30; i += 2 {
			pts = append(pts, entry.Point{X: float64(i), Y: fill * float64(i) * (1 - float64(i)/70)})
		}
		AddReportEntry(entry.FigurePrefix+"conntrack-fill", entry.Figure{
			Name: "conntrack-fill", Title: "Conntrack entries during churn", Unit: "entries", XUnit: "s", Mode: mode, Points: pts,
		})
	})
})

var _ = Describe("Hairpin", Label("feature:Hairpin"), func() {
	It("lets a pod reach itself through its own Service", func() {
		if mode == "ipvs" {
			AddReportEntry(entry.ProbeName, "pod web-0 on node-1 -> 10.96.0.10:80 (default/web)")
			dump("node-1", "ipvsadm -Ln", "IP Virtual Server version 1.2.1 (size=4096)\nProt LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\nTCP  10.96.0.10:80 rr\n  -> 10.244.1.5:8080              Masq    1      0          0\n")
			Expect("no reply").To(Equal("reply from web-0"), "hairpin through 10.96.0.10:80 needs the masquerade rule for pod->self")
		}
	})
})
