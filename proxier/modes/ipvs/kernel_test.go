package ipvs

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"

	"github.com/proxyproof/proxyproof/proxier/kernelvm"
	"github.com/proxyproof/proxyproof/proxier/netns"
	"github.com/proxyproof/proxyproof/proxier/state"
)

// The kernel tests run in the kernel VM (kernelvm.InsideVM): a client
// namespace and backend namespaces, each wired to a node namespace by a
// veth, the node running this mode on a hand-made view.
//
//	client 192.168.77.2,.3 ── node 192.168.77.1 | 10.77.<i>.1 ── backend<i> 10.77.<i>.2

type kernelTopo struct {
	prefix   string
	node     string
	client   string
	backends []string
	made     []string
}

func ipCmd(args ...string) error {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, out)
	}
	return nil
}

func newKernelTopo(t testing.TB, backends int) *kernelTopo {
	t.Helper()
	tp := &kernelTopo{prefix: fmt.Sprintf("ipvs%d-", os.Getpid())}
	tp.node, tp.client = tp.prefix+"node", tp.prefix+"client"
	t.Cleanup(func() {
		for _, ns := range tp.made {
			_ = ipCmd("netns", "del", ns)
		}
	})
	add := func(ns string) {
		_ = ipCmd("netns", "del", ns)
		if err := ipCmd("netns", "add", ns); err != nil {
			t.Fatal(err)
		}
		tp.made = append(tp.made, ns)
		if err := ipCmd("-n", ns, "link", "set", "lo", "up"); err != nil {
			t.Fatal(err)
		}
	}
	add(tp.node)
	add(tp.client)
	steps := [][]string{
		{"-n", tp.node, "link", "add", "cl", "type", "veth", "peer", "name", "eth0", "netns", tp.client},
		{"-n", tp.node, "addr", "add", "192.168.77.1/24", "dev", "cl"},
		{"-n", tp.node, "link", "set", "cl", "up"},
		{"-n", tp.client, "addr", "add", "192.168.77.2/24", "dev", "eth0"},
		{"-n", tp.client, "addr", "add", "192.168.77.3/24", "dev", "eth0"},
		{"-n", tp.client, "link", "set", "eth0", "up"},
		{"-n", tp.client, "route", "add", "default", "via", "192.168.77.1"},
	}
	for i := range backends {
		ns := fmt.Sprintf("%sb%d", tp.prefix, i)
		add(ns)
		tp.backends = append(tp.backends, ns)
		dev := fmt.Sprintf("b%d", i)
		steps = append(steps,
			[]string{"-n", tp.node, "link", "add", dev, "type", "veth", "peer", "name", "eth0", "netns", ns},
			[]string{"-n", tp.node, "addr", "add", fmt.Sprintf("10.77.%d.1/24", i), "dev", dev},
			[]string{"-n", tp.node, "link", "set", dev, "up"},
			[]string{"-n", ns, "addr", "add", fmt.Sprintf("10.77.%d.2/24", i), "dev", "eth0"},
			[]string{"-n", ns, "link", "set", "eth0", "up"},
			[]string{"-n", ns, "route", "add", "default", "via", fmt.Sprintf("10.77.%d.1", i)},
		)
	}
	for _, s := range steps {
		if err := ipCmd(s...); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := netns.Cmd(tp.node, "sysctl", "-qw", "net.ipv4.ip_forward=1").CombinedOutput(); err != nil {
		t.Fatalf("ip_forward: %v: %s", err, out)
	}
	return tp
}

func backendIP(i int) netip.Addr { return netip.MustParseAddr(fmt.Sprintf("10.77.%d.2", i)) }

// serve runs a TCP and a UDP server on :8080 in every backend namespace:
// each answers its name, and the TCP one keeps the connection open until
// the client closes it (so IPVS counts it active).
func (tp *kernelTopo) serve(t testing.TB) {
	t.Helper()
	for i, ns := range tp.backends {
		name := fmt.Sprintf("b%d", i)
		var ln net.Listener
		var pc net.PacketConn
		err := netns.Do(ns, func() error {
			var err error
			if ln, err = net.Listen("tcp4", ":8080"); err != nil {
				return err
			}
			pc, err = net.ListenPacket("udp4", ":8080")
			return err
		})
		if err != nil {
			t.Fatalf("backend %s: %v", name, err)
		}
		t.Cleanup(func() { ln.Close(); pc.Close() })
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				go func() {
					defer c.Close()
					fmt.Fprintln(c, name)
					_, _ = bufio.NewReader(c).ReadString('\n') // until the client closes
				}()
			}
		}()
		go func() {
			buf := make([]byte, 64)
			for {
				_, from, err := pc.ReadFrom(buf)
				if err != nil {
					return
				}
				_, _ = pc.WriteTo([]byte(name+"\n"), from)
			}
		}()
	}
}

