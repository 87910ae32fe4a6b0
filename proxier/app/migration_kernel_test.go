package app

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/proxyproof/proxyproof/proxier/behaviour"
	"github.com/proxyproof/proxyproof/proxier/config"
	"github.com/proxyproof/proxyproof/proxier/netns"
)

// carries says whether the kernel of ns holds mode's rules for the
// Service at clusterIP: what a user would look for with iptables-save or nft.
func carries(t *testing.T, ns, mode, clusterIP string) bool {
	t.Helper()
	switch mode {
	case config.ModeNFTables:
		out, err := netns.Cmd(ns, "nft", "list", "ruleset").CombinedOutput()
		if err != nil {
			t.Fatalf("nft list ruleset in %s: %v: %s", ns, err, out)
		}
		return strings.Contains(string(out), "table ip kube-proxy")
	case config.ModeIPTables:
		out, err := netns.Cmd(ns, "iptables-save", "-t", "nat").CombinedOutput()
		if err != nil {
			t.Fatalf("iptables-save in %s: %v: %s", ns, err, out)
		}
		return strings.Contains(string(out), "-d "+clusterIP+"/32") && strings.Contains(string(out), "KUBE-SVC-")
	}
	t.Fatalf("no reader for mode %s", mode)
	return false
}

// switchTimes is what an observer polling the kernel every 20 ms saw: when
// the new mode's rules appeared and when the old mode's were gone.
type switchTimes struct{ bIn, aGone time.Time }

// watchSwitch polls ns in the background until the old mode's rules are
// gone after the new mode's appeared, or deadline passes.
func watchSwitch(t *testing.T, ns, from, to, clusterIP string, deadline time.Duration) <-chan switchTimes {
	t.Helper()
	out := make(chan switchTimes, 1)
	go func() {
		var st switchTimes
		defer func() { out <- st }()
		for end := time.Now().Add(deadline); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
			now := time.Now()
			if st.bIn.IsZero() && carries(t, ns, to, clusterIP) {
				st.bIn = now
			}
			if !st.bIn.IsZero() && !carries(t, ns, from, clusterIP) {
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
}

// switchUnderLoad runs node1 in mode `from` with clients going, stops that
// proxier as a DaemonSet rollout does (no cleanup), and starts mode `to`:
// with --migrate-from when migrate is set, else the usual way (--cleanup
// first, then the new mode). It returns what the clients saw; with
// migrate it also requires that only the new mode's rules remain.
func switchUnderLoad(t *testing.T, from, to string, migrate bool) (switched, *behaviour.Env) {
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
	const ip = "10.96.7.10"
	addr := env.ClusterIPService(t, "migrate", ip, "a", "b", "d")
	client := env.Topo.Pods["client"].NS
	waitAnswered(t, client, addr)
	l, err := startLoad(client, addr)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	stopA()
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
	seen := watchSwitch(t, env.Topo.Node1, from, to, ip, env.Settle)
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
	t.Logf("%s -> %s (migrate %v): new mode's rules seen %v after start, old mode's gone %v after that (20 ms polls); "+
		"new connections %d ok, %d failed; long-lived requests %d ok, %d failed",
		from, to, migrate, st.bIn.Sub(started).Round(time.Millisecond), st.aGone.Sub(st.bIn).Round(time.Millisecond),
		r.newOK, len(r.newFail), r.longOK, len(r.longFail))
	if r.newOK == 0 || r.longOK == 0 {
		t.Errorf("no traffic measured (new %d, long-lived %d): the test proves nothing", r.newOK, r.longOK)
	}
	if carries(t, env.Topo.Node1, from, ip) || !carries(t, env.Topo.Node1, to, ip) {
		t.Errorf("after the switch the node carries %s rules: %v, %s rules: %v; want only %s",
			from, carries(t, env.Topo.Node1, from, ip), to, carries(t, env.Topo.Node1, to, ip), to)
	}
	return r, env
}

// testMigration asserts --migrate-from drops nothing, new or established.
func testMigration(t *testing.T, from, to string) {
	r, env := switchUnderLoad(t, from, to, true)
	if len(r.newFail) > 0 {
		t.Errorf("%d of %d new connections failed during the switch; first: %s", len(r.newFail), r.newOK+len(r.newFail), r.newFail[0])
	}
	if len(r.longFail) > 0 {
		t.Errorf("the long-lived connection broke after %d requests: %s", r.longOK, r.longFail[0])
	}
	if m := scrapeMetrics(t, env); !strings.Contains(m, "proxyproof_conntrack_entries ") ||
		strings.Contains(m, "proxyproof_conntrack_entries 0\n") {
		t.Errorf("the metrics page lacks a non-zero proxyproof_conntrack_entries under load")
	}
}

func waitAnswered(t *testing.T, ns, addr string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
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
	testMigration(t, config.ModeIPTables, config.ModeNFTables)
}

func TestKernelMigrationNFTablesToIPTablesDropsNothing(t *testing.T) {
	testMigration(t, config.ModeNFTables, config.ModeIPTables)
}

// TestKernelSwitchTheUsualWayDropsNewConnections is the comparison, and
// the proof that the load above sees a gap when there is one: --cleanup
// before the new mode leaves the Service without rules until its first
// sync, and new connections in that gap time out.
func TestKernelSwitchTheUsualWayDropsNewConnections(t *testing.T) {
	r, _ := switchUnderLoad(t, config.ModeIPTables, config.ModeNFTables, false)
	if len(r.newFail) == 0 {
		t.Errorf("no new connection failed across --cleanup and a restart; the load cannot see a gap")
	}
}
