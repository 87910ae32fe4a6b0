package framework

import (
	"fmt"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/util/intstr"
)

// Environment variables of the churn specs (label churn). The runner
// passes its environment to the suite, so CHURN_REPLICAS=20 make e2e
// reaches them; both check them with ChurnFromEnv before anything exists.
const (
	EnvChurnReplicas       = "CHURN_REPLICAS"        // replicas of the rolled Deployment
	EnvChurnRate           = "CHURN_RATE"            // new connections a second during the roll
	EnvChurnKeepalive      = "CHURN_KEEPALIVE"       // long-lived keep-alive connections held
	EnvChurnMaxSurge       = "CHURN_MAX_SURGE"       // the Deployment's maxSurge
	EnvChurnMaxUnavailable = "CHURN_MAX_UNAVAILABLE" // the Deployment's maxUnavailable
	EnvChurnServices       = "CHURN_SERVICES"        // Services rolled at once in the scaled churn
	EnvChurnIdleServices   = "CHURN_IDLE_SERVICES"   // idle Services beside them
)

// Churn are the churn specs' parameters.
type Churn struct {
	// Replicas is CHURN_REPLICAS, 0 when unset: see ReplicasOn.
	Replicas  int
	Rate      float64
	Keepalive int
	// MaxSurge and MaxUnavailable are a count or a percentage, as in a
	// Deployment's rollingUpdate.
	MaxSurge, MaxUnavailable intstr.IntOrString
	// Services are rolled at once in the scaled churn, the replicas
	// split among them.
	Services int
	// IdleServices is CHURN_IDLE_SERVICES, -1 when unset: see IdleOn.
	IdleServices int
}

// Defaults: 20 new connections a second and 10 held connections, surging a
// quarter at a time and never below the wanted replicas; replicas by the
// nodes' kernels (ReplicasOn).
var DefaultChurn = Churn{Rate: 20, Keepalive: 10, MaxSurge: intstr.FromString("25%"), MaxUnavailable: intstr.FromInt32(0),
	Services: 3, IdleServices: -1}

// Default replicas: 50, the seed story's rolling update, where nodes are
// namespaces or share the host's kernel; 10 where any node runs in the
// kernel VM (TCG on a host without ip_vs: ipvs nodes, NODE_KERNELS=vm,
// every node of a validate run to or from ipvs), which sets the pace of
// a rollout spread over every node: 20 there did not finish rolling in 8
// minutes on this loaded 2-core machine, 10 rolls in 30 s; 50 in iptables
// mode on VM nodes took 148 s to roll, with a programming latency of 15 s
// at p50 past the 5 s shutdown delay (a validate run of stop 23).
const (
	DefaultChurnReplicas   = 50
	DefaultChurnReplicasVM = 10
)

// ReplicasOn is CHURN_REPLICAS, or the default for the cluster's nodes
// (kernelVM: any of them in the kernel VM).
func (c Churn) ReplicasOn(kernelVM bool) int {
	switch {
	case c.Replicas > 0:
		return c.Replicas
	case kernelVM:
		return DefaultChurnReplicasVM
	}
	return DefaultChurnReplicas
}

// Default idle Services of the scaled churn: "a few thousand" where
// nodes are namespaces; fewer where any runs in the kernel VM, where
// upstream kube-proxy (TCG) re-walks every Service at each sync (24 s per
// sync at 2,000 there, FACTS.md), which would not fit the run's time.
const (
	DefaultChurnIdle   = 2000
	DefaultChurnIdleVM = 300
)

// IdleOn is CHURN_IDLE_SERVICES, or the default for the cluster's nodes
// (kernelVM: any of them in the kernel VM).
func (c Churn) IdleOn(kernelVM bool) int {
	switch {
	case c.IdleServices >= 0:
		return c.IdleServices
	case kernelVM:
		return DefaultChurnIdleVM
	}
	return DefaultChurnIdle
}

