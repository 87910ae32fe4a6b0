package healthz

import (
	"github.com/proxyproof/proxyproof/proxier/netns"
	"net/http"
	"net/netip"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/proxyproof/proxyproof/proxier/state"
)

func ep(ip string, local, ready bool) state.Endpoint {
	return state.Endpoint{IP: netip.MustParseAddr(ip), Port: 8080, IsLocal: local, Ready: ready, Serving: ready}
}

// svc builds one port of Service ns/name with healthCheckNodePort hc.
func svc(name, port string, hc int32, eps ...state.Endpoint) *state.ServicePort {
	return &state.ServicePort{
		Name:                state.ServicePortName{NamespacedName: types.NamespacedName{Namespace: "ns", Name: name}, Port: port, Protocol: v1.ProtocolTCP},
		Protocol:            v1.ProtocolTCP,
		ClusterIP:           netip.MustParseAddr("10.96.0.10"),
		Port:                80,
		ExternalPolicyLocal: hc != 0,
		HealthCheckNodePort: hc,
		AllEndpoints:        eps,
		LocalEndpoints:      eps,
		HasEndpoints:        len(eps) > 0,
	}
}

func view(sps ...*state.ServicePort) *state.View {
	v := &state.View{Family: v1.IPv4Protocol, Services: map[state.ServicePortName]*state.ServicePort{}}
	for _, sp := range sps {
		v.Services[sp.Name] = sp
	}
	return v
}

func TestLocalEndpointCountMatchesKubeProxy(t *testing.T) {
	web := types.NamespacedName{Namespace: "ns", Name: "web"}
	tests := []struct {
		name      string
		view      *state.View
		wantPorts map[types.NamespacedName]int32
		wantCount int
	}{
		{"a Service without healthCheckNodePort gets no server",
			view(svc("web", "", 0, ep("10.0.0.1", true, true))), map[types.NamespacedName]int32{}, 0},
		{"a ready local endpoint counts",
			view(svc("web", "", 30000, ep("10.0.0.1", true, true))), map[types.NamespacedName]int32{web: 30000}, 1},
		{"remote endpoints do not count",
			view(svc("web", "", 30000, ep("10.0.0.1", false, true))), map[types.NamespacedName]int32{web: 30000}, 0},
		{"terminating local endpoints do not count",
			view(svc("web", "", 30000, ep("10.0.0.1", true, false))), map[types.NamespacedName]int32{web: 30000}, 0},
		{"one pod behind two ports of the Service counts once",
			view(svc("web", "http", 30000, ep("10.0.0.1", true, true)),
				svc("web", "https", 30000, ep("10.0.0.1", true, true), ep("10.0.0.2", true, true))),
			map[types.NamespacedName]int32{web: 30000}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ports, counts := wanted(tt.view)
			if len(ports) != len(tt.wantPorts) || ports[web] != tt.wantPorts[web] {
				t.Errorf("ports = %v, want %v", ports, tt.wantPorts)
			}
			if counts[web] != tt.wantCount {
				t.Errorf("local endpoints = %d, want %d", counts[web], tt.wantCount)
			}
		})
	}
}

type fixedHealth bool

func (f *fixedHealth) IsHealthy() bool { return bool(*f) }

