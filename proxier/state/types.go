package state

import (
	"fmt"
	"net/netip"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

// ServicePortName names one port of one Service, the unit every mode programs.
type ServicePortName struct {
	types.NamespacedName
	Port     string // the port's name; "" for a single unnamed port
	Protocol v1.Protocol
}

// String is the form kube-proxy uses in comments, logs and chain hashes:
// "ns/name:port", or "ns/name" for an unnamed port.
func (n ServicePortName) String() string {
	if n.Port == "" {
		return n.Namespace + "/" + n.Name
	}
	return n.Namespace + "/" + n.Name + ":" + n.Port
}

// Endpoint is one backend of a ServicePort, as merged from every EndpointSlice
// of the Service.
//
// There are 100,000 of these at 10,000 x 10: the flags sit next to Port
// so that they share its word (72 bytes, not 80).
type Endpoint struct {
	IP   netip.Addr
	Port int32

	Ready       bool
	Serving     bool
	Terminating bool
	// IsLocal is true when the endpoint runs on this node.
	IsLocal bool

	NodeName string
	Zone     string

	// Hints are the slice's topology hints; nil when it gives none, as
	// for most endpoints, which then pay one pointer instead of two slices.
	Hints *Hints
}

// Hints are an endpoint's topology hints, sorted and de-duplicated. A Hints
// is shared by every ServicePort the endpoint serves and never modified.
type Hints struct {
	Zones []string
	Nodes []string
}

// forZones and forNodes read the hints of an endpoint that may have none.
func (h *Hints) forZones() []string {
	if h == nil {
		return nil
	}
	return h.Zones
}

func (h *Hints) forNodes() []string {
	if h == nil {
		return nil
	}
	return h.Nodes
}

// String is "ip:port" (IPv6 in brackets).
func (e Endpoint) String() string {
	return netip.AddrPortFrom(e.IP, uint16(e.Port)).String()
}

// ServicePort is the node-local desired state of one Service port: what every
// mode must make the kernel do. Semantics (traffic policies, topology,
// terminating fallback) are already applied; a mode only translates.
type ServicePort struct {
	Name     ServicePortName
	Protocol v1.Protocol
	// ClusterIP is in the proxier's IP family; headless Services never appear.
	ClusterIP netip.Addr
	Port      int32
	// NodePort is 0 when the Service has none.
	NodePort int32

	ExternalIPs              []netip.Addr
	LoadBalancerIPs          []netip.Addr
	LoadBalancerSourceRanges []netip.Prefix

	ExternalPolicyLocal bool
	InternalPolicyLocal bool
	// HealthCheckNodePort is set for LoadBalancer Services with
	// externalTrafficPolicy Local; 0 otherwise.
	HealthCheckNodePort int32

	// SessionAffinity is ClientIP affinity with StickySeconds as timeout.
	SessionAffinity bool
	StickySeconds   int32

	// Scheduler is the Service's own IPVS scheduler, from the
	// SchedulerAnnotation (kube-proxy has no such knob); "" means the
	// configured ipvs.scheduler. Other modes ignore it.
	Scheduler string

	// ClusterEndpoints serve traffic with policy Cluster: ready endpoints
	// (filtered by topology hints when they apply), or serving-terminating
	// ones when none is ready. Empty when the Service has no usable endpoint.
	ClusterEndpoints []Endpoint
	// LocalEndpoints serve traffic with policy Local: the local subset, with
	// the same ready-then-terminating fallback applied to the local ones.
	LocalEndpoints []Endpoint
	// AllEndpoints is the union of both, sorted: every endpoint some rule
	// of this node may send to.
	AllEndpoints []Endpoint
	// HasEndpoints says the Service has any usable endpoint on any node.
	// false means "reject at once", not "drop".
	HasEndpoints bool
}

// ExternallyAccessible reports whether traffic may arrive from outside the
// cluster network: NodePort, externalIPs or LoadBalancer IPs.
func (s *ServicePort) ExternallyAccessible() bool {
	return s.NodePort != 0 || len(s.ExternalIPs) > 0 || len(s.LoadBalancerIPs) > 0
}

// InternalEndpoints are the endpoints for traffic to the ClusterIP.
func (s *ServicePort) InternalEndpoints() []Endpoint {
	if s.InternalPolicyLocal {
		return s.LocalEndpoints
	}
	return s.ClusterEndpoints
}

// ExternalEndpoints are the endpoints for NodePort/externalIP/LB traffic.
func (s *ServicePort) ExternalEndpoints() []Endpoint {
	if s.ExternalPolicyLocal {
		return s.LocalEndpoints
	}
	return s.ClusterEndpoints
}

// HasInternalEndpoints is false when ClusterIP traffic must be dropped
// (internalTrafficPolicy Local and no local endpoint) or rejected (no
// endpoint at all).
func (s *ServicePort) HasInternalEndpoints() bool {
	return s.HasEndpoints && len(s.InternalEndpoints()) > 0
}

// HasExternalEndpoints is the same for external traffic.
func (s *ServicePort) HasExternalEndpoints() bool {
	return s.HasEndpoints && len(s.ExternalEndpoints()) > 0
}

// SchedulerAnnotation lets one Service pick its IPVS scheduler.
const SchedulerAnnotation = "ipvs.proxyproof.dev/scheduler"

// IPVSSchedulers are the schedulers the annotation (and ipvs.scheduler) may
// name: every one the Linux IPVS kernel ships.
var IPVSSchedulers = []string{"rr", "wrr", "lc", "wlc", "lblc", "lblcr", "sh", "dh", "sed", "nq", "mh"}

// Node is what the proxier knows of the node it runs on.
type Node struct {
	Name     string
	Zone     string
	Labels   map[string]string
	IPs      []netip.Addr
	PodCIDRs []netip.Prefix
	// Deleting is true once the Node has a deletionTimestamp or is gone;
	// /healthz then reports 503 so load balancers drain it.
	Deleting bool
}

// Problem is an API object that could not be used as it is. It is skipped
// (and evented) while the rest of the view is programmed.
type Problem struct {
	Kind   string // "Service" or "EndpointSlice"
	Object types.NamespacedName
	Reason string
}

func (p Problem) Error() string {
	return fmt.Sprintf("%s %s: %s", p.Kind, p.Object, p.Reason)
}

// View is the whole desired state for this node at one instant. Modes read it
// and must not modify it.
type View struct {
	Family   v1.IPFamily
	Node     Node
	Services map[ServicePortName]*ServicePort
	Problems []Problem
}

// Changes says what differs from the previous snapshot.
type Changes struct {
	// Full asks the mode to rewrite everything (first sync, periodic resync,
	// node change).
	Full bool
	// Services whose ServicePort was added, changed or removed.
	Services map[ServicePortName]struct{}
	// TriggerTimes are the API-side change times (EndpointSlice
	// last-change-trigger-time annotations) of the changes in this
	// snapshot, for kubeproxy_network_programming_duration_seconds.
	TriggerTimes []time.Time
	// ServiceEvents and EndpointEvents count the informer events folded in.
	ServiceEvents  int
	EndpointEvents int
}

// Empty reports whether there is nothing to do.
func (c *Changes) Empty() bool {
	return !c.Full && len(c.Services) == 0
}
