package local

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/proxyproof/proxyproof/clusters/local/controlplane"

	"k8s.io/client-go/tools/clientcmd"
)

// record is cluster.json: written last by Create, so its presence means
// the cluster came up; Open and Destroy in other processes read it.
type record struct {
	Spec    Spec         `json:"spec"`
	Created time.Time    `json:"created"`
	Server  string       `json:"server"`  // the apiserver, https://127.0.0.1:PORT
	Proxier string       `json:"proxier"` // the binary every node runs
	Nodes   []NodeStatus `json:"nodes"`
}

// NodeStatus is one node of a running cluster.
type NodeStatus struct {
	Name string `json:"name"`
	Mode string `json:"mode"`
	IP   string `json:"ip"`
	// Namespace is the node's network namespace; empty for a VM node.
	Namespace string `json:"namespace"`
	PodCIDR   string `json:"podCIDR,omitempty"`
	// VM is set for a node in the kernel VM (a mode the host kernel lacks).
	VM bool `json:"vm,omitempty"`
	// Scheduler and ProxierFlags are what RestartProxier last changed:
	// the IPVS scheduler in the proxier's config ("" = the default) and
	// extra flags after it.
	Scheduler    string   `json:"scheduler,omitempty"`
	ProxierFlags []string `json:"proxierFlags,omitempty"`
}

func writeRecord(path string, r record) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func readRecord(path string) (record, error) {
	var r record
	b, err := os.ReadFile(path)
	if err != nil {
		return r, err
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return r, fmt.Errorf("%s: %w", path, err)
	}
	return r, nil
}

// upSince reports whether the cluster in dir is up: its record exists and
// its apiserver still runs. A record whose processes are gone is a crashed
// (or rebooted-away) cluster, which Create cleans.
func upSince(p paths) (time.Time, bool) {
	r, err := readRecord(p.record())
	if err != nil {
		return time.Time{}, false
	}
	_, ok, _ := livePid(filepath.Join(p.controlPlane(), "pids", "kube-apiserver.pid"))
	return r.Created, ok
}

// creatingPid is the pid of a process creating the cluster in dir right
// now, or 0.
func creatingPid(p paths) int {
	b, err := os.ReadFile(p.creating())
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid == os.Getpid() || !controlplane.Alive(pid) {
		return 0
	}
	return pid
}

// rewriteKubeconfig copies a kubeconfig, pointing every cluster entry at
// server: node agents and proxiers reach the apiserver via the forwarder.
func rewriteKubeconfig(src, dst, server string) error {
	cfg, err := clientcmd.LoadFromFile(src)
	if err != nil {
		return fmt.Errorf("kubeconfig %s: %w", src, err)
	}
	if len(cfg.Clusters) == 0 {
		return errors.New("kubeconfig " + src + ": no cluster")
	}
	for _, c := range cfg.Clusters {
		c.Server = server
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	if err := clientcmd.WriteToFile(*cfg, dst); err != nil {
		return fmt.Errorf("kubeconfig %s: %w", dst, err)
	}
	return nil
}
