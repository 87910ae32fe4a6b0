package behaviour

import (
	"fmt"
	"testing"

	v1 "k8s.io/api/core/v1"
)

// Case is one behaviour a user of a Service notices.
type Case struct {
	Name string
	Run  func(t *testing.T, e *Env)
}

// Run builds one environment, starts the proxier with start, and runs every
// case of the table against it as a subtest.
func Run(t *testing.T, start StartFunc) {
	env := Setup(t, start)
	for _, c := range Cases() {
		t.Run(c.Name, func(t *testing.T) { c.Run(t, env) })
	}
}

func clusterAddr(svc *v1.Service) string {
	return fmt.Sprintf("%s:%d", svc.Spec.ClusterIP, svc.Spec.Ports[0].Port)
}

func nodePortAddr(svc *v1.Service) string {
	return fmt.Sprintf("%s:%d", Node1IP, svc.Spec.Ports[0].NodePort)
}

// Cases is the table. Every case owns its Service name, cluster IP and node
// port, so cases never see each other's rules.
func Cases() []Case {
	return []Case{
		{"a ClusterIP over TCP reaches every backend, local and remote", func(t *testing.T, e *Env) {
			svc := service("tcp", "10.96.0.10")
			e.must(t, svc, "a", "b", "d")
			client := e.Topo.Pods["client"].NS
			e.eventually(t, "ClusterIP TCP answered by a, b and d", func() error {
				pods, _, fails, last := seen(30, func() (Answer, Outcome, error) { return HTTP(client, clusterAddr(svc)) })
				if len(fails) > 0 {
					return fmt.Errorf("failures %v, last: %v", fails, last)
				}
				return sameKeys(pods, "a", "b", "d")
			})
		}},
		{"a ClusterIP over UDP reaches every backend", func(t *testing.T, e *Env) {
			svc := service("udp", "10.96.0.11", udp)
			e.must(t, svc, "a", "b", "d")
			client := e.Topo.Pods["client"].NS
			e.eventually(t, "ClusterIP UDP answered by a, b and d", func() error {
				pods, _, fails, last := seen(30, func() (Answer, Outcome, error) { return UDP(client, clusterAddr(svc), 0) })
				if len(fails) > 0 {
					return fmt.Errorf("failures %v, last: %v", fails, last)
				}
				return sameKeys(pods, "a", "b", "d")
			})
		}},
		{"a ClusterIP is reachable from the node itself", func(t *testing.T, e *Env) {
			svc := service("from-node", "10.96.0.12")
			e.must(t, svc, "d")
			e.eventually(t, "ClusterIP answered from the node's own namespace", func() error {
				_, _, err := HTTP(e.Topo.Node1, clusterAddr(svc))
				return err
			})
		}},
		{"a NodePort on the node IP reaches the backends from outside the cluster", func(t *testing.T, e *Env) {
			svc := service("nodeport", "10.96.0.13", nodePort(30013))
			e.must(t, svc, "a", "d")
			e.eventually(t, "NodePort answered by a and d from outside", func() error {
				pods, _, fails, last := seen(20, func() (Answer, Outcome, error) { return HTTP(e.Topo.Ext, nodePortAddr(svc)) })
				if len(fails) > 0 {
					return fmt.Errorf("failures %v, last: %v", fails, last)
				}
				return sameKeys(pods, "a", "d")
			})
		}},
		{"a Service without endpoints refuses connections at once instead of timing out", func(t *testing.T, e *Env) {
			svc := service("empty", "10.96.0.14", nodePort(30014))
			e.must(t, svc)
			client := e.Topo.Pods["client"].NS
			e.eventually(t, "ClusterIP and NodePort of an endpoint-less Service refuse", func() error {
				if _, o, err := HTTP(client, clusterAddr(svc)); o != Refused {
					return fmt.Errorf("ClusterIP from a pod: %s (%v), want refused", o, err)
				}
				if _, o, err := HTTP(e.Topo.Ext, nodePortAddr(svc)); o != Refused {
					return fmt.Errorf("NodePort from outside: %s (%v), want refused", o, err)
				}
				return nil
			})
		}},
		{"a removed endpoint gets no new connections", func(t *testing.T, e *Env) {
			svc := service("removed", "10.96.0.15")
			e.must(t, svc, "a", "b")
			client := e.Topo.Pods["client"].NS
			e.eventually(t, "both backends answer", func() error {
				pods, _, _, last := seen(20, func() (Answer, Outcome, error) { return HTTP(client, clusterAddr(svc)) })
				if err := sameKeys(pods, "a", "b"); err != nil {
					return fmt.Errorf("%v (last error %v)", err, last)
				}
				return nil
			})
			e.must(t, svc, "a")
			e.eventually(t, "only a answers after b was removed", func() error {
				pods, _, fails, last := seen(20, func() (Answer, Outcome, error) { return HTTP(client, clusterAddr(svc)) })
				if len(fails) > 0 {
					return fmt.Errorf("failures %v, last: %v", fails, last)
				}
				return sameKeys(pods, "a")
			})
		}},
		{"a removed UDP endpoint's conntrack flows are cleared so the same client moves on", func(t *testing.T, e *Env) {
			svc := service("udp-stale", "10.96.0.16", udp)
			e.must(t, svc, "a", "b")
			client := e.Topo.Pods["client"].NS
			const srcPort = 40016 // one flow, kept alive by every datagram
			var first string
			e.eventually(t, "the UDP flow is answered", func() error {
				a, _, err := UDP(client, clusterAddr(svc), srcPort)
				first = a.Pod
				return err
			})
			remaining := map[string]string{"a": "b", "b": "a"}[first]
			e.must(t, svc, remaining)
			// The removed pod still runs: only a conntrack cleanup makes the
			// same flow reach the remaining backend.
			e.eventually(t, "the same UDP flow is answered by the remaining backend "+remaining, func() error {
				a, _, err := UDP(client, clusterAddr(svc), srcPort)
				if err != nil {
					return err
				}
				if a.Pod != remaining {
					return fmt.Errorf("still answered by %s", a.Pod)
				}
				return nil
			})
		}},
		{"externalTrafficPolicy Local keeps the client source IP and uses only local endpoints", func(t *testing.T, e *Env) {
			svc := service("etp-local", "10.96.0.17", nodePort(30017), externalLocal)
			e.must(t, svc, "a", "d")
			e.eventually(t, "NodePort answered only by local a, seeing the outside client's IP", func() error {
				pods, clients, fails, last := seen(20, func() (Answer, Outcome, error) { return HTTP(e.Topo.Ext, nodePortAddr(svc)) })
				if len(fails) > 0 {
					return fmt.Errorf("failures %v, last: %v", fails, last)
				}
				if err := sameKeys(pods, "a"); err != nil {
					return err
				}
				return sameKeys(clients, ExtIP.String())
			})
		}},
		{"a LoadBalancer with externalTrafficPolicy Local answers its health check node port by local endpoints", func(t *testing.T, e *Env) {
			svc := service("hc", "10.96.0.18", loadBalancer(30018, 32018, "203.0.113.18"), externalLocal)
			e.must(t, svc, "a")
			url := fmt.Sprintf("http://%s:32018/healthz", Node1IP)
			e.eventually(t, "health check node port says 200 with a local endpoint", func() error {
				code, err := HTTPStatus(e.Topo.Ext, url)
				if err != nil || code != 200 {
					return fmt.Errorf("status %d, err %v; want 200", code, err)
				}
				return nil
			})
			e.must(t, svc, "d")
			e.eventually(t, "health check node port says 503 with only a remote endpoint", func() error {
				code, err := HTTPStatus(e.Topo.Ext, url)
				if err != nil || code != 503 {
					return fmt.Errorf("status %d, err %v; want 503", code, err)
				}
				return nil
			})
		}},
		{"session affinity ClientIP keeps a client on one backend", func(t *testing.T, e *Env) {
			svc := service("sticky", "10.96.0.19", affinity(600))
			e.must(t, svc, "a", "b", "d")
			client := e.Topo.Pods["client"].NS
			e.eventually(t, "every connection of one client lands on one backend", func() error {
				pods, _, fails, last := seen(20, func() (Answer, Outcome, error) { return HTTP(client, clusterAddr(svc)) })
				if len(fails) > 0 {
					return fmt.Errorf("failures %v, last: %v", fails, last)
				}
				if len(pods) != 1 {
					return fmt.Errorf("answered by %v, want one backend", pods)
				}
				return nil
			})
		}},
		{"internalTrafficPolicy Local sends ClusterIP traffic only to local endpoints", func(t *testing.T, e *Env) {
			svc := service("itp-local", "10.96.0.20", internalLocal)
			e.must(t, svc, "b", "d")
			client := e.Topo.Pods["client"].NS
			e.eventually(t, "ClusterIP answered only by local b", func() error {
				pods, _, fails, last := seen(20, func() (Answer, Outcome, error) { return HTTP(client, clusterAddr(svc)) })
				if len(fails) > 0 {
					return fmt.Errorf("failures %v, last: %v", fails, last)
				}
				return sameKeys(pods, "b")
			})
		}},
		{"a pod reaches itself through its own Service (hairpin)", func(t *testing.T, e *Env) {
			svc := service("hairpin", "10.96.0.21")
			e.must(t, svc, "a")
			e.eventually(t, "pod a answered by itself through the ClusterIP", func() error {
				a, _, err := HTTP(e.Topo.Pods["a"].NS, clusterAddr(svc))
				if err != nil {
					return err
				}
				if a.Pod != "a" {
					return fmt.Errorf("answered by %s", a.Pod)
				}
				return nil
			})
		}},
		{"externalIPs reach the backends from outside the cluster", func(t *testing.T, e *Env) {
			svc := service("external-ip", "10.96.0.22", externalIPs("203.0.113.22"))
			e.must(t, svc, "a", "d")
			e.eventually(t, "externalIP answered by a and d", func() error {
				pods, _, fails, last := seen(20, func() (Answer, Outcome, error) { return HTTP(e.Topo.Ext, "203.0.113.22:80") })
				if len(fails) > 0 {
					return fmt.Errorf("failures %v, last: %v", fails, last)
				}
				return sameKeys(pods, "a", "d")
			})
		}},
		{"loadBalancerSourceRanges admit listed clients and keep out the rest", func(t *testing.T, e *Env) {
			svc := service("lb-ranges", "10.96.0.23", loadBalancer(30023, 0, "203.0.113.23", ExtIP.String()+"/32"))
			e.must(t, svc, "a")
			e.eventually(t, "the LoadBalancer IP answers a listed client", func() error {
				_, _, err := HTTP(e.Topo.Ext, "203.0.113.23:80")
				return err
			})
			svc.Spec.LoadBalancerSourceRanges = []string{"198.51.100.0/24"}
			e.must(t, svc, "a")
			e.eventually(t, "the LoadBalancer IP no longer answers an unlisted client", func() error {
				if _, o, _ := HTTP(e.Topo.Ext, "203.0.113.23:80"); o == Answered {
					return fmt.Errorf("still answered")
				}
				return nil
			})
		}},
	}
}

// must applies svc with endpoints on pods, failing the test on error, and
// removes the Service when the test ends.
func (e *Env) must(t *testing.T, svc *v1.Service, pods ...string) {
	t.Helper()
	if pods == nil {
		pods = []string{}
	}
	if err := e.apply(svc, pods); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.remove(svc) })
}
