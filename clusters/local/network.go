package local

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"

	"k8s.io/klog/v2"
)

// run runs one command and returns its error with the command line and
// its output, which is where iproute2 says what went wrong.
func run(ctx context.Context, name string, args ...string) error {
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

// ipn runs `ip -n ns args...`.
func ipn(ctx context.Context, ns string, args ...string) error {
	return run(ctx, "ip", append([]string{"-n", ns}, args...)...)
}

func sysctl(ctx context.Context, ns, key, value string) error {
	return run(ctx, "ip", "netns", "exec", ns, "sysctl", "-q", "-w", key+"="+value)
}

// wireUnderlay makes the namespaces and links of the contract: the
// underlay bridge (with the forwarder address) in <C>-ul, the sink, and
// one namespace per node with eth0 on the bridge and a default route to
// the sink (a VM node gets a tap on the bridge instead: vmnode.go). Every veth is created inside the underlay namespace with its
// peer moved straight into its target, so nothing ever appears in the
// host's root namespace, not even for a moment.
func wireUnderlay(ctx context.Context, cluster string, nodes []NodeStatus) error {
	ul, sink := underlayNS(cluster), sinkNS(cluster)
	if err := addNamespace(ctx, ul); err != nil {
		return err
	}
	steps := [][]string{
		{"link", "set", "lo", "up"},
		{"link", "add", "br0", "type", "bridge"},
		{"addr", "add", ForwarderIP + "/24", "dev", "br0"},
		{"link", "set", "br0", "up"},
	}
	for _, s := range steps {
		if err := ipn(ctx, ul, s...); err != nil {
			return fmt.Errorf("underlay %s: %w", ul, err)
		}
	}
	// The sink answers ARP for the nodes' default gateway and drops what
	// they send there: forwarding stays off, and it has no route out.
	if err := attach(ctx, cluster, sink, "v-sink", sinkIP); err != nil {
		return err
	}
	if err := sysctl(ctx, sink, "net.ipv4.ip_forward", "0"); err != nil {
		return fmt.Errorf("sink %s: %w", sink, err)
	}
	for _, n := range nodes {
		if n.VM {
			if err := addTap(ctx, cluster, n.Name); err != nil {
				return err
			}
			continue
		}
		ns := n.Namespace
		if err := attach(ctx, cluster, ns, "v-"+n.Name, n.IP); err != nil {
			return err
		}
		if err := ipn(ctx, ns, "route", "add", "default", "via", sinkIP, "dev", "eth0"); err != nil {
			return fmt.Errorf("node %s: %w", n.Name, err)
		}
	}
	return nil
}

// attach creates namespace ns with eth0 (address ip/24) whose peer, port
// on the underlay bridge, is named port.
func attach(ctx context.Context, cluster, ns, port, ip string) error {
	if err := addNamespace(ctx, ns); err != nil {
		return err
	}
	ul := underlayNS(cluster)
	if len(port) > 15 {
		return fmt.Errorf("namespace %s: bridge port name %q longer than 15 characters", ns, port)
	}
	if err := ipn(ctx, ul, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", ns); err != nil {
		return fmt.Errorf("namespace %s: %w", ns, err)
	}
	for _, s := range [][]string{{"link", "set", port, "master", "br0"}, {"link", "set", port, "up"}} {
		if err := ipn(ctx, ul, s...); err != nil {
			return fmt.Errorf("namespace %s: %w", ns, err)
		}
	}
	for _, s := range [][]string{
		{"link", "set", "lo", "up"},
		{"addr", "add", ip + "/24", "dev", "eth0"},
		{"link", "set", "eth0", "up"},
	} {
		if err := ipn(ctx, ns, s...); err != nil {
			return fmt.Errorf("namespace %s: %w", ns, err)
		}
	}
	return nil
}

func addNamespace(ctx context.Context, ns string) error {
	if err := run(ctx, "ip", "netns", "add", ns); err != nil {
		return fmt.Errorf("namespace %s: %w", ns, err)
	}
	return nil
}

// clusterNamespaces lists the namespaces of cluster that exist now.
func clusterNamespaces(cluster string) ([]string, error) {
	entries, err := os.ReadDir("/run/netns")
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list network namespaces: %w", err)
	}
	var out []string
	for _, e := range entries {
		if ownsNamespace(cluster, e.Name()) {
			out = append(out, e.Name())
		}
	}
	return out, nil
}

// namespacePids lists the processes whose network namespace is ns.
func namespacePids(ctx context.Context, ns string) ([]int, error) {
	out, err := exec.CommandContext(ctx, "ip", "netns", "pids", ns).Output()
	if err != nil {
		return nil, fmt.Errorf("namespace %s: ip netns pids: %w", ns, err)
	}
	var pids []int
	for _, f := range strings.Fields(string(out)) {
		if p, err := strconv.Atoi(f); err == nil && p != os.Getpid() {
			pids = append(pids, p)
		}
	}
	return pids, nil
}

// deleteNamespaces kills whatever still runs in the cluster's namespaces
// (a crashed agent's pods, say) and deletes them; their veths go with
// them, and with the veths the bridge ports and routes.
func deleteNamespaces(ctx context.Context, cluster string) error {
	names, err := clusterNamespaces(cluster)
	if err != nil {
		return err
	}
	var pids []int
	for _, ns := range names {
		p, err := namespacePids(ctx, ns)
		if err != nil {
			klog.InfoS("Cannot list processes of namespace", "netns", ns, "err", err)
		}
		pids = append(pids, p...)
	}
	killAll(pids, stopGrace)
	var errs []error
	for _, ns := range names {
		if err := run(ctx, "ip", "netns", "delete", ns); err != nil {
			errs = append(errs, fmt.Errorf("namespace %s: %w", ns, err))
		}
	}
	return errors.Join(errs...)
}
