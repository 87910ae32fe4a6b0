package bench

import (
	"bytes"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

func TestPlanCapsIPVSScalesAndSharesAControlPlaneWhereScalesMeet(t *testing.T) {
	ipt, nft, ipvs := Case{Mode: "iptables", Backend: "nft"}, Case{Mode: "nftables"}, Case{Mode: "ipvs"}
	for _, tc := range []struct {
		name   string
		scales []Scale
		cases  []Case
		want   string
	}{
		{
			name:   "the default scales run ipvs once, at the 500x5 cap, after the native rows",
			scales: []Scale{{2000, 5}, {10000, 10}},
			cases:  []Case{ipt, nft, ipvs},
			want:   "2000x5:[iptables/nft nftables] 500x5:[ipvs] 10000x10:[iptables/nft nftables]",
		},
		{
			name:   "a scale under the cap runs ipvs with the other modes on one control plane",
			scales: []Scale{{200, 5}},
			cases:  []Case{nft, ipvs},
			want:   "200x5:[nftables ipvs]",
		},
		{
			name:   "each dimension is capped on its own",
			scales: []Scale{{100, 10}},
			cases:  []Case{ipvs},
			want:   "100x5:[ipvs]",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := Spec{Scales: tc.scales, Cases: tc.cases}.withDefaults()
			var got []string
			for _, p := range s.plan() {
				got = append(got, fmt.Sprintf("%s:%v", p.scale, p.cases))
			}
			if strings.Join(got, " ") != tc.want {
				t.Errorf("plan = %s, want %s", strings.Join(got, " "), tc.want)
			}
		})
	}
}

func TestTableMarksVMRowsAndSaysTheyCompareVMToVMOnly(t *testing.T) {
	rows := []Row{
		{Mode: "ipvs", Proxier: "ours", Services: 200, Endpoints: 5, VM: true, FirstSyncS: 2, ChangeP50Ms: 50},
		{Mode: "ipvs", Proxier: "upstream", Services: 200, Endpoints: 5, VM: true, FirstSyncS: 40, ChangeP50Ms: 20000},
	}
	var b bytes.Buffer
	if err := WriteTable(&b, rows, "ours", "upstream"); err != nil {
		t.Fatal(err)
	}
	out := squeeze(b.String())
	for _, want := range []string{"200x5 ipvs (VM) first sync 2.00 s 40.0 s 0.05", "(VM): " + VMNote} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, b.String())
		}
	}
}

func TestRewrittenKubeconfigPointsAtTheWireAndVerifiesTheLoopbackName(t *testing.T) {
	dir := t.TempDir()
	from, to := filepath.Join(dir, "in"), filepath.Join(dir, "out")
	in := clientcmdapi.NewConfig()
	in.Clusters["bench"] = &clientcmdapi.Cluster{Server: "https://127.0.0.1:6443", CertificateAuthorityData: []byte("ca")}
	in.AuthInfos["kube-proxy"] = &clientcmdapi.AuthInfo{Token: "t"}
	in.Contexts["bench"] = &clientcmdapi.Context{Cluster: "bench", AuthInfo: "kube-proxy"}
	in.CurrentContext = "bench"
	if err := clientcmd.WriteToFile(*in, from); err != nil {
		t.Fatal(err)
	}
	if err := rewriteKubeconfig(from, to, "https://192.168.77.254:6443"); err != nil {
		t.Fatal(err)
	}
	out, err := clientcmd.LoadFromFile(to)
	if err != nil {
		t.Fatal(err)
	}
	c := out.Clusters["bench"]
	if c.Server != "https://192.168.77.254:6443" || c.TLSServerName != "127.0.0.1" || string(c.CertificateAuthorityData) != "ca" {
		t.Errorf("rewritten cluster = %+v, want the wire's server, TLS name 127.0.0.1 and the CA kept", c)
	}
	if out.AuthInfos["kube-proxy"].Token != "t" || out.CurrentContext != "bench" {
		t.Errorf("rewritten kubeconfig lost its user or context: %+v", out)
	}
}
