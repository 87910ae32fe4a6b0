package iptables

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
)

// Fake is an in-memory Runner for unit tests. It parses iptables-restore
// input strictly enough to catch what the kernel would refuse (a rule in
// an undeclared chain, a jump to a missing KUBE- chain, deleting a chain
// still referenced) and dumps its tables in iptables-save format.
type Fake struct {
	mu     sync.Mutex
	tables map[string]*fakeTable
	// Restores records every Restore input, in order.
	Restores [][]byte
	// FailRestore makes the next Restore calls fail while it is > 0.
	FailRestore int
}

var _ Runner = &Fake{}

type fakeTable struct {
	order  []string
	chains map[string]*fakeChain
}

type fakeChain struct {
	policy string // "-" for user chains
	rules  []string
}

var builtins = map[string][]string{
	tableNAT:    {"PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"},
	tableFilter: {"INPUT", "FORWARD", "OUTPUT"},
	tableMangle: {"PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"},
}

// NewFake returns a Fake with the built-in chains of nat, filter, mangle.
func NewFake() *Fake {
	f := &Fake{tables: map[string]*fakeTable{}}
	for t, cs := range builtins {
		ft := &fakeTable{chains: map[string]*fakeChain{}}
		for _, c := range cs {
			ft.order = append(ft.order, c)
			ft.chains[c] = &fakeChain{policy: "ACCEPT"}
		}
		f.tables[t] = ft
	}
	return f
}

func (t *fakeTable) clone() *fakeTable {
	n := &fakeTable{order: slices.Clone(t.order), chains: map[string]*fakeChain{}}
	for k, c := range t.chains {
		n.chains[k] = &fakeChain{policy: c.policy, rules: slices.Clone(c.rules)}
	}
	return n
}

func (t *fakeTable) ensure(name string) *fakeChain {
	c, ok := t.chains[name]
	if !ok {
		c = &fakeChain{policy: "-"}
		t.chains[name] = c
		t.order = append(t.order, name)
	}
	return c
}

func (t *fakeTable) remove(name string) {
	delete(t.chains, name)
	t.order = slices.DeleteFunc(t.order, func(s string) bool { return s == name })
}

// fields splits a rule into words, keeping "quoted strings" whole.
func fields(s string) []string {
	var out []string
	var cur strings.Builder
	inQ := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"':
			inQ = !inQ
			cur.WriteByte(c)
		case c == ' ' && !inQ:
			if cur.Len() > 0 {
				out = append(out, cur.String())
				cur.Reset()
			}
		default:
			cur.WriteByte(c)
		}
	}
	if cur.Len() > 0 {
		out = append(out, cur.String())
	}
	return out
}

// target is the -j argument of a rule, or "".
func target(rule string) string {
	f := fields(rule)
	for i := 0; i+1 < len(f); i++ {
		if f[i] == "-j" {
			return f[i+1]
		}
	}
	return ""
}

func (t *fakeTable) referenced(name string) bool {
	for _, c := range t.chains {
		for _, r := range c.rules {
			if target(r) == name {
				return true
			}
		}
	}
	return false
}

// check refuses jumps to KUBE- chains that do not exist, as the kernel would.
func (t *fakeTable) check() error {
	for _, name := range t.order {
		for _, r := range t.chains[name].rules {
			if tg := target(r); strings.HasPrefix(tg, "KUBE-") && t.chains[tg] == nil {
				return fmt.Errorf("chain %s: jump to missing chain %s", name, tg)
			}
		}
	}
	return nil
}

