package ipvs

import (
	"errors"
	"fmt"
	"io"
	"net"
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
// as one read of /proc/net/ip_vs lists them. The kernel prints the file
// a page at a time, so it is one picture of the table only while no one
// else writes it; the proxier's own writes wait for the sync's lock.
type destTable struct {
	services map[vsKey]*procService
	marks    map[uint32]*procService

	// What parsing allocates from: see chunk and intern.
	destPool []ipvs.Destination
	ipPool   []byte
	names    map[string]string
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
	return &destTable{services: map[vsKey]*procService{}, marks: map[uint32]*procService{}, names: map[string]string{}}
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
		data, err := readSeqFile(procIPVSPath)
		if err != nil {
			return err
		}
		t, err = parseProcIPVS(procIPVSPath, string(data))
		return err
	})
	if err != nil && ns != "" {
		return nil, fmt.Errorf("network namespace %q: %w", ns, err)
	}
	return t, err
}

// readSeqFile reads a seq_file in reads of 64 KB. The kernel hands over
// at most a page per read and restarts its walk at the next record's
// position each time; with virtual servers in other namespaces that walk
// was seen (kernel 6.1) to skip a record at a restart. os.ReadFile's
// first reads are 512 bytes, which put restarts inside even a small
// table. A record it skips is missing from the table, and the full sync
// lists that virtual server over netlink instead.
func readSeqFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []byte
	buf := make([]byte, 64<<10)
	for {
		n, err := f.Read(buf)
		out = append(out, buf[:n]...)
		if err == io.EOF || (err == nil && n == 0) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
	}
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
// The table keeps no substring of text: at 10,000 Services it is 6 MB.
func parseProcIPVS(name, text string) (*destTable, error) {
	t := newDestTable()
	var cur *procService
	var buf [8]string
	n := 0
	for text != "" {
		n++
		var line string
		line, text, _ = strings.Cut(text, "\n")
		if err := t.parseLine(n, line, buf[:0], &cur); err != nil {
			return nil, fmt.Errorf("%s line %d %q: %w", name, n, line, err)
		}
	}
	if n == 0 {
		return nil, fmt.Errorf("%s: empty", name)
	}
	return t, nil
}

// parseLine adds line n to t: a virtual server becomes *cur, a real
// server goes to *cur. buf holds the line's fields, without allocating:
// at 10,000 Services the file has 100,000 lines.
func (t *destTable) parseLine(n int, line string, buf []string, cur **procService) error {
	switch {
	case n == 1:
		if !strings.HasPrefix(line, "IP Virtual Server version ") {
			return errors.New("not an IPVS table")
		}
	case n <= 3 && (strings.HasPrefix(line, "Prot ") || strings.HasPrefix(line, "  -> RemoteAddress")):
	case strings.HasPrefix(line, "  -> "):
		if *cur == nil {
			return errors.New("real server before any virtual server")
		}
		d, err := t.parseDest(fields(line[len("  -> "):], buf))
		if err != nil {
			return err
		}
		(*cur).dests = append((*cur).dests, d)
	default:
		f := fields(line, buf)
		if len(f) == 0 {
			return nil
		}
		s, err := parseProcService(f)
		if err != nil {
			return err
		}
		s.sched = t.intern(s.sched)
		if s.fwmark != 0 {
			t.marks[s.fwmark] = s
		} else {
			t.services[s.key] = s
		}
		*cur = s
	}
	return nil
}

// fields is strings.Fields appending to buf: it allocates only past
// buf's capacity.
func fields(s string, buf []string) []string {
	start := -1
	for i := 0; i < len(s); i++ {
		if space := s[i] == ' ' || s[i] == '\t'; space && start >= 0 {
			buf = append(buf, s[start:i])
			start = -1
		} else if !space && start < 0 {
			start = i
		}
	}
	if start >= 0 {
		buf = append(buf, s[start:])
	}
	return buf
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

// parseDest parses "0A000105:1F90 Masq 1 0 0": address:port,
// forwarding method, weight, active and inactive connections.
func (t *destTable) parseDest(f []string) (*ipvs.Destination, error) {
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
	d := t.newDest()
	*d = ipvs.Destination{
		Address: t.newIP(ap.Addr()), Port: ap.Port(), AddressFamily: familyOf(ap.Addr()),
		Weight: nums[0], ConnectionFlags: fwd, ActiveConnections: nums[1], InactiveConnections: nums[2],
	}
	return d, nil
}

// chunk is how many real servers, or address bytes, parseDest allocates
// at once: the table is 100,000 of them at 10,000 Services, and each
// allocation costs in a TCG guest.
const chunk = 1024

func (t *destTable) newDest() *ipvs.Destination {
	if len(t.destPool) == 0 {
		t.destPool = make([]ipvs.Destination, chunk)
	}
	d := &t.destPool[0]
	t.destPool = t.destPool[1:]
	return d
}

func (t *destTable) newIP(a netip.Addr) net.IP {
	n := a.BitLen() / 8
	if len(t.ipPool) < n {
		t.ipPool = make([]byte, chunk*4)
	}
	ip := net.IP(t.ipPool[:n:n])
	t.ipPool = t.ipPool[n:]
	if a.Is4() {
		b := a.As4()
		copy(ip, b[:])
	} else {
		b := a.As16()
		copy(ip, b[:])
	}
	return ip
}

// intern returns a copy of s shared by every virtual server: a
// substring would keep the whole text.
func (t *destTable) intern(s string) string {
	if c, ok := t.names[s]; ok {
		return c
	}
	c := strings.Clone(s)
	t.names[c] = c
	return c
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
		a = netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
	}
	// Unmapped, as fullServers and destKey key netlink's addresses.
	return netip.AddrPortFrom(a.Unmap(), uint16(port)), nil
}
