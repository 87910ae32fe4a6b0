package kind

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
)

// labelCluster marks what this package makes beside kind's own node
// containers (the network, the outside client), so Down finds it after a
// crash by the cluster's name alone.
const labelCluster = "proxyproof.dev/kind-cluster"

// networkName is cluster's internal Docker network.
func networkName(cluster string) string { return "proxyproof-kind-" + cluster }

// outsideName is cluster's outside-client container.
func outsideName(cluster string) string { return cluster + "-outside" }

// docker runs the Docker CLI, as kind itself drives the engine, and
// returns its stdout; the error carries the command and its stderr.
func docker(ctx context.Context, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, "docker", args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("docker %s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(stderr.Bytes()))
	}
	return out, nil
}

// network is what Create and the sealing test need of docker network
// inspect.
type network struct {
	ID       string            `json:"Id"`
	Name     string            `json:"Name"`
	Internal bool              `json:"Internal"`
	Options  map[string]string `json:"Options"`
	Labels   map[string]string `json:"Labels"`
	IPAM     struct {
		Config []struct {
			Subnet  string `json:"Subnet"`
			Gateway string `json:"Gateway"`
		} `json:"Config"`
	} `json:"IPAM"`
}

// Bridge is the host interface of the network (Docker's default name
// unless the network names one).
func (n network) Bridge() string {
	if b := n.Options["com.docker.network.bridge.name"]; b != "" {
		return b
	}
	if len(n.ID) < 12 {
		return ""
	}
	return "br-" + n.ID[:12]
}

// Subnet is the network's IPv4 subnet.
func (n network) Subnet() string {
	for _, c := range n.IPAM.Config {
		if !strings.Contains(c.Subnet, ":") {
			return c.Subnet
		}
	}
	return ""
}

func inspectNetwork(ctx context.Context, name string) (network, error) {
	out, err := docker(ctx, "network", "inspect", name)
	if err != nil {
		return network{}, err
	}
	var nets []network
	if err := json.Unmarshal(out, &nets); err != nil || len(nets) != 1 {
		return network{}, fmt.Errorf("docker network inspect %s: want one network, got %q: %v", name, out, err)
	}
	return nets[0], nil
}

// containerIP is a container's IPv4 address on network.
func containerIP(ctx context.Context, container, network string) (string, error) {
	out, err := docker(ctx, "inspect", "--format", fmt.Sprintf(`{{with index .NetworkSettings.Networks %q}}{{.IPAddress}}{{end}}`, network), container)
	if err != nil {
		return "", err
	}
	ip := strings.TrimSpace(string(out))
	if ip == "" {
		return "", fmt.Errorf("container %s has no address on network %s", container, network)
	}
	return ip, nil
}

// labelled lists the names of objects (container or network) carrying
// labelCluster=cluster.
func labelled(ctx context.Context, kind, cluster string) ([]string, error) {
	args := []string{kind, "ls", "--filter", "label=" + labelCluster + "=" + cluster, "--format", "{{.Name}}"}
	if kind == "container" {
		args = []string{"container", "ls", "--all", "--filter", "label=" + labelCluster + "=" + cluster, "--format", "{{.Names}}"}
	}
	out, err := docker(ctx, args...)
	if err != nil {
		return nil, err
	}
	return strings.Fields(string(out)), nil
}
