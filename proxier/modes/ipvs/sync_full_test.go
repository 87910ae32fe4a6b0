package ipvs

import (
	"bytes"
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/klog/v2"
)

// driftRealServers removes one real server of tcp/10.96.0.2:80 and adds
// a stray one to tcp/10.96.0.3:80, as someone else would.
func driftRealServers(t *testing.T, f *Fake) {
	t.Helper()
	if err := f.DelDestination(ipvsService(vsKey{netip.MustParseAddr("10.96.0.2"), 80, 6}), ipvsDest(netip.MustParseAddrPort("10.100.0.2:8001"), 1)); err != nil {
		t.Fatal(err)
	}
	if err := f.NewDestination(ipvsService(vsKey{netip.MustParseAddr("10.96.0.3"), 80, 6}), ipvsDest(netip.MustParseAddrPort("10.250.0.9:80"), 1)); err != nil {
		t.Fatal(err)
	}
}

func TestFullSyncReadsEveryRealServerInOnePass(t *testing.T) {
	p, k := newTestProxier(t, nil)
	v := view(manyServices(50)...)
	mustSync(t, p, v, full())
	want := k.ipvs.Dump()
	driftRealServers(t, k.ipvs)
	k.ipvs.ResetCalls()

	mustSync(t, p, v, full())
	reads := map[string]int{"GetServices": k.ipvs.Calls["GetServices"], "ReadAllDestinations": k.ipvs.Calls["ReadAllDestinations"], "GetDestinations": k.ipvs.Calls["GetDestinations"]}
	// The one GetDestinations is graceful termination's fresh read of the
	// connections of the stray real server's virtual server.
	if diff := cmp.Diff(map[string]int{"GetServices": 1, "ReadAllDestinations": 1, "GetDestinations": 1}, reads); diff != "" {
		t.Errorf("IPVS reads of a full sync at 50 Services (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(want, k.ipvs.Dump()); diff != "" {
		t.Errorf("real servers not repaired from the one-pass read (-want +got):\n%s", diff)
	}
}

func TestFullSyncListsPerVirtualServerWhenTheOnePassReadFails(t *testing.T) {
	var logs bytes.Buffer
	klog.LogToStderr(false)
	klog.SetOutput(&logs)
	t.Cleanup(func() { klog.SetOutput(nil); klog.LogToStderr(true) })

	p, k := newTestProxier(t, nil)
	k.ipvs.ReadAllErr = errors.New("open /proc/thread-self/net/ip_vs: no such file or directory")
	v := view(manyServices(50)...)
	mustSync(t, p, v, full())
	want := k.ipvs.Dump()
	const why = "Reading every IPVS real server at once failed"
	said := strings.Count(logs.String(), why)
	if said == 0 || !strings.Contains(logs.String(), "ip_vs: no such file or directory") {
		t.Errorf("the first full sync did not say why it lists per virtual server; logs:\n%s", logs.String())
	}

	driftRealServers(t, k.ipvs)
	k.ipvs.ResetCalls()
	mustSync(t, p, v, full())
	// One per virtual server, and graceful termination's for the stray.
	if n := k.ipvs.Calls["GetDestinations"]; n != 51 {
		t.Errorf("%d GetDestinations, want one per virtual server (50) and one to drain the stray", n)
	}
	if diff := cmp.Diff(want, k.ipvs.Dump()); diff != "" {
		t.Errorf("real servers not repaired per virtual server (-want +got):\n%s", diff)
	}
	if n := strings.Count(logs.String(), why); n != said {
		t.Errorf("the second full sync said again why (%d times, then %d)", said, n)
	}
}
