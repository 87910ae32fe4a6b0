package iptables

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"

	"github.com/proxyproof/proxyproof/proxier/netns"
	"github.com/proxyproof/proxyproof/proxier/state"
)

// bigView has services x endpoints; every tenth Service has a NodePort.
func bigView(services, endpoints int) *state.View {
	v := view(v1.IPv4Protocol)
	for i := range services {
		var eps []state.Endpoint
		for j := range endpoints {
			n := i*endpoints + j
			eps = append(eps, state.Endpoint{IP: netip.AddrFrom4([4]byte{10, byte(n >> 16), byte(n >> 8), byte(n)}),
				Port: 8080, Ready: true, Serving: true, IsLocal: j == 0})
		}
		var opts []svcOpt
		if i%10 == 0 {
			opts = append(opts, nodePort(int32(30000+i%2000)))
		}
		sp := svc(spn(fmt.Sprintf("ns%d", i%50), fmt.Sprintf("svc%d", i), "http"),
			netip.AddrFrom4([4]byte{172, 30, byte(i >> 8), byte(i)}).String(), 80, eps, opts...)
		v.Services[sp.Name] = sp
	}
	return v
}

var scales = []struct{ services, endpoints int }{{2000, 5}, {10000, 10}}

func BenchmarkRenderFull(b *testing.B) {
	for _, sc := range scales {
		b.Run(fmt.Sprintf("%dx%d", sc.services, sc.endpoints), func(b *testing.B) {
			v := bigView(sc.services, sc.endpoints)
			r := newRenderer(testConfig())
			var size int
			for b.Loop() {
				size = len(r.render(renderInput{view: v, full: true}).data)
			}
			b.ReportMetric(float64(size), "bytes/restore")
		})
	}
}

// flipEndpoint changes the last endpoint of one Service, back and forth.
func flipEndpoint(v *state.View, name state.ServicePortName, i int) {
	sp := *v.Services[name]
	eps := append([]state.Endpoint{}, sp.ClusterEndpoints...)
	eps[len(eps)-1].IP = netip.AddrFrom4([4]byte{11, 0, byte(i >> 8), byte(i)})
	sp.ClusterEndpoints, sp.AllEndpoints = eps, eps
	v.Services[name] = &sp
}

func BenchmarkRenderOneEndpointChange(b *testing.B) {
	for _, sc := range scales {
		b.Run(fmt.Sprintf("%dx%d", sc.services, sc.endpoints), func(b *testing.B) {
			v := bigView(sc.services, sc.endpoints)
			r := newRenderer(testConfig())
			prev := r.render(renderInput{view: v, full: true})
			name := spn("ns7", "svc7", "http")
			i, size := 0, 0
			for b.Loop() {
				i++
				flipEndpoint(v, name, i)
				out := r.render(renderInput{view: v, changed: map[state.ServicePortName]struct{}{name: {}},
					prevHashes: prev.hashes, existing: prev.active})
				if len(out.written) != 1 {
					b.Fatalf("partial render wrote %d services", len(out.written))
				}
				prev, size = out, len(out.data)
			}
			b.ReportMetric(float64(size), "bytes/restore")
		})
	}
}

// applyScales are BenchmarkApply's; filter with e.g. -bench 'Apply/nft/2000x5'.
var applyScales = []struct{ services, endpoints int }{{2000, 5}, {10000, 10}}

// BenchmarkApply runs real iptables-restore syncs in a scratch namespace
// per backend and scale (root only): "full" is the first sync of an empty
// namespace when run with -benchtime 1x, "one-endpoint" a partial sync.
func BenchmarkApply(b *testing.B) {
	for _, backend := range []string{"nft", "legacy"} {
		for _, sc := range applyScales {
			b.Run(fmt.Sprintf("%s/%dx%d", backend, sc.services, sc.endpoints), func(b *testing.B) {
				benchApply(b, backend, bigView(sc.services, sc.endpoints))
			})
		}
	}
}

