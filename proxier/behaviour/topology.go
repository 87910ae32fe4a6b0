package behaviour

import (
	"fmt"
	"net/netip"
	"os"
	"strings"
	"testing"

	"github.com/proxyproof/proxyproof/proxier/netns"
)

// The topology, every namespace made by the test and sealed from the host:
//
//	ul (bridge) ── node1 192.0.2.1  pods a 10.244.1.10, b 10.244.1.11, client 10.244.1.100
//	           ├── node2 192.0.2.2  pod  d 10.244.2.10
//	           ├── ext   192.0.2.100 (a client outside the cluster network)
//	           └── sink  192.0.2.254 (default route of the nodes; forwards nothing)
//
// Addresses are from TEST-NET-1 (192.0.2.0/24) and TEST-NET-3 (203.0.113.0/24,
// externalIPs and LoadBalancer IPs) so nothing here can mean a real host.
var (
	Node1IP     = netip.MustParseAddr("192.0.2.1")
	Node2IP     = netip.MustParseAddr("192.0.2.2")
	ExtIP       = netip.MustParseAddr("192.0.2.100")
	sinkIP      = netip.MustParseAddr("192.0.2.254")
	ClusterCIDR = netip.MustParsePrefix("10.244.0.0/16")
	Node1CIDR   = netip.MustParsePrefix("10.244.1.0/24")
	Node2CIDR   = netip.MustParsePrefix("10.244.2.0/24")
	ExternalNet = netip.MustParsePrefix("203.0.113.0/24")
)

// Pod is a network namespace wired to a node like a Calico pod: a /32 on
// eth0 and a default route to 169.254.1.1, answered by the node's proxy ARP.
type Pod struct {
	Name string // the pod's name; its servers answer with it
	NS   string // network namespace
	Node string // "node1" or "node2"
	IP   netip.Addr
}

// Topology names every namespace of one test environment.
type Topology struct {
	prefix string
	UL     string
	Node1  string
	Node2  string
	Ext    string
	Sink   string
	Pods   map[string]*Pod // by pod name: a, b, d, client
	made   []string
}

// NewTopology builds the namespaces and links, and removes them when the test
// ends. It needs root.
func NewTopology(t testing.TB) *Topology {
	t.Helper()
	p := fmt.Sprintf("pb%d-", os.Getpid())
	topo := &Topology{
		prefix: p, UL: p + "ul", Node1: p + "node1", Node2: p + "node2",
		Ext: p + "ext", Sink: p + "sink", Pods: map[string]*Pod{},
	}
	t.Cleanup(topo.destroy)
	if err := topo.build(); err != nil {
		t.Fatalf("build test topology: %v", err)
	}
	return topo
}

