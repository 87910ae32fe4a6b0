package config

import (
	"net/netip"
	"time"

	"k8s.io/kube-proxy/config/v1alpha1"
)

// Config is the validated, parsed configuration the daemon runs from.
// Everything in it has been checked; the daemon needs no further parsing.
type Config struct {
	// Mode is "iptables", "ipvs" or "nftables".
	Mode string
	// HostnameOverride is as configured; NodeName is what to use: the
	// override, else os.Hostname, trimmed and lower-cased (as upstream).
	HostnameOverride string
	NodeName         string

	// ClusterCIDRs holds at most one prefix per IP family.
	ClusterCIDRs []netip.Prefix
	// BindAddress is kube-proxy's idea of the node's primary IP; nothing
	// binds to it.
	BindAddress netip.Addr
	// HealthzBindAddress and MetricsBindAddress are invalid (IsValid false)
	// when the server is disabled.
	HealthzBindAddress  netip.AddrPort
	MetricsBindAddress  netip.AddrPort
	BindAddressHardFail bool
	EnableProfiling     bool

	// SyncPeriod and MinSyncPeriod are those of the selected mode.
	SyncPeriod       time.Duration
	MinSyncPeriod    time.Duration
	ConfigSyncPeriod time.Duration

	MasqueradeAll bool
	// MasqueradeBit is the fwmark bit (0..31) of the selected mode.
	MasqueradeBit      int
	LocalhostNodePorts bool

	// NodePortAddresses restricts NodePorts to node IPs in these prefixes;
	// empty with NodePortPrimary false means every local IP.
	NodePortAddresses []netip.Prefix
	// NodePortPrimary is nodePortAddresses: ["primary"]: only the node's
	// primary IP(s) from the Node object.
	NodePortPrimary bool

	// DetectLocalMode is ClusterCIDR, NodeCIDR, BridgeInterface or
	// InterfaceNamePrefix.
	DetectLocalMode string
	DetectLocal     DetectLocal

	OOMScoreAdj      int
	Conntrack        Conntrack
	IPVS             IPVS
	ClientConnection ClientConnection

	// Cleanup asks the daemon to remove its rules and exit.
	Cleanup bool
	// WriteConfigTo, when set, asks the daemon to write Raw there (see
	// WriteFile) and exit without proxying.
	WriteConfigTo string
	// NetNS is the network namespace (/run/netns/NAME) whose kernel to
	// program; "" is the current one.
	NetNS string
	// SyncBudgetPercent (0..99) is the share of time syncs may take
	// when that is less than minSyncPeriod asks: the wait after a sync
	// is then shorter; 0 waits minSyncPeriod, as kube-proxy does.
	SyncBudgetPercent int
	// ConntrackWarnPercent is the share of nf_conntrack_max (1..100) above
	// which the proxier warns in its log; 0 never warns. Ours.
	ConntrackWarnPercent int
	// MigrateFrom is the mode ("iptables", "nftables", "ipvs") whose rules
	// the node still carries and the proxier removes after its own first
	// successful sync; "" removes nothing. Ours.
	MigrateFrom string

	// Raw is the effective v1alpha1 object, for /configz and
	// --write-config-to. Treat it as read-only.
	Raw *v1alpha1.KubeProxyConfiguration
}

// DetectLocal holds the interface settings of the interface-based modes.
type DetectLocal struct {
	BridgeInterface     string
	InterfaceNamePrefix string
}

// Conntrack holds the nf_conntrack sysctls to set; a zero duration or
// MaxPerCore means "leave the kernel's value".
type Conntrack struct {
	MaxPerCore            int
	Min                   int
	TCPEstablishedTimeout time.Duration
	TCPCloseWaitTimeout   time.Duration
	TCPBeLiberal          bool
	UDPTimeout            time.Duration
	UDPStreamTimeout      time.Duration
}

// IPVS holds the ipvs mode's settings; zero timeouts leave the kernel's.
type IPVS struct {
	// Scheduler is resolved: "" in the file becomes "rr", as upstream.
	Scheduler     string
	StrictARP     bool
	ExcludeCIDRs  []netip.Prefix
	TCPTimeout    time.Duration
	TCPFinTimeout time.Duration
	UDPTimeout    time.Duration
}

// ClientConnection is how to reach the API server. Master, when set,
// overrides the kubeconfig's server URL.
type ClientConnection struct {
	Kubeconfig         string
	Master             string
	QPS                float32
	Burst              int
	ContentType        string
	AcceptContentTypes string
}
