package ipvs

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"runtime"
	"strconv"
	"strings"

	"github.com/moby/ipvs"

	"github.com/proxyproof/proxyproof/proxier/netns"
)

// destReader is an Interface that can also read the real servers of
// every virtual server in one pass. Netlink cannot: IPVS_CMD_GET_DEST
// dumps one virtual server's, so a full sync at 10,000 Services would
// otherwise be 10,000 dumps.
type destReader interface {
	readAllDests() (*destTable, error)
}

// destTable is the real servers of every virtual server in a namespace,
// as /proc/net/ip_vs lists them at one moment.
type destTable struct {
	services map[vsKey]*procService
	marks    map[uint32]*procService
}

// procService is one virtual server of /proc/net/ip_vs. The file gives
// no thresholds or statistics of real servers, and the persistence
// timeout in jiffies: full syncs take the virtual server's attributes
// from GetServices and only the real servers from here.
type procService struct {
	key        vsKey // unset for a firewall-mark virtual server
	fwmark     uint32
	sched      string
	persistent bool
	dests      []*ipvs.Destination
}

func newDestTable() *destTable {
	return &destTable{services: map[vsKey]*procService{}, marks: map[uint32]*procService{}}
}

// dests returns the real servers of virtual server k, and whether the
// table has k at all. A nil table has nothing.
func (t *destTable) dests(k vsKey) ([]*ipvs.Destination, bool) {
	if t == nil {
		return nil, false
	}
	s, ok := t.services[k]
	if !ok {
		return nil, false
	}
	return s.dests, true
}

// procIPVSPath is the calling thread's namespace's table: /proc/self/net
// is the thread group leader's namespace, not that of a thread switched
// into another one.
const procIPVSPath = "/proc/thread-self/net/ip_vs"

// readProcIPVS reads the IPVS table of network namespace ns ("" = the
// current one) from a thread in it.
func readProcIPVS(ns string) (*destTable, error) {
	var t *destTable
	err := netns.Do(ns, func() error {
		// netns.Do runs fn as is for ns == "": pin the thread for the
		// read anyway, so thread-self stays the same thread.
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		f, err := os.Open(procIPVSPath)
		if err != nil {
			return err
		}
		defer f.Close()
		t, err = parseProcIPVS(procIPVSPath, bufio.NewReaderSize(f, 1<<16))
		return err
	})
	if err != nil && ns != "" {
		return nil, fmt.Errorf("network namespace %q: %w", ns, err)
	}
	return t, err
}

