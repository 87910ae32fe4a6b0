package app

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/proxyproof/proxyproof/proxier/behaviour"
	"github.com/proxyproof/proxyproof/proxier/config"
	"github.com/proxyproof/proxyproof/proxier/netns"
)

// kernelText is what a user reads to see which mode a node carries.
func kernelText(t *testing.T, ns string, cmd ...string) string {
	t.Helper()
	out, err := netns.Cmd(ns, cmd[0], cmd[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s in %s: %v: %s", strings.Join(cmd, " "), ns, err, out)
	}
	return string(out)
}

// programmed says whether mode's rules for the Service at clusterIP are in
// the kernel of ns.
func programmed(t *testing.T, ns, mode, clusterIP string) bool {
	t.Helper()
	switch mode {
	case config.ModeNFTables:
		out := kernelText(t, ns, "nft", "list", "ruleset")
		return strings.Contains(out, "table ip kube-proxy") && strings.Contains(out, clusterIP)
	case config.ModeIPTables:
		out := kernelText(t, ns, "iptables-save", "-t", "nat")
		return strings.Contains(out, "-d "+clusterIP+"/32") && strings.Contains(out, "KUBE-SVC-")
	case config.ModeIPVS:
		return strings.Contains(kernelText(t, ns, "ipvsadm", "-Ln"), clusterIP+":")
	}
	t.Fatalf("no reader for mode %s", mode)
	return false
}

// leftovers says whether anything only mode writes is still in the kernel
// of ns: what the old mode's removal must take, to the last chain. (No
// reader for ipvs yet: no test leaves ipvs, see README.)
func leftovers(t *testing.T, ns, mode string) bool {
	t.Helper()
	switch mode {
	case config.ModeNFTables:
		return strings.Contains(kernelText(t, ns, "nft", "list", "tables"), "kube-proxy")
	case config.ModeIPTables:
		out := kernelText(t, ns, "iptables-save")
		for _, only := range []string{"KUBE-SVC-", "KUBE-SEP-", "KUBE-EXTERNAL-SERVICES", "KUBE-PROXY-CANARY"} {
			if strings.Contains(out, only) {
				return true
			}
		}
		return false
	}
	t.Fatalf("no reader for mode %s", mode)
	return false
}

// pace is how hard the clients and the kernel observer work: the kernel VM
// emulates its CPU (TCG), so there they are scaled down or they, not the
// switch, would be what times out.
type pace struct {
	settle  time.Duration // how long the switch may take
	workers int           // new-connection clients
	poll    time.Duration // between two kernel readings
	// trace records the Service's conntrack events, so a failed or slow
	// new connection can be followed through the kernel (VM: few enough
	// connections).
	trace bool
	// connect bounds each new connection's connect (0: 2 s, one SYN
	// retransmit). In the kernel VM 4 s (two): there, under a contended
	// host, a lone SYN and its retransmit went unanswered in 3 of 18
	// runs, always while the new proxier's first sync kept the VM busy,
	// never two connections in a row (the signature of a lost packet,
	// not of a rules gap, which fails every connection it spans). Any
	// connect needing a retransmit is logged with its conntrack events.
	connect time.Duration
}

var (
	hostPace = pace{settle: 15 * time.Second, workers: 3, poll: 20 * time.Millisecond}
	vmPace   = pace{settle: 4 * tcgSettle, workers: 1, poll: 250 * time.Millisecond, trace: true, connect: 4 * time.Second}
)

// switchTimes is what an observer polling the kernel every pace.poll saw: when
// the new mode's rules appeared and when the old mode's were gone.
type switchTimes struct{ bIn, aGone time.Time }

// watchSwitch polls ns in the background until the old mode's rules are
// gone after the new mode's appeared, or deadline passes.
func watchSwitch(t *testing.T, ns, from, to, clusterIP string, pc pace) <-chan switchTimes {
	t.Helper()
	out := make(chan switchTimes, 1)
	go func() {
		var st switchTimes
		defer func() { out <- st }()
		for end := time.Now().Add(pc.settle); time.Now().Before(end); time.Sleep(pc.poll) {
			now := time.Now()
			if st.bIn.IsZero() && programmed(t, ns, to, clusterIP) {
				st.bIn = now
			}
			if !st.bIn.IsZero() && !leftovers(t, ns, from) {
				st.aGone = now
				return
			}
		}
	}()
	return out
}

// scrapeMetrics returns the proxier's /metrics page, served in the node.
func scrapeMetrics(t *testing.T, env *behaviour.Env) string {
	t.Helper()
	c := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return netns.Dial(ctx, &net.Dialer{}, env.Topo.Node1, "tcp4", addr)
		}}}
	resp, err := c.Get("http://127.0.0.1:10249/metrics")
	if err != nil {
		t.Fatalf("scrape the proxier's metrics: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return string(body)
}

// switched is what the clients saw during one switch.
type switched struct {
	newOK, longOK     int
	newFail, longFail []string
	failPorts, slow   []string // failPorts: of the failed and the slow, where known
	longAt            []time.Time
	stalls            []stall
	events            string // conntrack -E of the Service, when traced
}

// switchUnderLoad runs node1 in mode `from` with clients going, stops that
// proxier as a DaemonSet rollout does (no cleanup), and starts mode `to`:
// with --migrate-from when migrate is set, else the usual way (--cleanup
// first, then the new mode). It returns what the clients saw; with
// migrate it also requires that only the new mode's rules remain.
func switchUnderLoad(t *testing.T, from, to string, migrate bool, pc pace) (switched, *behaviour.Env) {
	var stopA func()
	var cfgA *config.Config
	env := behaviour.Setup(t, func(ctx context.Context, env *behaviour.Env) (err error) {
		if cfgA, err = testConfig(from, env); err != nil {
			return err
		}
		actx, cancel := context.WithCancel(ctx)
		done, err := runUntil(actx, cfgA, env)
		stopA = func() { cancel(); <-done }
		return err
	})
	env.Settle = pc.settle
	const ip = "10.96.7.10"
	addr := env.ClusterIPService(t, "migrate", ip, "a", "b", "d")
	client := env.Topo.Pods["client"].NS
	waitAnswered(t, client, addr, env.Settle)
	var events *conntrackEvents
	if pc.trace {
		events = traceConntrack(t, env.Topo.Node1, ip)
	}
	l, err := startLoad(client, addr, pc.workers, pc.connect)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	stopA()
	stopped := time.Now()
	time.Sleep(500 * time.Millisecond) // the new pod being scheduled and pulled
	var extra []string
	if migrate {
		extra = append(extra, "--migrate-from="+from)
	} else if err := Cleanup(context.Background(), cfgA); err != nil {
		t.Fatal(err)
	}
	cfgB, err := testConfig(to, env, extra...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	seen := watchSwitch(t, env.Topo.Node1, from, to, ip, pc)
	started := time.Now()
	if _, err := runUntil(ctx, cfgB, env); err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); _ = Cleanup(context.Background(), cfgB) })
	st := <-seen
	if st.aGone.IsZero() {
		t.Fatalf("%s -> %s: after %v the node does not carry only the new mode's rules (%s rules seen at %v)",
			from, to, env.Settle, to, st.bIn)
	}
	time.Sleep(time.Second) // new connections through the new mode alone
	var r switched
	r.newOK, r.newFail, r.longOK, r.longFail = l.finish()
	r.failPorts, r.slow, r.longAt, r.stalls = append(l.failPorts, l.slowPorts...), l.slow, l.longAt, l.stalls
	if events != nil {
		r.events = events.stop()
	}
	// Clock times too, to place a failed request (stamped when it gave up,
	// probeTimeout after it began) against the switch.
	clock := func(at time.Time) string { return at.Format("15:04:05.000") }
	t.Logf("%s -> %s (migrate %v): old proxier stopped %s, new started %s, new mode's rules seen %s (%v after start), old mode's gone %s (%v after that; polls every %v); "+
		"new connections %d ok (%d needed a SYN retransmit), %d failed; long-lived requests %d ok, %d failed",
		from, to, migrate, clock(stopped), clock(started), clock(st.bIn), st.bIn.Sub(started).Round(time.Millisecond),
		clock(st.aGone), st.aGone.Sub(st.bIn).Round(time.Millisecond), pc.poll,
		r.newOK, len(r.slow), len(r.newFail), r.longOK, len(r.longFail))
	var longest time.Duration
	for _, s := range r.stalls {
		longest = max(longest, s.late)
	}
	t.Logf("the clients' process stalled (a 20 ms sleep over %v late) %d times, the longest %v", stallAfter, len(r.stalls), longest.Round(time.Millisecond))
	if len(r.slow) > 0 || len(r.newFail) > 0 {
		r.explain(t, env.Topo.Node1, to, ip)
	}
	if r.newOK == 0 || r.longOK == 0 {
		t.Errorf("no traffic measured (new %d, long-lived %d): the test proves nothing", r.newOK, r.longOK)
	}
	if leftovers(t, env.Topo.Node1, from) || !programmed(t, env.Topo.Node1, to, ip) {
		t.Errorf("after the switch the node has %s leftovers: %v, %s rules: %v; want only %s",
			from, leftovers(t, env.Topo.Node1, from), to, programmed(t, env.Topo.Node1, to, ip), to)
	}
	return r, env
}

