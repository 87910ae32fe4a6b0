package kind

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/proxyproof/proxyproof/clusters"
)

// record is what a running cluster's state dir says about it, so another
// process (make cluster-down, a suite on a KEEP=1 cluster) can use it.
type record struct {
	Name      string          `json:"name"`
	Network   string          `json:"network"`
	NodeImage string          `json:"nodeImage"`
	Proxier   string          `json:"proxier"`
	Nodes     []clusters.Node `json:"nodes"`
	APIServer string          `json:"apiServer"`
	Outside   string          `json:"outside"`
	OutsideIP string          `json:"outsideIP"`
	// Proxiers is each restarted node's proxier configuration
	// (RestartProxier); a node not there runs its mode DaemonSet's.
	Proxiers map[string]nodeProxier `json:"proxiers,omitempty"`
	Created  time.Time              `json:"created"`
}

const (
	recordFile     = "cluster.json"
	kubeconfigFile = "kubeconfig"
)

func writeRecord(dir string, r record) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, recordFile), b, 0o644); err != nil {
		return fmt.Errorf("cluster %s: %w", r.Name, err)
	}
	return nil
}

func readRecord(dir string) (record, error) {
	var r record
	b, err := os.ReadFile(filepath.Join(dir, recordFile))
	if errors.Is(err, os.ErrNotExist) {
		return r, fmt.Errorf("no kind cluster is up in %s (no %s); run make cluster-up PROVIDER=kind: %w", dir, recordFile, err)
	}
	if err != nil {
		return r, err
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return r, fmt.Errorf("%s: %w", filepath.Join(dir, recordFile), err)
	}
	return r, nil
}
