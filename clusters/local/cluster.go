package local

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"

	"github.com/proxyproof/proxyproof/clusters/local/controlplane"
)

// Cluster is a running local cluster, made by Create or found by Open.
type Cluster struct {
	paths paths
	rec   record
}

// Open finds the running cluster name (e.g. one `localcluster up` made).
func Open(name string) (*Cluster, error) {
	return OpenDir(StateDir(name))
}

// OpenDir is Open for a cluster with a non-default Spec.StateDir.
func OpenDir(dir string) (*Cluster, error) {
	p := paths{dir}
	r, err := readRecord(p.record())
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("cluster in %s is not up (no %s); run make cluster-up", dir, filepath.Base(p.record()))
	}
	if err != nil {
		return nil, err
	}
	return &Cluster{paths: p, rec: r}, nil
}

// Name is the cluster name.
func (c *Cluster) Name() string { return c.rec.Spec.Name }

// Spec is the spec the cluster was created with, defaults filled in.
func (c *Cluster) Spec() Spec { return c.rec.Spec }

// StateDir is the directory holding all of the cluster's state.
func (c *Cluster) StateDir() string { return c.paths.dir }

// Created is when the cluster became ready.
func (c *Cluster) Created() time.Time { return c.rec.Created }

// Nodes lists the nodes with their addresses, namespaces and pod CIDRs.
func (c *Cluster) Nodes() []NodeStatus { return append([]NodeStatus(nil), c.rec.Nodes...) }

// Kubeconfig is the admin kubeconfig for the user (server on loopback).
func (c *Cluster) Kubeconfig() string { return c.paths.kubeconfig() }

// Bin is the path of one of the cluster's built programs (proxier,
// local-node, netserver, localcluster).
func (c *Cluster) Bin(program string) string { return filepath.Join(c.paths.bin(), program) }

// RestConfig is the admin client configuration.
func (c *Cluster) RestConfig() (*rest.Config, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", c.Kubeconfig())
	if err != nil {
		return nil, fmt.Errorf("cluster %s: kubeconfig: %w", c.Name(), err)
	}
	return cfg, nil
}

// Client is an admin clientset.
func (c *Cluster) Client() (kubernetes.Interface, error) {
	cfg, err := c.RestConfig()
	if err != nil {
		return nil, err
	}
	return kubernetes.NewForConfig(cfg)
}

// ExecOnNode runs a command on node (in its network namespace, or in its
// kernel VM) and returns its combined output.
func (c *Cluster) ExecOnNode(ctx context.Context, node string, cmd ...string) ([]byte, error) {
	n, ok := c.node(node)
	if !ok {
		return nil, fmt.Errorf("cluster %s: no node %q", c.Name(), node)
	}
	if n.VM {
		return c.execClient(n).Exec(ctx, "", cmd)
	}
	return execIn(ctx, n.Namespace, cmd)
}

func (c *Cluster) node(name string) (NodeStatus, bool) {
	for _, n := range c.rec.Nodes {
		if n.Name == name {
			return n, true
		}
	}
	return NodeStatus{}, false
}

// PodNamespace is the network namespace of a pod (by its UID).
func (c *Cluster) PodNamespace(uid string) string { return podNS(c.Name(), uid) }

// ExecInPod runs a command inside the network namespace of pod ns/name
// and returns its combined output. The command runs on the host's files,
// so any program of the machine (or c.Bin's) can act as the pod's client.
func (c *Cluster) ExecInPod(ctx context.Context, ns, name string, cmd ...string) ([]byte, error) {
	client, err := c.Client()
	if err != nil {
		return nil, err
	}
	pod, err := client.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("pod %s/%s: %w", ns, name, err)
	}
	netns := c.PodNamespace(string(pod.UID))
	if n, ok := c.node(pod.Spec.NodeName); ok && n.VM {
		return c.execClient(n).Exec(ctx, netns, cmd)
	}
	if _, err := os.Stat(filepath.Join("/run/netns", netns)); err != nil {
		return nil, fmt.Errorf("pod %s/%s: no network namespace %s (pod not running on a node yet?): %w", ns, name, netns, err)
	}
	return execIn(ctx, netns, cmd)
}

func execIn(ctx context.Context, ns string, cmd []string) ([]byte, error) {
	if len(cmd) == 0 {
		return nil, errors.New("exec: empty command")
	}
	out, err := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns}, cmd...)...).CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("%s in namespace %s: %w: %s", strings.Join(cmd, " "), ns, err, bytes.TrimSpace(out))
	}
	return out, nil
}

// Destroy stops and removes the cluster.
func (c *Cluster) Destroy(ctx context.Context) error {
	return destroy(ctx, c.Name(), c.paths)
}

// Exists reports whether anything of cluster name is on the machine: its
// state dir or any of its namespaces.
func Exists(name string) bool {
	if _, err := os.Stat(StateDir(name)); err == nil {
		return true
	}
	ns, _ := clusterNamespaces(name)
	return len(ns) > 0
}

// Destroy stops every process of cluster name, deletes its namespaces
// (and with them every veth, route and rule inside) and removes its state
// dir. A cluster that does not exist is a no-op (logged).
func Destroy(ctx context.Context, name string) error {
	if !clusterNameRE.MatchString(name) {
		return fmt.Errorf("cluster name %q: want 1 to 10 characters of [a-z0-9-]", name)
	}
	if !Exists(name) {
		klog.InfoS("Cluster does not exist, nothing to destroy", "cluster", name)
		return nil
	}
	if err := destroy(ctx, name, paths{StateDir(name)}); err != nil {
		return err
	}
	// The shared root too, once no cluster is left in it (best effort:
	// another cluster's files keep it).
	_ = os.Remove(stateRoot())
	return nil
}

// destroy removes whatever of the cluster exists, in dependency order:
// proxiers and agents (which stop their pods), the forwarder, the
// control plane, then anything left in the namespaces, the namespaces,
// the files. It keeps going past errors so one failure leaks no more.
func destroy(ctx context.Context, name string, p paths) error {
	began := time.Now()
	var errs []error
	for _, stage := range []struct {
		glob  string
		grace time.Duration
	}{
		{"proxier-*.pid", 10 * time.Second},
		{"agent-*.pid", 45 * time.Second}, // it stops its pods with their grace
		{"*.pid", 5 * time.Second},        // forwarder, anything else
	} {
		if err := stopPidFiles(filepath.Join(p.pids(), stage.glob), stage.grace); err != nil {
			errs = append(errs, err)
		}
	}
	if _, err := os.Stat(p.controlPlane()); err == nil {
		if err := controlplane.StopDir(p.controlPlane(), stopGrace); err != nil {
			errs = append(errs, fmt.Errorf("control plane: %w", err))
		}
	}
	if err := deleteNamespaces(ctx, name); err != nil {
		errs = append(errs, err)
	}
	if err := os.RemoveAll(p.dir); err != nil {
		errs = append(errs, fmt.Errorf("state dir: %w", err))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("destroy cluster %s: %w", name, err)
	}
	klog.InfoS("Cluster destroyed", "cluster", name, "took", time.Since(began).Round(time.Millisecond))
	return nil
}
