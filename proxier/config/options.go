package config

import (
	goflag "flag"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"k8s.io/klog/v2"
	"k8s.io/kube-proxy/config/v1alpha1"
)

// Options holds the command line. Flags that overlap kube-proxy's have its
// names, defaults and meaning.
//
// Precedence, as upstream kube-proxy v1.34 (cmd/kube-proxy/app/options.go,
// Options.Complete) does it:
//   - Without --config, each flag that was set overrides the v1alpha1
//     default.
//   - With --config, the file is the whole configuration: every flag that
//     maps to a config field (--proxy-mode, --kubeconfig, --cluster-cidr,
//     --iptables-*, --conntrack-*, ...) is ignored, even when set. Only
//     these still apply: --hostname-override (overrides hostnameOverride),
//     the logging flags -v/--vmodule (override logging.*), and the
//     process-level flags that are not in the file: --master, --cleanup,
//     --write-config-to and our --netns. We log each ignored flag, which
//     upstream does not, so a user is not left guessing.
//   - --iptables-sync-period/--iptables-min-sync-period apply when the mode
//     is not ipvs (so nftables too), --ipvs-* ones when it is ipvs; without
//     them the selected mode gets 30s/1s (upstream's internal defaults),
//     which for ipvs differs from the file default minSyncPeriod of 0.
type Options struct {
	ConfigFile    string
	WriteConfigTo string
	Cleanup       bool
	Master        string
	NetNS         string
	// ConntrackWarnPercent, SyncBudgetPercent and MigrateFrom are ours
	// (see extensions.go).
	ConntrackWarnPercent int
	SyncBudgetPercent    int
	MigrateFrom          string

	hostnameOverride string
	clusterCIDR      string
	proxyMode        string
	detectLocalMode  string
	masqueradeAll    bool
	iptablesSync     time.Duration
	iptablesMinSync  time.Duration
	ipvsSync         time.Duration
	ipvsMinSync      time.Duration

	// flagObj receives the flags that map straight onto config fields. It
	// starts defaulted, so a flag's default is upstream's default.
	flagObj *v1alpha1.KubeProxyConfiguration
	fs      *pflag.FlagSet
}

// NewOptions returns Options whose flag defaults are upstream's.
func NewOptions() *Options {
	obj := &v1alpha1.KubeProxyConfiguration{}
	SetDefaults(obj)
	return &Options{flagObj: obj, ConntrackWarnPercent: DefaultConntrackWarnPercent, SyncBudgetPercent: DefaultSyncBudgetPercent}
}

// processFlags are not config fields: they apply with or without --config.
var processFlags = map[string]bool{
	"config": true, "write-config-to": true, "cleanup": true, "master": true,
	"netns": true, "hostname-override": true, "v": true, "vmodule": true,
	"conntrack-usage-warn-percent": true, "migrate-from": true, "sync-budget-percent": true,
}