// dialTCP connects from the client namespace (from source src) and
// returns the backend's name and the open connection.
func (tp *kernelTopo) dialTCP(src string, vip netip.AddrPort) (string, net.Conn, error) {
	var c net.Conn
	err := netns.Do(tp.client, func() error {
		d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
		var err error
		c, err = d.Dial("tcp4", vip.String())
		return err
	})
	if err != nil {
		return "", nil, err
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		c.Close()
		return "", nil, err
	}
	return strings.TrimSpace(line), c, nil
}

func (tp *kernelTopo) askTCP(src string, vip netip.AddrPort) (string, error) {
	name, c, err := tp.dialTCP(src, vip)
	if err == nil {
		c.Close()
	}
	return name, err
}

// askUDP sends one datagram from a new socket (a new flow).
func (tp *kernelTopo) askUDP(vip netip.AddrPort) (string, error) {
	var c net.Conn
	err := netns.Do(tp.client, func() error {
		var err error
		c, err = net.Dial("udp4", vip.String())
		return err
	})
	if err != nil {
		return "", err
	}
	defer c.Close()
	buf := make([]byte, 64)
	for try := 0; try < 5; try++ {
		_, _ = c.Write([]byte("hi\n"))
		_ = c.SetReadDeadline(time.Now().Add(time.Second))
		if n, err := c.Read(buf); err == nil {
			return strings.TrimSpace(string(buf[:n])), nil
		}
	}
	return "", fmt.Errorf("no UDP answer from %s", vip)
}

func counts(t *testing.T, n int, ask func() (string, error)) map[string]int {
	t.Helper()
	out := map[string]int{}
	for range n {
		name, err := ask()
		if err != nil {
			t.Fatalf("after %v: %v", out, err)
		}
		out[name]++
	}
	return out
}

func kernelService(name string, vip string, proto v1.Protocol, backends ...int) *state.ServicePort {
	var eps []state.Endpoint
	for _, i := range backends {
		eps = append(eps, state.Endpoint{IP: backendIP(i), Port: 8080, Ready: true, Serving: true})
	}
	sp := svc(name, vip, eps)
	sp.Protocol, sp.Name.Protocol = proto, proto
	return sp
}

