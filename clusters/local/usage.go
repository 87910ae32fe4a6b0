package local

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// Process is one process of a running cluster.
type Process struct {
	PID  int
	Name string // its comm
	RSS  int64  // resident set size, bytes
}

// Processes lists every process of the cluster: those of its pid files
// (control plane, forwarder, agents, proxiers) and whatever runs in its
// namespaces (pods), each once.
func (c *Cluster) Processes(ctx context.Context) ([]Process, error) {
	seen := map[int]bool{}
	for _, glob := range []string{
		filepath.Join(c.paths.controlPlane(), "pids", "*.pid"),
		filepath.Join(c.paths.pids(), "*.pid"),
	} {
		files, _ := filepath.Glob(glob)
		for _, f := range files {
			if pid, ok, _ := livePid(f); ok {
				seen[pid] = true
			}
		}
	}
	names, err := clusterNamespaces(c.Name())
	if err != nil {
		return nil, err
	}
	for _, ns := range names {
		pids, err := namespacePids(ctx, ns)
		if err != nil {
			return nil, err
		}
		for _, p := range pids {
			seen[p] = true
		}
	}
	var out []Process
	for pid := range seen {
		if p, err := readProcess(pid); err == nil {
			out = append(out, p)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].PID < out[j].PID })
	return out, nil
}

// MemoryRSS is the sum of the RSS of Processes, in bytes.
func (c *Cluster) MemoryRSS(ctx context.Context) (int64, error) {
	ps, err := c.Processes(ctx)
	if err != nil {
		return 0, err
	}
	var sum int64
	for _, p := range ps {
		sum += p.RSS
	}
	return sum, nil
}

func readProcess(pid int) (Process, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return Process{}, err
	}
	defer f.Close()
	p := Process{PID: pid}
	s := bufio.NewScanner(f)
	for s.Scan() {
		k, v, _ := strings.Cut(s.Text(), ":")
		v = strings.TrimSpace(v)
		switch k {
		case "Name":
			p.Name = v
		case "VmRSS":
			kb, _ := strconv.ParseInt(strings.TrimSuffix(v, " kB"), 10, 64)
			p.RSS = kb << 10
		}
	}
	return p, s.Err()
}