func (tp *Topology) build() error {
	for _, ns := range []string{tp.UL, tp.Node1, tp.Node2, tp.Ext, tp.Sink} {
		if err := tp.addNS(ns); err != nil {
			return err
		}
	}
	steps := [][]string{
		{"-n", tp.UL, "link", "add", "br0", "type", "bridge"},
		{"-n", tp.UL, "link", "set", "br0", "up"},
	}
	for _, m := range []struct {
		ns, port string
		ip       netip.Addr
	}{{tp.Node1, "n1", Node1IP}, {tp.Node2, "n2", Node2IP}, {tp.Ext, "ext", ExtIP}, {tp.Sink, "sink", sinkIP}} {
		steps = append(steps,
			[]string{"-n", tp.UL, "link", "add", m.port, "type", "veth", "peer", "name", "eth0", "netns", m.ns},
			[]string{"-n", tp.UL, "link", "set", m.port, "master", "br0", "up"},
			[]string{"-n", m.ns, "addr", "add", m.ip.String() + "/24", "dev", "eth0"},
			[]string{"-n", m.ns, "link", "set", "eth0", "up"},
			[]string{"-n", m.ns, "link", "set", "lo", "up"},
		)
	}
	steps = append(steps,
		[]string{"-n", tp.Node1, "route", "add", Node2CIDR.String(), "via", Node2IP.String()},
		[]string{"-n", tp.Node2, "route", "add", Node1CIDR.String(), "via", Node1IP.String()},
		[]string{"-n", tp.Node1, "route", "add", "default", "via", sinkIP.String()},
		[]string{"-n", tp.Node2, "route", "add", "default", "via", sinkIP.String()},
		// The outside client reaches externalIPs and LoadBalancer IPs via node1,
		// as a router in front of the cluster would send them.
		[]string{"-n", tp.Ext, "route", "add", ExternalNet.String(), "via", Node1IP.String()},
	)
	for _, s := range steps {
		if err := ipCmd(s...); err != nil {
			return err
		}
	}
	// A SYN that beats the rules is forwarded back out eth0 towards the sink;
	// an ICMP redirect would then teach the client to bypass the node for
	// that address for minutes. Routers in front of clusters do not do that.
	if err := sysctl(tp.Ext, "net.ipv4.conf.all.accept_redirects=0"); err != nil {
		return err
	}
	for _, ns := range []string{tp.Node1, tp.Node2} {
		if err := sysctl(ns, "net.ipv4.ip_forward=1"); err != nil {
			return err
		}
		for _, dev := range []string{"all", "eth0"} {
			if err := sysctl(ns, "net.ipv4.conf."+dev+".send_redirects=0"); err != nil {
				return err
			}
		}
		if err := ipCmd("-n", ns, "addr", "add", "169.254.1.1/32", "dev", "lo"); err != nil {
			return err
		}
	}
	if err := sysctl(tp.Sink, "net.ipv4.ip_forward=0"); err != nil {
		return err
	}
	pods := []Pod{
		{Name: "a", Node: "node1", IP: netip.MustParseAddr("10.244.1.10")},
		{Name: "b", Node: "node1", IP: netip.MustParseAddr("10.244.1.11")},
		{Name: "client", Node: "node1", IP: netip.MustParseAddr("10.244.1.100")},
		{Name: "d", Node: "node2", IP: netip.MustParseAddr("10.244.2.10")},
	}
	for i := range pods {
		if err := tp.addPod(&pods[i]); err != nil {
			return err
		}
	}
	return nil
}

func (tp *Topology) addNS(ns string) error {
	_ = ipCmd("netns", "del", ns) // left over from a crashed run
	if err := ipCmd("netns", "add", ns); err != nil {
		return err
	}
	tp.made = append(tp.made, ns)
	return nil
}

func (tp *Topology) addPod(p *Pod) error {
	p.NS = tp.prefix + "pod-" + p.Name
	node := tp.Node1
	if p.Node == "node2" {
		node = tp.Node2
	}
	if err := tp.addNS(p.NS); err != nil {
		return err
	}
	host := "cali" + p.Name
	for _, s := range [][]string{
		{"-n", node, "link", "add", host, "type", "veth", "peer", "name", "eth0", "netns", p.NS},
		{"-n", node, "link", "set", host, "up"},
		{"-n", node, "route", "add", p.IP.String() + "/32", "dev", host},
		{"-n", p.NS, "addr", "add", p.IP.String() + "/32", "dev", "eth0"},
		{"-n", p.NS, "link", "set", "eth0", "up"},
		{"-n", p.NS, "link", "set", "lo", "up"},
		{"-n", p.NS, "route", "add", "169.254.1.1", "dev", "eth0", "scope", "link"},
		{"-n", p.NS, "route", "add", "default", "via", "169.254.1.1", "dev", "eth0"},
	} {
		if err := ipCmd(s...); err != nil {
			return err
		}
	}
	if err := sysctl(node, "net.ipv4.conf."+host+".proxy_arp=1"); err != nil {
		return err
	}
	tp.Pods[p.Name] = p
	return nil
}

func (tp *Topology) destroy() {
	for i := len(tp.made) - 1; i >= 0; i-- {
		_ = ipCmd("netns", "del", tp.made[i])
	}
}

func ipCmd(args ...string) error {
	out, err := netns.Cmd("", "ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

func sysctl(ns, kv string) error {
	out, err := netns.Cmd(ns, "sysctl", "-qw", kv).CombinedOutput()
	if err != nil {
		return fmt.Errorf("sysctl -w %s in %s: %w: %s", kv, ns, err, strings.TrimSpace(string(out)))
	}
	return nil
}
