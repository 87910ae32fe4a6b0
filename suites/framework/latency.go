package framework

import (
	"context"
	"crypto/sha256"
	"encoding/base32"
	"fmt"
	"net"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/proxyproof/proxyproof/clusters"
)

// Watched is a Service whose endpoint programming is timed: its
// EndpointSlice history and the port whose rules are read.
type Watched struct {
	Service  *corev1.Service
	Port     string // the Service port's name
	Timeline *Timeline
}

// ProgrammingLatency times, until ctx ends, every node's programming of
// the watched Services' endpoints and returns, per node, the time from an
// endpoint becoming ready after since (its Timeline) to its IP in the
// node's dataplane. An nftables node whose clock is the suite's (a
// namespace or a container on this host) is timed by its own change
// events (nft monitor, each line stamped as it arrives: monitorLatency);
// any other node by reading its rules again and again (pollLatency), an
// upper bound within one read.
func (f *Framework) ProgrammingLatency(ctx context.Context, watched []Watched, since time.Time) Latency {
	out := Latency{ByNode: map[string][]time.Duration{}, How: map[string]string{}}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, node := range f.NodeNames() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l, ok := f.monitorLatency(ctx, node, watched, since)
			how := LatencyByEvents
			if !ok {
				l, how = f.pollLatency(ctx, node, watched, since), LatencyByReads
			}
			sort.Slice(l, func(i, j int) bool { return l[i] < l[j] })
			mu.Lock()
			out.ByNode[node], out.How[node] = l, how
			mu.Unlock()
		}()
	}
	wg.Wait()
	return out
}

// Latency is what ProgrammingLatency measured: per node, the latencies
// in order and how they were taken (LatencyByEvents, LatencyByReads).
type Latency struct {
	ByNode map[string][]time.Duration
	How    map[string]string
}

// Methods names how the latencies were taken, once if every node's were
// taken the same way.
func (l Latency) Methods() string {
	var hows []string
	for _, h := range l.How {
		if !slices.Contains(hows, h) {
			hows = append(hows, h)
		}
	}
	slices.Sort(hows)
	return strings.Join(hows, "; ")
}

// pollLatency reads node's rules for the watched Services until ctx ends:
// a latency is the time to the first read that holds the endpoint's IP,
// an upper bound within one read. It reads only the watched Services'
// rules (ServiceRules), so that thousands of other Services on the node do
// not make every read a full dump.
func (f *Framework) pollLatency(ctx context.Context, node string, watched []Watched, since time.Time) []time.Duration {
	var out []time.Duration
	timed := map[string]bool{}
	for ctx.Err() == nil {
		rules, err := f.ServiceRules(ctx, node, watched)
		at := time.Now()
		if err != nil {
			continue
		}
		// Asked at each read: endpoints keep turning ready during it.
		for _, e := range firstReady(watched, since) {
			if !timed[e.key] && HoldsIP(rules, e.IP) {
				timed[e.key] = true
				out = append(out, at.Sub(e.At))
			}
		}
	}
	return out
}

// readyEndpoint is an endpoint's first ready event; key names it
// (Service/pod).
type readyEndpoint struct {
	key string
	EndpointEvent
}

// firstReady is each watched endpoint's first ready event after since,
// one per Service and pod.
func firstReady(watched []Watched, since time.Time) []readyEndpoint {
	var out []readyEndpoint
	seen := map[string]bool{}
	for _, w := range watched {
		for _, e := range w.Timeline.Events() {
			key := w.Service.Name + "/" + e.Pod
			if !e.Ready || e.At.Before(since) || seen[key] {
				continue
			}
			seen[key] = true
			out = append(out, readyEndpoint{key, e})
		}
	}
	return out
}