func TestKernelSchedulers(t *testing.T) {
	if !kernelvm.InsideVM(t) {
		return
	}
	tp := newKernelTopo(t, 3)
	tp.serve(t)
	scheds := map[string]string{"wrr": "wrr", "sh": "sh", "lc": "lc"}
	ctx := context.Background()
	p, err := New(ctx, Options{
		NetNS:      tp.node,
		UDPTimeout: time.Second,
		WeightFor: func(n state.ServicePortName, ep state.Endpoint) int {
			if n.Name == "wrr" && ep.IP == backendIP(0) {
				return 3
			}
			return 1
		},
	})
	if err != nil {
		t.Fatalf("New in the VM: %v", err)
	}
	t.Cleanup(func() {
		if err := p.Cleanup(ctx); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	services := map[state.ServicePortName]*state.ServicePort{}
	apply := func(sps ...*state.ServicePort) {
		t.Helper()
		c := &state.Changes{Services: map[state.ServicePortName]struct{}{}}
		for _, sp := range sps {
			sp.Scheduler = scheds[sp.Name.Name]
			services[sp.Name] = sp
			c.Services[sp.Name] = struct{}{}
		}
		v := view()
		v.Services = services
		if _, err := p.Sync(ctx, v, c); err != nil {
			t.Fatalf("sync: %v", err)
		}
	}
	if _, err := p.Sync(ctx, view(), full()); err != nil {
		t.Fatalf("first sync: %v", err)
	}

	t.Run("rr spreads connections evenly", func(t *testing.T) {
		vip := netip.MustParseAddrPort("10.96.0.101:80")
		apply(kernelService("rr", "10.96.0.101", v1.ProtocolTCP, 0, 1, 2))
		got := counts(t, 30, func() (string, error) { return tp.askTCP("192.168.77.2", vip) })
		if got["b0"] != 10 || got["b1"] != 10 || got["b2"] != 10 {
			t.Errorf("30 connections went %v, want 10 each", got)
		}
	})
	t.Run("wrr follows the weights", func(t *testing.T) {
		vip := netip.MustParseAddrPort("10.96.0.102:80")
		apply(kernelService("wrr", "10.96.0.102", v1.ProtocolTCP, 0, 1))
		got := counts(t, 40, func() (string, error) { return tp.askTCP("192.168.77.2", vip) })
		if got["b0"] != 30 || got["b1"] != 10 {
			t.Errorf("40 connections went %v, want b0:30 b1:10 (weights 3:1)", got)
		}
	})
	t.Run("sh keeps each source on one backend", func(t *testing.T) {
		vip := netip.MustParseAddrPort("10.96.0.103:80")
		apply(kernelService("sh", "10.96.0.103", v1.ProtocolTCP, 0, 1, 2))
		for _, src := range []string{"192.168.77.2", "192.168.77.3"} {
			got := counts(t, 15, func() (string, error) { return tp.askTCP(src, vip) })
			if len(got) != 1 {
				t.Errorf("source %s went to %v, want one backend", src, got)
			}
		}
	})
	t.Run("lc prefers the backend with fewer active connections", func(t *testing.T) {
		vip := netip.MustParseAddrPort("10.96.0.104:80")
		apply(kernelService("lc", "10.96.0.104", v1.ProtocolTCP, 0))
		var held []net.Conn
		defer func() {
			for _, c := range held {
				c.Close()
			}
		}()
		for range 3 {
			name, c, err := tp.dialTCP("192.168.77.2", vip)
			if err != nil || name != "b0" {
				t.Fatalf("holding connection: %s %v", name, err)
			}
			held = append(held, c)
		}
		apply(kernelService("lc", "10.96.0.104", v1.ProtocolTCP, 0, 1))
		got := map[string]int{}
		for range 3 {
			name, c, err := tp.dialTCP("192.168.77.2", vip)
			if err != nil {
				t.Fatal(err)
			}
			held = append(held, c)
			got[name]++
		}
		if got["b1"] != 3 {
			t.Errorf("with 3 connections held on b0, 3 new ones went %v, want all to b1", got)
		}
	})
	t.Run("affinity holds within the timeout and moves after it", func(t *testing.T) {
		vip := netip.MustParseAddrPort("10.96.0.105:80")
		sp := kernelService("sticky", "10.96.0.105", v1.ProtocolUDP, 0, 1, 2)
		sp.SessionAffinity, sp.StickySeconds = true, 2
		apply(sp)
		got := counts(t, 10, func() (string, error) { return tp.askUDP(vip) })
		if len(got) != 1 {
			t.Fatalf("10 flows within the timeout went %v, want one backend", got)
		}
		var first string
		for k := range got {
			first = k
		}
		// The template outlives its last flow (UDP timeout 1 s) by the
		// persistence timeout (2 s); IPVS timers are coarse, so wait more.
		deadline := time.Now().Add(30 * time.Second)
		for {
			time.Sleep(4 * time.Second)
			name, err := tp.askUDP(vip)
			if err != nil {
				t.Fatal(err)
			}
			if name != first {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("still on %s 30 s after the 2 s affinity timeout", first)
			}
		}
	})
}

func TestKernelIPSetEntriesRoundTrip(t *testing.T) {
	if !kernelvm.InsideVM(t) {
		return
	}
	tp := newKernelTopo(t, 0)
	s := &netlinkIPSet{ns: tp.node}
	a, b := netip.MustParseAddr("10.96.0.1"), netip.MustParseAddr("10.244.1.10")
	cases := []struct {
		set string
		e   Entry
	}{
		{setClusterIP, Entry{IP: a, Protocol: 6, Port: 80}},
		{setLoopBack, Entry{IP: b, Protocol: 17, Port: 53, IP2: b}},
		{setLBSourceCIDR, Entry{IP: a, Protocol: 6, Port: 443, Net: netip.MustParsePrefix("192.0.2.0/24")}},
		{setNodePortTCP, Entry{Port: 30080}},
		{setNodePortUDP, Entry{Port: 30053}},
		{setHealthCheckNodePort, Entry{Port: 32000}},
		{setIPVSIPs, Entry{IP: a}},
	}
	for _, c := range cases {
		t.Run(c.set+" holds "+c.e.String(), func(t *testing.T) {
			if err := s.Create(c.set, setType(c.set), 2); err != nil {
				t.Fatal(err)
			}
			for range 2 { // adding twice is fine
				if err := s.Add(c.set, c.e); err != nil {
					t.Fatal(err)
				}
			}
			got, err := s.List(c.set)
			if err != nil || len(got) != 1 || got[0] != c.e {
				t.Fatalf("list = %v, %v; want [%v]", got, err, c.e)
			}
			for range 2 { // deleting a missing entry is fine
				if err := s.Del(c.set, c.e); err != nil {
					t.Fatal(err)
				}
			}
			if got, _ := s.List(c.set); len(got) != 0 {
				t.Fatalf("after delete: %v", got)
			}
			if err := s.Destroy(c.set); err != nil {
				t.Fatal(err)
			}
			if err := s.Destroy(c.set); err != nil {
				t.Fatalf("destroy twice: %v", err)
			}
		})
	}
}
