package ipvs

import (
	"fmt"
	"net/netip"
	"strconv"

	"golang.org/x/sys/unix"
)

// Set names are upstream's, so `ipset list` runbooks keep working and
// Cleanup also removes what kube-proxy's IPVS mode left.
const (
	setLoopBack            = "KUBE-LOOP-BACK"
	setClusterIP           = "KUBE-CLUSTER-IP"
	setExternalIP          = "KUBE-EXTERNAL-IP"
	setExternalIPLocal     = "KUBE-EXTERNAL-IP-LOCAL"
	setLoadBalancer        = "KUBE-LOAD-BALANCER"
	setLoadBalancerFW      = "KUBE-LOAD-BALANCER-FW"
	setLoadBalancerLocal   = "KUBE-LOAD-BALANCER-LOCAL"
	setLBSourceIP          = "KUBE-LOAD-BALANCER-SOURCE-IP"
	setLBSourceCIDR        = "KUBE-LOAD-BALANCER-SOURCE-CIDR"
	setNodePortTCP         = "KUBE-NODE-PORT-TCP"
	setNodePortLocalTCP    = "KUBE-NODE-PORT-LOCAL-TCP"
	setNodePortUDP         = "KUBE-NODE-PORT-UDP"
	setNodePortLocalUDP    = "KUBE-NODE-PORT-LOCAL-UDP"
	setNodePortSCTP        = "KUBE-NODE-PORT-SCTP-HASH"
	setNodePortLocalSCTP   = "KUBE-NODE-PORT-LOCAL-SCTP-HASH"
	setHealthCheckNodePort = "KUBE-HEALTH-CHECK-NODE-PORT"
	setIPVSIPs             = "KUBE-IPVS-IPS"
)

// Set types.
const (
	typeHashIPPort    = "hash:ip,port"
	typeHashIPPortIP  = "hash:ip,port,ip"
	typeHashIPPortNet = "hash:ip,port,net"
	typeBitmapPort    = "bitmap:port"
	typeHashIP        = "hash:ip"
)

// setInfo is upstream's ipsetInfo: every set this mode owns, with the
// comment its iptables rule carries.
var setInfo = []struct{ name, typ, comment string }{
	{setLoopBack, typeHashIPPortIP, "Kubernetes endpoints dst ip:port, source ip for solving hairpin purpose"},
	{setClusterIP, typeHashIPPort, "Kubernetes service cluster ip + port for masquerade purpose"},
	{setExternalIP, typeHashIPPort, "Kubernetes service external ip + port for masquerade and filter purpose"},
	{setExternalIPLocal, typeHashIPPort, "Kubernetes service external ip + port with externalTrafficPolicy=local"},
	{setLoadBalancer, typeHashIPPort, "Kubernetes service lb portal"},
	{setLoadBalancerFW, typeHashIPPort, "Kubernetes service load balancer ip + port for load balancer with sourceRange"},
	{setLoadBalancerLocal, typeHashIPPort, "Kubernetes service load balancer ip + port with externalTrafficPolicy=local"},
	{setLBSourceIP, typeHashIPPortIP, "Kubernetes service load balancer ip + port + source IP for packet filter purpose"},
	{setLBSourceCIDR, typeHashIPPortNet, "Kubernetes service load balancer ip + port + source cidr for packet filter purpose"},
	{setNodePortTCP, typeBitmapPort, "Kubernetes nodeport TCP port for masquerade purpose"},
	{setNodePortLocalTCP, typeBitmapPort, "Kubernetes nodeport TCP port with externalTrafficPolicy=local"},
	{setNodePortUDP, typeBitmapPort, "Kubernetes nodeport UDP port for masquerade purpose"},
	{setNodePortLocalUDP, typeBitmapPort, "Kubernetes nodeport UDP port with externalTrafficPolicy=local"},
	{setNodePortSCTP, typeHashIPPort, "Kubernetes nodeport SCTP port for masquerade purpose with type 'hash ip:port'"},
	{setNodePortLocalSCTP, typeHashIPPort, "Kubernetes nodeport SCTP port with externalTrafficPolicy=local with type 'hash ip:port'"},
	{setHealthCheckNodePort, typeBitmapPort, "Kubernetes health check node port"},
	{setIPVSIPs, typeHashIP, "Addresses on the ipvs interface"},
}

func setComment(name string) string {
	for _, s := range setInfo {
		if s.name == name {
			return s.comment
		}
	}
	return ""
}

func setType(name string) string {
	for _, s := range setInfo {
		if s.name == name {
			return s.typ
		}
	}
	return ""
}

// Entry is one ipset member. Which fields count depends on the set type:
// hash:ip uses IP; bitmap:port Port; hash:ip,port IP, Protocol, Port;
// hash:ip,port,ip adds IP2; hash:ip,port,net adds Net.
type Entry struct {
	IP       netip.Addr
	Protocol uint8 // unix.IPPROTO_TCP, ...
	Port     uint16
	IP2      netip.Addr
	Net      netip.Prefix
}

// String is the entry as `ipset list` prints it.
func (e Entry) String() string {
	s := ""
	if e.IP.IsValid() {
		s = e.IP.String() + ","
	}
	if e.IP.IsValid() {
		s += protoName(uint16(e.Protocol)) + ":"
	}
	s += strconv.Itoa(int(e.Port))
	if e.IP2.IsValid() {
		s += "," + e.IP2.String()
	}
	if e.Net.IsValid() {
		s += "," + e.Net.String()
	}
	if e.IP.IsValid() && e.Port == 0 && e.Protocol == 0 {
		return e.IP.String() // hash:ip
	}
	return s
}

// setEntry names an entry of one set, the unit of reference counting.
type setEntry struct {
	set string
	e   Entry
}

// IPSetter is the seam between this mode and the kernel's ipsets: the
// real one speaks netlink in the mode's namespace, FakeIPSet keeps sets
// in memory.
type IPSetter interface {
	// Create makes set of type typ unless it exists.
	Create(set, typ string, family uint8) error
	// Destroy removes set; a missing set is fine.
	Destroy(set string) error
	// Add adds e; an existing entry is fine.
	Add(set string, e Entry) error
	// Del removes e; a missing entry is fine.
	Del(set string, e Entry) error
	// List returns the entries of set.
	List(set string) ([]Entry, error)
}

func protoNumber(p string) uint16 {
	switch p {
	case "TCP", "tcp":
		return unix.IPPROTO_TCP
	case "UDP", "udp":
		return unix.IPPROTO_UDP
	case "SCTP", "sctp":
		return unix.IPPROTO_SCTP
	}
	return 0
}

func protoName(p uint16) string {
	switch p {
	case unix.IPPROTO_TCP:
		return "tcp"
	case unix.IPPROTO_UDP:
		return "udp"
	case unix.IPPROTO_SCTP:
		return "sctp"
	}
	return fmt.Sprintf("proto%d", p)
}
