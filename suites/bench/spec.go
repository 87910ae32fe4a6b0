package bench

import (
	"fmt"
	"path/filepath"
	"strings"
	"time"
)

// Case is one kernel programming flavour: a proxy mode and, for iptables,
// the iptables backend ("nft" or "legacy") the node's `iptables` is.
type Case struct {
	Mode    string
	Backend string
}

func (c Case) String() string {
	if c.Backend == "" {
		return c.Mode
	}
	return c.Mode + "/" + c.Backend
}

// ParseCases reads "iptables/nft,iptables/legacy,nftables,ipvs".
func ParseCases(s string) ([]Case, error) {
	var out []Case
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		mode, backend, _ := strings.Cut(part, "/")
		switch {
		case mode == "iptables" && (backend == "nft" || backend == "legacy"):
		case (mode == "nftables" || mode == "ipvs") && backend == "":
		default:
			return nil, fmt.Errorf("mode %q: want iptables/nft, iptables/legacy, nftables or ipvs", part)
		}
		out = append(out, Case{Mode: mode, Backend: backend})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("modes %q: none given", s)
	}
	return out, nil
}

// Proxier is one program under test. It runs as
// `ip netns exec NODE Path Args... --config FILE --v=1` (kube-proxy's
// flags, which ours shares) unless NoConfig is set.
type Proxier struct {
	// Name is the row's proxier column: "ours", "upstream", ...
	Name string
	Path string
	Args []string
	// NoConfig omits --config/--v (for a stand-in that takes no flags).
	NoConfig bool
}

// Spec is one bench run.
type Spec struct {
	Scales   []Scale
	Cases    []Case
	Proxiers []Proxier
	// Dir receives bench.json, run.json, report.html, the control plane's
	// state and each proxier's log. Required and absolute: paths under it
	// go into the proxiers' PATH and argv (Go refuses a program found
	// through a relative PATH entry), so a caller resolves it once.
	Dir string
	// Command is the command line that ran the bench, for the report.
	Command string
	// Changes is how many one-endpoint changes each row times (>= 100 for
	// the figures).
	Changes int
	// BurstServices x BurstRounds endpoint replacements make the burst
	// (10 x 5 = the 50 endpoints across 10 Services).
	BurstServices, BurstRounds int
	// Connections is how many new connections the dataplane figure times.
	Connections int
	// FirstSyncTimeout bounds the wait for the first complete ruleset; a
	// row past it says did_not_finish.
	FirstSyncTimeout time.Duration
	// ChangeTimeout bounds the wait for one change or the burst.
	ChangeTimeout time.Duration
	// MinSyncPeriod goes into both proxiers' config; changes are spaced by
	// it (plus 100 ms) so each one meets an idle proxier.
	MinSyncPeriod time.Duration
	// Seed makes the choice of changed Services repeatable.
	Seed int64
	// IPVSMaxScale caps each scale for the IPVS rows, which run in the
	// kernel VM under TCG (default 500x5: upstream's first sync at 2,000 x
	// 5 took ~690 s there).
	IPVSMaxScale Scale
	// IPVSChanges is Changes for the IPVS rows (default 30): upstream
	// takes ~15-30 s per change in the VM, so 100 would cost an hour.
	IPVSChanges int
	// Probe is a binary holding this package that serves the in-VM probe
	// as `Probe ipvs-probe ...` (ProbeMain; cmd/bench is one). Without it
	// IPVS rows are not measured.
	Probe string
}

func (s Spec) withDefaults() Spec {
	if s.Changes == 0 {
		s.Changes = 100
	}
	if s.BurstServices == 0 {
		s.BurstServices = 10
	}
	if s.BurstRounds == 0 {
		s.BurstRounds = 5
	}
	if s.Connections == 0 {
		s.Connections = 2000
	}
	if s.FirstSyncTimeout == 0 {
		s.FirstSyncTimeout = 300 * time.Second
	}
	if s.ChangeTimeout == 0 {
		s.ChangeTimeout = 60 * time.Second
	}
	if s.MinSyncPeriod == 0 {
		s.MinSyncPeriod = time.Second
	}
	if s.Seed == 0 {
		s.Seed = 1
	}
	if s.IPVSChanges == 0 {
		s.IPVSChanges = 30
	}
	if s.IPVSMaxScale == (Scale{}) {
		s.IPVSMaxScale = Scale{Services: 500, Endpoints: 5}
	}
	return s
}

func (s Spec) validate() error {
	switch {
	case s.Dir == "":
		return fmt.Errorf("bench: Spec.Dir is required")
	case !filepath.IsAbs(s.Dir):
		return fmt.Errorf("bench: run directory %q is relative: the proxiers find their iptables through it and Go refuses a relative PATH entry; pass filepath.Abs of it", s.Dir)
	case len(s.Scales) == 0 || len(s.Cases) == 0 || len(s.Proxiers) == 0:
		return fmt.Errorf("bench: need at least one scale, mode and proxier")
	}
	for _, p := range s.plan() {
		if sc := p.scale; s.BurstServices > sc.Services {
			return fmt.Errorf("bench: burst over %d Services needs at least that many, scale %s has fewer", s.BurstServices, sc)
		}
	}
	return nil
}

// scalePlan is one control plane's scale and the cases run against it.
type scalePlan struct {
	scale Scale
	cases []Case
}

// plan puts every case at each scale, except IPVS cases, which run at
// each scale capped to IPVSMaxScale; scales that meet share one plan.
func (s Spec) plan() []scalePlan {
	var out []scalePlan
	add := func(sc Scale, c Case) {
		for i := range out {
			if out[i].scale == sc {
				for _, have := range out[i].cases {
					if have == c {
						return
					}
				}
				out[i].cases = append(out[i].cases, c)
				return
			}
		}
		out = append(out, scalePlan{scale: sc, cases: []Case{c}})
	}
	for _, sc := range s.Scales {
		for _, c := range s.Cases {
			if c.Mode == "ipvs" {
				add(Scale{Services: min(sc.Services, s.IPVSMaxScale.Services), Endpoints: min(sc.Endpoints, s.IPVSMaxScale.Endpoints)}, c)
			} else {
				add(sc, c)
			}
		}
	}
	return out
}
