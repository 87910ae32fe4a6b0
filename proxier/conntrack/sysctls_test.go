package conntrack

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/proxyproof/proxyproof/proxier/netns"
)

func TestConntrackMaxFollowsKubeProxy(t *testing.T) {
	tests := []struct {
		name   string
		s      Settings
		numCPU int
		want   int
	}{
		{"maxPerCore 0 leaves the sysctl alone", Settings{MaxPerCore: 0, Min: 131072}, 4, 0},
		{"per core times CPUs when above min", Settings{MaxPerCore: 32768, Min: 131072}, 8, 262144},
		{"min when per core times CPUs is below it", Settings{MaxPerCore: 32768, Min: 131072}, 2, 131072},
		{"no min means per core times CPUs", Settings{MaxPerCore: 1000}, 3, 3000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := conntrackMax(tt.s, tt.numCPU); got != tt.want {
				t.Errorf("conntrackMax = %d, want %d", got, tt.want)
			}
		})
	}
}

func sysctlIn(t *testing.T, ns, name string) int {
	t.Helper()
	out, err := netns.Cmd(ns, "cat", procNetfilter+name).Output()
	if err != nil {
		t.Fatalf("read %s in %q: %v", name, ns, err)
	}
	v, err := strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil {
		t.Fatalf("read %s in %q: %v", name, ns, err)
	}
	return v
}

func TestKernelSysctlsInANodeNamespace(t *testing.T) {
	ns := scratchNetns(t)
	hostUDP := sysctlIn(t, "", "nf_conntrack_udp_timeout")
	current := sysctlIn(t, ns, "nf_conntrack_max")
	udp := 47 * time.Second
	if int(udp/time.Second) == hostUDP {
		udp = 48 * time.Second
	}

	errs := ApplySysctls(ns, Settings{
		MaxPerCore:            1,
		Min:                   int32(current + 1), // forces a write attempt
		TCPEstablishedTimeout: 2 * time.Hour,
		TCPCloseWaitTimeout:   time.Hour,
		UDPTimeout:            udp,
		UDPStreamTimeout:      3 * time.Minute,
	})

	t.Run("the read-only nf_conntrack_max gives one clear message", func(t *testing.T) {
		if len(errs) != 1 {
			t.Fatalf("got %d errors, want 1 (nf_conntrack_max): %v", len(errs), errs)
		}
		var se *SysctlError
		if !errors.As(errs[0], &se) || se.Name != "net.netfilter.nf_conntrack_max" {
			t.Fatalf("error %v does not name net.netfilter.nf_conntrack_max", errs[0])
		}
		msg := errs[0].Error()
		for _, want := range []string{"read-only", "host", "maxPerCore", strconv.Itoa(current + 1)} {
			if !strings.Contains(msg, want) {
				t.Errorf("message lacks %q: %s", want, msg)
			}
		}
	})
	t.Run("per-namespace timeouts are set in the namespace", func(t *testing.T) {
		for name, want := range map[string]int{
			"nf_conntrack_tcp_timeout_established": 7200,
			"nf_conntrack_tcp_timeout_close_wait":  3600,
			"nf_conntrack_udp_timeout":             int(udp / time.Second),
			"nf_conntrack_udp_timeout_stream":      180,
		} {
			if got := sysctlIn(t, ns, name); got != want {
				t.Errorf("%s in %s = %d, want %d", name, ns, got, want)
			}
		}
	})
	t.Run("the host namespace is untouched", func(t *testing.T) {
		if got := sysctlIn(t, "", "nf_conntrack_udp_timeout"); got != hostUDP {
			t.Errorf("host nf_conntrack_udp_timeout = %d, was %d", got, hostUDP)
		}
	})
	t.Run("a read-only max already at the wanted value is no error", func(t *testing.T) {
		if errs := ApplySysctls(ns, Settings{MaxPerCore: 1, Min: int32(current)}); len(errs) != 0 {
			t.Errorf("ApplySysctls = %v, want none", errs)
		}
	})
}