func TestKernelServiceHealthServesInsideTheNodeNamespace(t *testing.T) {
	ns := scratchNetns(t, "192.0.2.10/24")
	proxyHealthy := fixedHealth(true)
	sh := NewServiceHealth("node1", ns, nil, &proxyHealthy)
	t.Cleanup(sh.Close)
	const url = "http://192.0.2.10:30000/"

	expect := func(t *testing.T, wantCode int, wantBody string) {
		t.Helper()
		code, body, hdr, err := getIn(ns, url)
		if err != nil {
			t.Fatalf("GET %s in %s: %v", url, ns, err)
		}
		if code != wantCode || body != wantBody {
			t.Errorf("GET %s = %d\n%s\nwant %d\n%s", url, code, body, wantCode, wantBody)
		}
		if hdr.Get("Content-Type") != "application/json" || hdr.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("headers = %v, want application/json and nosniff", hdr)
		}
	}

	t.Run("a local ready endpoint answers 200", func(t *testing.T) {
		if err := sh.Sync(view(svc("web", "", 30000, ep("10.0.0.1", true, true)))); err != nil {
			t.Fatalf("Sync: %v", err)
		}
		expect(t, http.StatusOK, "{\n\t\"service\": {\n\t\t\"namespace\": \"ns\",\n\t\t\"name\": \"web\"\n\t},\n\t\"localEndpoints\": 1,\n\t\"serviceProxyHealthy\": true\n}")
	})
	t.Run("no local endpoint answers 503 on the same listener", func(t *testing.T) {
		if err := sh.Sync(view(svc("web", "", 30000))); err != nil {
			t.Fatalf("Sync: %v", err)
		}
		expect(t, http.StatusServiceUnavailable, "{\n\t\"service\": {\n\t\t\"namespace\": \"ns\",\n\t\t\"name\": \"web\"\n\t},\n\t\"localEndpoints\": 0,\n\t\"serviceProxyHealthy\": true\n}")
	})
	t.Run("an unhealthy proxier answers 503 despite endpoints", func(t *testing.T) {
		if err := sh.Sync(view(svc("web", "", 30000, ep("10.0.0.1", true, true)))); err != nil {
			t.Fatalf("Sync: %v", err)
		}
		proxyHealthy = false
		defer func() { proxyHealthy = true }()
		expect(t, http.StatusServiceUnavailable, "{\n\t\"service\": {\n\t\t\"namespace\": \"ns\",\n\t\t\"name\": \"web\"\n\t},\n\t\"localEndpoints\": 1,\n\t\"serviceProxyHealthy\": false\n}")
	})
	t.Run("a Service that goes away closes its port", func(t *testing.T) {
		if err := sh.Sync(view()); err != nil {
			t.Fatalf("Sync: %v", err)
		}
		if _, _, _, err := getIn(ns, url); err == nil {
			t.Errorf("GET %s still answers after the Service left", url)
		}
	})
	t.Run("the listener is not in the test's own namespace", func(t *testing.T) {
		if err := sh.Sync(view(svc("web", "", 30000, ep("10.0.0.1", true, true)))); err != nil {
			t.Fatalf("Sync: %v", err)
		}
		// Loopback only: test traffic never leaves the machine. The server
		// listens on every address of the node namespace, so were it in the
		// host namespace, 127.0.0.1:30000 would answer here.
		if code, _, _, err := getIn("", "http://127.0.0.1:30000/"); err == nil {
			t.Errorf("GET 127.0.0.1:30000 from the host namespace = %d, want no listener", code)
		}
	})
}

func TestKernelAPortInUseFailsOnlyItsService(t *testing.T) {
	ns := scratchNetns(t, "")
	// Something else holds 30001 in the node namespace.
	blocker, err := netns.Listen(ns, "tcp", "127.0.0.1:30001")
	if err != nil {
		t.Fatalf("pre-bind: %v", err)
	}
	defer blocker.Close()

	sh := NewServiceHealth("node1", ns, []netip.Addr{netip.MustParseAddr("127.0.0.1")}, nil)
	t.Cleanup(sh.Close)
	err = sh.Sync(view(
		svc("web", "", 30000, ep("10.0.0.1", true, true)),
		svc("db", "", 30001, ep("10.0.0.2", true, true)),
	))
	if err == nil || !strings.Contains(err.Error(), "ns/db") || !strings.Contains(err.Error(), "30001") {
		t.Fatalf("Sync error = %v, want one naming service ns/db and port 30001", err)
	}
	if strings.Contains(err.Error(), "ns/web") {
		t.Errorf("Sync error blames ns/web too: %v", err)
	}
	if code, _, _, err := getIn(ns, "http://127.0.0.1:30000/"); err != nil || code != http.StatusOK {
		t.Errorf("ns/web on 30000 = %d %v, want 200 while ns/db failed", code, err)
	}

	// Once the port is free the next Sync opens it.
	blocker.Close()
	if err := sh.Sync(view(
		svc("web", "", 30000, ep("10.0.0.1", true, true)),
		svc("db", "", 30001, ep("10.0.0.2", true, true)),
	)); err != nil {
		t.Fatalf("Sync after the port was freed: %v", err)
	}
	if code, _, _, err := getIn(ns, "http://127.0.0.1:30001/"); err != nil || code != http.StatusOK {
		t.Errorf("ns/db on 30001 = %d %v, want 200 after retry", code, err)
	}
}

func TestKernelNodeAddressesPicksNodePortAddresses(t *testing.T) {
	ns := scratchNetns(t, "192.0.2.10/24")
	got, err := NodeAddresses(ns, []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")})
	if err != nil {
		t.Fatalf("NodeAddresses: %v", err)
	}
	if len(got) != 1 || got[0] != netip.MustParseAddr("192.0.2.10") {
		t.Errorf("NodeAddresses = %v, want [192.0.2.10]", got)
	}
	if _, err := NodeAddresses(ns, []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")}); err == nil {
		t.Errorf("NodeAddresses with no match: want an error, got none")
	}
}
