package local

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/proxyproof/proxyproof/clusters"
)

var _ clusters.ProxierLogs = seamCluster{}

// ProxierLog is the last maxBytes of node's proxier.log: every process
// the node's proxier ran (restarts append), a VM node's too (its node
// directory is the host's, shared into the VM).
func (c *Cluster) ProxierLog(_ context.Context, node string, maxBytes int64) ([]byte, error) {
	if _, ok := c.node(node); !ok {
		return nil, fmt.Errorf("cluster %s: no node %q", c.Name(), node)
	}
	f, err := os.Open(filepath.Join(c.paths.nodeDir(node), "proxier.log"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Size() > maxBytes {
		if _, err := f.Seek(-maxBytes, io.SeekEnd); err != nil {
			return nil, err
		}
	}
	return io.ReadAll(f)
}
