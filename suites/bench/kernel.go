package bench

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base32"
	"fmt"
	"net/netip"
	"os/exec"
	"regexp"
	"strconv"
	"strings"

	"github.com/proxyproof/proxyproof/suites/census"
)

// kernel reads one node namespace's programmed state, from outside the
// proxier, with the node's own tools. Every read is exact: a Service or
// endpoint counts only when its rule or element is in the kernel.
type kernel interface {
	// services maps each programmed ClusterIP (port 80/tcp) to the chain
	// its traffic jumps to.
	services(ctx context.Context) (map[string]string, error)
	// endpoints lists the endpoint tokens one service chain leads to (see
	// token).
	endpoints(ctx context.Context, chain string) (map[string]bool, error)
	// token names endpoint ip of s as it appears in s's chain.
	token(s *service, ip string) string
	// counts are the rules and set/map elements the proxier owns.
	counts(ctx context.Context) (rules, elements int, err error)
	// close releases namespace handles and sockets.
	close()
}

func newKernel(c Case, node, pathDir string) (kernel, error) {
	switch c.Mode {
	case "iptables":
		return &iptablesKernel{ns: node, path: pathDir, legacy: c.Backend == "legacy"}, nil
	case "nftables":
		return &nftKernel{ns: node}, nil
	}
	return nil, fmt.Errorf("mode %s: no kernel probe", c)
}

