package nftables

import (
	"crypto/sha256"
	"encoding/base32"
	"fmt"
	"strings"

	"sigs.k8s.io/knftables"

	"github.com/proxyproof/proxyproof/proxier/state"
)

// Names kept identical to upstream kube-proxy (pkg/proxy/nftables) so that
// runbooks and "nft list table ip kube-proxy" read the same.
const (
	tableName = "kube-proxy"

	filterPreroutingPreDNATChain = "filter-prerouting-pre-dnat"
	filterOutputPreDNATChain     = "filter-output-pre-dnat"
	filterInputChain             = "filter-input"
	filterForwardChain           = "filter-forward"
	filterOutputChain            = "filter-output"
	natPreroutingChain           = "nat-prerouting"
	natOutputChain               = "nat-output"
	natPostroutingChain          = "nat-postrouting"

	servicesChain       = "services"
	serviceIPsMap       = "service-ips"
	serviceNodePortsMap = "service-nodeports"
	nodePortIPsSet      = "nodeport-ips"
	clusterIPsSet       = "cluster-ips"
	hairpinSet          = "hairpin-ips"

	serviceEndpointsCheckChain  = "service-endpoints-check"
	nodePortEndpointsCheckChain = "nodeport-endpoints-check"
	noEndpointServicesMap       = "no-endpoint-services"
	noEndpointNodePortsMap      = "no-endpoint-nodeports"
	rejectChain                 = "reject-chain"
	clusterIPsCheckChain        = "cluster-ips-check"

	firewallIPsMap     = "firewall-ips"
	firewallCheckChain = "firewall-check"

	markMasqChain     = "mark-for-masquerade"
	masqueradingChain = "masquerading"
)

const (
	clusterChainPrefix  = "service-"
	localChainPrefix    = "local-"
	externalChainPrefix = "external-"
	endpointChainPrefix = "endpoint-"
	affinitySetPrefix   = "affinity-"
	firewallChainPrefix = "firewall-"

	// chainNameBaseLengthMax leaves room for the longest prefix above, as
	// upstream does, inside nft's 256-byte object-name limit.
	chainNameBaseLengthMax = knftables.NameLengthMax - 16
)

// hashAndTruncate prefixes name with a hash of itself so that truncated or
// near-identical names stay unique and visually distinct (upstream's scheme).
func hashAndTruncate(name string) string {
	hash := sha256.Sum256([]byte(name))
	encoded := base32.StdEncoding.EncodeToString(hash[:])
	name = encoded[:8] + "-" + name
	if len(name) > chainNameBaseLengthMax {
		name = name[:chainNameBaseLengthMax-3] + "..."
	}
	return name
}

// serviceNameBase is "HASH-ns/name/proto/port", e.g. "ULMVA6XW-ns1/svc1/tcp/p80".
func serviceNameBase(n state.ServicePortName, proto string) string {
	return hashAndTruncate(fmt.Sprintf("%s/%s/%s/%s", n.Namespace, n.Name, proto, n.Port))
}

// endpointNameBase is "HASH-ns/name/proto/port__ip/port"; IPv6 colons become
// dots because nft chain names cannot hold colons.
func endpointNameBase(n state.ServicePortName, proto string, ep state.Endpoint) string {
	ip := strings.ReplaceAll(ep.IP.String(), ":", ".")
	return hashAndTruncate(fmt.Sprintf("%s/%s/%s/%s__%s/%d",
		n.Namespace, n.Name, proto, n.Port, ip, ep.Port))
}

// isServiceChainName: every per-service chain holds a "/", no stock chain does.
func isServiceChainName(chain string) bool {
	return strings.Contains(chain, "/")
}

func isAffinitySetName(set string) bool {
	return strings.HasPrefix(set, affinitySetPrefix)
}
