package local

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/proxyproof/proxyproof/clusters/local/controlplane"
	"github.com/proxyproof/proxyproof/proxier/netns"
)

// proxierBinary resolves Spec.Proxier to an executable.
func proxierBinary(choice, binDir string) (string, error) {
	switch choice {
	case ProxierOurs:
		return filepath.Join(binDir, "proxier"), nil
	case ProxierKubeProxy:
		b, err := controlplane.Binaries("")
		if err != nil {
			return "", fmt.Errorf("upstream kube-proxy: %w", err)
		}
		return b.Proxy, nil
	default:
		return choice, nil
	}
}

// proxierConfig is the KubeProxyConfiguration a node's proxier runs from,
// the same file for ours and upstream kube-proxy. Conntrack limits are
// left alone: nf_conntrack_max is global to the host, not the node's.
func proxierConfig(node, mode, ip, kubeconfig string) string {
	return fmt.Sprintf(`apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: %s
hostnameOverride: %s
clusterCIDR: %s
bindAddress: %s
healthzBindAddress: %s
metricsBindAddress: %s
clientConnection:
  kubeconfig: %s
conntrack:
  maxPerCore: 0
  min: 0
`, mode, node, ClusterCIDR, ip,
		net.JoinHostPort(ip, strconv.Itoa(proxierHealthzPort)),
		net.JoinHostPort(ip, strconv.Itoa(proxierMetricsPort)), kubeconfig)
}

// checkPortsFree fails with a clear message when something in namespace
// ns already holds one of the proxier's ports on ip: the proxier would
// otherwise die on startup with the cause buried in its log.
func checkPortsFree(ns, ip string, ports ...int) error {
	var held []net.Listener
	defer func() {
		for _, l := range held {
			l.Close()
		}
	}()
	return netns.Do(ns, func() error {
		for _, p := range ports {
			addr := net.JoinHostPort(ip, strconv.Itoa(p))
			l, err := net.Listen("tcp", addr)
			if err != nil {
				return fmt.Errorf("port clash: %s in namespace %s is taken: %w", addr, ns, err)
			}
			held = append(held, l)
		}
		return nil
	})
}

// writeProxierConfig writes node n's proxier config and returns its path.
func (c *Cluster) writeProxierConfig(n NodeStatus, kubeconfig string) (string, error) {
	dir := c.paths.nodeDir(n.Name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("node %s: %w", n.Name, err)
	}
	cfg := filepath.Join(dir, "proxier.yaml")
	text := proxierConfig(n.Name, n.Mode, n.IP, kubeconfig)
	if n.Scheduler != "" {
		text += "ipvs:\n  scheduler: " + n.Scheduler + "\n"
	}
	if err := os.WriteFile(cfg, []byte(text), 0o644); err != nil {
		return "", fmt.Errorf("node %s: proxier config: %w", n.Name, err)
	}
	return cfg, nil
}

// startProxier writes the node's proxier config and starts the proxier in
// the node namespace.
func (c *Cluster) startProxier(i int, bin, kubeconfig string) (*daemon, error) {
	n := c.rec.Nodes[i]
	if err := checkPortsFree(n.Namespace, n.IP, proxierHealthzPort, proxierMetricsPort); err != nil {
		return nil, fmt.Errorf("node %s: proxier: %w", n.Name, err)
	}
	cfg, err := c.writeProxierConfig(n, kubeconfig)
	if err != nil {
		return nil, err
	}
	d, err := startDaemon(c.paths.pids(), "proxier-"+n.Name, n.Namespace, filepath.Join(c.paths.nodeDir(n.Name), "proxier.log"),
		bin, append([]string{"--config", cfg, "--v=2"}, n.ProxierFlags...), c.rec.Spec.OutliveCaller)
	if err != nil {
		return nil, fmt.Errorf("node %s: %w", n.Name, err)
	}
	return d, nil
}

// waitProxierHealthy polls the proxier's /healthz from namespace from
// (the node's, or the underlay for a VM node) until it answers 200 (kube-proxy does after its first sync).
func waitProxierHealthy(ctx context.Context, n NodeStatus, from string, d *daemon) error {
	client := httpClientIn(from)
	url := fmt.Sprintf("http://%s/healthz", net.JoinHostPort(n.IP, strconv.Itoa(proxierHealthzPort)))
	var last error
	for {
		resp, err := client.Get(url)
		if err == nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("%s: %s %s", url, resp.Status, body)
		}
		last = err
		if d.exited() {
			return fmt.Errorf("node %s: %w", n.Name, d.failure("exited before %s answered", url))
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("node %s: proxier (mode %s) not healthy: %w", n.Name, n.Mode,
				errors.Join(context.Cause(ctx), last, d.failure("last healthz error")))
		case <-time.After(200 * time.Millisecond):
		}
	}
}