// exe runs a tool in namespace ns with dir first in PATH.
func exe(ctx context.Context, ns, dir string, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns, name}, args...)...)
	cmd.Env = withPath(dir)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("%s %s in %s: %w: %s", name, strings.Join(args, " "), ns, err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

// iptablesKernel reads the nat table. On the legacy backend it reads the
// kernel's rule blob itself (legacyNAT); on nft, `iptables -S CHAIN` reads
// one chain (iptables-nft fetches only that chain).
type iptablesKernel struct {
	ns, path string
	legacy   bool
	nat      *legacyNAT // legacy only, opened on first use
}

func (k *iptablesKernel) close() {
	if k.nat != nil {
		k.nat.close()
	}
}

// serviceRule is a Service's dispatch rule: in KUBE-SERVICES, or in one of
// our bucket chains (KUBE-SVCB-*) above 1,000 Service ports.
var serviceRule = regexp.MustCompile(`^-A (?:KUBE-SERVICES|KUBE-SVCB-\S+) -d (\d+\.\d+\.\d+\.\d+)/32 .*--dport 80 -j (KUBE-SVC-\S+)`)

// bucketPrefix names our dispatch buckets (proxier/modes/iptables).
const bucketPrefix = "KUBE-SVCB-"

func (k *iptablesKernel) legacyChains() (map[string][]jump, error) {
	if k.nat == nil {
		nat, err := openLegacyNAT(k.ns)
		if err != nil {
			return nil, err
		}
		k.nat = nat
	}
	return k.nat.chains()
}

func (k *iptablesKernel) chain(ctx context.Context, chain string) ([]string, error) {
	out, err := exe(ctx, k.ns, k.path, "iptables", "-t", "nat", "-S", chain)
	if err != nil && strings.Contains(err.Error(), "No chain") {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	prefix := "-A " + chain + " "
	var lines []string
	for _, l := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(l, prefix) {
			lines = append(lines, l)
		}
	}
	return lines, nil
}

func (k *iptablesKernel) services(ctx context.Context) (map[string]string, error) {
	out := map[string]string{}
	if k.legacy {
		chains, err := k.legacyChains()
		if err != nil {
			return nil, err
		}
		// KUBE-SERVICES and the bucket chains it leads to.
		seen := map[string]bool{}
		var walk func(chain string)
		walk = func(chain string) {
			if seen[chain] {
				return
			}
			seen[chain] = true
			for _, j := range chains[chain] {
				switch {
				case strings.HasPrefix(j.to, "KUBE-SVC-"):
					out[netip.AddrFrom4(j.dst).String()] = j.to
				case strings.HasPrefix(j.to, bucketPrefix):
					walk(j.to)
				}
			}
		}
		walk("KUBE-SERVICES")
		return out, nil
	}
	lines, err := k.chain(ctx, "KUBE-SERVICES")
	if err != nil {
		return nil, err
	}
	bucketed := false
	for _, l := range lines {
		bucketed = bucketed || strings.Contains(l, "-j "+bucketPrefix)
	}
	if bucketed {
		// 272 bucket chains: one read of the table beats 272 of a chain.
		dump, err := exe(ctx, k.ns, k.path, "iptables-save", "-t", "nat")
		if err != nil {
			return nil, err
		}
		lines = strings.Split(string(dump), "\n")
	}
	for _, l := range lines {
		if m := serviceRule.FindStringSubmatch(l); m != nil {
			out[m[1]] = m[2]
		}
	}
	return out, nil
}

func (k *iptablesKernel) endpoints(ctx context.Context, chain string) (map[string]bool, error) {
	out := map[string]bool{}
	if k.legacy {
		chains, err := k.legacyChains()
		if err != nil {
			return nil, err
		}
		for _, j := range chains[chain] {
			if strings.HasPrefix(j.to, "KUBE-SEP-") {
				out[j.to] = true
			}
		}
		return out, nil
	}
	lines, err := k.chain(ctx, chain)
	if err != nil {
		return nil, err
	}
	for _, l := range lines {
		if i := strings.Index(l, "-j KUBE-SEP-"); i >= 0 {
			out[strings.TrimSpace(l[i+3:])] = true
		}
	}
	return out, nil
}

// token is the KUBE-SEP chain name, hashed as upstream does: comments,
// which carry the address, are dropped above 1000 endpoints.
func (k *iptablesKernel) token(s *service, ip string) string {
	hash := sha256.Sum256([]byte(s.portName() + "tcp" + ip + ":" + strconv.Itoa(endpointPort)))
	return "KUBE-SEP-" + base32.StdEncoding.EncodeToString(hash[:])[:16]
}

func (k *iptablesKernel) counts(ctx context.Context) (int, int, error) {
	out, err := exe(ctx, k.ns, k.path, "iptables-save")
	if err != nil {
		return 0, 0, err
	}
	d, err := census.ParseIPTablesSave(string(out))
	if err != nil {
		return 0, 0, err
	}
	return d.RuleCount(), 0, nil
}

// nftKernel reads table ip kube-proxy, the name upstream and ours share.
type nftKernel struct {
	ns    string
	chain *nftChain // opened on first use
}

func (k *nftKernel) close() {
	if k.chain != nil {
		k.chain.close()
	}
}

var serviceElement = regexp.MustCompile(`(\d+\.\d+\.\d+\.\d+) \. tcp \. 80 : goto ([^\s,}]+)`)

func (k *nftKernel) services(ctx context.Context) (map[string]string, error) {
	out, err := exe(ctx, k.ns, "", "nft", "list", "map", "ip", "kube-proxy", "service-ips")
	if err != nil {
		if strings.Contains(err.Error(), "No such file") {
			return nil, nil
		}
		return nil, err
	}
	m := map[string]string{}
	for _, e := range serviceElement.FindAllStringSubmatch(string(out), -1) {
		m[e[1]] = e[2]
	}
	return m, nil
}

func (k *nftKernel) endpoints(_ context.Context, chain string) (map[string]bool, error) {
	if k.chain == nil {
		c, err := openNFTChain(k.ns)
		if err != nil {
			return nil, err
		}
		k.chain = c
	}
	// The dnat targets, read from the rules themselves: endpoint chain
	// names are a convention of upstream's shape, not what the kernel does.
	m, err := k.chain.dnats(chain)
	if err != nil {
		// A failed dump may leave replies on the kept socket that the
		// next read would take for its own: start the next on a new one.
		k.chain.close()
		k.chain = nil
	}
	return m, err
}

// token is the dnat target as the probe reads it from the rules.
func (k *nftKernel) token(_ *service, ip string) string {
	return ip + "/" + strconv.Itoa(endpointPort)
}

func (k *nftKernel) counts(ctx context.Context) (int, int, error) {
	out, err := exe(ctx, k.ns, "", "nft", "-j", "list", "table", "ip", census.NFTTable)
	if err != nil {
		return 0, 0, err
	}
	d, err := census.ParseNFTJSON(out)
	if err != nil {
		return 0, 0, err
	}
	t := d.Table("ip", census.NFTTable)
	if t == nil {
		return 0, 0, nil
	}
	return t.Rules, t.Elements, nil
}
