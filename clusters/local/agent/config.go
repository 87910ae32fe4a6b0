package agent

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// Config is what one node agent needs. Zero durations take the defaults.
type Config struct {
	// NodeName is the Node object's name, e.g. node-1.
	NodeName string
	// NodeIP is the node's underlay address (InternalIP), e.g. 198.18.0.11.
	NodeIP string
	// Kubeconfig authenticates as system:node:<NodeName>.
	Kubeconfig string
	// RoutesKubeconfig is an identity that may list and watch all Nodes,
	// for the routes to other nodes' pods (system:kube-proxy will do): the
	// Node authorizer lets a node read only its own Node. Empty means
	// Kubeconfig, which works only where nodes may list nodes.
	RoutesKubeconfig string
	// StateDir holds agent.log's neighbours: pods/<ns>_<name>/log, ipam.json.
	StateDir string
	// PodNetnsPrefix starts every pod namespace name: <prefix><uid[:12]>.
	PodNetnsPrefix string
	// Programs maps an image repository (no tag) to the executable it runs.
	Programs map[string]string
	// Netns is the node's network namespace name; empty means the one the
	// agent runs in (the binary under `ip netns exec`). Tests run the agent
	// in-process and name the node namespace here.
	Netns string

	// LeaseInterval is how often the node Lease is renewed (default 10s).
	LeaseInterval time.Duration
	// StatusInterval is how often the Node status heartbeats (default 30s).
	StatusInterval time.Duration
	// ShutdownGrace bounds how long the agent's own shutdown waits for a
	// pod's processes after SIGTERM before killing them (default 2s).
	ShutdownGrace time.Duration
	// RestartBackoff is the first delay before restarting an exited
	// container; it doubles up to MaxRestartBackoff (defaults 10s, 5m, as
	// the kubelet).
	RestartBackoff    time.Duration
	MaxRestartBackoff time.Duration
}

// podCIDR-independent fixed addresses of the Calico-style pod wiring.
const (
	gatewayIP    = "169.254.1.1" // every pod's default gateway, held on the node's lo
	hostVethPfx  = "cali"
	podInterface = "eth0"
)

func (c Config) withDefaults() Config {
	if c.LeaseInterval == 0 {
		c.LeaseInterval = 10 * time.Second
	}
	if c.StatusInterval == 0 {
		c.StatusInterval = 30 * time.Second
	}
	if c.ShutdownGrace == 0 {
		c.ShutdownGrace = 2 * time.Second
	}
	if c.RestartBackoff == 0 {
		c.RestartBackoff = 10 * time.Second
	}
	if c.MaxRestartBackoff == 0 {
		c.MaxRestartBackoff = 5 * time.Minute
	}
	return c
}

func (c Config) validate() error {
	if c.NodeName == "" {
		return fmt.Errorf("node agent: node name is required")
	}
	ip, err := netip.ParseAddr(c.NodeIP)
	if err != nil || !ip.Is4() {
		return fmt.Errorf("node %s: node IP %q is not an IPv4 address", c.NodeName, c.NodeIP)
	}
	if c.Kubeconfig == "" || c.StateDir == "" || c.PodNetnsPrefix == "" {
		return fmt.Errorf("node %s: kubeconfig, state dir and pod netns prefix are required", c.NodeName)
	}
	// netns name + 12 UID chars must stay a reasonable file name.
	if len(c.PodNetnsPrefix) > 40 || strings.ContainsAny(c.PodNetnsPrefix, "/ ") {
		return fmt.Errorf("node %s: pod netns prefix %q is invalid", c.NodeName, c.PodNetnsPrefix)
	}
	for image, path := range c.Programs {
		if image == "" || repository(image) != image {
			return fmt.Errorf("node %s: program image %q must be a repository without tag or digest", c.NodeName, image)
		}
		if !filepath.IsAbs(path) {
			return fmt.Errorf("node %s: program for %s: path %q is not absolute", c.NodeName, image, path)
		}
		if st, err := os.Stat(path); err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
			return fmt.Errorf("node %s: program for %s: %s is not an executable file", c.NodeName, image, path)
		}
	}
	return nil
}

// ParseProgram parses one --program flag value, image=path. The image may
// carry a tag, which is dropped: an image matches on its repository.
func ParseProgram(s string) (image, path string, err error) {
	image, path, ok := strings.Cut(s, "=")
	if !ok || image == "" || path == "" {
		return "", "", fmt.Errorf("program %q: want image=path", s)
	}
	return repository(image), path, nil
}

// repository strips an image reference to its repository: no digest, no
// tag, no docker.io/ (or docker.io/library/) default-registry prefix.
func repository(image string) string {
	if i := strings.Index(image, "@"); i >= 0 {
		image = image[:i]
	}
	// A tag is a colon after the last slash (a colon before it is a port).
	if i := strings.LastIndex(image, ":"); i > strings.LastIndex(image, "/") {
		image = image[:i]
	}
	image = strings.TrimPrefix(image, "docker.io/")
	return strings.TrimPrefix(image, "library/")
}

// program returns the executable an image runs, if it is known.
func (c Config) program(image string) (string, bool) {
	p, ok := c.Programs[repository(image)]
	return p, ok
}

// knownImages lists the image repositories, for events about unknown ones.
func (c Config) knownImages() string {
	var names []string
	for image := range c.Programs {
		names = append(names, image)
	}
	sort.Strings(names)
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}