// ServiceRules is node's rules for the watched Services' ports, as text
// naming their endpoints' IPs, read in one exec: ipvs `ipvsadm -Ln -t
// VIP:PORT`; nftables the Service's chain (and the maps it refers to),
// iptables its KUBE-SVC chain, both by upstream kube-proxy's names (which
// ours keeps). A proxier naming
// them otherwise makes the read fail; it falls back to the whole dump.
func (f *Framework) ServiceRules(ctx context.Context, node string, watched []Watched) (string, error) {
	mode, err := f.nodeMode(node)
	if err != nil {
		return "", err
	}
	var script, svcChains []string
	for _, w := range watched {
		sp, err := ServicePort(w.Service, w.Port)
		if err != nil {
			return "", err
		}
		proto := strings.ToLower(string(sp.Protocol))
		switch mode {
		case clusters.ModeIPVS:
			flag := map[string]string{"tcp": "-t", "udp": "-u", "sctp": "--sctp-service"}[proto]
			script = append(script, "ipvsadm -Ln "+flag+" "+net.JoinHostPort(w.Service.Spec.ClusterIP, strconv.Itoa(int(sp.Port))))
		case clusters.ModeNFTables:
			script = append(script, fmt.Sprintf(nftServiceRead, shellQuote(NFTServiceChain(w.Service.Namespace, w.Service.Name, proto, w.Port))))
		default:
			svcChains = append(svcChains, IPTablesServiceChain(w.Service.Namespace, w.Service.Name, proto, w.Port))
		}
	}
	if len(svcChains) > 0 {
		script = append(script, fmt.Sprintf(iptablesServiceRead, strings.Join(svcChains, " ")))
	}
	out, err := f.Cluster.ExecOnNode(ctx, node, "sh", "-ec", strings.Join(script, "\n"))
	if err != nil {
		if ctx.Err() != nil {
			return "", err
		}
		return f.Rules(ctx, node)
	}
	return string(out), nil
}

// nftServiceRead lists a Service's nftables chain and every map or set it
// refers to: upstream kube-proxy names its endpoints inline (a vmap of
// endpoint chains), ours in a numgen map (@endpoints-N). Shell builtins
// and nft only: on a cluster the suite did not make the node helper's
// tools image has nft but no grep, tr or sort, and with them the maps were
// never listed there, so a Service of ours never looked programmed (the
// scaled churn spec waited its 15 minutes for 2,000 Services that were).
const nftServiceRead = `set -f
out=$(nft list chain ip kube-proxy %s); printf '%%s\n' "$out"
seen=' '
for w in $out; do
  case $w in @?*) ;; *) continue ;; esac
  m=${w#@}; m=${m%%%%[!A-Za-z0-9_.-]*}
  case $seen in *" $m "*) continue ;; esac
  seen="$seen$m "
  nft list map ip kube-proxy "$m" 2>/dev/null || nft list set ip kube-proxy "$m"
done`

// iptablesServiceRead prints the rules of the KUBE-SVC chains named in %s
// and of every KUBE-SEP chain they jump to, from one iptables-save. The
// endpoint's address is in the KUBE-SEP chain's DNAT: the KUBE-SVC chain
// names it only in a comment, which kube-proxy and ours leave out once
// the cluster has over 1,000 endpoints (upstream's large-cluster mode;
// the scaled churn's idle Services pass that).
const iptablesServiceRead = `iptables-save -t nat | awk -v svcs=%q '
BEGIN { n = split(svcs, s, " "); for (i = 1; i <= n; i++) want[s[i]] = 1 }
$1 == "-A" && ($2 in want) { print; for (i = 3; i < NF; i++) if ($i == "-j" && $(i+1) ~ /^KUBE-SEP-/) sep[$(i+1)] = 1; next }
$1 == "-A" && $2 ~ /^KUBE-SEP-/ { rules[$2] = rules[$2] $0 "\n" }
END { for (c in sep) printf "%%s", rules[c] }'`

// IPTablesServiceChain is upstream kube-proxy's KUBE-SVC chain of a
// Service port: sha256 of "ns/name:port" and the protocol, base32, 16
// characters.
func IPTablesServiceChain(ns, name, proto, port string) string {
	sum := sha256.Sum256([]byte(ns + "/" + name + ":" + port + proto))
	return "KUBE-SVC-" + base32.StdEncoding.EncodeToString(sum[:])[:16]
}

// NFTServiceChain is upstream kube-proxy's nftables chain of a Service
// port: "service-", 8 characters of a hash, "-ns/name/proto/port".
func NFTServiceChain(ns, name, proto, port string) string {
	base := fmt.Sprintf("%s/%s/%s/%s", ns, name, proto, port)
	sum := sha256.Sum256([]byte(base))
	return "service-" + base32.StdEncoding.EncodeToString(sum[:])[:8] + "-" + base
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// HoldsIP reports whether a rules dump names ip as a whole address.
func HoldsIP(rules, ip string) bool {
	return regexp.MustCompile(`(^|[^0-9.])` + regexp.QuoteMeta(ip) + `([^0-9]|$)`).MatchString(rules)
}
