package nftables

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"

	"github.com/proxyproof/proxyproof/proxier/state"
)

func TestSlotsAreKeptPerChainAndFreedSlotsReusedLowestFirst(t *testing.T) {
	s := newSlotTable()
	for i, c := range []string{"a", "b", "c", "d"} {
		if got := s.slot(c); got != i {
			t.Fatalf("chain %s got slot %d, want %d", c, got, i)
		}
	}
	if got := s.slot("b"); got != 1 {
		t.Errorf("asking again moved chain b to slot %d", got)
	}
	s.release("c")
	s.release("b")
	if got := s.slot("e"); got != 1 {
		t.Errorf("new chain e got slot %d, want the lowest free (1)", got)
	}
	if got := s.slot("f"); got != 2 {
		t.Errorf("new chain f got slot %d, want 2", got)
	}
	if got := s.slot("g"); got != 4 {
		t.Errorf("new chain g got slot %d, want 4 (0-3 taken)", got)
	}
	s.retain(map[string]bool{"g": true})
	if got := s.slot("h"); got != 0 {
		t.Errorf("after retain, chain h got slot %d, want 0", got)
	}
	if got := s.slot("g"); got != 4 {
		t.Errorf("retain moved the kept chain g to slot %d", got)
	}
}

func TestEndpointsShareTheirSlotsDrawsEvenlyWithoutGaps(t *testing.T) {
	rc := newRenderCtx(v1.IPv4Protocol)
	for _, n := range []int{1, 2, 3, 7, 10, 1000, slotWidth} {
		t.Run(fmt.Sprintf("%d endpoints", n), func(t *testing.T) {
			var eps []state.Endpoint
			for i := range n {
				eps = append(eps, ep(fmt.Sprintf("10.%d.%d.%d", 1+i/62500, i/250%250, i%250+1), 8080, false))
			}
			sp := svc("ns", fmt.Sprintf("s%d", n), "", "172.30.0.1", 80, eps...)
			chain := "service-" + sp.Name.Name
			_, lb := rc.mapDNAT(sp, chain, eps)
			elems := rc.lbElems(&lb)
			offset := (rc.slots.slot(chain) % slotsPerMap) * slotWidth
			next := offset
			smallest, largest := slotWidth, 0
			for i, e := range elems {
				lo, hi, ok := strings.Cut(e.key[0], "-")
				if !ok {
					t.Fatalf("element %d key %q is not a range", i, e.key[0])
				}
				l, _ := strconv.Atoi(lo)
				h, _ := strconv.Atoi(hi)
				if l != next {
					t.Fatalf("endpoint %d's range starts at %d, want %d (right after the previous)", i, l, next)
				}
				smallest, largest = min(smallest, h-l+1), max(largest, h-l+1)
				next = h + 1
				if want := eps[i].IP.String() + " . 8080"; e.value != want {
					t.Errorf("range %d maps to %q, want %q", i, e.value, want)
				}
			}
			if next != offset+slotWidth {
				t.Errorf("the ranges end at %d, want the slot's end %d", next, offset+slotWidth)
			}
			if largest-smallest > 1 {
				t.Errorf("shares differ by %d draws of %d (want at most 1)", largest-smallest, slotWidth)
			}
		})
	}
}

var rangeRE = regexp.MustCompile(`(\d+)-(\d+) : (\S+) \. (\d+)`)

// slotRanges lists the ranges of map m in the kernel that fall in the slot
// at offset: "lo-hi ip" relative to the offset, in order.
func slotRanges(t *testing.T, ns, m string, offset int) []string {
	t.Helper()
	var out []string
	for _, r := range rangeRE.FindAllStringSubmatch(nftIn(t, ns, "list", "map", "ip", "kube-proxy", m), -1) {
		lo, _ := strconv.Atoi(r[1])
		hi, _ := strconv.Atoi(r[2])
		if lo >= offset && lo < offset+slotWidth {
			out = append(out, fmt.Sprintf("%d-%d %s", lo-offset, hi-offset, r[3]))
		}
	}
	slices.Sort(out)
	return out
}

// Scaling a Service up and down, as a rolling update does, must reach the
// kernel as element changes only: the chain and its rule (same handle) stay.
func TestKernelEndpointCountChangesRewriteOnlyTheEndpointsMap(t *testing.T) {
	ns := scratchNS(t)
	ctx := context.Background()
	p := kernelProxier(t, ns)
	web := svc("ns1", "web", "http", "172.30.0.10", 80, ep("10.0.1.5", 8080, true), ep("10.0.2.5", 8080, false))
	other := svc("ns1", "a-other", "", "172.30.0.11", 80, ep("10.0.9.9", 80, false))
	v := view(web, other)
	if _, err := p.Sync(ctx, v, full()); err != nil {
		t.Fatal(err)
	}
	chain := namesFor(web).cluster
	before := nftIn(t, ns, "-a", "list", "chain", "ip", "kube-proxy", chain)
	offset := (p.fams[v1.IPv4Protocol].rc.slots.slot(chain) % slotsPerMap) * slotWidth
	steps := []struct {
		name string
		eps  []state.Endpoint
		want []string
	}{
		{"scaled to 3", []state.Endpoint{ep("10.0.1.5", 8080, true), ep("10.0.2.5", 8080, false), ep("10.0.3.5", 8080, false)},
			[]string{"0-21844 10.0.1.5", "21845-43689 10.0.2.5", "43690-65535 10.0.3.5"}},
		{"one replaced", []state.Endpoint{ep("10.0.1.5", 8080, true), ep("10.0.4.5", 8080, false), ep("10.0.3.5", 8080, false)},
			[]string{"0-21844 10.0.1.5", "21845-43689 10.0.4.5", "43690-65535 10.0.3.5"}},
		{"scaled to 1", []state.Endpoint{ep("10.0.3.5", 8080, false)}, []string{"0-65535 10.0.3.5"}},
		{"scaled to 2", []state.Endpoint{ep("10.0.3.5", 8080, false), ep("10.0.5.5", 8080, false)},
			[]string{"0-32767 10.0.3.5", "32768-65535 10.0.5.5"}},
	}
	for _, st := range steps {
		setEndpoints(web, st.eps...)
		if _, err := p.Sync(ctx, v, changed(web.Name)); err != nil {
			t.Fatalf("%s: partial sync: %v", st.name, err)
		}
		if got := slotRanges(t, ns, "endpoints-0", offset); !slices.Equal(got, st.want) {
			t.Errorf("%s: web's slot holds %v, want %v", st.name, got, st.want)
		}
		if after := nftIn(t, ns, "-a", "list", "chain", "ip", "kube-proxy", chain); after != before {
			t.Errorf("%s: web's chain was rewritten:\n%s\nwas:\n%s", st.name, after, before)
		}
	}
	otherOffset := (p.fams[v1.IPv4Protocol].rc.slots.slot(namesFor(other).cluster) % slotsPerMap) * slotWidth
	if got := slotRanges(t, ns, "endpoints-0", otherOffset); !slices.Equal(got, []string{"0-65535 10.0.9.9"}) {
		t.Errorf("the other Service's slot changed: %v", got)
	}
}
