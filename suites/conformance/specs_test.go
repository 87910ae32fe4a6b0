package conformance

import (
	"regexp"
	"strings"
	"testing"
)

func TestShippedSpecListParsesAndSelectsTheServiceProxySpecs(t *testing.T) {
	s, err := ParseSpecs(SpecsFile)
	if err != nil {
		t.Fatalf("specs.yaml: %v", err)
	}
	for _, c := range []struct {
		name    string
		runs    bool
		skipped string // the reason when selected but not run
	}{
		{"[sig-network] Services should serve a basic endpoint from pods  [Conformance]", true, ""},
		{"[sig-network] Services should have session affinity work for NodePort service [LinuxOnly] [Conformance]", true, ""},
		{"[sig-network] Networking Granular Checks: Pods should function for intra-pod communication: http [NodeConformance] [Conformance]", true, ""},
		{"[sig-network] Networking Granular Checks: Services should function for pod-Service: udp", true, ""},
		{"[sig-network] Conntrack should be able to preserve UDP traffic when server pod cycles for a NodePort service", true, ""},
		{"[sig-network] Services should work after restarting kube-proxy [Disruptive]", true, ReasonDisruptive},
		{"[sig-network] Networking Granular Checks: Services should function for pod-Service: sctp [Feature:SCTPConnectivity]", true, ReasonFeature},
		{"[sig-network] Services should serve endpoints on same port and different protocol for internal traffic on Type LoadBalancer ", true, ReasonCloud},
		{"[sig-network] DNS should provide DNS for services  [Conformance]", false, ""},
		{"[sig-storage] Services in a volume", false, ""},
	} {
		selected, skip := s.Selected(c.name)
		if selected != c.runs && c.skipped == "" {
			t.Errorf("%q: selected %v, want %v", c.name, selected, c.runs)
		}
		switch {
		case c.skipped == "" && skip != nil:
			t.Errorf("%q: skipped by %q (%s), want it run", c.name, skip.Pattern, skip.Why)
		case c.skipped != "" && (skip == nil || skip.Reason != c.skipped):
			t.Errorf("%q: skip %+v, want reason %s", c.name, skip, c.skipped)
		}
	}
	// ginkgo gets the same selection as one expression each.
	focus, skip := regexp.MustCompile(s.FocusRegexp()), regexp.MustCompile(s.SkipRegexp())
	name := "[sig-network] Services should work after restarting apiserver [Disruptive]"
	if !focus.MatchString(name) || !skip.MatchString(name) {
		t.Errorf("ginkgo's --focus/--skip disagree with Selected on %q", name)
	}
	if len(s.Images) == 0 || !strings.Contains(strings.Join(s.Images, " "), "e2e-test-images/agnhost:") {
		t.Errorf("images %v: want agnhost, the image most network specs run", s.Images)
	}
}

func TestSpecListRefusesWhatWouldSelectOrSkipSilently(t *testing.T) {
	for _, c := range []struct{ name, yaml, want string }{
		{"no focus", "skip: []\n", "no focus rule"},
		{"empty pattern", "focus:\n- pattern: ''\n  why: all\n", "empty pattern"},
		{"bad regexp", "focus:\n- pattern: '[sig-network'\n  why: x\n", "missing closing ]"},
		{"skip without why", "focus:\n- {pattern: a, why: b}\nskip:\n- {pattern: c, reason: cloud}\n", "no why"},
		{"skip without reason", "focus:\n- {pattern: a, why: b}\nskip:\n- {pattern: c, why: d}\n", `reason "": want one of`},
		{"unknown field", "focus:\n- {pattern: a, why: b, reson: c}\n", "unknown field"},
		{"image without tag", "focus:\n- {pattern: a, why: b}\nimages: [registry.k8s.io/e2e-test-images/agnhost]\n", "registry/repository:tag"},
	} {
		_, err := ParseSpecs([]byte(c.yaml))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err %v, want it to say %q", c.name, err, c.want)
		}
	}
}
