package census

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/proxyproof/proxyproof/clusters"
)

// IPVSProcFile is the kernel's IPVS table, per network namespace; absent
// where the kernel has no ip_vs.
const IPVSProcFile = "/proc/net/ip_vs"

// IPVSDevice is the dummy interface kube-proxy's IPVS mode binds Service
// addresses to.
const IPVSDevice = "kube-ipvs0"

// VirtualServer is one IPVS virtual server and its real servers.
type VirtualServer struct {
	// Proto is TCP, UDP, SCTP or FWM; Addr "IP:PORT" (IPv4 only, else the
	// kernel's text); Scheduler as the kernel names it.
	Proto, Addr, Scheduler string
	// Reals maps "IP:PORT" to weight.
	Reals map[string]int
}

// ParseIPVSProc reads /proc/net/ip_vs:
//
//	IP Virtual Server version 1.2.1 (size=4096)
//	Prot LocalAddress:Port Scheduler Flags
//	  -> RemoteAddress:Port Forward Weight ActiveConn InActConn
//	TCP  0A600001:0050 rr
//	  -> AC100001:1F90      Masq    1      0          0
//
// IPv4 addresses are hex in network order; IPv6 ones ("[...]") and
// firewall marks are kept as the kernel prints them. An IPv4 address that
// is not hex, or a real server without its weight, is an error.
func ParseIPVSProc(text string) ([]VirtualServer, error) {
	var out []VirtualServer
	for n, line := range strings.Split(text, "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) == 0 || n < 3:
			// The three header lines.
		case f[0] == "->":
			if len(out) == 0 || len(f) < 4 {
				return nil, fmt.Errorf("%s line %d: real server line %q out of place or too short", IPVSProcFile, n+1, line)
			}
			w, err := strconv.Atoi(f[3])
			if err != nil {
				return nil, fmt.Errorf("%s line %d: weight %q: %w", IPVSProcFile, n+1, f[3], err)
			}
			rs, err := addrOf(f[1])
			if err != nil {
				return nil, fmt.Errorf("%s line %d: %w", IPVSProcFile, n+1, err)
			}
			out[len(out)-1].Reals[rs] = w
		case len(f) >= 2:
			vs := VirtualServer{Proto: f[0], Addr: f[1], Reals: map[string]int{}}
			if f[0] != "FWM" {
				var err error
				if vs.Addr, err = addrOf(f[1]); err != nil {
					return nil, fmt.Errorf("%s line %d: %w", IPVSProcFile, n+1, err)
				}
			}
			if len(f) >= 3 {
				vs.Scheduler = f[2]
			}
			out = append(out, vs)
		default:
			return nil, fmt.Errorf("%s line %d: %q: want a virtual or real server", IPVSProcFile, n+1, line)
		}
	}
	return out, nil
}

// addrOf is HexAddrPort's address, or an IPv6 one ("[...]:PORT") as the
// kernel prints it.
func addrOf(s string) (string, error) {
	if strings.HasPrefix(s, "[") {
		return s, nil
	}
	return HexAddrPort(s)
}

// HexAddrPort turns "0A600001:0050" into "10.96.0.1:80".
func HexAddrPort(s string) (string, error) {
	a, p, ok := strings.Cut(s, ":")
	ab, err1 := hex.DecodeString(a)
	pb, err2 := hex.DecodeString(p)
	if !ok || err1 != nil || err2 != nil || len(ab) != 4 || len(pb) != 2 {
		return "", fmt.Errorf("address %q: want 8 hex digits:4 hex digits", s)
	}
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte(ab)), binary.BigEndian.Uint16(pb)).String(), nil
}

// ipvsState says whether node holds IPVS mode's kernel state: virtual
// servers, or the kube-ipvs0 device the mode makes before its first one.
func ipvsState(vss []VirtualServer, device bool) (present bool, evidence string) {
	var seen []string
	if len(vss) > 0 {
		seen = append(seen, fmt.Sprintf("%d virtual servers", len(vss)))
	}
	if device {
		seen = append(seen, IPVSDevice)
	}
	return len(seen) > 0, strings.Join(seen, ", ")
}

// readIPVS reads node's IPVS table and whether kube-ipvs0 exists. A kernel
// without ip_vs has no table: no virtual servers, not an error.
func readIPVS(ctx context.Context, c clusters.Cluster, node string) ([]VirtualServer, bool, error) {
	var vss []VirtualServer
	b, err := c.ExecOnNode(ctx, node, "cat", IPVSProcFile)
	if err == nil {
		if vss, err = ParseIPVSProc(string(b)); err != nil {
			return nil, false, fmt.Errorf("node %s: %w", node, err)
		}
	} else if !notFound(b, err) {
		return nil, false, fmt.Errorf("node %s: cat %s: %w: %s", node, IPVSProcFile, err, firstLine(b))
	}
	links, err := c.ExecOnNode(ctx, node, "ip", "-o", "link", "show")
	if err != nil {
		return nil, false, fmt.Errorf("node %s: ip -o link show: %w: %s", node, err, firstLine(links))
	}
	return vss, hasLink(string(links), IPVSDevice), nil
}

// hasLink says whether `ip -o link show` lists name ("7: kube-ipvs0: <...").
func hasLink(links, name string) bool {
	for _, l := range strings.Split(links, "\n") {
		f := strings.Fields(l)
		if len(f) >= 2 && strings.SplitN(strings.TrimSuffix(f[1], ":"), "@", 2)[0] == name {
			return true
		}
	}
	return false
}
