package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sync"

	"k8s.io/apimachinery/pkg/types"
)

// sandbox is one pod's network: what teardown needs, kept in ipam.json so
// an agent that crashed can remove what it left.
type sandbox struct {
	Pod      string `json:"pod"` // namespace/name, for people reading the file
	IP       string `json:"ip"`
	Netns    string `json:"netns"`
	HostVeth string `json:"hostVeth"`
}

// ipam hands out pod IPs from the node's podCIDR. Addresses go round the
// range (like CNI host-local) so a freed IP is not reused at once, which
// keeps stale conntrack entries of a deleted pod away from its successor.
type ipam struct {
	mu    sync.Mutex
	path  string
	cidr  netip.Prefix
	Last  string                 `json:"last,omitempty"`
	CIDR  string                 `json:"cidr,omitempty"`
	ByPod map[types.UID]*sandbox `json:"pods"`
}

// loadIPAM reads path; a missing file is an empty allocator.
func loadIPAM(path string) (*ipam, error) {
	m := &ipam{path: path, ByPod: map[types.UID]*sandbox{}}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return m, nil
	}
	if err != nil {
		return nil, fmt.Errorf("ipam state %s: %w", path, err)
	}
	if err := json.Unmarshal(b, m); err != nil {
		return nil, fmt.Errorf("ipam state %s: %w", path, err)
	}
	if m.ByPod == nil {
		m.ByPod = map[types.UID]*sandbox{}
	}
	return m, nil
}

// setCIDR fixes the range; from here on allocate works.
func (m *ipam) setCIDR(cidr string) error {
	p, err := netip.ParsePrefix(cidr)
	if err != nil || !p.Addr().Is4() || p.Bits() > 30 {
		return fmt.Errorf("pod CIDR %q: not an IPv4 range with room for pods", cidr)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.cidr = p.Masked()
	m.CIDR = m.cidr.String()
	return nil
}

// allocate reserves an IP for pod uid (the same one if it has one) and
// records sb with it.
func (m *ipam) allocate(uid types.UID, sb sandbox) (netip.Addr, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.cidr.IsValid() {
		return netip.Addr{}, fmt.Errorf("no pod CIDR yet")
	}
	if old, ok := m.ByPod[uid]; ok {
		if ip, err := netip.ParseAddr(old.IP); err == nil && m.cidr.Contains(ip) {
			return ip, nil
		}
	}
	used := map[string]bool{}
	for _, s := range m.ByPod {
		used[s.IP] = true
	}
	first := m.cidr.Addr().Next().Next() // .0 is the network, .1 stays free for a gateway
	last := lastAddr(m.cidr)             // broadcast, never handed out
	ip := first
	if l, err := netip.ParseAddr(m.Last); err == nil && m.cidr.Contains(l) && l.Next().Less(last) && !l.Less(first) {
		ip = l.Next()
	}
	for range 1 << (32 - m.cidr.Bits()) {
		if !used[ip.String()] {
			sb.IP = ip.String()
			m.ByPod[uid] = &sb
			m.Last = sb.IP
			if err := m.saveLocked(); err != nil {
				delete(m.ByPod, uid)
				return netip.Addr{}, err
			}
			return ip, nil
		}
		ip = ip.Next()
		if !ip.Less(last) {
			ip = first
		}
	}
	return netip.Addr{}, fmt.Errorf("pod CIDR %s is full", m.cidr)
}

func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().As4()
	host := uint32(1)<<(32-p.Bits()) - 1
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3]) | host
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// release frees uid's IP.
func (m *ipam) release(uid types.UID) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.ByPod[uid]; !ok {
		return nil
	}
	delete(m.ByPod, uid)
	return m.saveLocked()
}

// all returns a copy of the recorded sandboxes.
func (m *ipam) all() map[types.UID]sandbox {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[types.UID]sandbox, len(m.ByPod))
	for uid, s := range m.ByPod {
		out[uid] = *s
	}
	return out
}

func (m *ipam) saveLocked() error {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	tmp := m.path + ".tmp"
	if err := os.MkdirAll(filepath.Dir(m.path), 0o755); err != nil {
		return fmt.Errorf("ipam state: %w", err)
	}
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return fmt.Errorf("ipam state: %w", err)
	}
	if err := os.Rename(tmp, m.path); err != nil {
		return fmt.Errorf("ipam state: %w", err)
	}
	return nil
}
