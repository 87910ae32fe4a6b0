package ipvs

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"runtime"
	"strconv"
	"strings"

	"github.com/proxyproof/proxyproof/proxier/netns"
)

// procConnPath is IPVS's connection table. moby/ipvs has no call for it
// (IPVS's netlink family dumps services and destinations, never
// connections), and ipvsadm -Lnc reads this same file.
const procConnPath = "/proc/thread-self/net/ip_vs_conn"

// Conn is one connection IPVS carries, as /proc/net/ip_vs_conn lists it.
type Conn struct {
	Proto   string
	Client  netip.AddrPort
	Virtual netip.AddrPort
	Real    netip.AddrPort
	State   string
	Expires int // seconds
}

func (c Conn) String() string {
	return fmt.Sprintf("%s %s -> %s via %s %s (%d s left)", c.Proto, c.Client, c.Virtual, c.Real, c.State, c.Expires)
}

// Connections lists every connection IPVS holds, in any state; none on a
// kernel without ip_vs (no table to read). Leaving ipvs, the proxier
// waits on them: the ESTABLISHED ones are clients still talking through
// IPVS, and any entry, whatever its state, deletes the conntrack entry of
// its client address and port when it expires (see the migration).
func (p *Proxier) Connections() ([]Conn, error) {
	var conns []Conn
	err := netns.Do(p.opts.NetNS, func() error {
		// thread-self must stay this thread (netns.Do pins it only for a
		// namespace other than the current one).
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		data, err := readSeqFile(procConnPath)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		if conns, err = parseProcConns(string(data)); err != nil {
			return fmt.Errorf("%s: %w", procConnPath, err)
		}
		return nil
	})
	return conns, err
}

// parseProcConns parses the table as ip_vs_conn_seq_show prints it:
//
//	Pro FromIP   FPrt ToIP     TPrt DestIP   DPrt State       Expires PEName PEData
//	TCP 0A000105 B6C2 0A600001 0050 0AF40102 1F90 ESTABLISHED     899
//	TCP fd00:0:0:0:0:0:0:5 B6C2 fd00:0:0:0:0:0:0:1 0050 ... ESTABLISHED 899
//
// IPv4 addresses in hex, IPv6 ones as text; ports in hex.
func parseProcConns(text string) ([]Conn, error) {
	var out []Conn
	for i, line := range strings.Split(strings.TrimRight(text, "\n"), "\n") {
		f := strings.Fields(line)
		if i == 0 {
			if len(f) == 0 || f[0] != "Pro" {
				return nil, fmt.Errorf("line 1 %q: not an IPVS connection table", line)
			}
			continue
		}
		if len(f) < 9 {
			return nil, fmt.Errorf("line %d %q: %d fields, want at least 9", i+1, line, len(f))
		}
		c := Conn{Proto: f[0], State: f[7]}
		var err error
		for j, dst := range []*netip.AddrPort{&c.Client, &c.Virtual, &c.Real} {
			if *dst, err = procAddrPort(f[1+2*j], f[2+2*j]); err != nil {
				return nil, fmt.Errorf("line %d %q: %w", i+1, line, err)
			}
		}
		if c.Expires, err = strconv.Atoi(f[8]); err != nil {
			return nil, fmt.Errorf("line %d %q: expiry: %w", i+1, line, err)
		}
		out = append(out, c)
	}
	return out, nil
}

func procAddrPort(addr, port string) (netip.AddrPort, error) {
	p, err := strconv.ParseUint(port, 16, 16)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("port %q: %w", port, err)
	}
	var a netip.Addr
	if len(addr) == 8 && !strings.Contains(addr, ":") {
		b, err := hex.DecodeString(addr)
		if err != nil {
			return netip.AddrPort{}, fmt.Errorf("address %q: %w", addr, err)
		}
		a = netip.AddrFrom4([4]byte(b))
	} else if a, err = netip.ParseAddr(addr); err != nil {
		return netip.AddrPort{}, fmt.Errorf("address %q: %w", addr, err)
	}
	return netip.AddrPortFrom(a, uint16(p)), nil
}
