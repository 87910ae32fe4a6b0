package controlplane

import (
	"bufio"
	"encoding/hex"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// listeners returns the TCP sockets process pid listens on, found by
// matching its socket fds against /proc/net/tcp{,6} of its namespace.
func listeners(t *testing.T, pid int) []netip.AddrPort {
	t.Helper()
	inodes := map[string]bool{}
	fds, err := filepath.Glob(fmt.Sprintf("/proc/%d/fd/*", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, fd := range fds {
		if l, err := os.Readlink(fd); err == nil && strings.HasPrefix(l, "socket:[") {
			inodes[strings.TrimSuffix(strings.TrimPrefix(l, "socket:["), "]")] = true
		}
	}
	var out []netip.AddrPort
	for _, s := range listening(t, fmt.Sprintf("/proc/%d/net", pid)) {
		if inodes[s.inode] {
			out = append(out, s.addr)
		}
	}
	return out
}

type socket struct {
	addr  netip.AddrPort
	inode string
}

// listening parses the LISTEN rows of dir/tcp and dir/tcp6.
func listening(t *testing.T, dir string) []socket {
	t.Helper()
	var out []socket
	for _, f := range []string{"tcp", "tcp6"} {
		file, err := os.Open(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(file)
		sc.Scan() // header
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) < 10 || fields[3] != "0A" { // 0A = TCP_LISTEN
				continue
			}
			out = append(out, socket{addr: parseProcAddr(t, fields[1]), inode: fields[9]})
		}
		file.Close()
	}
	return out
}

// parseProcAddr decodes "0100007F:1F90": the address in host (little
// endian) 32-bit words, the port in hex.
func parseProcAddr(t *testing.T, s string) netip.AddrPort {
	t.Helper()
	hexIP, hexPort, _ := strings.Cut(s, ":")
	raw, err := hex.DecodeString(hexIP)
	if err != nil {
		t.Fatalf("address %q: %v", s, err)
	}
	for i := 0; i+4 <= len(raw); i += 4 {
		raw[i], raw[i+1], raw[i+2], raw[i+3] = raw[i+3], raw[i+2], raw[i+1], raw[i]
	}
	ip, _ := netip.AddrFromSlice(raw)
	port, err := strconv.ParseUint(hexPort, 16, 16)
	if err != nil {
		t.Fatalf("port %q: %v", s, err)
	}
	return netip.AddrPortFrom(ip.Unmap(), uint16(port))
}

// rssKiB reads VmRSS of pid.
func rssKiB(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			if err != nil {
				t.Fatal(err)
			}
			return kb
		}
	}
	t.Fatalf("no VmRSS for pid %d", pid)
	return 0
}

func TestProcAddressesDecode(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"0100007F:1F90", "127.0.0.1:8080"},
		{"00000000:0050", "0.0.0.0:80"},
		{"00000000000000000000000001000000:0016", "[::1]:22"},
	} {
		if got := parseProcAddr(t, tc.in).String(); got != tc.want {
			t.Errorf("parseProcAddr(%s) = %s, want %s", tc.in, got, tc.want)
		}
	}
}
