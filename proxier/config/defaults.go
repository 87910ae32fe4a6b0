package config

import (
	"net"
	"net/netip"
	"strconv"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	logsapi "k8s.io/component-base/logs/api/v1"
	"k8s.io/klog/v2"
	"k8s.io/kube-proxy/config/v1alpha1"
)

// Upstream's constants (pkg/cluster/ports, pkg/kubelet/qos).
const (
	healthzPort      = 10256
	metricsPort      = 10249
	oomScoreAdj      = -999
	defaultScheduler = "rr"
)

// Proxy modes and local-traffic detection modes, as in the config file.
const (
	ModeIPTables = "iptables"
	ModeIPVS     = "ipvs"
	ModeNFTables = "nftables"

	LocalModeClusterCIDR         = "ClusterCIDR"
	LocalModeNodeCIDR            = "NodeCIDR"
	LocalModeBridgeInterface     = "BridgeInterface"
	LocalModeInterfaceNamePrefix = "InterfaceNamePrefix"

	// NodePortAddressesPrimary is the one word allowed in nodePortAddresses.
	NodePortAddressesPrimary = "primary"
)

// SetDefaults fills unset fields exactly as upstream's v1alpha1 defaulting
// (pkg/proxy/apis/config/v1alpha1/defaults.go, v1.34) does. Mode and
// detectLocalMode stay empty here: upstream resolves them later, per
// platform, and so do we (applyPlatformDefaults).
func SetDefaults(obj *v1alpha1.KubeProxyConfiguration) {
	if obj.BindAddress == "" {
		obj.BindAddress = "0.0.0.0"
	}
	healthzHost, metricsHost := "0.0.0.0", "127.0.0.1"
	if a, err := netip.ParseAddr(obj.BindAddress); err == nil && a.Is6() && !a.Is4In6() {
		healthzHost, metricsHost = "::", "::1"
	}
	if obj.HealthzBindAddress == "" {
		obj.HealthzBindAddress = net.JoinHostPort(healthzHost, strconv.Itoa(healthzPort))
	} else {
		obj.HealthzBindAddress = appendPortIfNeeded(obj.HealthzBindAddress, healthzPort)
	}
	if obj.MetricsBindAddress == "" {
		obj.MetricsBindAddress = net.JoinHostPort(metricsHost, strconv.Itoa(metricsPort))
	} else {
		obj.MetricsBindAddress = appendPortIfNeeded(obj.MetricsBindAddress, metricsPort)
	}
	if obj.OOMScoreAdj == nil {
		obj.OOMScoreAdj = ptr(int32(oomScoreAdj))
	}

	setDuration(&obj.IPTables.SyncPeriod, 30*time.Second)
	setDuration(&obj.IPTables.MinSyncPeriod, time.Second)
	if obj.IPTables.LocalhostNodePorts == nil {
		obj.IPTables.LocalhostNodePorts = ptr(true)
	}
	if obj.IPTables.MasqueradeBit == nil {
		obj.IPTables.MasqueradeBit = ptr(int32(14))
	}
	// ipvs.minSyncPeriod has no default upstream: 0 means "sync at once".
	setDuration(&obj.IPVS.SyncPeriod, 30*time.Second)
	setDuration(&obj.NFTables.SyncPeriod, 30*time.Second)
	setDuration(&obj.NFTables.MinSyncPeriod, time.Second)
	if obj.NFTables.MasqueradeBit == nil {
		obj.NFTables.MasqueradeBit = ptr(int32(14))
	}

	if obj.Conntrack.MaxPerCore == nil {
		obj.Conntrack.MaxPerCore = ptr(int32(32 * 1024))
	}
	if obj.Conntrack.Min == nil {
		obj.Conntrack.Min = ptr(int32(128 * 1024))
	}
	if obj.Conntrack.TCPEstablishedTimeout == nil {
		obj.Conntrack.TCPEstablishedTimeout = &metav1.Duration{Duration: 24 * time.Hour}
	}
	if obj.Conntrack.TCPCloseWaitTimeout == nil {
		// One hour, to outlive typical server-side FIN_WAIT timeouts
		// (kubernetes/kubernetes#32551).
		obj.Conntrack.TCPCloseWaitTimeout = &metav1.Duration{Duration: time.Hour}
	}
	setDuration(&obj.ConfigSyncPeriod, 15*time.Minute)

	if obj.ClientConnection.ContentType == "" {
		obj.ClientConnection.ContentType = "application/vnd.kubernetes.protobuf"
	}
	if obj.ClientConnection.QPS == 0 {
		obj.ClientConnection.QPS = 5
	}
	if obj.ClientConnection.Burst == 0 {
		obj.ClientConnection.Burst = 10
	}
	if obj.FeatureGates == nil {
		obj.FeatureGates = map[string]bool{}
	}
	logsapi.SetRecommendedLoggingConfiguration(&obj.Logging)
}