// AddFlags registers the flags on fs and remembers fs, so Complete can tell
// a flag that was set from one left at its default.
func (o *Options) AddFlags(fs *pflag.FlagSet) {
	if o.flagObj == nil {
		*o = *NewOptions()
	}
	o.fs = fs
	c := o.flagObj

	fs.StringVar(&o.ConfigFile, "config", o.ConfigFile, "The path to the configuration file.")
	fs.StringVar(&o.WriteConfigTo, "write-config-to", o.WriteConfigTo, "If set, write the effective configuration values to this file and exit.")
	fs.BoolVar(&o.Cleanup, "cleanup", o.Cleanup, "If true cleanup iptables, nftables and ipvs rules and exit.")
	fs.StringVar(&o.NetNS, "netns", o.NetNS, "Program the kernel of network namespace /run/netns/NAME instead of the current one (tests, local provider).")
	addExtensionFlags(fs, o)

	fs.StringVar(&c.ClientConnection.Kubeconfig, "kubeconfig", c.ClientConnection.Kubeconfig, "Path to kubeconfig file with authorization information (the master location can be overridden by the master flag).")
	fs.StringVar(&o.Master, "master", o.Master, "The address of the Kubernetes API server (overrides any value in kubeconfig)")
	fs.StringVar(&c.ClientConnection.ContentType, "kube-api-content-type", c.ClientConnection.ContentType, "Content type of requests sent to apiserver.")
	fs.Int32Var(&c.ClientConnection.Burst, "kube-api-burst", c.ClientConnection.Burst, "Burst to use while talking with kubernetes apiserver")
	fs.Float32Var(&c.ClientConnection.QPS, "kube-api-qps", c.ClientConnection.QPS, "QPS to use while talking with kubernetes apiserver")

	fs.StringVar(&o.hostnameOverride, "hostname-override", o.hostnameOverride, "If non-empty, will be used as the name of the Node that kube-proxy is running on. If unset, the node name is assumed to be the same as the node's hostname.")
	fs.StringVar(&c.BindAddress, "bind-address", c.BindAddress, "Overrides kube-proxy's idea of what its node's primary IP is. Note that the name is a historical artifact, and kube-proxy does not actually bind any sockets to this IP. This parameter is ignored if a config file is specified by --config.")
	fs.StringVar(&c.HealthzBindAddress, "healthz-bind-address", c.HealthzBindAddress, "The IP address and port for the health check server to serve on, defaulting to \"0.0.0.0:10256\". This parameter is ignored if a config file is specified by --config.")
	fs.StringVar(&c.MetricsBindAddress, "metrics-bind-address", c.MetricsBindAddress, "The IP address and port for the metrics server to serve on, defaulting to \"127.0.0.1:10249\". (Set to \"0.0.0.0:10249\" / \"[::]:10249\" to bind on all interfaces.) Set empty to disable. This parameter is ignored if a config file is specified by --config.")
	fs.BoolVar(&c.BindAddressHardFail, "bind-address-hard-fail", c.BindAddressHardFail, "If true kube-proxy will treat failure to bind to a port as fatal and exit")
	fs.StringVar(&o.proxyMode, "proxy-mode", o.proxyMode, "Which proxy mode to use: 'iptables' (default), 'ipvs', or 'nftables'. This parameter is ignored if a config file is specified by --config.")

	fs.Int32Var(c.IPTables.MasqueradeBit, "iptables-masquerade-bit", *c.IPTables.MasqueradeBit, "If using the iptables or ipvs proxy mode, the bit of the fwmark space to mark packets requiring SNAT with.  Must be within the range [0, 31].")
	fs.BoolVar(&o.masqueradeAll, "masquerade-all", o.masqueradeAll, "SNAT all traffic sent via Service cluster IPs. This may be required with some CNI plugins. Only supported on Linux.")
	fs.BoolVar(c.IPTables.LocalhostNodePorts, "iptables-localhost-nodeports", *c.IPTables.LocalhostNodePorts, "If false, kube-proxy will disable the legacy behavior of allowing NodePort services to be accessed via localhost. (Applies only to iptables mode and IPv4; localhost NodePorts are never allowed with other proxy modes or with IPv6.)")
	fs.DurationVar(&o.iptablesSync, "iptables-sync-period", 30*time.Second, "An interval (e.g. '5s', '1m', '2h22m') indicating how frequently various re-synchronizing and cleanup operations are performed. Must be greater than 0.")
	fs.DurationVar(&o.iptablesMinSync, "iptables-min-sync-period", time.Second, "The minimum period between iptables rule resyncs (e.g. '5s', '1m', '2h22m'). A value of 0 means every Service or EndpointSlice change will result in an immediate iptables resync.")

	fs.DurationVar(&o.ipvsSync, "ipvs-sync-period", 30*time.Second, "An interval (e.g. '5s', '1m', '2h22m') indicating how frequently various re-synchronizing and cleanup operations are performed. Must be greater than 0.")
	fs.DurationVar(&o.ipvsMinSync, "ipvs-min-sync-period", time.Second, "The minimum period between IPVS rule resyncs (e.g. '5s', '1m', '2h22m'). A value of 0 means every Service or EndpointSlice change will result in an immediate IPVS resync.")
	fs.StringVar(&c.IPVS.Scheduler, "ipvs-scheduler", c.IPVS.Scheduler, "The ipvs scheduler type when proxy mode is ipvs")
	fs.StringSliceVar(&c.IPVS.ExcludeCIDRs, "ipvs-exclude-cidrs", c.IPVS.ExcludeCIDRs, "A comma-separated list of CIDRs which the ipvs proxier should not touch when cleaning up IPVS rules.")
	fs.BoolVar(&c.IPVS.StrictARP, "ipvs-strict-arp", c.IPVS.StrictARP, "Enable strict ARP by setting arp_ignore to 1 and arp_announce to 2")
	fs.DurationVar(&c.IPVS.TCPTimeout.Duration, "ipvs-tcp-timeout", c.IPVS.TCPTimeout.Duration, "The timeout for idle IPVS TCP connections, 0 to leave as-is. (e.g. '5s', '1m', '2h22m').")
	fs.DurationVar(&c.IPVS.TCPFinTimeout.Duration, "ipvs-tcpfin-timeout", c.IPVS.TCPFinTimeout.Duration, "The timeout for IPVS TCP connections after receiving a FIN packet, 0 to leave as-is. (e.g. '5s', '1m', '2h22m').")
	fs.DurationVar(&c.IPVS.UDPTimeout.Duration, "ipvs-udp-timeout", c.IPVS.UDPTimeout.Duration, "The timeout for IPVS UDP packets, 0 to leave as-is. (e.g. '5s', '1m', '2h22m').")

	fs.StringVar(&o.detectLocalMode, "detect-local-mode", o.detectLocalMode, "Mode to use to detect local traffic. This parameter is ignored if a config file is specified by --config.")
	fs.StringVar(&c.DetectLocal.BridgeInterface, "pod-bridge-interface", c.DetectLocal.BridgeInterface, "A bridge interface name. When --detect-local-mode is set to BridgeInterface, kube-proxy will consider traffic to be local if it originates from this bridge.")
	fs.StringVar(&c.DetectLocal.InterfaceNamePrefix, "pod-interface-name-prefix", c.DetectLocal.InterfaceNamePrefix, "An interface name prefix. When --detect-local-mode is set to InterfaceNamePrefix, kube-proxy will consider traffic to be local if it originates from any interface whose name begins with this prefix.")
	fs.StringVar(&o.clusterCIDR, "cluster-cidr", o.clusterCIDR, "The CIDR range of the pods in the cluster. (For dual-stack clusters, this can be a comma-separated dual-stack pair of CIDR ranges.). When --detect-local-mode is set to ClusterCIDR, kube-proxy will consider traffic to be local if its source IP is in this range. (Otherwise it is not used.) This parameter is ignored if a config file is specified by --config.")
	fs.StringSliceVar(&c.NodePortAddresses, "nodeport-addresses", c.NodePortAddresses, "A list of CIDR ranges that contain valid node IPs, or alternatively, the single string 'primary'. If set to a list of CIDRs, connections to NodePort services will only be accepted on node IPs in one of the indicated ranges. If set to 'primary', NodePort services will only be accepted on the node's primary IP(s) according to the Node object. If unset, NodePort connections will be accepted on all local IPs. This parameter is ignored if a config file is specified by --config.")

	fs.Int32Var(c.OOMScoreAdj, "oom-score-adj", *c.OOMScoreAdj, "The oom-score-adj value for kube-proxy process. Values must be within the range [-1000, 1000]. This parameter is ignored if a config file is specified by --config.")
	fs.Int32Var(c.Conntrack.MaxPerCore, "conntrack-max-per-core", *c.Conntrack.MaxPerCore, "Maximum number of NAT connections to track per CPU core (0 to leave the limit as-is and ignore conntrack-min).")
	fs.Int32Var(c.Conntrack.Min, "conntrack-min", *c.Conntrack.Min, "Minimum number of conntrack entries to allocate, regardless of conntrack-max-per-core (set conntrack-max-per-core=0 to leave the limit as-is).")
	fs.DurationVar(&c.Conntrack.TCPEstablishedTimeout.Duration, "conntrack-tcp-timeout-established", c.Conntrack.TCPEstablishedTimeout.Duration, "Idle timeout for established TCP connections (0 to leave as-is)")
	fs.DurationVar(&c.Conntrack.TCPCloseWaitTimeout.Duration, "conntrack-tcp-timeout-close-wait", c.Conntrack.TCPCloseWaitTimeout.Duration, "NAT timeout for TCP connections in the CLOSE_WAIT state")
	fs.BoolVar(&c.Conntrack.TCPBeLiberal, "conntrack-tcp-be-liberal", c.Conntrack.TCPBeLiberal, "Enable liberal mode for tracking TCP packets by setting nf_conntrack_tcp_be_liberal to 1")
	fs.DurationVar(&c.Conntrack.UDPTimeout.Duration, "conntrack-udp-timeout", c.Conntrack.UDPTimeout.Duration, "Idle timeout for UNREPLIED UDP connections (0 to leave as-is)")
	fs.DurationVar(&c.Conntrack.UDPStreamTimeout.Duration, "conntrack-udp-timeout-stream", c.Conntrack.UDPStreamTimeout.Duration, "Idle timeout for ASSURED UDP connections (0 to leave as-is)")
	fs.DurationVar(&c.ConfigSyncPeriod.Duration, "config-sync-period", c.ConfigSyncPeriod.Duration, "How often configuration from the apiserver is refreshed.  Must be greater than 0.")

	addKlogFlags(fs)
}

