package kind

import (
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestTheCNIConfigGivesPodsAddressesFromTheNodesPodCIDRWithoutMasquerade(t *testing.T) {
	b, err := cniConflist("10.244.1.0/24", 1450)
	if err != nil {
		t.Fatal(err)
	}
	var conf struct {
		CNIVersion string `json:"cniVersion"`
		Name       string `json:"name"`
		Plugins    []struct {
			Type   string `json:"type"`
			IPMasq *bool  `json:"ipMasq"`
			MTU    int    `json:"mtu"`
			IPAM   struct {
				Type   string                `json:"type"`
				Ranges [][]map[string]string `json:"ranges"`
				Routes []map[string]string   `json:"routes"`
			} `json:"ipam"`
		} `json:"plugins"`
	}
	if err := json.Unmarshal(b, &conf); err != nil {
		t.Fatalf("conflist is not JSON: %v\n%s", err, b)
	}
	if conf.CNIVersion == "" || conf.Name == "" || len(conf.Plugins) != 2 {
		t.Fatalf("want a named, versioned list of ptp and portmap, got %s", b)
	}
	ptp := conf.Plugins[0]
	if ptp.Type != "ptp" || ptp.IPMasq == nil || *ptp.IPMasq || ptp.MTU != 1450 {
		t.Errorf("first plugin %+v, want ptp, ipMasq false, mtu 1450", ptp)
	}
	if ptp.IPAM.Type != "host-local" {
		t.Errorf("ipam %q, want host-local", ptp.IPAM.Type)
	}
	if diff := cmp.Diff([][]map[string]string{{{"subnet": "10.244.1.0/24"}}}, ptp.IPAM.Ranges); diff != "" {
		t.Errorf("ranges (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]map[string]string{{"dst": "0.0.0.0/0"}}, ptp.IPAM.Routes); diff != "" {
		t.Errorf("pod routes (-want +got):\n%s", diff)
	}
	if conf.Plugins[1].Type != "portmap" {
		t.Errorf("second plugin %q, want portmap", conf.Plugins[1].Type)
	}
}

func TestABadPodCIDROrMTUIsRefused(t *testing.T) {
	for _, tc := range []struct {
		cidr string
		mtu  int
	}{
		{"", 1500},
		{"10.244.1.5/24", 1500}, // a host address, not the network's
		{"fd00::/64", 1500},
		{"10.244.1.0", 1500},
		{"10.244.1.0/24", 0},
	} {
		if _, err := cniConflist(tc.cidr, tc.mtu); err == nil {
			t.Errorf("cniConflist(%q, %d) accepted", tc.cidr, tc.mtu)
		}
	}
}

func TestEachNodeRoutesEveryOtherNodesPodsThroughThatNode(t *testing.T) {
	cidrs := []string{"10.244.0.0/24", "10.244.1.0/24", "10.244.2.0/24"}
	ips := []string{"172.18.0.2", "172.18.0.3", "172.18.0.4"}
	got := podRoutes(1, cidrs, ips)
	want := []podRoute{{"10.244.0.0/24", "172.18.0.2"}, {"10.244.2.0/24", "172.18.0.4"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("routes of node 1 (-want +got):\n%s", diff)
	}
}