// applyPlatformDefaults is upstream's Linux platformApplyDefaults: an empty
// mode means iptables, nftables without nodePortAddresses means "primary",
// and an empty detectLocalMode means ClusterCIDR. It runs after Validate
// so that validation can tell a value the user chose from one we chose.
func applyPlatformDefaults(obj *v1alpha1.KubeProxyConfiguration) {
	if obj.Mode == "" {
		klog.InfoS("Using iptables proxy")
		obj.Mode = ModeIPTables
	}
	if obj.Mode == ModeNFTables && len(obj.NodePortAddresses) == 0 {
		obj.NodePortAddresses = []string{NodePortAddressesPrimary}
	}
	if obj.DetectLocalMode == "" {
		klog.V(4).InfoS("Defaulting detect-local-mode", "localModeClusterCIDR", LocalModeClusterCIDR)
		obj.DetectLocalMode = LocalModeClusterCIDR
	}
	normalize(obj)
}

// normalize makes the object what upstream shows after its round trip
// through the internal type (in /configz and --write-config-to): only the
// selected mode keeps its sync periods, and masqueradeAll lives in the
// nftables section for nftables and in the iptables section otherwise.
func normalize(obj *v1alpha1.KubeProxyConfiguration) {
	sync, minSync := modePeriods(obj)
	masqAll := masqueradeAll(obj)
	obj.IPTables.SyncPeriod, obj.IPTables.MinSyncPeriod = metav1.Duration{}, metav1.Duration{}
	obj.IPVS.SyncPeriod, obj.IPVS.MinSyncPeriod = metav1.Duration{}, metav1.Duration{}
	obj.NFTables.SyncPeriod, obj.NFTables.MinSyncPeriod = metav1.Duration{}, metav1.Duration{}
	obj.IPTables.MasqueradeAll, obj.NFTables.MasqueradeAll = false, false
	switch obj.Mode {
	case ModeIPVS:
		obj.IPVS.SyncPeriod, obj.IPVS.MinSyncPeriod = sync, minSync
	case ModeNFTables:
		obj.NFTables.SyncPeriod, obj.NFTables.MinSyncPeriod = sync, minSync
	default:
		obj.IPTables.SyncPeriod, obj.IPTables.MinSyncPeriod = sync, minSync
	}
	if obj.Mode == ModeNFTables {
		obj.NFTables.MasqueradeAll = masqAll
	} else {
		obj.IPTables.MasqueradeAll = masqAll
	}
}

// modeSection is the config section whose syncPeriod, minSyncPeriod and
// masqueradeAll are in force: upstream's conversion picks ipvs for ipvs,
// nftables for nftables and iptables for anything else (including "").
func modeSection(mode v1alpha1.ProxyMode) string {
	switch mode {
	case ModeIPVS:
		return ModeIPVS
	case ModeNFTables:
		return ModeNFTables
	}
	return ModeIPTables
}

func modePeriods(obj *v1alpha1.KubeProxyConfiguration) (sync, minSync metav1.Duration) {
	switch modeSection(obj.Mode) {
	case ModeIPVS:
		return obj.IPVS.SyncPeriod, obj.IPVS.MinSyncPeriod
	case ModeNFTables:
		return obj.NFTables.SyncPeriod, obj.NFTables.MinSyncPeriod
	}
	return obj.IPTables.SyncPeriod, obj.IPTables.MinSyncPeriod
}

func masqueradeAll(obj *v1alpha1.KubeProxyConfiguration) bool {
	if modeSection(obj.Mode) == ModeNFTables {
		return obj.NFTables.MasqueradeAll
	}
	return obj.IPTables.MasqueradeAll
}

// masqueradeBit is the bit in force: nftables has its own, iptables and
// ipvs share the iptables one (as upstream's createProxier does).
func masqueradeBit(obj *v1alpha1.KubeProxyConfiguration) (int32, string) {
	if modeSection(obj.Mode) == ModeNFTables {
		return deref(obj.NFTables.MasqueradeBit), "nftables.masqueradeBit"
	}
	return deref(obj.IPTables.MasqueradeBit), "iptables.masqueradeBit"
}

// appendPortIfNeeded is upstream's proxyutil.AppendPortIfNeeded: a bare IP
// gets the default port; anything else is left for validation to judge.
func appendPortIfNeeded(addr string, port int) string {
	if _, _, err := net.SplitHostPort(addr); err == nil {
		return addr
	}
	ip, err := netip.ParseAddr(addr)
	if err != nil {
		return addr
	}
	return net.JoinHostPort(ip.String(), strconv.Itoa(port))
}

func setDuration(d *metav1.Duration, def time.Duration) {
	if d.Duration == 0 {
		d.Duration = def
	}
}

func ptr[T any](v T) *T { return &v }

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}
