package bench

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"sort"
	"sync"
	"syscall"
	"time"

	"github.com/moby/ipvs"
)

// ProbeCommand is the first argument that makes a binary holding this
// package (cmd/bench, the package's test binary) serve the in-VM probe:
//
//	BINARY ipvs-probe --listen ADDR --log FILE -- PROXIER ARGS...
//
// The host cannot setns into the kernel VM, so the probe runs there
// beside the proxier: it starts the proxier, and answers the host's reads
// of the guest kernel's IPVS table and the proxier's /proc over the tap.
const ProbeCommand = "ipvs-probe"

// probeReply is every probe answer. Exited and Exit ride along with each
// one so the host notices a dead proxier without asking separately.
type probeReply struct {
	// ElapsedS is guest time since the proxier started.
	ElapsedS float64 `json:"elapsed_s"`
	Exited   bool    `json:"exited,omitempty"`
	Exit     string  `json:"exit,omitempty"`
	// Active maps each TCP virtual server to its real servers of weight > 0 (/state).
	Active map[string]int `json:"active,omitempty"`
	// Dests are one virtual server's real servers of weight > 0 (/dests).
	Dests []string `json:"dests,omitempty"`
	// Virtual and Real count virtual and real servers of any protocol
	// and weight (/counts).
	Virtual int `json:"virtual,omitempty"`
	Real    int `json:"real,omitempty"`
	// RSSMB and CPUS are the proxier's (/usage).
	RSSMB float64 `json:"rss_mb,omitempty"`
	CPUS  float64 `json:"cpu_s,omitempty"`
	Error string  `json:"error,omitempty"`
}

// ProbeMain runs the probe with args after ProbeCommand; it returns only
// when it cannot serve.
func ProbeMain(args []string) error {
	fs := flag.NewFlagSet(ProbeCommand, flag.ContinueOnError)
	listen := fs.String("listen", "", "address to serve on (the guest's NIC)")
	logFile := fs.String("log", "", "the proxier's log")
	if err := fs.Parse(args); err != nil {
		return err
	}
	argv := fs.Args()
	if *listen == "" || *logFile == "" || len(argv) == 0 {
		return fmt.Errorf("%s: want --listen ADDR --log FILE -- PROXIER ARGS...", ProbeCommand)
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("%s: %w", ProbeCommand, err)
	}
	h, err := ipvs.New("")
	if err != nil {
		return fmt.Errorf("%s: ipvs netlink: %w", ProbeCommand, err)
	}
	p, err := startGuestProxier(argv, *logFile)
	if err != nil {
		return err
	}
	return http.Serve(ln, p.mux(h))
}

// guestProxier is the proxier the probe started.
type guestProxier struct {
	cmd   *exec.Cmd
	start time.Time
	mu    sync.Mutex
	done  bool
	err   error
}

func startGuestProxier(argv []string, logFile string) (*guestProxier, error) {
	f, err := os.Create(logFile)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", ProbeCommand, err)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	p := &guestProxier{cmd: cmd, start: time.Now()}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: start %s: %w", ProbeCommand, argv[0], err)
	}
	go func() {
		err := cmd.Wait()
		f.Close()
		p.mu.Lock()
		p.done, p.err = true, err
		p.mu.Unlock()
	}()
	return p, nil
}

func (p *guestProxier) reply() probeReply {
	p.mu.Lock()
	defer p.mu.Unlock()
	r := probeReply{ElapsedS: time.Since(p.start).Seconds(), Exited: p.done}
	if p.done {
		r.Exit = fmt.Sprint(p.err)
		if p.err == nil {
			r.Exit = "exit status 0"
		}
	}
	return r
}

func (p *guestProxier) mux(h *ipvs.Handle) *http.ServeMux {
	m := http.NewServeMux()
	answer := func(w http.ResponseWriter, fill func(*probeReply) error) {
		r := p.reply()
		if err := fill(&r); err != nil {
			r.Error = err.Error()
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(r)
	}
	table := func() (ipvsTable, error) {
		b, err := os.ReadFile("/proc/net/ip_vs")
		if err != nil {
			return nil, err
		}
		return parseIPVSProc(string(b))
	}
	m.HandleFunc("/state", func(w http.ResponseWriter, _ *http.Request) {
		answer(w, func(r *probeReply) error {
			t, err := table()
			if err != nil {
				return err
			}
			r.Active = map[string]int{}
			for vs := range t {
				r.Active[vs] = t.active(vs)
			}
			return nil
		})
	})
	m.HandleFunc("/dests", func(w http.ResponseWriter, req *http.Request) {
		answer(w, func(r *probeReply) error {
			var err error
			r.Dests, err = activeDests(h, req.URL.Query().Get("vs"))
			return err
		})
	})
	m.HandleFunc("/counts", func(w http.ResponseWriter, _ *http.Request) {
		answer(w, func(r *probeReply) error {
			t, err := table()
			if err != nil {
				return err
			}
			r.Virtual = len(t)
			for _, rs := range t {
				r.Real += len(rs)
			}
			return nil
		})
	})
	m.HandleFunc("/usage", func(w http.ResponseWriter, _ *http.Request) {
		answer(w, func(r *probeReply) error {
			var err error
			r.RSSMB, r.CPUS, err = procUsage(p.cmd.Process.Pid)
			return err
		})
	})
	return m
}

// activeDests asks the kernel over netlink for one TCP virtual server's
// real servers: a read whose cost does not grow with the table.
func activeDests(h *ipvs.Handle, vs string) ([]string, error) {
	ap, err := netip.ParseAddrPort(vs)
	if err != nil || !ap.Addr().Is4() {
		return nil, fmt.Errorf("virtual server %q: want IPv4:PORT", vs)
	}
	ds, err := h.GetDestinations(&ipvs.Service{
		AddressFamily: syscall.AF_INET, Protocol: syscall.IPPROTO_TCP,
		Address: net.IP(ap.Addr().AsSlice()), Port: ap.Port(),
	})
	if err != nil {
		if errors.Is(err, syscall.ESRCH) || errors.Is(err, syscall.ENOENT) {
			return nil, nil // no such virtual server (yet)
		}
		return nil, fmt.Errorf("virtual server %s: %w", vs, err)
	}
	out := []string{}
	for _, d := range ds {
		if d.Weight > 0 {
			out = append(out, net.JoinHostPort(d.Address.String(), fmt.Sprint(d.Port)))
		}
	}
	sort.Strings(out)
	return out, nil
}
