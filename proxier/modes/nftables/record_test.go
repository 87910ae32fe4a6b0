package nftables

import "testing"

// A partial sync rewrites a chain only when its sum differs from the
// kernel's, so every part of every rule must move the sum.
func TestChainSumsTellRuleListsApart(t *testing.T) {
	base := []rule{{text: "a", comment: "c", nl: "n"}, {text: "b", nl: "m"}}
	variants := map[string][]rule{
		"a rule's text":                   {{text: "x", comment: "c", nl: "n"}, {text: "b", nl: "m"}},
		"a rule's comment":                {{text: "a", comment: "x", nl: "n"}, {text: "b", nl: "m"}},
		"a rule's netlink bytes":          {{text: "a", comment: "c", nl: "x"}, {text: "b", nl: "m"}},
		"the order of rules":              {{text: "b", nl: "m"}, {text: "a", comment: "c", nl: "n"}},
		"a rule gone":                     {{text: "a", comment: "c", nl: "n"}},
		"a byte moved between two fields": {{text: "ac", nl: "n"}, {text: "b", nl: "m"}},
		"no rules at all":                 nil,
	}
	want := sumRules(base)
	if again := sumRules(append([]rule(nil), base...)); again != want {
		t.Fatalf("equal lists sum to %v and %v", want, again)
	}
	for what, rules := range variants {
		if sumRules(rules) == want {
			t.Errorf("a change of %s keeps the sum", what)
		}
	}
}
