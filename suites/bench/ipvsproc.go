package bench

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// ipvsTable is /proc/net/ip_vs read into TCP virtual servers ("IP:PORT")
// and their real servers ("IP:PORT" -> weight). The guest kernel prints
// the whole table in one read, cheaper under TCG than a netlink dump of
// each virtual server's destinations.
type ipvsTable map[string]map[string]int

// active counts vs's real servers that take new connections (weight > 0:
// upstream keeps a removed endpoint at weight 0 while it drains).
func (t ipvsTable) active(vs string) int {
	n := 0
	for _, w := range t[vs] {
		if w > 0 {
			n++
		}
	}
	return n
}

// parseIPVSProc reads /proc/net/ip_vs:
//
//	IP Virtual Server version 1.2.1 (size=4096)
//	Prot LocalAddress:Port Scheduler Flags
//	  -> RemoteAddress:Port Forward Weight ActiveConn InActConn
//	TCP  0A600001:0050 rr
//	  -> AC100001:1F90      Masq    1      0          0
//
// Addresses are hex in network order. UDP, SCTP and firewall-mark virtual
// servers and their real servers are skipped; IPv6 ones too.
func parseIPVSProc(text string) (ipvsTable, error) {
	t := ipvsTable{}
	cur := "" // the TCP virtual server the "->" lines below belong to
	for n, line := range strings.Split(text, "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) == 0 || n < 3:
			// The three header lines.
		case f[0] == "->":
			if cur == "" {
				continue
			}
			if len(f) < 4 {
				return nil, fmt.Errorf("/proc/net/ip_vs line %d: real server line %q too short", n+1, line)
			}
			rs, err := hexAddrPort(f[1])
			if err != nil {
				return nil, fmt.Errorf("/proc/net/ip_vs line %d: %w", n+1, err)
			}
			w, err := strconv.Atoi(f[3])
			if err != nil {
				return nil, fmt.Errorf("/proc/net/ip_vs line %d: weight %q: %w", n+1, f[3], err)
			}
			t[cur][rs] = w
		case f[0] == "TCP" && len(f) >= 2 && !strings.HasPrefix(f[1], "["):
			vs, err := hexAddrPort(f[1])
			if err != nil {
				return nil, fmt.Errorf("/proc/net/ip_vs line %d: %w", n+1, err)
			}
			cur = vs
			t[cur] = map[string]int{}
		default:
			cur = "" // UDP, SCTP, FWM or IPv6 ("[...]") virtual server
		}
	}
	return t, nil
}

// hexAddrPort turns "0A600001:0050" into "10.96.0.1:80".
func hexAddrPort(s string) (string, error) {
	a, p, ok := strings.Cut(s, ":")
	ab, err1 := hex.DecodeString(a)
	pb, err2 := hex.DecodeString(p)
	if !ok || err1 != nil || err2 != nil || len(ab) != 4 || len(pb) != 2 {
		return "", fmt.Errorf("address %q: want 8 hex digits:4 hex digits", s)
	}
	ap := netip.AddrPortFrom(netip.AddrFrom4([4]byte(ab)), binary.BigEndian.Uint16(pb))
	return ap.String(), nil
}
