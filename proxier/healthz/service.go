package healthz

import (
	"context"
	"errors"
	"fmt"
	"github.com/proxyproof/proxyproof/proxier/netns"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"

	"github.com/proxyproof/proxyproof/proxier/state"
)

// HealthChecker is the proxier's own health, folded into every Service
// answer as "serviceProxyHealthy": a node whose proxier is stuck must not
// draw load-balancer traffic.
type HealthChecker interface {
	IsHealthy() bool
}

// ServiceHealth serves, for each Service with a healthCheckNodePort
// (LoadBalancer with externalTrafficPolicy Local), 200 while the node has a
// ready local endpoint of it and 503 otherwise, as kube-proxy's
// ServiceHealthServer does.
type ServiceHealth struct {
	nodeName  string
	netns     string
	addresses []netip.Addr // nil: every address of the node
	proxy     HealthChecker

	mu       sync.RWMutex
	services map[types.NamespacedName]*serviceServer
}

type serviceServer struct {
	port           int32
	servers        []*http.Server
	localEndpoints int
}

// NewServiceHealth opens its listeners in network namespace netnsName ("" =
// here), on addresses (from nodePortAddresses, see NodeAddresses) or on
// every address when addresses is empty. proxy may be nil (always healthy).
func NewServiceHealth(nodeName, netnsName string, addresses []netip.Addr, proxy HealthChecker) *ServiceHealth {
	return &ServiceHealth{
		nodeName:  nodeName,
		netns:     netnsName,
		addresses: addresses,
		proxy:     proxy,
		services:  map[types.NamespacedName]*serviceServer{},
	}
}

// Name and AfterSync let the daemon run Sync after every successful sync.
func (s *ServiceHealth) Name() string { return "service-health" }

// AfterSync is Sync.
func (s *ServiceHealth) AfterSync(_ context.Context, view *state.View, _ *state.Changes) error {
	return s.Sync(view)
}

// Sync opens a server for every Service of view with a healthCheckNodePort,
// closes the ones whose Service is gone or whose port changed, and updates
// the local endpoint counts. A port that cannot be bound is reported in the
// returned error and retried on the next Sync; the others keep serving.
func (s *ServiceHealth) Sync(view *state.View) error {
	ports, counts := wanted(view)

	s.mu.Lock()
	defer s.mu.Unlock()
	for nsn, svc := range s.services {
		if port, ok := ports[nsn]; !ok || port != svc.port {
			klog.V(2).InfoS("Closing healthcheck", "service", nsn, "port", svc.port)
			svc.close(nsn)
			delete(s.services, nsn)
		}
	}
	var errs []error
	for nsn, port := range ports {
		svc := s.services[nsn]
		if svc == nil {
			klog.V(2).InfoS("Opening healthcheck", "service", nsn, "port", port)
			var err error
			if svc, err = s.open(nsn, port); err != nil {
				klog.ErrorS(err, "Failed to start healthcheck", "node", s.nodeName, "service", nsn, "port", port)
				errs = append(errs, fmt.Errorf("node %s: service %s healthCheckNodePort %d: %w", s.nodeName, nsn, port, err))
				continue
			}
			s.services[nsn] = svc
		}
		svc.localEndpoints = counts[nsn]
	}
	return errors.Join(errs...)
}

// wanted maps each Service with a healthCheckNodePort to that port and to
// its number of local ready endpoints. Like kube-proxy it counts endpoint
// IPs over all ports of the Service (one pod serving two ports is one
// endpoint) and ignores terminating ones: a node left with only
// terminating endpoints must fail the check so the load balancer drains it.
func wanted(view *state.View) (map[types.NamespacedName]int32, map[types.NamespacedName]int) {
	ports := map[types.NamespacedName]int32{}
	ips := map[types.NamespacedName]map[netip.Addr]struct{}{}
	if view == nil {
		return ports, map[types.NamespacedName]int{}
	}
	for name, sp := range view.Services {
		nsn := name.NamespacedName
		if sp.HealthCheckNodePort != 0 {
			ports[nsn] = sp.HealthCheckNodePort
		}
		for _, list := range [][]state.Endpoint{sp.LocalEndpoints, sp.AllEndpoints} {
			for _, ep := range list {
				if ep.IsLocal && ep.Ready {
					if ips[nsn] == nil {
						ips[nsn] = map[netip.Addr]struct{}{}
					}
					ips[nsn][ep.IP] = struct{}{}
				}
			}
		}
	}
	counts := map[types.NamespacedName]int{}
	for nsn := range ports {
		counts[nsn] = len(ips[nsn])
	}
	return ports, counts
}

// open starts one server per listening address; on any failure it closes
// what it opened, so the port is free for a retry.
func (s *ServiceHealth) open(nsn types.NamespacedName, port int32) (*serviceServer, error) {
	svc := &serviceServer{port: port}
	hosts := []string{""} // all addresses, both families
	if len(s.addresses) > 0 {
		hosts = hosts[:0]
		for _, a := range s.addresses {
			hosts = append(hosts, a.String())
		}
	}
	for _, host := range hosts {
		addr := net.JoinHostPort(host, strconv.Itoa(int(port)))
		ln, err := netns.Listen(s.netns, "tcp", addr)
		if err != nil {
			svc.close(nsn)
			return nil, err
		}
		srv := &http.Server{Handler: s.handler(nsn), ReadHeaderTimeout: 5 * time.Second}
		go func() {
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				klog.ErrorS(err, "Healthcheck closed", "service", nsn, "address", addr)
			}
		}()
		svc.servers = append(svc.servers, srv)
	}
	return svc, nil
}

func (svc *serviceServer) close(nsn types.NamespacedName) {
	for _, srv := range svc.servers {
		if err := srv.Close(); err != nil {
			klog.ErrorS(err, "Error closing healthcheck server", "service", nsn)
		}
	}
	svc.servers = nil
}

// Close stops every server.
func (s *ServiceHealth) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for nsn, svc := range s.services {
		svc.close(nsn)
		delete(s.services, nsn)
	}
}

// Ports lists the open healthCheckNodePorts by Service (for logs and tests).
func (s *ServiceHealth) Ports() map[types.NamespacedName]int32 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make(map[types.NamespacedName]int32, len(s.services))
	for nsn, svc := range s.services {
		out[nsn] = svc.port
	}
	return out
}

func (s *ServiceHealth) handler(nsn types.NamespacedName) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		s.mu.RLock()
		svc, ok := s.services[nsn]
		count := 0
		if ok {
			count = svc.localEndpoints
		}
		s.mu.RUnlock()
		if !ok {
			klog.ErrorS(nil, "Received request for closed healthcheck", "service", nsn)
			return
		}
		proxyHealthy := s.proxy == nil || s.proxy.IsHealthy()
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		if count > 0 && proxyHealthy {
			w.WriteHeader(http.StatusOK)
		} else {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		fmt.Fprint(w, serviceBody(nsn, count, proxyHealthy))
	})
}

// serviceBody is kube-proxy's answer byte for byte (a tab-indented JSON
// object), since some load balancers and tests compare it.
func serviceBody(nsn types.NamespacedName, count int, proxyHealthy bool) string {
	return fmt.Sprintf("{\n\t\"service\": {\n\t\t\"namespace\": %q,\n\t\t\"name\": %q\n\t},\n\t\"localEndpoints\": %d,\n\t\"serviceProxyHealthy\": %v\n}",
		nsn.Namespace, nsn.Name, count, proxyHealthy)
}
