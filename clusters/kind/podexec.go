package kind

import (
	"context"

	"github.com/proxyproof/proxyproof/clusters/podexec"
)

// ExecInPod runs cmd in the first container of pod ns/name through the
// API, and returns its combined output. The suite's pods run the
// netserver image, which carries netprobe on its PATH.
func (c *Cluster) ExecInPod(ctx context.Context, ns, name string, cmd ...string) ([]byte, error) {
	cfg, err := c.RestConfig()
	if err != nil {
		return nil, err
	}
	return podexec.Exec(ctx, cfg, ns, name, "", cmd...)
}
