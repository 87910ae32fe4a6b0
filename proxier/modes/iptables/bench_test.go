package iptables

import (
	"context"
	"fmt"
	"net/netip"
	"testing"

	v1 "k8s.io/api/core/v1"

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

// BenchmarkApply runs real iptables-restore syncs at 2,000 x 5 in a
// scratch namespace (root only).
func BenchmarkApply(b *testing.B) {
	for _, backend := range []string{"nft", "legacy"} {
		b.Run(backend, func(b *testing.B) {
			ns := scratchNS(b, backend)
			ctx := context.Background()
			p, err := New(ctx, Options{NetNS: ns, Backend: backend, LocalDetect: testConfig().localDetect})
			if err != nil {
				b.Fatal(err)
			}
			v := bigView(2000, 5)
			b.Run("full", func(b *testing.B) {
				for b.Loop() {
					if _, err := p.Sync(ctx, v, &state.Changes{Full: true}); err != nil {
						b.Fatal(err)
					}
				}
			})
			name := spn("ns7", "svc7", "http")
			b.Run("one-endpoint", func(b *testing.B) {
				// Partial syncs need a full one first; -bench may have
				// filtered out the "full" sub-benchmark.
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
		})
	}
}
