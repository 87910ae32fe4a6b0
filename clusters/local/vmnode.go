package local

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/proxyproof/proxyproof/clusters/hostkernel"
	"github.com/proxyproof/proxyproof/clusters/local/nodeexec"
	"github.com/proxyproof/proxyproof/proxier/kernelvm"
)

// A node whose mode the host kernel lacks (ipvs here: no ip_vs, no
// module loading) runs in the kernel VM instead of a namespace: qemu in
// the underlay namespace, its NIC a tap on the underlay bridge, so the VM
// is one more host on 198.18.0.0/24 with the node's address. The control
// plane stays on the host. Inside, chrooted into the host's read-only /,
// the node agent and the proxier run as on any node; the cluster's state
// dir is shared read-write at the same path, so binaries, kubeconfigs and
// logs are where the host expects them. The host cannot setns into the
// guest, so the agent there serves exec (package nodeexec) on the node
// address, for ExecOnNode and ExecInPod.

// vmMemoryMB is each node VM's memory: agent, proxier and a few pods.
const vmMemoryMB = 1024

// RunsInVM reports whether a node of mode runs in the kernel VM here (and
// so needs its image, hack/vm/build-image.sh).
func RunsInVM(mode string) bool { return mode == ModeIPVS && !hostkernel.HasIPVS() }

// tapName is the node VM's tap on the underlay bridge.
func tapName(node string) string { return "t-" + node }

// vmMAC gives every node VM its own address on the bridge (qemu's
// default is the same for all).
func vmMAC(i int) string { return fmt.Sprintf("52:54:00:18:00:%02x", 11+i) }

// addTap puts the node VM's tap on the underlay bridge, before qemu opens it.
func addTap(ctx context.Context, cluster, node string) error {
	ul, tap := underlayNS(cluster), tapName(node)
	if len(tap) > 15 {
		return fmt.Errorf("node %s: tap name %q longer than 15 characters", node, tap)
	}
	for _, s := range [][]string{
		{"tuntap", "add", "dev", tap, "mode", "tap"},
		{"link", "set", tap, "master", "br0"},
		{"link", "set", tap, "up"},
	} {
		if err := ipn(ctx, ul, s...); err != nil {
			return fmt.Errorf("node %s: %w", node, err)
		}
	}
	return nil
}

func (p paths) execToken(node string) string { return filepath.Join(p.nodeDir(node), "exec-token") }
func (p paths) vmOptions(node string) string { return filepath.Join(p.nodeDir(node), "vm.json") }

// execClient reaches the exec server of VM node n from the underlay.
func (c *Cluster) execClient(n NodeStatus) nodeexec.Client {
	return nodeexec.Client{
		DialNetns: underlayNS(c.Name()),
		Addr:      net.JoinHostPort(n.IP, strconv.Itoa(nodeexec.Port)),
		TokenFile: c.paths.execToken(n.Name),
	}
}

// hostSide is the host namespace from which node n's address is reached:
// its own namespace, or the underlay for a VM node.
func (c *Cluster) hostSide(n NodeStatus) string {
	if n.VM {
		return underlayNS(c.Name())
	}
	return n.Namespace
}

// startVMNode boots node i's VM, which runs the agent (serving exec) and
// the proxier; proxierKubeconfig must exist already.
func (c *Cluster) startVMNode(i int, agentArgs []string, proxierKubeconfig string) (*daemon, error) {
	n := c.rec.Nodes[i]
	dir := c.paths.nodeDir(n.Name)
	if err := nodeexec.NewToken(c.paths.execToken(n.Name)); err != nil {
		return nil, fmt.Errorf("node %s: %w", n.Name, err)
	}
	cfg, err := c.writeProxierConfig(n, proxierKubeconfig)
	if err != nil {
		return nil, err
	}
	agentArgs = append(agentArgs,
		"--exec-listen", net.JoinHostPort(n.IP, strconv.Itoa(nodeexec.Port)),
		"--exec-token-file", c.paths.execToken(n.Name))
	// The proxier starts beside the agent: both only need the API server,
	// and waiting for Ready first would cost a second boot-sized delay.
	script := fmt.Sprintf("%s\nexec %s %s >>%s 2>&1\n", c.vmProxierStart(n, cfg),
		kernelvm.ShellQuote(filepath.Join(c.paths.bin(), "local-node")), shellWords(agentArgs), kernelvm.ShellQuote(filepath.Join(dir, "agent.log")))
	opts := kernelvm.Options{
		Binary:       "/bin/sh",
		Args:         []string{"-c", script},
		Timeout:      -1,
		MemoryMB:     vmMemoryMB,
		TapNetNS:     underlayNS(c.Name()),
		TapName:      tapName(n.Name),
		MAC:          vmMAC(i),
		GuestAddress: n.IP + "/24",
		GuestGateway: sinkIP,
		// The cluster's programs (agent, proxier, netprobe, netserver)
		// again over the state dir, cached: they do not change while the
		// cluster runs, and from the uncached share every start of one
		// read each page through qemu (netprobe 0.4-0.6 s a probe, the
		// proxier tens of seconds to start in a loaded VM).
		Shares: []kernelvm.Share{
			{HostPath: c.paths.dir, GuestPath: c.paths.dir},
			{HostPath: c.paths.bin(), GuestPath: c.paths.bin(), ReadOnly: true, Cached: true},
		},
		WorkDir: dir,
		Dir:     "/",
	}
	b, err := json.Marshal(opts)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(c.paths.vmOptions(n.Name), b, 0o644); err != nil {
		return nil, fmt.Errorf("node %s: VM options: %w", n.Name, err)
	}
	d, err := startDaemon(c.paths.pids(), "vm-"+n.Name, "", filepath.Join(dir, "vm.log"),
		filepath.Join(c.paths.bin(), "localcluster"), []string{"vm", "--options", c.paths.vmOptions(n.Name)}, c.rec.Spec.OutliveCaller)
	if err != nil {
		return nil, fmt.Errorf("node %s: %w", n.Name, err)
	}
	// The VM's console says little; the agent's log says why it is not Ready.
	d.log = filepath.Join(dir, "agent.log")
	return d, nil
}

// RunVM runs a node VM from the options file startVMNode wrote until ctx
// ends (`localcluster vm`); a VM that stops by itself is an error.
func RunVM(ctx context.Context, optionsFile string) error {
	b, err := os.ReadFile(optionsFile)
	if err != nil {
		return fmt.Errorf("node VM: %w", err)
	}
	var opts kernelvm.Options
	if err := json.Unmarshal(b, &opts); err != nil {
		return fmt.Errorf("node VM options %s: %w", optionsFile, err)
	}
	opts.Console = os.Stdout
	res, err := kernelvm.Run(ctx, opts)
	if ctx.Err() != nil {
		return nil
	}
	if err == nil {
		err = fmt.Errorf("its job exited with code %d: %s", res.ExitCode, strings.TrimSpace(string(res.Output)))
	}
	return errors.Join(errors.New("node VM stopped by itself"), err)
}

func shellWords(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = kernelvm.ShellQuote(a)
	}
	return strings.Join(q, " ")
}
