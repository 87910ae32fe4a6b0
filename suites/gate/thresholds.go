package gate

import (
	"fmt"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"

	yaml "go.yaml.in/yaml/v3"

	"github.com/proxyproof/proxyproof/reports/run"
)

// Thresholds are the reviewed limits of gate/thresholds.yaml: per bench
// figure, how far the ratio ours/upstream may grow over the baseline's
// before the gate fails. A figure not listed is shown, not gated.
//
//	figures:
//	  change p50:
//	    growth: 0.6          # fail above baseline ratio x 1.6
//	    cases:
//	      ipvs (VM): 1.5     # this case may grow more (TCG, one vCPU)
type Thresholds struct {
	Path    string
	Figures []Threshold
}

// Threshold is one figure's limit.
type Threshold struct {
	Figure string
	// Growth is the allowed growth of the ratio as a fraction: 0.5 lets
	// 0.80 become 1.20 and fails at anything above.
	Growth float64
	// Cases override Growth for a bench case ("iptables/nft", "ipvs (VM)").
	Cases map[string]float64
	Line  int
}

// For is the allowed growth in one case.
func (t Threshold) For(benchCase string) float64 {
	if g, ok := t.Cases[benchCase]; ok {
		return g
	}
	return t.Growth
}

// Find is the threshold of a figure, false when it is not gated.
func (t Thresholds) Find(figure string) (Threshold, bool) {
	for _, th := range t.Figures {
		if th.Figure == figure {
			return th, true
		}
	}
	return Threshold{}, false
}

// LoadThresholds reads and checks the thresholds file; errors name the file
// and line.
func LoadThresholds(path string) (Thresholds, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Thresholds{}, fmt.Errorf("thresholds %s: %w", path, err)
	}
	th, err := ParseThresholds(data)
	if err != nil {
		return Thresholds{}, fmt.Errorf("thresholds %s:%w", path, err)
	}
	th.Path = path
	return th, nil
}

// ParseThresholds decodes the file's bytes; an error starts with its line.
func ParseThresholds(data []byte) (Thresholds, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return Thresholds{}, yamlError(err)
	}
	if len(doc.Content) == 0 {
		return Thresholds{}, fmt.Errorf("1: the file is empty; it needs a figures: map")
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return Thresholds{}, fmt.Errorf("%d: want a map with figures:", root.Line)
	}
	var th Thresholds
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		if k.Value != "figures" {
			return Thresholds{}, fmt.Errorf("%d: unknown key %q; the file holds figures:", k.Line, k.Value)
		}
		if v.Kind != yaml.MappingNode {
			return Thresholds{}, fmt.Errorf("%d: figures: want a map of figure name to its threshold", v.Line)
		}
		for j := 0; j+1 < len(v.Content); j += 2 {
			t, err := parseThreshold(v.Content[j], v.Content[j+1])
			if err != nil {
				return Thresholds{}, err
			}
			if _, dup := th.Find(t.Figure); dup {
				return Thresholds{}, fmt.Errorf("%d: figure %q listed twice", t.Line, t.Figure)
			}
			th.Figures = append(th.Figures, t)
		}
	}
	if len(th.Figures) == 0 {
		return Thresholds{}, fmt.Errorf("%d: no figures: a gate with no threshold checks no figure", root.Line)
	}
	return th, nil
}

// benchCases are the cases a bench row can be (run.BenchGroup.Case).
var benchCases = []string{"iptables/nft", "iptables/legacy", "nftables", "ipvs", "ipvs (VM)"}

// yamlLine is how go.yaml.in/yaml/v3 names the line of a syntax error.
var yamlLine = regexp.MustCompile(`^yaml: line (\d+): `)

// yamlError puts the line first, as every other error of the file.
func yamlError(err error) error {
	if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
		return fmt.Errorf("%s: YAML: %s", m[1], strings.TrimPrefix(err.Error(), m[0]))
	}
	return fmt.Errorf(" %w", err)
}

// FigureNames are the figures a threshold may name: the bench's.
func FigureNames() []string {
	var out []string
	for _, m := range run.BenchMetrics {
		out = append(out, m.Name)
	}
	return out
}

func parseThreshold(k, v *yaml.Node) (Threshold, error) {
	t := Threshold{Figure: k.Value, Line: k.Line, Growth: -1}
	if !slices.Contains(FigureNames(), t.Figure) {
		return t, fmt.Errorf("%d: figure %q does not exist; the bench's figures are: %s", k.Line, t.Figure, strings.Join(FigureNames(), ", "))
	}
	if v.Kind != yaml.MappingNode {
		return t, fmt.Errorf("%d: figure %q: want a map with growth:", v.Line, t.Figure)
	}
	for i := 0; i+1 < len(v.Content); i += 2 {
		key, val := v.Content[i], v.Content[i+1]
		switch key.Value {
		case "growth":
			g, err := growth(val)
			if err != nil {
				return t, fmt.Errorf("%d: figure %q growth: %w", val.Line, t.Figure, err)
			}
			t.Growth = g
		case "cases":
			if val.Kind != yaml.MappingNode {
				return t, fmt.Errorf("%d: figure %q cases: want a map of bench case to growth", val.Line, t.Figure)
			}
			t.Cases = map[string]float64{}
			for j := 0; j+1 < len(val.Content); j += 2 {
				if c := val.Content[j]; !slices.Contains(benchCases, c.Value) {
					return t, fmt.Errorf("%d: figure %q: case %q does not exist; the bench's cases are: %s", c.Line, t.Figure, c.Value, strings.Join(benchCases, ", "))
				}
				g, err := growth(val.Content[j+1])
				if err != nil {
					return t, fmt.Errorf("%d: figure %q case %q: %w", val.Content[j+1].Line, t.Figure, val.Content[j].Value, err)
				}
				t.Cases[val.Content[j].Value] = g
			}
		default:
			return t, fmt.Errorf("%d: figure %q: unknown key %q; want growth or cases", key.Line, t.Figure, key.Value)
		}
	}
	if t.Growth < 0 {
		return t, fmt.Errorf("%d: figure %q has no growth", k.Line, t.Figure)
	}
	return t, nil
}

func growth(n *yaml.Node) (float64, error) {
	if n.Kind != yaml.ScalarNode {
		return 0, fmt.Errorf("want a number such as 0.5 (50%% over the baseline's ratio)")
	}
	g, err := strconv.ParseFloat(n.Value, 64)
	if err != nil || g < 0 || g > 100 {
		return 0, fmt.Errorf("%q: want a number from 0 to 100 such as 0.5 (50%% over the baseline's ratio)", n.Value)
	}
	return g, nil
}