// testMigration asserts --migrate-from drops nothing, new or established.
func testMigration(t *testing.T, from, to string, pc pace) {
	r, env := switchUnderLoad(t, from, to, true, pc)
	if len(r.newFail) > 0 {
		t.Errorf("%d of %d new connections failed during the switch:\n%s", len(r.newFail), r.newOK+len(r.newFail),
			strings.Join(r.newFail[:min(len(r.newFail), 10)], "\n"))
	}
	if len(r.longFail) > 0 {
		t.Errorf("the long-lived connection broke after %d requests: %s", r.longOK, r.longFail[0])
	}
	if m := scrapeMetrics(t, env); !strings.Contains(m, "proxyproof_conntrack_entries ") ||
		strings.Contains(m, "proxyproof_conntrack_entries 0\n") {
		t.Errorf("the metrics page lacks a non-zero proxyproof_conntrack_entries under load")
	}
}

func waitAnswered(t *testing.T, ns, addr string, settle time.Duration) {
	t.Helper()
	deadline := time.Now().Add(settle)
	for {
		_, _, err := behaviour.HTTP(ns, addr)
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never answered before the switch: %v", addr, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestKernelMigrationIPTablesToNFTablesDropsNothing(t *testing.T) {
	testMigration(t, config.ModeIPTables, config.ModeNFTables, hostPace)
}

func TestKernelMigrationNFTablesToIPTablesDropsNothing(t *testing.T) {
	testMigration(t, config.ModeNFTables, config.ModeIPTables, hostPace)
}

// TestKernelSwitchTheUsualWayDropsNewConnections is the comparison, and
// the proof that the load above sees a gap when there is one: --cleanup
// before the new mode leaves the Service without rules until its first
// sync, and new connections in that gap time out.
func TestKernelSwitchTheUsualWayDropsNewConnections(t *testing.T) {
	r, _ := switchUnderLoad(t, config.ModeIPTables, config.ModeNFTables, false, hostPace)
	if len(r.newFail) == 0 {
		t.Errorf("no new connection failed across --cleanup and a restart; the load cannot see a gap")
	}
}

// conntrackEvents is conntrack -E running in a node, its output kept.
type conntrackEvents struct {
	cmd *exec.Cmd
	mu  sync.Mutex
	out bytes.Buffer
}

func (e *conntrackEvents) Write(p []byte) (int, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.out.Write(p)
}

// traceConntrack starts tracing the conntrack events of TCP flows to ip in
// ns, with timestamps.
func traceConntrack(t *testing.T, ns, ip string) *conntrackEvents {
	t.Helper()
	e := &conntrackEvents{}
	e.cmd = netns.Cmd(ns, "conntrack", "-E", "-o", "timestamp", "-p", "tcp", "-d", ip)
	e.cmd.Stdout, e.cmd.Stderr = e, e
	if err := e.cmd.Start(); err != nil {
		t.Fatalf("conntrack -E: %v", err)
	}
	t.Cleanup(func() { _ = e.cmd.Process.Kill(); _ = e.cmd.Wait() })
	return e
}

func (e *conntrackEvents) stop() string {
	time.Sleep(200 * time.Millisecond) // the last events
	_ = e.cmd.Process.Kill()
	_ = e.cmd.Wait()
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.out.String()
}

// explain logs what node's kernel holds of the failed and slow new
// connections to ip: the conntrack events of flows never answered (lost
// SYNs), those of the failed ports, and IPVS's connections.
func (r switched) explain(t *testing.T, node, to, ip string) {
	t.Helper()
	t.Logf("new connections that needed a SYN retransmit: %s", strings.Join(r.slow, "; "))
	// The long-lived connection asks every 50 ms: a long pause in its
	// answers means the client's kernel or process stalled (everything
	// shares the kernel VM's one vCPU), not the new connections' rules.
	var gap time.Duration
	var gapFrom time.Time
	for i := 1; i < len(r.longAt); i++ {
		if d := r.longAt[i].Sub(r.longAt[i-1]); d > gap {
			gap, gapFrom = d, r.longAt[i-1]
		}
	}
	t.Logf("the long-lived connection's longest wait between two answers: %v, from %s", gap.Round(time.Millisecond), gapFrom.Format("15:04:05.000"))
	for _, s := range r.stalls {
		t.Logf("the clients' process did not run from %s for %v", s.at.Format("15:04:05.000"), s.late.Round(time.Millisecond))
	}
	// What the node's kernel still holds of them, to tell a lost SYN
	// from a lost answer and which mode's path it took.
	out, _ := netns.Cmd(node, "conntrack", "-L", "-p", "tcp", "-d", ip).CombinedOutput()
	// Flows that never got an answer: the lost SYNs, by their port.
	answered := map[string]bool{}
	for _, line := range strings.Split(r.events, "\n") {
		if f := strings.Fields(line); len(f) > 0 && !strings.Contains(line, "UNREPLIED") {
			for _, w := range f {
				if strings.HasPrefix(w, "sport=") {
					answered[w] = true
					break
				}
			}
		}
	}
	for _, line := range strings.Split(r.events, "\n") {
		for _, w := range strings.Fields(line) {
			if strings.HasPrefix(w, "sport=") {
				if !answered[w] {
					t.Logf("conntrack event of a flow never answered: %s", line)
				}
				break
			}
		}
	}
	for _, line := range strings.Split(r.events, "\n") {
		for _, port := range r.failPorts {
			if strings.Contains(line, "sport="+port+" ") {
				t.Logf("conntrack event of the failed or slow connection from port %s: %s", port, line)
			}
		}
	}
	for _, line := range strings.Split(string(out), "\n") {
		for _, port := range r.failPorts {
			if strings.Contains(line, "sport="+port+" ") {
				t.Logf("conntrack entry of the failed or slow connection from port %s: %s", port, line)
			}
		}
	}
	if to == config.ModeIPVS {
		out, _ := netns.Cmd(node, "ipvsadm", "-Lnc").CombinedOutput()
		for _, line := range strings.Split(string(out), "\n") {
			for _, port := range r.failPorts {
				if strings.Contains(line, ":"+port+" ") {
					t.Logf("IPVS connection of the failed or slow connection from port %s: %s", port, line)
				}
			}
		}
	}
}