// addKlogFlags adds klog's -v and --vmodule (they set klog's global state,
// as in every Kubernetes component).
func addKlogFlags(fs *pflag.FlagSet) {
	gfs := goflag.NewFlagSet("klog", goflag.ContinueOnError)
	klog.InitFlags(gfs)
	for _, name := range []string{"v", "vmodule"} {
		if fs.Lookup(name) == nil {
			pf := pflag.PFlagFromGoFlag(gfs.Lookup(name))
			if name == "v" {
				pf.Shorthand = "v"
			}
			fs.AddFlag(pf)
		}
	}
}

// fromFlags builds the object for a run without --config: defaults, then
// every flag that was set.
func (o *Options) fromFlags() *v1alpha1.KubeProxyConfiguration {
	obj := o.flagObj.DeepCopy()
	changed := o.fs.Changed
	if changed("proxy-mode") {
		obj.Mode = v1alpha1.ProxyMode(o.proxyMode)
	}
	if changed("detect-local-mode") {
		obj.DetectLocalMode = v1alpha1.LocalMode(o.detectLocalMode)
	}
	if changed("cluster-cidr") {
		obj.ClusterCIDR = o.clusterCIDR
	}
	if changed("masquerade-all") {
		obj.IPTables.MasqueradeAll = o.masqueradeAll
		obj.NFTables.MasqueradeAll = o.masqueradeAll
	}
	// Upstream's internal config has one pair of periods, defaulted from
	// the iptables section (30s/1s), whatever the mode.
	sync, minSync := 30*time.Second, time.Second
	if obj.Mode == ModeIPVS {
		if changed("ipvs-sync-period") {
			sync = o.ipvsSync
		}
		if changed("ipvs-min-sync-period") {
			minSync = o.ipvsMinSync
		}
	} else {
		if changed("iptables-sync-period") {
			sync = o.iptablesSync
		}
		if changed("iptables-min-sync-period") {
			minSync = o.iptablesMinSync
		}
	}
	switch modeSection(obj.Mode) {
	case ModeIPVS:
		obj.IPVS.SyncPeriod.Duration, obj.IPVS.MinSyncPeriod.Duration = sync, minSync
	case ModeNFTables:
		obj.NFTables.SyncPeriod.Duration, obj.NFTables.MinSyncPeriod.Duration = sync, minSync
	default:
		obj.IPTables.SyncPeriod.Duration, obj.IPTables.MinSyncPeriod.Duration = sync, minSync
	}
	// A bare IP gets the default port; an empty value stays empty and
	// disables the server (upstream's addressFromDeprecatedFlags).
	if obj.HealthzBindAddress != "" {
		obj.HealthzBindAddress = appendPortIfNeeded(obj.HealthzBindAddress, healthzPort)
	}
	if obj.MetricsBindAddress != "" {
		obj.MetricsBindAddress = appendPortIfNeeded(obj.MetricsBindAddress, metricsPort)
	}
	return obj
}

