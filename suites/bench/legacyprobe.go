package bench

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/proxyproof/proxyproof/proxier/netns"
)

// legacyNAT reads the legacy nat table straight from the kernel
// (IPT_SO_GET_INFO / IPT_SO_GET_ENTRIES on a raw socket in the node
// namespace): no xtables lock, no formatting of every rule, which is what
// makes iptables-save cost 100+ ms at 2,000 Services.
type legacyNAT struct{ fd int }

const (
	iptSoGetInfo    = 64
	iptSoGetEntries = 65
	// struct ipt_getinfo: name[32], valid_hooks, hook_entry[5],
	// underflow[5], num_entries, size.
	getInfoLen = 32 + 4 + 20 + 20 + 4 + 4
	// struct ipt_get_entries: name[32], size, then 8-aligned entries.
	getEntriesHdr = 40
	// struct ipt_entry: ipt_ip (84), nfcache, target_offset (u16),
	// next_offset (u16), comefrom, counters (16).
	entryTargetOff = 84 + 4
	entryNextOff   = 84 + 4 + 2
	// struct xt_entry_target: target_size (u16), name[29], revision.
	targetHdr = 32
)

func openLegacyNAT(ns string) (*legacyNAT, error) {
	var fd int
	err := netns.Do(ns, func() error {
		var err error
		fd, err = unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_RAW)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("raw socket in %q: %w", ns, err)
	}
	return &legacyNAT{fd: fd}, nil
}

func (l *legacyNAT) close() { unix.Close(l.fd) }

func (l *legacyNAT) getsockopt(opt int, buf []byte) error {
	n := uint32(len(buf))
	_, _, e := syscall.Syscall6(syscall.SYS_GETSOCKOPT, uintptr(l.fd), syscall.IPPROTO_IP, uintptr(opt),
		uintptr(unsafe.Pointer(&buf[0])), uintptr(unsafe.Pointer(&n)), 0)
	if e != 0 {
		return e
	}
	return nil
}

// jump is one rule's jump: the chain it goes to and the rule's
// destination address match (zero when it has none).
type jump struct {
	to  string
	dst [4]byte
}

// chains maps every user chain of the nat table to its rules' jumps. No
// nat table yet (nothing programmed) is an empty map.
func (l *legacyNAT) chains() (map[string][]jump, error) {
	info := make([]byte, getInfoLen)
	copy(info, "nat")
	if err := l.getsockopt(iptSoGetInfo, info); err != nil {
		if err == syscall.ENOENT {
			return map[string][]jump{}, nil
		}
		return nil, fmt.Errorf("legacy nat table: get info: %w", err)
	}
	size := binary.NativeEndian.Uint32(info[getInfoLen-4:])
	buf := make([]byte, getEntriesHdr+int(size))
	copy(buf, "nat")
	binary.NativeEndian.PutUint32(buf[32:], size)
	if err := l.getsockopt(iptSoGetEntries, buf); err != nil {
		// EAGAIN: the table changed between the two calls.
		return nil, fmt.Errorf("legacy nat table: get entries: %w", err)
	}
	hooks := map[int]bool{}
	for i := 0; i < 5; i++ {
		hooks[int(binary.NativeEndian.Uint32(info[36+4*i:]))] = true
	}
	return parseEntries(buf[getEntriesHdr:], hooks)
}

// parseEntries walks the rule blob. A user chain starts with an ERROR
// target carrying its name; a jump is a standard target whose verdict is
// the byte offset of the first rule of the chain it jumps to. hooks are
// the offsets where built-in chains start (they have no ERROR head).
func parseEntries(blob []byte, hooks map[int]bool) (map[string][]jump, error) {
	type entry struct {
		off     int
		target  string
		data    []byte
		nextOff int
		dst     [4]byte
	}
	var entries []entry
	for off := 0; off < len(blob); {
		if off+entryNextOff+2 > len(blob) {
			return nil, fmt.Errorf("legacy nat table: truncated entry at %d", off)
		}
		t := int(binary.NativeEndian.Uint16(blob[off+entryTargetOff:]))
		next := int(binary.NativeEndian.Uint16(blob[off+entryNextOff:]))
		if next == 0 || off+next > len(blob) || t+targetHdr > next {
			return nil, fmt.Errorf("legacy nat table: bad entry at %d", off)
		}
		tgt := blob[off+t : off+next]
		name := string(bytes.TrimRight(tgt[2:31], "\x00"))
		e := entry{off: off, target: name, data: tgt[targetHdr:], nextOff: next}
		copy(e.dst[:], blob[off+4:off+8]) // ipt_ip: src, then dst
		entries = append(entries, e)
		off += next
	}
	start := map[int]string{} // offset of a chain's first rule -> its name
	for _, e := range entries {
		if e.target == "ERROR" {
			start[e.off+e.nextOff] = string(bytes.TrimRight(e.data[:min(32, len(e.data))], "\x00"))
		}
	}
	out := map[string][]jump{}
	current := ""
	for _, e := range entries {
		if hooks[e.off] {
			current = ""
		}
		switch {
		case e.target == "ERROR":
			current = start[e.off+e.nextOff]
			out[current] = nil
		case e.target == "" && len(e.data) >= 4 && current != "":
			v := int32(binary.NativeEndian.Uint32(e.data))
			if to, ok := start[int(v)]; ok && v >= 0 {
				out[current] = append(out[current], jump{to: to, dst: e.dst})
			}
		}
	}
	return out, nil
}
