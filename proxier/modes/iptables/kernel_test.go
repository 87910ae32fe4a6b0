package iptables

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/proxyproof/proxyproof/proxier/netns/netnstest"

	v1 "k8s.io/api/core/v1"

	"github.com/proxyproof/proxyproof/proxier/netns"
	"github.com/proxyproof/proxyproof/proxier/state"
)

// scratchNS makes a network namespace of our own, without any route out,
// and removes it when the test ends. It skips, saying why, where iptables
// cannot run.
func scratchNS(t testing.TB, backend string) string {
	t.Helper()
	bin := "iptables-restore"
	if backend != "" {
		bin = "iptables-" + backend + "-restore"
	}
	return netnstest.New(t, "iptables", bin)
}

func sh(t testing.TB, ns, cmdline string) string {
	t.Helper()
	f := strings.Fields(cmdline)
	out, err := netns.Cmd(ns, f[0], f[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v: %s", cmdline, err, out)
	}
	return string(out)
}

// chainRules maps each KUBE-* chain to its rule count, from iptables-save
// output or from restore input (both declare ":CHAIN" and append "-A CHAIN").
func chainRules(data []byte) map[string]int {
	out := map[string]int{}
	for _, l := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(l, ":KUBE-") {
			out[strings.Fields(l[1:])[0]] += 0
		} else if strings.HasPrefix(l, "-A KUBE-") {
			out[strings.Fields(l)[1]]++
		}
	}
	return out
}

// splitTables cuts restore input into per-table blocks; a table written
// in several transactions (the nft backend) gets them all, in order.
func splitTables(data []byte) map[string][]byte {
	out := map[string][]byte{}
	for _, block := range strings.SplitAfter(string(data), "COMMIT\n") {
		if i := strings.Index(block, "*"); i >= 0 {
			name := strings.Fields(block[i+1:])[0]
			out[name] = append(out[name], block...)
		}
	}
	return out
}

func assertKernelMatches(t *testing.T, p *Proxier, ns string, v *state.View) {
	t.Helper()
	want := splitTables(p.r.render(renderInput{view: v, full: true}).data)
	for _, table := range []string{tableNAT, tableFilter} {
		saved, err := p.runner.Save(context.Background(), table)
		if err != nil {
			t.Fatal(err)
		}
		got, exp := chainRules(saved), chainRules(want[table])
		exp[chainCanary] = 0
		for c, n := range exp {
			if got[c] != n {
				t.Errorf("%s %s: kernel has %d rules, rendering has %d", table, c, got[c], n)
			}
		}
		for c := range got {
			if _, ok := exp[c]; !ok {
				t.Errorf("%s: kernel has chain %s that rendering does not", table, c)
			}
		}
	}
}

// kernelView has one Service of each kind; web's backend listens for real.
func kernelView() *state.View {
	web := spn("ns1", "web", "http")
	return view(v1.IPv4Protocol,
		svc(web, "172.30.0.41", 80, []state.Endpoint{ep("10.180.0.1", 8080, true)}, nodePort(30080), affinity(60)),
		svc(spn("ns1", "empty", "http"), "172.30.0.42", 80, nil, nodePort(30081)),
		svc(spn("ns1", "local", "http"), "172.30.0.43", 80, []state.Endpoint{ep("10.180.0.1", 8080, true), ep("10.180.0.7", 8080, false)},
			nodePort(30082), etpLocal(30000), loadBalancer([]string{"192.0.2.10"}, "198.51.100.0/24")),
		svc(spn("ns1", "itp", "dns"), "172.30.0.44", 53, []state.Endpoint{ep("10.180.0.8", 53, false)}, itpLocal(), protocol(v1.ProtocolUDP)),
		svc(spn("ns1", "ext", ""), "172.30.0.45", 443, []state.Endpoint{ep("10.180.0.2", 8443, false), ep("10.180.0.3", 8443, false)},
			externalIPs("192.0.2.20"), protocol(v1.ProtocolSCTP)))
}

