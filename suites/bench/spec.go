package bench

import (
	"fmt"
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
	// Dir receives bench.json, the control plane's state and each
	// proxier's log. Required.
	Dir string
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
	return s
}

func (s Spec) validate() error {
	switch {
	case s.Dir == "":
		return fmt.Errorf("bench: Spec.Dir is required")
	case len(s.Scales) == 0 || len(s.Cases) == 0 || len(s.Proxiers) == 0:
		return fmt.Errorf("bench: need at least one scale, mode and proxier")
	}
	for _, sc := range s.Scales {
		if s.BurstServices > sc.Services {
			return fmt.Errorf("bench: burst over %d Services needs at least that many, scale %s has fewer", s.BurstServices, sc)
		}
	}
	return nil
}
