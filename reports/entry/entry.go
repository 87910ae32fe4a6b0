package entry

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"strings"
)

// Report entry names. A figure's entry is FigurePrefix + its name so that a
// spec may record several figures and a human reading ginkgo -v sees which.
const (
	FigurePrefix = "figure:"
	ProbeName    = "probe"
	DumpName     = "dump"
)

// Probe says what a failed (or last) probe tried, in the words a person
// debugging it needs: from where, to what, for which Service, and what was
// expected against what was seen.
type Probe struct {
	// Description is the one-liner, e.g.
	// "pod client-a on node-2 -> 10.96.0.10:80 (default/web)".
	Description string `json:"description"`
	// Node the probe ran on or through; selects the rule dump to show.
	Node string `json:"node,omitempty"`
	// Service is namespace/name.
	Service  string `json:"service,omitempty"`
	Expected string `json:"expected,omitempty"`
	Seen     string `json:"seen,omitempty"`
	// Failed marks the probe that made the spec fail; when a spec recorded
	// several probes the report shows the failed ones (else the last one).
	Failed bool `json:"failed,omitempty"`
}

// UnmarshalJSON accepts the object or a bare description string, so a suite
// can record AddReportEntry("probe", "pod a on node-1 -> ...").
func (p *Probe) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*p = Probe{Description: s}
		return nil
	}
	type plain Probe
	var q plain
	if err := json.Unmarshal(b, &q); err != nil {
		return fmt.Errorf("probe: want a string or {\"description\",...}: %w", err)
	}
	*p = Probe(q)
	return nil
}

// Dump points at a file holding the proxier's rules on one node.
type Dump struct {
	Node string `json:"node"`
	// Kind is the command that produced it: "iptables-save", "nft list ruleset", "ipvsadm -Ln".
	Kind string `json:"kind,omitempty"`
	// Path is relative to the mode directory (<run>/<mode>).
	Path string `json:"path"`
}

// SpecID is the directory name for a spec's dumps: readable, filesystem
// safe, and unique thanks to a short hash of the full text.
func SpecID(fullText string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(fullText) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
			dash = false
		case !dash && b.Len() > 0:
			b.WriteByte('-')
			dash = true
		}
		if b.Len() >= 60 {
			break
		}
	}
	slug := strings.TrimRight(b.String(), "-")
	h := fnv.New32a()
	h.Write([]byte(fullText))
	if slug == "" {
		return fmt.Sprintf("%08x", h.Sum32())
	}
	return fmt.Sprintf("%s-%08x", slug, h.Sum32())
}
