package config

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/kube-proxy/config/v1alpha1"
)

// ipvsSchedulers are the schedulers upstream accepts ("" means rr).
var ipvsSchedulers = []string{"rr", "wrr", "lc", "wlc", "lblc", "lblcr", "sh", "dh", "sed", "nq", "mh"}

// Validate checks a defaulted object the way upstream's
// pkg/proxy/apis/config/validation does (for Linux) and returns every
// problem at once as an ErrorList, or nil. Fields are named by their JSON
// path in the config file. An empty mode or detectLocalMode is accepted:
// it means the platform default.
func Validate(obj *v1alpha1.KubeProxyConfiguration) error {
	var errs ErrorList
	validateMode(&errs, obj)

	bit, bitPath := masqueradeBit(obj)
	if bit < 0 || bit > 31 {
		errs.add(bitPath, "%d is out of range; must be 0..31", bit)
	}
	if bitPath != "iptables.masqueradeBit" { // upstream checks iptables' in every mode
		if b := deref(obj.IPTables.MasqueradeBit); b < 0 || b > 31 {
			errs.add("iptables.masqueradeBit", "%d is out of range; must be 0..31", b)
		}
	}

	section := modeSection(obj.Mode)
	sync, minSync := modePeriods(obj)
	if sync.Duration <= 0 {
		errs.add(section+".syncPeriod", `%s must be greater than 0; use e.g. "30s"`, sync.Duration)
	}
	if minSync.Duration < 0 {
		errs.add(section+".minSyncPeriod", `%s is negative; must be >= 0 (0 syncs on every change)`, minSync.Duration)
	} else if sync.Duration > 0 && minSync.Duration > sync.Duration {
		errs.add(section+".minSyncPeriod", "%s is longer than %s.syncPeriod (%s); must be <= syncPeriod", minSync.Duration, section, sync.Duration)
	}
	if obj.ConfigSyncPeriod.Duration <= 0 {
		errs.add("configSyncPeriod", `%s must be greater than 0; use e.g. "15m"`, obj.ConfigSyncPeriod.Duration)
	}
	if obj.Mode == ModeIPVS {
		validateIPVS(&errs, &obj.IPVS)
	}
	validateConntrack(&errs, &obj.Conntrack)
	if a := deref(obj.OOMScoreAdj); a < -1000 || a > 1000 {
		errs.add("oomScoreAdj", "%d is out of range; must be -1000..1000", a)
	}

	if _, err := netip.ParseAddr(obj.BindAddress); err != nil {
		errs.add("bindAddress", `%q is not an IP address; use e.g. "0.0.0.0" or "::"`, obj.BindAddress)
	}
	// Empty disables the server (only reachable by flag: defaulting fills
	// an empty field in a file).
	if obj.HealthzBindAddress != "" {
		validateHostPort(&errs, "healthzBindAddress", obj.HealthzBindAddress, healthzPort)
	}
	if obj.MetricsBindAddress != "" {
		validateHostPort(&errs, "metricsBindAddress", obj.MetricsBindAddress, metricsPort)
	}

	if _, err := parseClusterCIDRs(obj.ClusterCIDR); err != nil {
		errs.add("clusterCIDR", "%s", err)
	}
	validateDetectLocal(&errs, obj)
	validateNodePortAddresses(&errs, obj.NodePortAddresses)

	if obj.ClientConnection.Burst < 0 {
		errs.add("clientConnection.burst", "%d is negative; must be >= 0", obj.ClientConnection.Burst)
	}
	// A negative qps is allowed, as upstream does: client-go then applies
	// no client-side rate limit.
	if f := obj.Logging.Format; f != "" && f != "text" {
		errs.add("logging.format", `%q is not supported by this proxier; use "text"`, f)
	}
	return errs.errOrNil()
}

func validateMode(errs *ErrorList, obj *v1alpha1.KubeProxyConfiguration) {
	switch m := string(obj.Mode); m {
	case "", ModeIPTables, ModeIPVS, ModeNFTables:
	case "userspace":
		errs.add("mode", `"userspace" was removed in Kubernetes 1.26; use "iptables", "ipvs" or "nftables"`)
	case "kernelspace":
		errs.add("mode", `"kernelspace" is the Windows proxy; on Linux use "iptables", "ipvs" or "nftables"`)
	default:
		errs.add("mode", `%q is not a proxy mode; must be "iptables", "ipvs", "nftables" or empty (iptables)`, m)
	}
}

func validateIPVS(errs *ErrorList, c *v1alpha1.KubeProxyIPVSConfiguration) {
	if c.Scheduler != "" && !slices.Contains(ipvsSchedulers, c.Scheduler) {
		errs.add("ipvs.scheduler", "%q is not a known IPVS scheduler; must be one of %s, or empty (rr)", c.Scheduler, strings.Join(ipvsSchedulers, ", "))
	}
	for i, s := range c.ExcludeCIDRs {
		if _, err := netip.ParsePrefix(strings.TrimSpace(s)); err != nil {
			errs.add(fmt.Sprintf("ipvs.excludeCIDRs[%d]", i), `%q is not a CIDR; use e.g. "10.0.0.0/8"`, s)
		}
	}
	nonNegative(errs, "ipvs.tcpTimeout", c.TCPTimeout)
	nonNegative(errs, "ipvs.tcpFinTimeout", c.TCPFinTimeout)
	nonNegative(errs, "ipvs.udpTimeout", c.UDPTimeout)
}