// Accepted ranges.
const (
	maxChurnReplicas  = 200
	maxChurnRate      = 200
	maxChurnKeepalive = 100
	maxChurnServices  = 10
	maxChurnIdle      = 10000
)

// ChurnFromEnv reads the churn parameters with lookup; an empty or unset
// one takes its default. A bad one is a *ParamError naming it and the
// accepted range.
func ChurnFromEnv(lookup func(string) (string, bool)) (Churn, error) {
	c := DefaultChurn
	get := func(k string) string { v, _ := lookup(k); return strings.TrimSpace(v) }
	if v := get(EnvChurnReplicas); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxChurnReplicas {
			return c, &ParamError{EnvChurnReplicas, v, fmt.Sprintf("a whole number of replicas from 1 to %d (default %d, %d with a node in the kernel VM)", maxChurnReplicas, DefaultChurnReplicas, DefaultChurnReplicasVM)}
		}
		c.Replicas = n
	}
	if v := get(EnvChurnRate); v != "" {
		r, err := strconv.ParseFloat(v, 64)
		if err != nil || !(r > 0 && r <= maxChurnRate) {
			return c, &ParamError{EnvChurnRate, v, fmt.Sprintf("new connections a second, more than 0 and at most %d (default %g)", maxChurnRate, DefaultChurn.Rate)}
		}
		c.Rate = r
	}
	if v := get(EnvChurnKeepalive); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > maxChurnKeepalive {
			return c, &ParamError{EnvChurnKeepalive, v, fmt.Sprintf("a whole number of held connections from 0 to %d (default %d)", maxChurnKeepalive, DefaultChurn.Keepalive)}
		}
		c.Keepalive = n
	}
	if v := get(EnvChurnServices); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxChurnServices {
			return c, &ParamError{EnvChurnServices, v, fmt.Sprintf("a whole number of Services rolled at once, from 1 to %d (default %d)", maxChurnServices, DefaultChurn.Services)}
		}
		c.Services = n
	}
	if v := get(EnvChurnIdleServices); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > maxChurnIdle {
			return c, &ParamError{EnvChurnIdleServices, v, fmt.Sprintf("a whole number of idle Services from 0 to %d (default %d, %d with a node in the kernel VM)", maxChurnIdle, DefaultChurnIdle, DefaultChurnIdleVM)}
		}
		c.IdleServices = n
	}
	var err error
	if c.MaxSurge, err = rollingParam(get(EnvChurnMaxSurge), EnvChurnMaxSurge, c.MaxSurge); err != nil {
		return c, err
	}
	if c.MaxUnavailable, err = rollingParam(get(EnvChurnMaxUnavailable), EnvChurnMaxUnavailable, c.MaxUnavailable); err != nil {
		return c, err
	}
	if isZero(c.MaxSurge) && isZero(c.MaxUnavailable) {
		return c, &ParamError{EnvChurnMaxSurge + " and " + EnvChurnMaxUnavailable, c.MaxSurge.String() + ", " + c.MaxUnavailable.String(),
			"at least one of them above 0: with both 0 a Deployment cannot roll"}
	}
	return c, nil
}

// rollingParam parses a count ("3") or a percentage ("25%"), as a
// Deployment's maxSurge and maxUnavailable take.
func rollingParam(v, name string, def intstr.IntOrString) (intstr.IntOrString, error) {
	if v == "" {
		return def, nil
	}
	bad := &ParamError{name, v, fmt.Sprintf("a whole number of pods (0 or more) or a percentage from 0%% to 100%% (default %s)", def.String())}
	if p, ok := strings.CutSuffix(v, "%"); ok {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 || n > 100 {
			return def, bad
		}
		return intstr.FromString(v), nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return def, bad
	}
	return intstr.FromInt32(int32(n)), nil
}

func isZero(v intstr.IntOrString) bool {
	if v.Type == intstr.String {
		return strings.TrimSuffix(v.StrVal, "%") == "0"
	}
	return v.IntVal == 0
}
