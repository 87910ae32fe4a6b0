package agent

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/proxyproof/proxyproof/proxier/netns"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/klog/v2"
)

// probeKind is what a probe's result drives.
type probeKind string

const (
	readiness probeKind = "Readiness"
	liveness  probeKind = "Liveness"
)

// startProbes runs the container's readiness and liveness probes for one
// run of it (p), until ctx ends. Like the kubelet, probes go from the node
// to the pod IP (httpGet, tcpSocket) or run in the pod (exec).
func (w *worker) startProbes(ctx context.Context, pod *corev1.Pod, spec *corev1.Container, c *container, p *proc, env map[string]string) {
	t := probeTarget{netns: w.sb.Netns, ip: w.ip.String(), env: env}
	ready := c.ready // this run's flag: a late result of an old run lands in an old flag
	if pr := spec.ReadinessProbe; pr != nil {
		go w.probeLoop(ctx, pod, spec, pr, readiness, t, func(ok bool) {
			ready.Store(ok)
			w.poke()
		})
	}
	if pr := spec.LivenessProbe; pr != nil {
		go w.probeLoop(ctx, pod, spec, pr, liveness, t, func(ok bool) {
			if ok {
				return
			}
			klog.InfoS("Liveness probe failed; restarting container", "pod", klog.KObj(pod), "container", spec.Name)
			p.term()
			grace := gracePeriod(pod)
			if s := pr.TerminationGracePeriodSeconds; s != nil {
				grace = time.Duration(*s) * time.Second
			}
			select {
			case <-p.done:
			case <-time.After(grace):
				p.kill()
			}
		})
	}
}

// probeTarget is where a run's probes go; copied so probe goroutines never
// read the worker's fields.
type probeTarget struct {
	netns, ip string
	env       map[string]string
}

// probeLoop probes every period and calls changed when the result flips
// after successThreshold successes or failureThreshold failures.
// Readiness starts false, liveness true, as in the kubelet.
func (w *worker) probeLoop(ctx context.Context, pod *corev1.Pod, spec *corev1.Container, pr *corev1.Probe, kind probeKind, t probeTarget, changed func(ok bool)) {
	period := seconds(pr.PeriodSeconds, 10)
	timeout := seconds(pr.TimeoutSeconds, 1)
	success := max(int(pr.SuccessThreshold), 1)
	failure := max(int(pr.FailureThreshold), 1)
	if pr.FailureThreshold == 0 {
		failure = 3
	}
	state := kind == liveness
	streak := 0
	select {
	case <-ctx.Done():
		return
	case <-time.After(time.Duration(pr.InitialDelaySeconds) * time.Second):
	}
	tick := time.NewTicker(period)
	defer tick.Stop()
	for {
		pctx, cancel := context.WithTimeout(ctx, timeout)
		ok, detail := w.a.probeOnce(pctx, spec, pr, t)
		cancel()
		if ctx.Err() != nil {
			return
		}
		if ok == state {
			streak = 0
		} else {
			streak++
			if !ok {
				w.a.recorder.Eventf(pod, corev1.EventTypeWarning, "Unhealthy", "%s probe failed: %s", kind, detail)
			}
			if ok && streak >= success || !ok && streak >= failure {
				state, streak = ok, 0
				klog.V(2).InfoS("Probe result changed", "pod", klog.KObj(pod), "container", spec.Name, "probe", kind, "ok", ok, "detail", detail)
				changed(ok)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func seconds(v int32, def int) time.Duration {
	if v <= 0 {
		return time.Duration(def) * time.Second
	}
	return time.Duration(v) * time.Second
}

// probeOnce runs one probe: success and a word on what happened.
func (a *Agent) probeOnce(ctx context.Context, spec *corev1.Container, pr *corev1.Probe, t probeTarget) (bool, string) {
	switch {
	case pr.Exec != nil:
		return probeExec(ctx, pr.Exec, t)
	case pr.HTTPGet != nil:
		return a.probeHTTP(ctx, spec, pr.HTTPGet, t)
	case pr.TCPSocket != nil:
		port, err := resolvePort(pr.TCPSocket.Port, spec)
		if err != nil {
			return false, err.Error()
		}
		host := pr.TCPSocket.Host
		if host == "" {
			host = t.ip
		}
		conn, err := a.dial(ctx, "tcp", net.JoinHostPort(host, strconv.Itoa(port)))
		if err != nil {
			return false, err.Error()
		}
		conn.Close()
		return true, ""
	default:
		return false, "probe type not supported by the local provider (exec, httpGet and tcpSocket are)"
	}
}

func probeExec(ctx context.Context, e *corev1.ExecAction, t probeTarget) (bool, string) {
	if len(e.Command) == 0 {
		return false, "no command"
	}
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", t.netns}, e.Command...)...)
	for k, v := range t.env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return false, fmt.Sprintf("command %q: %v: %s", e.Command, err, strings.TrimSpace(string(out)))
	}
	return true, ""
}

func (a *Agent) probeHTTP(ctx context.Context, spec *corev1.Container, g *corev1.HTTPGetAction, t probeTarget) (bool, string) {
	port, err := resolvePort(g.Port, spec)
	if err != nil {
		return false, err.Error()
	}
	host := g.Host
	if host == "" {
		host = t.ip
	}
	scheme := strings.ToLower(string(g.Scheme))
	if scheme == "" {
		scheme = "http"
	}
	path := g.Path
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	u := url.URL{Scheme: scheme, Host: net.JoinHostPort(host, strconv.Itoa(port)), Path: path}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return false, err.Error()
	}
	req.Header.Set("User-Agent", "kube-probe/1.34")
	for _, h := range g.HTTPHeaders {
		req.Header.Set(h.Name, h.Value)
	}
	client := &http.Client{
		Transport: &http.Transport{
			DialContext:       a.dial,
			TLSClientConfig:   &tls.Config{InsecureSkipVerify: true}, // as the kubelet: probes do not verify
			DisableKeepAlives: true,
		},
		// A redirect counts as success, as the kubelet does for off-host ones.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	resp, err := client.Do(req)
	if err != nil {
		return false, err.Error()
	}
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode >= 400 {
		return false, fmt.Sprintf("HTTP probe failed with statuscode: %d", resp.StatusCode)
	}
	return true, ""
}

// resolvePort turns a probe port (number or the name of a container port)
// into a number.
func resolvePort(p intstr.IntOrString, spec *corev1.Container) (int, error) {
	if p.Type == intstr.Int {
		if p.IntVal <= 0 || p.IntVal > 65535 {
			return 0, fmt.Errorf("probe port %d out of range", p.IntVal)
		}
		return int(p.IntVal), nil
	}
	for _, cp := range spec.Ports {
		if cp.Name == p.StrVal {
			return int(cp.ContainerPort), nil
		}
	}
	if n, err := strconv.Atoi(p.StrVal); err == nil && n > 0 && n <= 65535 {
		return n, nil
	}
	return 0, fmt.Errorf("probe port %q names no port of container %s", p.StrVal, spec.Name)
}

// dial connects from the node's namespace, where the kubelet's probes
// come from.
func (a *Agent) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	return netns.Dial(ctx, &net.Dialer{}, a.cfg.Netns, network, addr)
}
