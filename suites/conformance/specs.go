package conformance

import (
	_ "embed"
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"

	"sigs.k8s.io/yaml"
)

// SpecsFile is the spec list shipped with the checkout (specs.yaml beside
// this file); make conformance SPECS=<file> runs another.
//
//go:embed specs.yaml
var SpecsFile []byte

// Rule is one line of the spec list: a Go regular expression matched
// against a spec's full text (what ginkgo --focus/--skip match), and why.
type Rule struct {
	Pattern string `json:"pattern"`
	Why     string `json:"why"`
	// Reason is the kind of skip, for counting: see the Reason* constants.
	Reason string `json:"reason,omitempty"`

	re *regexp.Regexp
}

// Why a selected spec is not run.
const (
	// ReasonImage: an image the spec needs cannot be built offline.
	ReasonImage = "image"
	// ReasonCloud: needs a cloud load balancer or a cloud's nodes.
	ReasonCloud = "cloud"
	// ReasonFeature: needs a feature gate or an optional feature.
	ReasonFeature = "feature"
	// ReasonDisruptive: restarts or breaks cluster components.
	ReasonDisruptive = "disruptive"
	// ReasonEnvironment: needs what this kind of cluster does not give
	// (SSH to nodes, a second IP family, a kernel module).
	ReasonEnvironment = "environment"
)

var reasons = []string{ReasonImage, ReasonCloud, ReasonFeature, ReasonDisruptive, ReasonEnvironment}

// Specs is the spec list: which upstream specs make conformance runs.
type Specs struct {
	// Focus selects specs: a spec runs when any focus rule matches it and
	// no skip rule does.
	Focus []Rule `json:"focus"`
	// Skip leaves selected specs out, each with its reason; they are
	// listed as not run, never dropped silently.
	Skip []Rule `json:"skip"`
	// Images are the test images the selected specs use, by the exact
	// names e2e.test asks for; make conformance builds and loads them.
	Images []string `json:"images"`
}

// LoadSpecs reads and checks a spec list file.
func LoadSpecs(path string) (*Specs, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("spec list: %w", err)
	}
	s, err := ParseSpecs(b)
	if err != nil {
		return nil, fmt.Errorf("spec list %s: %w", path, err)
	}
	return s, nil
}

// ParseSpecs parses and checks a spec list: every pattern compiles, every
// skip says why and gives a known reason, images are named.
func ParseSpecs(b []byte) (*Specs, error) {
	var s Specs
	if err := yaml.UnmarshalStrict(b, &s); err != nil {
		return nil, err
	}
	if len(s.Focus) == 0 {
		return nil, errors.New("no focus rule: the list would select no spec")
	}
	var errs []error
	check := func(kind string, rules []Rule, needReason bool) {
		for i := range rules {
			r := &rules[i]
			at := fmt.Sprintf("%s[%d] %q", kind, i, r.Pattern)
			if strings.TrimSpace(r.Pattern) == "" {
				errs = append(errs, fmt.Errorf("%s: empty pattern (it would match every spec)", at))
				continue
			}
			var err error
			if r.re, err = regexp.Compile(r.Pattern); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", at, err))
			}
			if strings.TrimSpace(r.Why) == "" {
				errs = append(errs, fmt.Errorf("%s: no why: say why the spec is %s", at, map[bool]string{true: "not run", false: "selected"}[needReason]))
			}
			if needReason && !slices.Contains(reasons, r.Reason) {
				errs = append(errs, fmt.Errorf("%s: reason %q: want one of %s", at, r.Reason, strings.Join(reasons, ", ")))
			}
		}
	}
	check("focus", s.Focus, false)
	check("skip", s.Skip, true)
	for i, img := range s.Images {
		if !imageRE.MatchString(img) {
			errs = append(errs, fmt.Errorf("images[%d] %q: want registry/repository:tag as e2e.test --list-images prints it", i, img))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return &s, nil
}

var imageRE = regexp.MustCompile(`^[a-z0-9.-]+(:[0-9]+)?(/[a-z0-9._-]+)+:[A-Za-z0-9._-]+$`)

// Selected tells whether the spec with this full text is in the list
// (focused), and when it is skipped, the rule that skips it.
func (s *Specs) Selected(fullText string) (selected bool, skip *Rule) {
	for _, f := range s.Focus {
		if f.re.MatchString(fullText) {
			selected = true
			break
		}
	}
	if !selected {
		return false, nil
	}
	for i := range s.Skip {
		if s.Skip[i].re.MatchString(fullText) {
			return true, &s.Skip[i]
		}
	}
	return true, nil
}

// FocusRegexp is the focus rules as one ginkgo --focus expression.
func (s *Specs) FocusRegexp() string { return alternation(s.Focus) }

// SkipRegexp is the skip rules as one ginkgo --skip expression ("" when
// there is none).
func (s *Specs) SkipRegexp() string { return alternation(s.Skip) }

func alternation(rules []Rule) string {
	var parts []string
	for _, r := range rules {
		parts = append(parts, "(?:"+r.Pattern+")")
	}
	return strings.Join(parts, "|")
}