func validateConntrack(errs *ErrorList, c *v1alpha1.KubeProxyConntrackConfiguration) {
	if v := deref(c.MaxPerCore); v < 0 {
		errs.add("conntrack.maxPerCore", "%d is negative; must be >= 0 (0 leaves the limit as is)", v)
	}
	if v := deref(c.Min); v < 0 {
		errs.add("conntrack.min", "%d is negative; must be >= 0", v)
	}
	nonNegative(errs, "conntrack.tcpEstablishedTimeout", deref(c.TCPEstablishedTimeout))
	nonNegative(errs, "conntrack.tcpCloseWaitTimeout", deref(c.TCPCloseWaitTimeout))
	nonNegative(errs, "conntrack.udpTimeout", c.UDPTimeout)
	nonNegative(errs, "conntrack.udpStreamTimeout", c.UDPStreamTimeout)
}

func nonNegative(errs *ErrorList, field string, d metav1.Duration) {
	if d.Duration < 0 {
		errs.add(field, "%s is negative; must be >= 0 (0 leaves the kernel's value)", d.Duration)
	}
}

func validateHostPort(errs *ErrorList, field, v string, port int) {
	example := net.JoinHostPort("0.0.0.0", strconv.Itoa(port))
	if _, err := parseHostPort(v); err != nil {
		errs.add(field, "%q %s; use IP:port, e.g. %q", v, err, example)
	}
}

// parseHostPort accepts "IP:port" with a port of 1..65535.
func parseHostPort(v string) (netip.AddrPort, error) {
	host, port, err := net.SplitHostPort(v)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("is not IP:port")
	}
	ip, err := netip.ParseAddr(host)
	if err != nil || ip.Zone() != "" {
		return netip.AddrPort{}, fmt.Errorf("has %q, which is not an IP address", host)
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 1 || p > 65535 {
		return netip.AddrPort{}, fmt.Errorf("has port %q; must be 1..65535", port)
	}
	return netip.AddrPortFrom(ip.Unmap(), uint16(p)), nil
}

// parseClusterCIDRs splits clusterCIDR ("", one CIDR, or a comma-separated
// dual-stack pair) into prefixes.
func parseClusterCIDRs(s string) ([]netip.Prefix, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	parts := strings.Split(s, ",")
	if len(parts) > 2 {
		return nil, fmt.Errorf(`%q has %d CIDRs; give at most one per IP family, e.g. "10.244.0.0/16,fd00:10:244::/56"`, s, len(parts))
	}
	var out []netip.Prefix
	for _, p := range parts {
		pfx, err := netip.ParsePrefix(strings.TrimSpace(p))
		if err != nil {
			return nil, fmt.Errorf(`%q is not a CIDR; use e.g. "10.244.0.0/16" or "10.244.0.0/16,fd00:10:244::/56"`, strings.TrimSpace(p))
		}
		out = append(out, pfx.Masked())
	}
	if len(out) == 2 && out[0].Addr().Is4() == out[1].Addr().Is4() {
		return nil, fmt.Errorf(`%q has two CIDRs of the same IP family; give at most one per family, e.g. "10.244.0.0/16,fd00:10:244::/56"`, s)
	}
	return out, nil
}

func validateDetectLocal(errs *ErrorList, obj *v1alpha1.KubeProxyConfiguration) {
	switch m := string(obj.DetectLocalMode); m {
	case "", LocalModeClusterCIDR, LocalModeNodeCIDR:
		// ClusterCIDR without a clusterCIDR is accepted, as upstream does
		// (and writes it so with --write-config-to): it detects nothing,
		// and Complete says so in the log.
	case LocalModeBridgeInterface:
		validateInterface(errs, "detectLocal.bridgeInterface", obj.DetectLocal.BridgeInterface, "the pod bridge, e.g. \"cbr0\"")
	case LocalModeInterfaceNamePrefix:
		validateInterface(errs, "detectLocal.interfaceNamePrefix", obj.DetectLocal.InterfaceNamePrefix, "the pod interface prefix, e.g. \"veth\"")
	default:
		errs.add("detectLocalMode", "%q is not a local-traffic detection mode; must be ClusterCIDR, NodeCIDR, BridgeInterface or InterfaceNamePrefix", m)
	}
}

func validateInterface(errs *ErrorList, field, name, what string) {
	switch {
	case name == "":
		errs.add(field, "is empty; set it to %s", what)
	case len(name) > 15 || strings.ContainsAny(name, "/ \t\n:"):
		errs.add(field, "%q is not an interface name (at most 15 characters, no '/', ':' or spaces)", name)
	}
}

func validateNodePortAddresses(errs *ErrorList, addrs []string) {
	for i, a := range addrs {
		field := fmt.Sprintf("nodePortAddresses[%d]", i)
		if a == NodePortAddressesPrimary {
			if len(addrs) != 1 {
				errs.add(field, `"primary" must be the only entry; use either "primary" or a list of CIDRs`)
			}
			continue
		}
		if _, err := netip.ParsePrefix(strings.TrimSpace(a)); err != nil {
			errs.add(field, `%q is not a CIDR; use CIDRs like "10.0.0.0/8" or the single word "primary"`, a)
		}
	}
}

func durationOf(d *metav1.Duration) time.Duration {
	if d == nil {
		return 0
	}
	return d.Duration
}