func benchApply(b *testing.B, backend string, v *state.View) {
	ns := scratchNS(b, backend)
	ctx := context.Background()
	p, err := New(ctx, Options{NetNS: ns, Backend: backend, LocalDetect: testConfig().localDetect})
	if err != nil {
		b.Fatal(err)
	}
	b.Run("full", func(b *testing.B) {
		for b.Loop() {
			if _, err := p.Sync(ctx, v, &state.Changes{Full: true}); err != nil {
				b.Fatal(err)
			}
		}
	})
	name := spn("ns7", "svc7", "http")
	b.Run("one-endpoint", func(b *testing.B) {
		// Partial syncs need a full one first; -bench may have filtered
		// out the "full" sub-benchmark.
		if _, err := p.Sync(ctx, v, &state.Changes{Full: true}); err != nil {
			b.Fatal(err)
		}
		i := 0
		for b.Loop() {
			i++
			flipEndpoint(v, name, i)
			res, err := p.Sync(ctx, v, &state.Changes{Services: map[state.ServicePortName]struct{}{name: {}}})
			if err != nil || res.Full {
				b.Fatalf("partial sync: full=%v err=%v", res.Full, err)
			}
		}
	})
	if err := p.Cleanup(ctx); err != nil {
		b.Error(err)
	}
}

// BenchmarkConnect times connect() from the proxier's namespace to
// ClusterIPs through the real kernel's nat rules (root only), with
// KUBE-SERVICES linear (upstream) and bucketed, at 100 and 10,000
// Services: the cost of a new connection as the Service count grows. 64
// Services spread over the sorted order forward to one local backend, and
// each connection goes to the next of them. It reports p50 and p99.
func BenchmarkConnect(b *testing.B) {
	for _, backend := range []string{"legacy", "nft"} {
		for _, services := range []int{100, 10000} {
			for _, mode := range []struct {
				name      string
				threshold int
			}{{"linear", -1}, {"bucketed", 50}} {
				b.Run(fmt.Sprintf("%s/%d/%s", backend, services, mode.name), func(b *testing.B) {
					benchConnect(b, backend, services, mode.threshold)
				})
			}
		}
	}
}

func benchConnect(b *testing.B, backend string, services, threshold int) {
	ns := scratchNS(b, backend)
	sh(b, ns, "ip link add veth0 type veth peer name veth1")
	sh(b, ns, "ip addr add 10.180.0.1/24 dev veth0")
	sh(b, ns, "ip link set veth0 up")
	sh(b, ns, "ip link set veth1 up")
	sh(b, ns, "ip route add 172.30.0.0/16 dev veth0")
	ctx := context.Background()
	p, err := New(ctx, Options{NetNS: ns, Backend: backend, BucketThreshold: threshold,
		LocalDetect: testConfig().localDetect})
	if err != nil {
		b.Fatal(err)
	}
	v := bigView(services, 1)
	var targets []string
	for i := 0; i < services; i += max(services/64, 1) {
		sp := *v.Services[spn(fmt.Sprintf("ns%d", i%50), fmt.Sprintf("svc%d", i), "http")]
		e := state.Endpoint{IP: ip("10.180.0.1"), Port: 8080, Ready: true, Serving: true, IsLocal: true}
		sp.ClusterEndpoints, sp.LocalEndpoints, sp.AllEndpoints = []state.Endpoint{e}, []state.Endpoint{e}, []state.Endpoint{e}
		v.Services[sp.Name] = &sp
		targets = append(targets, netip.AddrPortFrom(sp.ClusterIP, uint16(sp.Port)).String())
	}
	if _, err := p.Sync(ctx, v, &state.Changes{Full: true}); err != nil {
		b.Fatal(err)
	}
	var times []time.Duration
	err = netns.Do(ns, func() error {
		ln, err := net.Listen("tcp", "10.180.0.1:8080")
		if err != nil {
			return err
		}
		defer ln.Close()
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				c.Close()
			}
		}()
		d := net.Dialer{Timeout: 2 * time.Second}
		i := 0
		for b.Loop() {
			start := time.Now()
			c, err := d.Dial("tcp", targets[i%len(targets)])
			times = append(times, time.Since(start))
			if err != nil {
				return fmt.Errorf("connect %d to %s: %w", i, targets[i%len(targets)], err)
			}
			// RST instead of TIME_WAIT: thousands of connections must not
			// run out of ports.
			_ = c.(*net.TCPConn).SetLinger(0)
			c.Close()
			i++
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	slices.Sort(times)
	b.ReportMetric(float64(times[len(times)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(times[len(times)*99/100].Microseconds()), "p99-µs")
	if err := p.Cleanup(ctx); err != nil {
		b.Error(err)
	}
}