func (f *Fake) Restore(_ context.Context, input []byte, flags RestoreFlags) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.Restores = append(f.Restores, bytes.Clone(input))
	if f.FailRestore > 0 {
		f.FailRestore--
		return fmt.Errorf("fake iptables-restore: injected failure")
	}
	var name string
	var cur *fakeTable
	for i, line := range strings.Split(string(input), "\n") {
		fail := func(format string, a ...any) error {
			return fmt.Errorf("fake iptables-restore: line %d failed: %s", i+1, fmt.Sprintf(format, a...))
		}
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "*"):
			name = line[1:]
			t, ok := f.tables[name]
			if !ok {
				return fail("unknown table %q", name)
			}
			cur = t.clone()
			if flags.Flush {
				for _, c := range slices.Clone(cur.order) {
					if cur.chains[c].policy == "-" {
						cur.remove(c)
					} else {
						cur.chains[c].rules = nil
					}
				}
			}
		case cur == nil:
			return fail("outside a table")
		case line == "COMMIT":
			if err := cur.check(); err != nil {
				return fail("%v", err)
			}
			if !flags.Test {
				f.tables[name] = cur
			}
			cur = nil
		case strings.HasPrefix(line, ":"):
			w := strings.Fields(line[1:])
			if len(w) < 2 {
				return fail("bad chain line %q", line)
			}
			c := cur.ensure(w[0])
			c.rules = nil
			if w[1] != "-" {
				c.policy = w[1]
			}
		case strings.HasPrefix(line, "-A "):
			w := strings.SplitN(line, " ", 3)
			c := cur.chains[w[1]]
			if c == nil || len(w) < 3 {
				return fail("no chain %q or empty rule", w[1])
			}
			c.rules = append(c.rules, w[2])
		case strings.HasPrefix(line, "-I "):
			// At the top, as iptables -I without a position does.
			w := strings.SplitN(line, " ", 3)
			c := cur.chains[w[1]]
			if c == nil || len(w) < 3 {
				return fail("no chain %q or empty rule", w[1])
			}
			c.rules = append([]string{w[2]}, c.rules...)
		case strings.HasPrefix(line, "-D "):
			// The first rule written the same way, as iptables-restore
			// deletes by rulespec; none is an error there too.
			w := strings.SplitN(line, " ", 3)
			c := cur.chains[w[1]]
			if c == nil || len(w) < 3 {
				return fail("no chain %q or empty rule", w[1])
			}
			i := slices.Index(c.rules, w[2])
			if i < 0 {
				return fail("delete missing rule %q from chain %q", w[2], w[1])
			}
			c.rules = slices.Delete(c.rules, i, i+1)
		case strings.HasPrefix(line, "-X "):
			c := strings.TrimSpace(line[3:])
			if cur.chains[c] == nil {
				return fail("delete missing chain %q", c)
			}
			if len(cur.chains[c].rules) > 0 || cur.referenced(c) {
				return fail("chain %q not empty or still referenced", c)
			}
			cur.remove(c)
		default:
			return fail("unsupported line %q", line)
		}
	}
	if cur != nil {
		return fmt.Errorf("fake iptables-restore: missing COMMIT for table %s", name)
	}
	return nil
}

func (f *Fake) Save(_ context.Context, table string) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	t, ok := f.tables[table]
	if !ok {
		return nil, fmt.Errorf("fake iptables-save: no table %q", table)
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "*%s\n", table)
	for _, c := range t.order {
		fmt.Fprintf(&b, ":%s %s [0:0]\n", c, t.chains[c].policy)
	}
	for _, c := range t.order {
		for _, r := range t.chains[c].rules {
			fmt.Fprintf(&b, "-A %s %s\n", c, r)
		}
	}
	b.WriteString("COMMIT\n")
	return b.Bytes(), nil
}

func (f *Fake) table(table string) (*fakeTable, error) {
	t, ok := f.tables[table]
	if !ok {
		return nil, fmt.Errorf("fake iptables: no table %q", table)
	}
	return t, nil
}

func (f *Fake) EnsureChain(_ context.Context, table, chain string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	t, err := f.table(table)
	if err == nil {
		t.ensure(chain)
	}
	return err
}

func (f *Fake) ChainExists(_ context.Context, table, chain string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	t, err := f.table(table)
	return err == nil && t.chains[chain] != nil, err
}

func (f *Fake) EnsureRule(_ context.Context, table, chain string, rule ...string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	t, err := f.table(table)
	if err != nil {
		return err
	}
	c := t.chains[chain]
	if c == nil {
		return fmt.Errorf("fake iptables: no chain %s in %s", chain, table)
	}
	if tg := target(ruleText(rule)); strings.HasPrefix(tg, "KUBE-") && t.chains[tg] == nil {
		return fmt.Errorf("fake iptables: jump to missing chain %s", tg)
	}
	if r := ruleText(rule); !slices.Contains(c.rules, r) {
		c.rules = append([]string{r}, c.rules...)
	}
	return nil
}

func (f *Fake) DeleteRule(_ context.Context, table, chain string, rule ...string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	t, err := f.table(table)
	if err != nil || t.chains[chain] == nil {
		return err
	}
	r := ruleText(rule)
	t.chains[chain].rules = slices.DeleteFunc(t.chains[chain].rules, func(s string) bool { return s == r })
	return nil
}

func (f *Fake) DeleteChain(_ context.Context, table, chain string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	t, err := f.table(table)
	if err != nil || t.chains[chain] == nil {
		return err
	}
	if t.referenced(chain) {
		return fmt.Errorf("fake iptables: chain %s still referenced", chain)
	}
	t.remove(chain)
	return nil
}

// Chains lists the chains of table, sorted.
func (f *Fake) Chains(table string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	t := f.tables[table]
	if t == nil {
		return nil
	}
	return slices.Sorted(maps.Keys(t.chains))
}
