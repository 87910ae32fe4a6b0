package conntrack

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"k8s.io/klog/v2"

	"github.com/proxyproof/proxyproof/proxier/netns"
)

// Settings is the conntrack part of KubeProxyConfiguration. A zero field
// leaves its sysctl alone, as kube-proxy does.
type Settings struct {
	// MaxPerCore * number of CPUs, at least Min, is nf_conntrack_max.
	MaxPerCore int32
	Min        int32

	TCPEstablishedTimeout time.Duration
	TCPCloseWaitTimeout   time.Duration
	// TCPBeLiberal sets nf_conntrack_tcp_be_liberal (out-of-window packets
	// are not marked INVALID).
	TCPBeLiberal     bool
	UDPTimeout       time.Duration
	UDPStreamTimeout time.Duration
}

// SysctlError says which sysctl could not be set, why, and what the
// operator can do. It never stops the proxier.
type SysctlError struct {
	Name   string // e.g. "net.netfilter.nf_conntrack_max"
	Value  int
	Err    error
	Advice string
}

func (e *SysctlError) Error() string {
	msg := fmt.Sprintf("cannot set %s=%d: %v", e.Name, e.Value, e.Err)
	if e.Advice != "" {
		msg += "; " + e.Advice
	}
	return msg
}

func (e *SysctlError) Unwrap() error { return e.Err }

const procNetfilter = "/proc/sys/net/netfilter/"

// ApplySysctls writes the conntrack sysctls of c in network namespace
// netnsName ("" = here) and returns, each as a *SysctlError already logged,
// the ones it could not set. The caller goes on either way: kube-proxy
// tuning is advice to the kernel, not a precondition for proxying.
func ApplySysctls(netnsName string, c Settings) []error {
	var errs []error
	fail := func(err error) {
		klog.ErrorS(err, "Conntrack sysctl not applied; the proxier goes on", "netns", netnsName)
		errs = append(errs, err)
	}

	if max := conntrackMax(c, runtime.NumCPU()); max > 0 {
		if err := setMax(netnsName, max); err != nil {
			fail(err)
		}
	}
	seconds := func(d time.Duration) int { return int(d / time.Second) }
	for _, s := range []struct {
		name  string
		value int
		set   bool
	}{
		{"nf_conntrack_tcp_timeout_established", seconds(c.TCPEstablishedTimeout), c.TCPEstablishedTimeout > 0},
		{"nf_conntrack_tcp_timeout_close_wait", seconds(c.TCPCloseWaitTimeout), c.TCPCloseWaitTimeout > 0},
		{"nf_conntrack_tcp_be_liberal", 1, c.TCPBeLiberal},
		{"nf_conntrack_udp_timeout", seconds(c.UDPTimeout), c.UDPTimeout > 0},
		{"nf_conntrack_udp_timeout_stream", seconds(c.UDPStreamTimeout), c.UDPStreamTimeout > 0},
	} {
		if !s.set {
			continue
		}
		if _, err := setSysctl(netnsName, s.name, s.value); err != nil {
			fail(&SysctlError{Name: "net.netfilter." + s.name, Value: s.value, Err: err,
				Advice: "this sysctl is per network namespace; check that the proxier runs with CAP_NET_ADMIN and a writable /proc/sys"})
		}
	}
	return errs
}

// conntrackMax is kube-proxy's getConntrackMax: maxPerCore*CPUs, at least
// min; 0 (leave alone) when maxPerCore is 0.
func conntrackMax(c Settings, numCPU int) int {
	if c.MaxPerCore <= 0 {
		return 0
	}
	scaled := int(c.MaxPerCore) * numCPU
	if scaled > int(c.Min) {
		return scaled
	}
	return int(c.Min)
}

// setMax sets nf_conntrack_max and, like kube-proxy, grows the hash table
// to a quarter of it when smaller.
func setMax(ns string, max int) error {
	const name = "net.netfilter.nf_conntrack_max"
	current, err := setSysctl(ns, "nf_conntrack_max", max)
	if err != nil {
		e := &SysctlError{Name: name, Value: max, Err: err}
		if errors.Is(err, fs.ErrPermission) || errors.Is(err, errReadOnly) {
			// The kernel makes nf_conntrack_max read-only (0444) in every
			// network namespace but the host's: it is one global limit.
			e.Advice = fmt.Sprintf("nf_conntrack_max is global to the kernel and read-only outside the host's "+
				"network namespace (it is %d now); set net.netfilter.nf_conntrack_max=%d on the host "+
				"(sysctl -w, or /etc/sysctl.d), or set conntrack.maxPerCore to 0 so the proxier leaves it alone",
				current, max)
		}
		return e
	}
	const hashsize = "/sys/module/nf_conntrack/parameters/hashsize"
	var hashErr error
	_ = netns.Do(ns, func() error {
		size, err := readInt(hashsize)
		if err != nil || size >= max/4 {
			hashErr = err
			return nil
		}
		klog.InfoS("Setting conntrack hashsize", "conntrackHashsize", max/4)
		hashErr = os.WriteFile(hashsize, []byte(strconv.Itoa(max/4)), 0o640)
		return nil
	})
	if hashErr != nil {
		return &SysctlError{Name: "nf_conntrack hashsize", Value: max / 4, Err: hashErr,
			Advice: "the conntrack hash table is global; set the nf_conntrack module's hashsize parameter on the host"}
	}
	return nil
}

var errReadOnly = errors.New("read-only")

// setSysctl writes value to /proc/sys/net/netfilter/name from a thread in
// namespace ns (net sysctls resolve to the writer's namespace) unless it
// already holds it. It returns the value found before.
func setSysctl(ns, name string, value int) (int, error) {
	var current int
	err := netns.Do(ns, func() error {
		path := procNetfilter + name
		var err error
		if current, err = readInt(path); err != nil {
			return err
		}
		if current == value {
			return nil
		}
		if info, err := os.Stat(path); err == nil && info.Mode().Perm()&0o200 == 0 {
			return fmt.Errorf("%s: %w", path, errReadOnly)
		}
		klog.InfoS("Set sysctl", "entry", "net/netfilter/"+name, "value", value, "was", current)
		return os.WriteFile(path, []byte(strconv.Itoa(value)), 0o640)
	})
	return current, err
}

func readInt(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	v, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	return v, nil
}
