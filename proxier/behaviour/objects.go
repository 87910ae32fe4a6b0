package behaviour

import (
	"context"
	"fmt"
	"testing"

	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

const namespace = "behaviour"

// service builds a one-port TCP Service "name" with cluster IP ip, port 80 ->
// TCPPort; options change it.
func service(name, ip string, opts ...func(*v1.Service)) *v1.Service {
	s := &v1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
		Spec: v1.ServiceSpec{
			Type:       v1.ServiceTypeClusterIP,
			ClusterIP:  ip,
			ClusterIPs: []string{ip},
			IPFamilies: []v1.IPFamily{v1.IPv4Protocol},
			Ports: []v1.ServicePort{{
				Name: "http", Protocol: v1.ProtocolTCP, Port: 80, TargetPort: intstr.FromInt32(TCPPort),
			}},
		},
	}
	for _, o := range opts {
		o(s)
	}
	return s
}

func udp(s *v1.Service) {
	s.Spec.Ports[0].Name = "dns"
	s.Spec.Ports[0].Protocol = v1.ProtocolUDP
	s.Spec.Ports[0].Port = 53
	s.Spec.Ports[0].TargetPort = intstr.FromInt32(UDPPort)
}

func nodePort(port int32) func(*v1.Service) {
	return func(s *v1.Service) {
		s.Spec.Type = v1.ServiceTypeNodePort
		s.Spec.Ports[0].NodePort = port
	}
}

func loadBalancer(nodePort, healthPort int32, ingressIP string, sourceRanges ...string) func(*v1.Service) {
	return func(s *v1.Service) {
		s.Spec.Type = v1.ServiceTypeLoadBalancer
		s.Spec.Ports[0].NodePort = nodePort
		s.Spec.HealthCheckNodePort = healthPort
		s.Spec.LoadBalancerSourceRanges = sourceRanges
		s.Status.LoadBalancer.Ingress = []v1.LoadBalancerIngress{{IP: ingressIP}}
	}
}

func externalLocal(s *v1.Service) {
	s.Spec.ExternalTrafficPolicy = v1.ServiceExternalTrafficPolicyLocal
}

func internalLocal(s *v1.Service) {
	s.Spec.InternalTrafficPolicy = ptr.To(v1.ServiceInternalTrafficPolicyLocal)
}

func affinity(seconds int32) func(*v1.Service) {
	return func(s *v1.Service) {
		s.Spec.SessionAffinity = v1.ServiceAffinityClientIP
		s.Spec.SessionAffinityConfig = &v1.SessionAffinityConfig{ClientIP: &v1.ClientIPConfig{TimeoutSeconds: ptr.To(seconds)}}
	}
}

func externalIPs(ips ...string) func(*v1.Service) {
	return func(s *v1.Service) { s.Spec.ExternalIPs = ips }
}

// slice builds the EndpointSlice of svc with the given pods as ready
// endpoints on the Service's first port.
func (e *Env) slice(svc *v1.Service, pods ...string) *discoveryv1.EndpointSlice {
	p := svc.Spec.Ports[0]
	es := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: namespace, Name: svc.Name + "-abc",
			Labels: map[string]string{discoveryv1.LabelServiceName: svc.Name},
		},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports: []discoveryv1.EndpointPort{{
			Name: ptr.To(p.Name), Protocol: ptr.To(p.Protocol), Port: ptr.To(p.TargetPort.IntVal),
		}},
	}
	for _, name := range pods {
		pod := e.Topo.Pods[name]
		es.Endpoints = append(es.Endpoints, discoveryv1.Endpoint{
			Addresses:  []string{pod.IP.String()},
			Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true), Serving: ptr.To(true), Terminating: ptr.To(false)},
			NodeName:   ptr.To(pod.Node),
		})
	}
	return es
}

// apply creates or updates svc and, when pods is not nil, its EndpointSlice.
func (e *Env) apply(svc *v1.Service, pods []string) error {
	ctx := context.Background()
	svcs := e.Client.CoreV1().Services(namespace)
	if _, err := svcs.Get(ctx, svc.Name, metav1.GetOptions{}); err == nil {
		if _, err := svcs.Update(ctx, svc, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("update service %s: %w", svc.Name, err)
		}
	} else if _, err := svcs.Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create service %s: %w", svc.Name, err)
	}
	if pods == nil {
		return nil
	}
	es := e.slice(svc, pods...)
	slices := e.Client.DiscoveryV1().EndpointSlices(namespace)
	if _, err := slices.Get(ctx, es.Name, metav1.GetOptions{}); err == nil {
		_, err = slices.Update(ctx, es, metav1.UpdateOptions{})
		return err
	}
	_, err := slices.Create(ctx, es, metav1.CreateOptions{})
	return err
}

func (e *Env) remove(svc *v1.Service) {
	ctx := context.Background()
	_ = e.Client.CoreV1().Services(namespace).Delete(ctx, svc.Name, metav1.DeleteOptions{})
	_ = e.Client.DiscoveryV1().EndpointSlices(namespace).Delete(ctx, svc.Name+"-abc", metav1.DeleteOptions{})
}

// nodes are the Node objects of the topology, as a kubelet would report them.
func nodes() []*v1.Node {
	mk := func(name string, ip, cidr string) *v1.Node {
		return &v1.Node{
			ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{
				"kubernetes.io/hostname": name, v1.LabelTopologyZone: "zone-" + name,
			}},
			Spec: v1.NodeSpec{PodCIDR: cidr, PodCIDRs: []string{cidr}},
			Status: v1.NodeStatus{Addresses: []v1.NodeAddress{
				{Type: v1.NodeInternalIP, Address: ip}, {Type: v1.NodeHostName, Address: name},
			}},
		}
	}
	return []*v1.Node{
		mk("node1", Node1IP.String(), Node1CIDR.String()),
		mk("node2", Node2IP.String(), Node2CIDR.String()),
	}
}

// ClusterIPService creates a one-port TCP ClusterIP Service "name" at ip
// with endpoints on pods, removed when the test ends, and returns the
// address clients dial ("ip:80"). Tests outside the table (a mode switch
// under load) use it to share the table's objects.
func (e *Env) ClusterIPService(t *testing.T, name, ip string, pods ...string) string {
	t.Helper()
	svc := service(name, ip)
	e.must(t, svc, pods...)
	return clusterAddr(svc)
}
