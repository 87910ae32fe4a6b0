package iptables

import (
	"crypto/sha256"
	"encoding/base32"
	"strings"
)

// Chain names are upstream kube-proxy's, so runbooks and iptables-save
// reading keep working, and so Cleanup also removes what kube-proxy left.
const (
	chainServices         = "KUBE-SERVICES"
	chainExternalServices = "KUBE-EXTERNAL-SERVICES"
	chainNodePorts        = "KUBE-NODEPORTS"
	chainPostrouting      = "KUBE-POSTROUTING"
	chainMarkMasq         = "KUBE-MARK-MASQ"
	chainForward          = "KUBE-FORWARD"
	chainProxyFirewall    = "KUBE-PROXY-FIREWALL"
	chainCanary           = "KUBE-PROXY-CANARY"
	// chainKubeletFirewall duplicates kubelet's anti-martian chain; it is
	// only written when localhost NodePorts are enabled.
	chainKubeletFirewall = "KUBE-FIREWALL"

	prefixSVC = "KUBE-SVC-"
	prefixSVL = "KUBE-SVL-"
	prefixEXT = "KUBE-EXT-"
	prefixFW  = "KUBE-FW-"
	prefixSEP = "KUBE-SEP-"
)

// Tables this mode writes.
const (
	tableNAT    = "nat"
	tableFilter = "filter"
	tableMangle = "mangle"
)

// portProtoHash is upstream's: sha256 of name+protocol, base32, 16 chars.
// Chain names must stay within iptables' 28 characters.
func portProtoHash(name, protocol string) string {
	sum := sha256.Sum256([]byte(name + protocol))
	return base32.StdEncoding.EncodeToString(sum[:])[:16]
}

// serviceChains are the per-ServicePort chain names.
type serviceChains struct {
	svc, svl, ext, fw string
}

func chainsFor(name, protocol string) serviceChains {
	h := portProtoHash(name, protocol)
	return serviceChains{svc: prefixSVC + h, svl: prefixSVL + h, ext: prefixEXT + h, fw: prefixFW + h}
}

// endpointChain is KUBE-SEP-<hash of name+protocol+"ip:port">.
func endpointChain(name, protocol, endpoint string) string {
	sum := sha256.Sum256([]byte(name + protocol + endpoint))
	return prefixSEP + base32.StdEncoding.EncodeToString(sum[:])[:16]
}

// isServiceChain reports whether chain is a per-Service chain of ours (or of
// upstream kube-proxy) or one of our bucket chains (KUBE-SVCB-*): the ones
// a full sync may find stale and delete, and Cleanup removes.
func isServiceChain(chain string) bool {
	for _, p := range []string{prefixSVC, prefixSVL, prefixEXT, prefixFW, prefixSEP, prefixSVCB} {
		if strings.HasPrefix(chain, p) {
			return true
		}
	}
	return false
}

// safeText maps a string from the API to what may appear inside an
// iptables comment: letters, digits and ./:_-[] stay, anything else
// (quotes, spaces, control bytes, non-ASCII) becomes '_'. Valid Kubernetes
// names are unchanged.
func safeText(s string) string {
	ok := true
	for i := 0; i < len(s); i++ {
		if !safeByte(s[i]) {
			ok = false
			break
		}
	}
	if ok {
		return s
	}
	b := []byte(s)
	for i := range b {
		if !safeByte(b[i]) {
			b[i] = '_'
		}
	}
	return string(b)
}

func safeByte(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	case c == '.', c == '/', c == ':', c == '_', c == '-', c == '[', c == ']':
		return true
	}
	return false
}

// maxComment keeps comments under xt_comment's 256-byte limit.
const maxComment = 250

// quoted is a comment argument with spaces, as upstream writes it.
// text must already be safe: only fixed words and safeText output.
func quoted(text string) string {
	if len(text) > maxComment {
		text = text[:maxComment]
	}
	return `"` + text + `"`
}

// bare is a comment argument without spaces (upstream leaves these
// unquoted, e.g. "--comment ns1/svc1:p80").
func bare(text string) string {
	if len(text) > maxComment {
		text = text[:maxComment]
	}
	return text
}