// serviceRoute gives ns a backend address on a veth pair and a route to
// the Service range, so connects reach nat OUTPUT.
func serviceRoute(t *testing.T, ns string) {
	t.Helper()
	sh(t, ns, "ip link add veth0 type veth peer name veth1")
	sh(t, ns, "ip addr add 10.180.0.1/24 dev veth0")
	sh(t, ns, "ip link set veth0 up")
	sh(t, ns, "ip link set veth1 up")
	sh(t, ns, "ip route add 172.30.0.0/16 dev veth0")
}

func TestKernelFullPartialAndCleanup(t *testing.T) {
	for _, backend := range []string{"nft", "legacy"} {
		t.Run(backend, func(t *testing.T) {
			ns := scratchNS(t, backend)
			ctx := context.Background()
			serviceRoute(t, ns)
			p, err := New(ctx, Options{NetNS: ns, Backend: backend,
				LocalDetect: LocalDetect{Mode: LocalClusterCIDR, ClusterCIDRs: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}})
			if err != nil {
				t.Fatal(err)
			}
			v := kernelView()
			res, err := p.Sync(ctx, v, &state.Changes{Full: true})
			if err != nil {
				t.Fatalf("full sync: %v", err)
			}
			if !res.Full || res.Rules[tableNAT] == 0 || res.Rules[tableFilter] == 0 {
				t.Errorf("full sync result %+v", res)
			}
			assertKernelMatches(t, p, ns, v)
			assertTraffic(t, ns)

			// One endpoint changes: partial sync.
			itp := spn("ns1", "itp", "dns")
			v.Services[itp] = svc(itp, "172.30.0.44", 53, []state.Endpoint{ep("10.180.0.9", 53, true)}, itpLocal(), protocol(v1.ProtocolUDP))
			res, err = p.Sync(ctx, v, &state.Changes{Services: map[state.ServicePortName]struct{}{itp: {}}})
			if err != nil {
				t.Fatalf("partial sync: %v", err)
			}
			if res.Full {
				t.Error("endpoint change caused a full sync")
			}
			assertKernelMatches(t, p, ns, v)
			assertTraffic(t, ns)

			for range 2 {
				if err := p.Cleanup(ctx); err != nil {
					t.Fatalf("cleanup: %v", err)
				}
			}
			for _, table := range []string{tableNAT, tableFilter, tableMangle} {
				if out := sh(t, ns, "iptables-"+backend+"-save -t "+table); strings.Contains(out, "KUBE-") {
					t.Errorf("table %s after cleanup:\n%s", table, out)
				}
			}
		})
	}
}

// assertTraffic connects through the rules: the ClusterIP of web reaches
// its backend, the Service without endpoints refuses at once.
func assertTraffic(t *testing.T, ns string) {
	t.Helper()
	err := netns.Do(ns, func() error {
		ln, err := net.Listen("tcp", "10.180.0.1:8080")
		if err != nil {
			return err
		}
		defer ln.Close()
		go func() {
			if c, err := ln.Accept(); err == nil {
				_, _ = c.Write([]byte("backend"))
				c.Close()
			}
		}()
		c, err := net.DialTimeout("tcp", "172.30.0.41:80", 2*time.Second)
		if err != nil {
			return fmt.Errorf("connect to web's ClusterIP: %w", err)
		}
		buf := make([]byte, 7)
		_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
		n, _ := c.Read(buf)
		c.Close()
		if string(buf[:n]) != "backend" {
			return fmt.Errorf("web's ClusterIP answered %q, want the backend", buf[:n])
		}
		start := time.Now()
		_, err = net.DialTimeout("tcp", "172.30.0.42:80", 2*time.Second)
		if !errors.Is(err, syscall.ECONNREFUSED) {
			return fmt.Errorf("service without endpoints: got %v, want connection refused", err)
		}
		if d := time.Since(start); d > time.Second {
			return fmt.Errorf("refusal took %v", d)
		}
		return nil
	})
	if err != nil {
		t.Error(err)
	}
}
