package conntrack

import (
	"strings"
	"testing"

	"github.com/proxyproof/proxyproof/proxier/netns/netnstest"

	v1 "k8s.io/api/core/v1"

	"github.com/proxyproof/proxyproof/proxier/netns"
)

// scratchNetns makes an empty namespace (no interface but lo, no route):
// its conntrack table is its own. Skips when not root or without conntrack.
func scratchNetns(t *testing.T) string {
	t.Helper()
	// conntrack(8) creates and lists flows independently of the code under test.
	return netnstest.New(t, "conntrack", "conntrack")
}

// insert creates a flow client -> orig, answered by reply, with conntrack(8).
func insert(t *testing.T, ns, proto, client, orig, reply string) {
	t.Helper()
	split := func(s string) (string, string) {
		i := strings.LastIndex(s, ":")
		return s[:i], s[i+1:]
	}
	cIP, cPort := split(client)
	oIP, oPort := split(orig)
	rIP, rPort := split(reply)
	args := []string{"-I", "-p", proto, "-s", cIP, "-d", oIP, "--sport", cPort, "--dport", oPort,
		"-r", rIP, "-q", cIP, "--reply-port-src", rPort, "--reply-port-dst", cPort, "-t", "300"}
	if proto == "tcp" {
		args = append(args, "--state", "ESTABLISHED")
	}
	if out, err := netns.Cmd(ns, "conntrack", args...).CombinedOutput(); err != nil {
		t.Fatalf("conntrack %v in %s: %v: %s", args, ns, err, out)
	}
}

// listed is conntrack -L of ns, one flow a line.
func listed(t *testing.T, ns string) string {
	t.Helper()
	out, err := netns.Cmd(ns, "conntrack", "-L").Output()
	if err != nil {
		t.Fatalf("conntrack -L in %s: %v", ns, err)
	}
	return string(out)
}

func TestKernelCleanDeletesStaleUDPFlowsAndKeepsTheRest(t *testing.T) {
	ns := scratchNetns(t)
	flows := []struct {
		name                string
		proto               string
		client, orig, reply string
		wantGone            bool
	}{
		{"udp to the ClusterIP on a gone endpoint", "udp", "10.1.0.5:40000", "10.96.0.10:53", "10.244.1.7:5353", true},
		{"udp to the ClusterIP never DNATed", "udp", "10.1.0.6:40001", "10.96.0.10:53", "10.96.0.10:53", true},
		{"udp to the NodePort on a gone endpoint", "udp", "10.1.0.7:40002", "192.0.2.10:30053", "10.244.1.7:5353", true},
		{"udp to the ClusterIP on the current endpoint", "udp", "10.1.0.8:40003", "10.96.0.10:53", "10.244.1.8:5353", false},
		{"udp to an IP no Service has", "udp", "10.1.0.9:40004", "10.96.0.99:53", "10.244.9.9:53", false},
		{"tcp to the ClusterIP on a gone endpoint", "tcp", "10.1.0.10:40005", "10.96.0.10:53", "10.244.1.7:5353", false},
	}
	for _, f := range flows {
		insert(t, ns, f.proto, f.client, f.orig, f.reply)
	}

	view := dnsView(v1.ProtocolUDP, endpoint("10.244.1.8:5353", true, true))
	deleted, err := NewCleaner(ns).Clean(view)
	if err != nil {
		t.Fatalf("Clean: %v", err)
	}
	if deleted != 3 {
		t.Errorf("Clean deleted %d flows, want 3", deleted)
	}
	table := listed(t, ns)
	for _, f := range flows {
		// conntrack -L prints "src=<client> ... sport=<port>": find by the
		// client's port, unique per flow here.
		port := f.client[strings.LastIndex(f.client, ":")+1:]
		present := strings.Contains(table, "sport="+port+" ")
		if present == f.wantGone {
			t.Errorf("%s: present after Clean = %v, want %v\n%s", f.name, present, !f.wantGone, table)
		}
	}

	// Stateless: a second pass finds nothing more to do.
	if deleted, err := NewCleaner(ns).Clean(view); err != nil || deleted != 0 {
		t.Errorf("second Clean = %d, %v; want 0, nil", deleted, err)
	}
}
