package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/proxyproof/proxyproof/proxier/kernelvm"
	"github.com/proxyproof/proxyproof/proxier/netns"
)

// probeTimeout bounds one probe request: a guest under TCG answers in
// milliseconds, unless a proxier's sync hogs its one vCPU.
const probeTimeout = 30 * time.Second

// probeClient asks the in-VM probe (ProbeMain) over the tap, dialling
// from the host namespace that holds the tap.
type probeClient struct {
	base string
	hc   *http.Client

	mu   sync.Mutex
	last probeReply // the latest answer's exit state
}

func newProbeClient(ns, addr string) *probeClient {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, a string) (net.Conn, error) {
			return netns.Dial(ctx, &net.Dialer{Timeout: 5 * time.Second}, ns, network, a)
		},
		MaxIdleConnsPerHost: 4,
	}
	return &probeClient{base: "http://" + addr, hc: &http.Client{Transport: tr, Timeout: probeTimeout}}
}

func (c *probeClient) get(ctx context.Context, path string) (probeReply, error) {
	var r probeReply
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+path, nil)
	if err != nil {
		return r, err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return r, fmt.Errorf("ipvs probe %s: %w", path, err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return r, fmt.Errorf("ipvs probe %s: %w", path, err)
	}
	c.mu.Lock()
	c.last = r
	c.mu.Unlock()
	if r.Error != "" {
		return r, fmt.Errorf("ipvs probe %s: %s", path, r.Error)
	}
	return r, nil
}

func (c *probeClient) lastReply() probeReply {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.last
}

// ipvsKernel reads the guest's IPVS table through the probe. A Service
// is programmed when its ClusterIP:80 virtual server has every endpoint
// as a real server of weight > 0; its "chain" is that virtual server.
type ipvsKernel struct {
	probe *probeClient
	// want is the endpoint count each Service starts with.
	want int
}

func (k *ipvsKernel) close() { k.probe.hc.CloseIdleConnections() }

func (k *ipvsKernel) services(ctx context.Context) (map[string]string, error) {
	r, err := k.probe.get(ctx, "/state")
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for vs, n := range r.Active {
		ip, port, ok := strings.Cut(vs, ":")
		if ok && port == strconv.Itoa(servicePort) && n == k.want {
			out[ip] = vs
		}
	}
	return out, nil
}

func (k *ipvsKernel) endpoints(ctx context.Context, vs string) (map[string]bool, error) {
	r, err := k.probe.get(ctx, "/dests?vs="+url.QueryEscape(vs))
	if err != nil {
		return nil, err
	}
	out := map[string]bool{}
	for _, d := range r.Dests {
		out[d] = true
	}
	return out, nil
}

func (k *ipvsKernel) token(_ *service, ip string) string {
	return net.JoinHostPort(ip, strconv.Itoa(endpointPort))
}

// counts are virtual servers (rules) and real servers (elements).
func (k *ipvsKernel) counts(ctx context.Context) (int, int, error) {
	r, err := k.probe.get(ctx, "/counts")
	return r.Virtual, r.Real, err
}

// vmProcess is a proxier the probe started in the kernel VM.
type vmProcess struct {
	probe  *probeClient
	cancel context.CancelFunc
	done   chan struct{}
	res    kernelvm.Result
	err    error // how the VM ended, set before done closes
}

func (p *vmProcess) vmEnded() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func (p *vmProcess) exited() bool { return p.vmEnded() || p.probe.lastReply().Exited }

func (p *vmProcess) exitReason() string {
	if last := p.probe.lastReply(); last.Exited {
		return fmt.Sprintf("proxier exited (%s)", last.Exit)
	}
	if p.vmEnded() {
		return fmt.Sprintf("kernel VM ended (%v; job exit code %d): %s", p.err, p.res.ExitCode, strings.TrimSpace(string(p.res.Output)))
	}
	return "running"
}

func (p *vmProcess) usage() (float64, float64, error) {
	if p.vmEnded() {
		return 0, 0, fmt.Errorf("kernel VM ended")
	}
	ctx, cancel := context.WithTimeout(context.Background(), probeTimeout)
	defer cancel()
	r, err := p.probe.get(ctx, "/usage")
	return r.RSSMB, r.CPUS, err
}

func (p *vmProcess) stop() {
	p.cancel()
	<-p.done
}
