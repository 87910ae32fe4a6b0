package kind

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"slices"
	"strings"
)

// Docker's chains in the host's filter table: DOCKER-USER is where Docker
// lets users add rules it keeps ahead of its own; DOCKER-ISOLATION-STAGE-1
// holds the drops that make a network internal.
const (
	chainUser      = "DOCKER-USER"
	chainIsolation = "DOCKER-ISOLATION-STAGE-1"
)

// ruleComment tags the rule Create adds for cluster, so Down finds it by
// name even after the network is gone.
func ruleComment(cluster string) string { return "proxyproof-kind:" + cluster }

// createNetwork makes cluster's internal Docker network, checks that the
// host firewall seals it, and opens its bridge to itself (see
// allowWithinBridge).
func createNetwork(ctx context.Context, cluster string) (network, error) {
	name := networkName(cluster)
	if _, err := docker(ctx, "network", "create", "--driver", "bridge", "--internal",
		"--label", labelCluster+"="+cluster, name); err != nil {
		return network{}, fmt.Errorf("cluster %s: network: %w", cluster, err)
	}
	n, err := inspectNetwork(ctx, name)
	if err != nil {
		return network{}, fmt.Errorf("cluster %s: %w", cluster, err)
	}
	if !n.Internal || n.Subnet() == "" || n.Bridge() == "" {
		return n, fmt.Errorf("cluster %s: network %s: want an internal IPv4 bridge network, got internal=%v subnet=%q bridge=%q",
			cluster, name, n.Internal, n.Subnet(), n.Bridge())
	}
	dump, err := iptables(ctx, "-S", chainIsolation)
	if err != nil {
		return n, fmt.Errorf("cluster %s: network %s: Docker's isolation rules cannot be read (is dockerd running with iptables disabled?): %w", cluster, name, err)
	}
	if err := sealed(dump, n.Bridge(), n.Subnet()); err != nil {
		return n, fmt.Errorf("cluster %s: network %s is not sealed: %w", cluster, name, err)
	}
	return n, allowWithinBridge(ctx, cluster, n.Bridge())
}

// sealed checks, in an `iptables -S` dump of Docker's isolation chain,
// the two drops that keep an internal network's traffic on the machine:
// nothing from the bridge to an address outside its subnet, nothing to
// the bridge from an address outside it.
func sealed(dump []byte, bridge, subnet string) error {
	want := [][]string{
		{"!", "-d", subnet, "-i", bridge, "-j", "DROP"},
		{"!", "-s", subnet, "-o", bridge, "-j", "DROP"},
	}
	var missing []string
	for _, w := range want {
		found := false
		for _, line := range strings.Split(string(dump), "\n") {
			if hasAll(strings.Fields(line), w) {
				found = true
				break
			}
		}
		if !found {
			missing = append(missing, strings.Join(w, " "))
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%s lacks %q", chainIsolation, missing)
	}
	return nil
}

// hasAll reports whether fields holds every flag of want with its value
// (pairs and "!" stay in order, wherever they sit in the rule).
func hasAll(fields, want []string) bool {
	for i := 0; i < len(want); {
		n := 2
		if want[i] == "!" {
			n = 3
		}
		if !containsSeq(fields, want[i:i+n]) {
			return false
		}
		i += n
	}
	return true
}

func containsSeq(s, seq []string) bool {
	for i := 0; i+len(seq) <= len(s); i++ {
		if slices.Equal(s[i:i+len(seq)], seq) {
			return true
		}
	}
	return false
}

// allowWithinBridge accepts frames that enter and leave on the cluster's
// bridge. Pod addresses, and external IPs routed to a node, are outside
// the Docker subnet, and with br_netfilter on the host Docker's isolation
// rule drops them even between two nodes of the network. A frame that
// stays on the bridge never leaves the machine, so the seal holds.
func allowWithinBridge(ctx context.Context, cluster, bridge string) error {
	if _, err := iptables(ctx, "-I", chainUser, "-i", bridge, "-o", bridge,
		"-m", "comment", "--comment", ruleComment(cluster), "-j", "ACCEPT"); err != nil {
		return fmt.Errorf("cluster %s: accept traffic within bridge %s: %w", cluster, bridge, err)
	}
	return nil
}

// removeBridgeRules deletes every rule allowWithinBridge added for
// cluster; none (or no Docker chain at all) is not an error.
func removeBridgeRules(ctx context.Context, cluster string) error {
	dump, err := iptables(ctx, "-S", chainUser)
	if err != nil {
		return nil // no DOCKER-USER chain: Docker never ran with its firewall, so no rule of ours
	}
	var errs []error
	for _, args := range rulesTagged(dump, ruleComment(cluster)) {
		if _, err := iptables(ctx, args...); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// rulesTagged turns the `-A` lines of an `iptables -S` dump that carry
// comment into the arguments that delete them.
func rulesTagged(dump []byte, comment string) [][]string {
	var dels [][]string
	for _, line := range strings.Split(string(dump), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 || f[0] != "-A" {
			continue
		}
		for i := range f {
			f[i] = strings.Trim(f[i], `"`)
		}
		if containsSeq(f, []string{"--comment", comment}) {
			dels = append(dels, append([]string{"-D"}, f[1:]...))
		}
	}
	return dels
}

// iptables runs the host's iptables, the one Docker programs, waiting for
// the xtables lock rather than failing on it.
func iptables(ctx context.Context, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, "iptables", append([]string{"-w", "5"}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("iptables %s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(stderr.Bytes()))
	}
	return out, nil
}