// ignoredFlags lists the config-field flags set next to --config.
func (o *Options) ignoredFlags() []string {
	var out []string
	o.fs.Visit(func(f *pflag.Flag) {
		if !processFlags[f.Name] && o.isOurs(f.Name) {
			out = append(out, "--"+f.Name)
		}
	})
	return out
}

// isOurs keeps flags another package added to the same set out of the
// "ignored" warning.
func (o *Options) isOurs(name string) bool {
	_, ok := flagField[name]
	return ok
}

// flagField maps each config-field flag to the JSON path it sets, to name
// the flag in validation errors.
var flagField = map[string]string{
	"proxy-mode": "mode", "kubeconfig": "clientConnection.kubeconfig",
	"kube-api-content-type": "clientConnection.contentType", "kube-api-burst": "clientConnection.burst",
	"kube-api-qps": "clientConnection.qps", "bind-address": "bindAddress",
	"healthz-bind-address": "healthzBindAddress", "metrics-bind-address": "metricsBindAddress",
	"bind-address-hard-fail": "bindAddressHardFail", "iptables-masquerade-bit": "iptables.masqueradeBit",
	"masquerade-all": "iptables.masqueradeAll", "iptables-localhost-nodeports": "iptables.localhostNodePorts",
	"iptables-sync-period": "iptables.syncPeriod", "iptables-min-sync-period": "iptables.minSyncPeriod",
	"ipvs-sync-period": "ipvs.syncPeriod", "ipvs-min-sync-period": "ipvs.minSyncPeriod",
	"ipvs-scheduler": "ipvs.scheduler", "ipvs-exclude-cidrs": "ipvs.excludeCIDRs",
	"ipvs-strict-arp": "ipvs.strictARP", "ipvs-tcp-timeout": "ipvs.tcpTimeout",
	"ipvs-tcpfin-timeout": "ipvs.tcpFinTimeout", "ipvs-udp-timeout": "ipvs.udpTimeout",
	"detect-local-mode": "detectLocalMode", "pod-bridge-interface": "detectLocal.bridgeInterface",
	"pod-interface-name-prefix": "detectLocal.interfaceNamePrefix", "cluster-cidr": "clusterCIDR",
	"nodeport-addresses": "nodePortAddresses", "oom-score-adj": "oomScoreAdj",
	"conntrack-max-per-core": "conntrack.maxPerCore", "conntrack-min": "conntrack.min",
	"conntrack-tcp-timeout-established": "conntrack.tcpEstablishedTimeout",
	"conntrack-tcp-timeout-close-wait":  "conntrack.tcpCloseWaitTimeout",
	"conntrack-tcp-be-liberal":          "conntrack.tcpBeLiberal", "conntrack-udp-timeout": "conntrack.udpTimeout",
	"conntrack-udp-timeout-stream": "conntrack.udpStreamTimeout", "config-sync-period": "configSyncPeriod",
}

// annotate names the flag behind each error whose field was set by flag.
func (o *Options) annotate(errs ErrorList, mode v1alpha1.ProxyMode) {
	for i := range errs {
		for flag, field := range flagField {
			// --iptables-*sync-period set nftables' periods in nftables mode.
			if strings.HasPrefix(field, ModeIPTables+".") && strings.Contains(field, "yncPeriod") {
				field = modeSection(mode) + strings.TrimPrefix(field, ModeIPTables)
			}
			if o.fs.Changed(flag) && (errs[i].Field == field || strings.HasPrefix(errs[i].Field, field+"[")) {
				errs[i].Flag = flag
			}
		}
	}
}