// parseProcIPVS parses the IPVS table as /proc/net/ip_vs prints it
// (ip_vs_info_seq_show in net/netfilter/ipvs/ip_vs_ctl.c):
//
//	IP Virtual Server version 1.2.1 (size=4096)
//	Prot LocalAddress:Port Scheduler Flags
//	  -> RemoteAddress:Port Forward Weight ActiveConn InActConn
//	TCP  0A600001:0050 rr
//	  -> 0A000105:1F90      Masq    1      0          0
//	UDP  [fd00:0000:...:0001]:0035 rr persistent 10800 FFFFFFFF
//	FWM  00000001 rr
//
// Addresses and ports are hex, IPv6 ones in brackets. name is for errors.
func parseProcIPVS(name string, r io.Reader) (*destTable, error) {
	t := newDestTable()
	sc := bufio.NewScanner(r)
	var cur *procService
	n := 0
	for sc.Scan() {
		n++
		line := sc.Text()
		bad := func(err error) error {
			return fmt.Errorf("%s line %d %q: %w", name, n, line, err)
		}
		switch {
		case n == 1:
			if !strings.HasPrefix(line, "IP Virtual Server version ") {
				return nil, bad(errors.New("not an IPVS table"))
			}
		case n <= 3 && (strings.HasPrefix(line, "Prot ") || strings.HasPrefix(line, "  -> RemoteAddress")):
		case strings.TrimSpace(line) == "":
		case strings.HasPrefix(line, "  -> "):
			if cur == nil {
				return nil, bad(errors.New("real server before any virtual server"))
			}
			d, err := parseProcDest(strings.Fields(line)[1:])
			if err != nil {
				return nil, bad(err)
			}
			cur.dests = append(cur.dests, d)
		default:
			s, err := parseProcService(strings.Fields(line))
			if err != nil {
				return nil, bad(err)
			}
			if s.fwmark != 0 {
				t.marks[s.fwmark] = s
			} else {
				t.services[s.key] = s
			}
			cur = s
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s after line %d: %w", name, n, err)
	}
	if n == 0 {
		return nil, fmt.Errorf("%s: empty", name)
	}
	return t, nil
}

// parseProcService parses "TCP  0A600001:0050 rr [ops] [persistent T MASK]"
// or "FWM  00000001 rr ...".
func parseProcService(f []string) (*procService, error) {
	if len(f) < 3 {
		return nil, errors.New("want protocol, address and scheduler")
	}
	s := &procService{sched: f[2]}
	if f[0] == "FWM" {
		m, err := strconv.ParseUint(f[1], 16, 32)
		if err != nil || m == 0 {
			return nil, fmt.Errorf("firewall mark %q: want 8 hex digits, not 0", f[1])
		}
		s.fwmark = uint32(m)
	} else {
		proto, err := procProtocol(f[0])
		if err != nil {
			return nil, err
		}
		ap, err := parseHexAddrPort(f[1])
		if err != nil {
			return nil, fmt.Errorf("virtual server address: %w", err)
		}
		s.key = vsKey{ap.Addr(), ap.Port(), proto}
	}
	rest := f[3:]
	if len(rest) > 0 && rest[0] == "ops" {
		rest = rest[1:]
	}
	if len(rest) > 0 {
		if rest[0] != "persistent" || len(rest) != 3 {
			return nil, fmt.Errorf("flags %q: want none, ops or persistent TIMEOUT NETMASK", strings.Join(f[3:], " "))
		}
		if _, err := strconv.ParseUint(rest[1], 10, 32); err != nil {
			return nil, fmt.Errorf("persistence timeout %q: %w", rest[1], err)
		}
		s.persistent = true
	}
	return s, nil
}

// procProtocol is the number of a protocol as ip_vs_proto_name names it.
func procProtocol(name string) (uint16, error) {
	switch name {
	case "TCP":
		return 6, nil
	case "UDP":
		return 17, nil
	case "SCTP":
		return 132, nil
	case "IP":
		return 0, nil
	case "ICMP":
		return 1, nil
	case "ICMPv6":
		return 58, nil
	}
	if num, ok := strings.CutPrefix(name, "IP_"); ok {
		if p, err := strconv.ParseUint(num, 10, 8); err == nil {
			return uint16(p), nil
		}
	}
	return 0, fmt.Errorf("unknown protocol %q", name)
}

// fwdMethods are ip_vs_fwd_name's names of IP_VS_CONN_F_* forwarding
// methods, the ConnectionFlags netlink reports.
var fwdMethods = map[string]uint32{
	"Masq":   ipvs.ConnectionFlagMasq,
	"Local":  ipvs.ConnectionFlagLocalNode,
	"Tunnel": ipvs.ConnectionFlagTunnel,
	"Route":  ipvs.ConnectionFlagDirectRoute,
}

// parseProcDest parses "0A000105:1F90 Masq 1 0 0": address:port,
// forwarding method, weight, active and inactive connections.
func parseProcDest(f []string) (*ipvs.Destination, error) {
	if len(f) != 5 {
		return nil, fmt.Errorf("real server: want address:port, forward, weight, active and inactive connections, got %d fields", len(f))
	}
	ap, err := parseHexAddrPort(f[0])
	if err != nil {
		return nil, fmt.Errorf("real server address: %w", err)
	}
	fwd, ok := fwdMethods[f[1]]
	if !ok {
		return nil, fmt.Errorf("real server %s: unknown forwarding method %q", ap, f[1])
	}
	var nums [3]int
	for i, s := range f[2:] {
		v, err := strconv.ParseInt(s, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("real server %s: %s %q: %w", ap, [...]string{"weight", "active connections", "inactive connections"}[i], s, err)
		}
		nums[i] = int(v)
	}
	d := ipvsDest(ap, nums[0])
	d.ConnectionFlags = fwd
	d.ActiveConnections, d.InactiveConnections = nums[1], nums[2]
	return d, nil
}

// parseHexAddrPort parses "0A600001:0050" (IPv4 as %08X) or
// "[fd00:0000:...:0001]:0050" (IPv6 as %pI6), port as %04X.
func parseHexAddrPort(s string) (netip.AddrPort, error) {
	i := strings.LastIndexByte(s, ':')
	if i < 0 || len(s)-i-1 != 4 {
		return netip.AddrPort{}, fmt.Errorf("%q: want ADDRESS:PORT with a 4-digit hex port", s)
	}
	port, err := strconv.ParseUint(s[i+1:], 16, 16)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("%q: port: %w", s, err)
	}
	host := s[:i]
	var a netip.Addr
	if v6, ok := strings.CutPrefix(host, "["); ok {
		v6, ok = strings.CutSuffix(v6, "]")
		if a, err = netip.ParseAddr(v6); !ok || err != nil || !a.Is6() {
			return netip.AddrPort{}, fmt.Errorf("%q: want a bracketed IPv6 address", s)
		}
	} else {
		v, err := strconv.ParseUint(host, 16, 32)
		if err != nil || len(host) != 8 {
			return netip.AddrPort{}, fmt.Errorf("%q: want 8 hex digits of IPv4 address", s)
		}
		a = netip.AddrFrom4([4]byte(binary.BigEndian.AppendUint32(nil, uint32(v))))
	}
	// Unmapped, as fullServers and destKey key netlink's addresses.
	return netip.AddrPortFrom(a.Unmap(), uint16(port)), nil
}
