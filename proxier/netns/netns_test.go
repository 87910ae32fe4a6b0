package netns_test

import (
	"net"
	"os"
	"strings"
	"testing"

	vnetns "github.com/vishvananda/netns"

	"github.com/proxyproof/proxyproof/proxier/netns"
	"github.com/proxyproof/proxyproof/proxier/netns/netnstest"
)

func TestDoRunsInTheNamespaceAndLeavesTheCallerWhereItWas(t *testing.T) {
	ns := netnstest.New(t, "netns")
	before, err := vnetns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer before.Close()
	var inside []string
	for i := 0; i < 50; i++ { // enough to reuse threads the runtime handed back
		err := netns.Do(ns, func() error {
			ifs, err := net.Interfaces()
			for _, i := range ifs {
				inside = append(inside, i.Name)
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if strings.Join(inside[:1], "") != "lo" || len(inside) != 50 {
		t.Fatalf("interfaces seen inside %s: %v, want only lo each time", ns, inside[:min(len(inside), 5)])
	}
	// Every thread handed back must be in the original namespace again:
	// the host's interfaces are visible from new goroutines.
	for i := 0; i < 50; i++ {
		done := make(chan int)
		go func() {
			ifs, _ := net.Interfaces()
			done <- len(ifs)
		}()
		if n := <-done; n == 1 && hostHasMore(t) {
			t.Fatal("a thread came back from Do still inside the scratch namespace")
		}
	}
}

func hostHasMore(t *testing.T) bool {
	t.Helper()
	b, err := os.ReadFile("/proc/1/net/dev")
	if err != nil {
		t.Skip("cannot read the host's interfaces")
	}
	return strings.Count(string(b), ":") > 1
}
