package bench

import (
	"encoding/binary"
	"reflect"
	"slices"
	"testing"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
)

// blob builds a legacy rule blob the way the kernel hands it over.
type blob struct {
	b      []byte
	starts map[string]int // chain -> offset of its first rule
}

func (bl *blob) entry(dst [4]byte, target string, data []byte) int {
	off := len(bl.b)
	tsize := (targetHdr + len(data) + 7) &^ 7
	e := make([]byte, 112+tsize)
	copy(e[4:8], dst[:])
	binary.NativeEndian.PutUint16(e[entryTargetOff:], 112)
	binary.NativeEndian.PutUint16(e[entryNextOff:], uint16(len(e)))
	binary.NativeEndian.PutUint16(e[112:], uint16(tsize))
	copy(e[114:143], target)
	copy(e[112+targetHdr:], data)
	bl.b = append(bl.b, e...)
	return off
}

func (bl *blob) chain(name string) {
	data := make([]byte, 32)
	copy(data, name)
	bl.entry([4]byte{}, "ERROR", data)
	bl.starts[name] = len(bl.b)
}

func (bl *blob) verdict(dst [4]byte, v int32) {
	data := make([]byte, 4)
	binary.NativeEndian.PutUint32(data, uint32(v))
	bl.entry(dst, "", data)
}

func TestLegacyBlobParsingFollowsJumpsByOffset(t *testing.T) {
	// Offsets of chains are only known once written, so write twice:
	// the first pass learns them, the second uses them.
	build := func(starts map[string]int) *blob {
		bl := &blob{starts: map[string]int{}}
		bl.verdict([4]byte{}, int32(starts["KUBE-SERVICES"])) // PREROUTING -> KUBE-SERVICES
		bl.verdict([4]byte{}, -2)                             // policy ACCEPT
		bl.chain("KUBE-SERVICES")
		bl.verdict([4]byte{10, 96, 0, 10}, int32(starts["KUBE-SVC-A"]))
		bl.verdict([4]byte{}, int32(starts["KUBE-SVC-A"]-8)) // an offset that starts no chain: ignored
		bl.chain("KUBE-SVC-A")
		bl.verdict([4]byte{}, int32(starts["KUBE-SEP-B"]))
		bl.verdict([4]byte{}, int32(starts["KUBE-SEP-C"]))
		bl.chain("KUBE-SEP-B")
		bl.entry([4]byte{}, "DNAT", make([]byte, 16))
		bl.chain("KUBE-SEP-C")
		bl.entry([4]byte{}, "DNAT", make([]byte, 16))
		bl.chain("ERROR")
		return bl
	}
	bl := build(build(map[string]int{}).starts)
	got, err := parseEntries(bl.b, map[int]bool{0: true})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]jump{
		"KUBE-SERVICES": {{to: "KUBE-SVC-A", dst: [4]byte{10, 96, 0, 10}}},
		"KUBE-SVC-A":    {{to: "KUBE-SEP-B"}, {to: "KUBE-SEP-C"}},
		"KUBE-SEP-B":    nil,
		"KUBE-SEP-C":    nil,
		"ERROR":         nil,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("parseEntries:\n got %v\nwant %v", got, want)
	}
	if _, err := parseEntries(bl.b[:len(bl.b)-10], nil); err == nil {
		t.Error("a truncated blob parsed without error")
	}
}

func TestVerdictChainReadsTheChainOfAMapValue(t *testing.T) {
	// NFTA_VERDICT_CODE then NFTA_VERDICT_CHAIN, as the kernel nests them.
	code := []byte{8, 0, 1, 0, 0xff, 0xff, 0xff, 0xfc}
	name := "endpoint-ABC-ns/svc/tcp/http__172.16.0.1/8080\x00"
	chain := append(binary.NativeEndian.AppendUint16(nil, uint16(4+len(name))), 2, 0)
	for _, tc := range []struct {
		name string
		val  []byte
		want string
	}{
		{name: "a goto value gives its chain, whatever it is called", val: append(append(slices.Clone(code), chain...), name...), want: "endpoint-ABC-ns/svc/tcp/http__172.16.0.1/8080"},
		{name: "a chain not named endpoint- is read too", val: append(append(slices.Clone(code), 15, 0, 2, 0), "service-X\x00\x00"...), want: "service-X"},
		{name: "an accept or drop value has no chain", val: code},
		{name: "a truncated value gives nothing rather than garbage", val: []byte{1, 2, 3}},
		{name: "a length past the end gives nothing", val: []byte{200, 0, 2, 0, 'x'}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := verdictChain(tc.val); got != tc.want {
				t.Errorf("verdictChain = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestRuleDNATsReadsTheAddressAndPortRegisters(t *testing.T) {
	ip := func(a ...byte) []byte { return a }
	port := func(p uint16) []byte { return binary.BigEndian.AppendUint16(nil, p) }
	dnat := &expr.NAT{Type: expr.NATTypeDestNAT, Family: 2, RegAddrMin: 1, RegProtoMin: 2}
	for _, tc := range []struct {
		name  string
		exprs []expr.Any
		want  []string
	}{
		{
			name:  "a dnat to ip:port gives ip/port",
			exprs: []expr.Any{&expr.Immediate{Register: 1, Data: ip(172, 16, 0, 1)}, &expr.Immediate{Register: 2, Data: port(8080)}, dnat},
			want:  []string{"172.16.0.1/8080"},
		},
		{
			name: "registers are matched by number, not by order",
			exprs: []expr.Any{&expr.Immediate{Register: 9, Data: port(80)}, &expr.Immediate{Register: 8, Data: ip(10, 0, 0, 7)},
				&expr.NAT{Type: expr.NATTypeDestNAT, Family: 2, RegAddrMin: 8, RegProtoMin: 9}},
			want: []string{"10.0.0.7/80"},
		},
		{
			name:  "a dnat that keeps the port gives the address alone",
			exprs: []expr.Any{&expr.Immediate{Register: 1, Data: ip(172, 16, 0, 1)}, &expr.NAT{Type: expr.NATTypeDestNAT, Family: 2, RegAddrMin: 1}},
			want:  []string{"172.16.0.1"},
		},
		{
			name:  "an snat is not an endpoint",
			exprs: []expr.Any{&expr.Immediate{Register: 1, Data: ip(172, 16, 0, 1)}, &expr.NAT{Type: expr.NATTypeSourceNAT, Family: 2, RegAddrMin: 1}},
		},
		{
			name:  "masquerade and a plain jump are not endpoints",
			exprs: []expr.Any{&expr.Masq{FullyRandom: true}, &expr.Verdict{Kind: expr.VerdictJump, Chain: "mark-for-masquerade"}},
		},
		{
			name:  "a dnat whose address register was never loaded is skipped",
			exprs: []expr.Any{&expr.Immediate{Register: 2, Data: port(8080)}, dnat},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := ruleDNATs(tc.exprs); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("ruleDNATs = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestIPTablesTokenIsUpstreamsEndpointChainName(t *testing.T) {
	// Upstream: "KUBE-SEP-" + base32(sha256(spn + proto + ip:port))[:16].
	// That it equals upstream's is proven in the kernel test, where
	// upstream's changes are found by it; here its shape and uniqueness.
	k := &iptablesKernel{}
	got := k.token(&service{name: "svc-00001"}, "172.16.0.1")
	if len(got) != len("KUBE-SEP-")+16 || got[:9] != "KUBE-SEP-" {
		t.Fatalf("token = %q, want KUBE-SEP- and 16 base32 characters", got)
	}
	if other := k.token(&service{name: "svc-00002"}, "172.16.0.1"); other == got {
		t.Errorf("two Services share endpoint chain %s", got)
	}
}

func TestNFTProbePairsAnIntervalMapsElementsIntoRanges(t *testing.T) {
	key := func(k uint32) []byte { return binary.BigEndian.AppendUint32(nil, k) }
	start := func(k uint32, v byte) nftables.SetElement { return nftables.SetElement{Key: key(k), Val: []byte{v}} }
	end := func(k uint32) nftables.SetElement { return nftables.SetElement{Key: key(k), IntervalEnd: true} }
	for _, tc := range []struct {
		name  string
		elems []nftables.SetElement
		want  []mapRange
	}{
		{
			name:  "adjacent ranges share a key, dumped highest first as the kernel does",
			elems: []nftables.SetElement{end(300), start(200, 'c'), end(200), start(100, 'b'), end(100), start(0, 'a')},
			want:  []mapRange{{from: 0, to: 100, val: []byte{'a'}}, {from: 100, to: 200, val: []byte{'b'}}, {from: 200, to: 300, val: []byte{'c'}}},
		},
		{
			name:  "a gap between ranges maps nothing",
			elems: []nftables.SetElement{start(0, 'a'), end(10), start(131072, 'b'), end(131080)},
			want:  []mapRange{{from: 0, to: 10, val: []byte{'a'}}, {from: 131072, to: 131080, val: []byte{'b'}}},
		},
		{
			name:  "a range whose end is at its own start is empty and maps nothing",
			elems: []nftables.SetElement{start(0, 'a'), end(10), start(50, 'e'), end(50), start(60, 'b'), end(70)},
			want:  []mapRange{{from: 0, to: 10, val: []byte{'a'}}, {from: 60, to: 70, val: []byte{'b'}}},
		},
		{
			name:  "a range with no end runs to the top of the key space",
			elems: []nftables.SetElement{start(0xffff0000, 'z')},
			want:  []mapRange{{from: 0xffff0000, to: 1 << 32, val: []byte{'z'}}},
		},
		{
			name:  "a stray end and keys not 4 bytes long are skipped",
			elems: []nftables.SetElement{end(5), {Key: []byte{1, 2}, Val: []byte{'x'}}, start(7, 'a'), end(9)},
			want:  []mapRange{{from: 7, to: 9, val: []byte{'a'}}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := mapRanges(tc.elems); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("mapRanges = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestNFTProbeMapDNATsTakeTheElementsOfTheirOwnSlot(t *testing.T) {
	// The expressions nft writes for `dnat ip to numgen random mod 65536
	// offset 131072 map @endpoints-0`; the byteorder between numgen and
	// lookup never reaches us (the library drops it).
	numgen := &expr.Numgen{Register: 1, Modulus: 65536, Offset: 131072, Type: 1}
	lookup := &expr.Lookup{SourceRegister: 1, DestRegister: 1, IsDestRegSet: true, SetName: "endpoints-0"}
	dnat := &expr.NAT{Type: expr.NATTypeDestNAT, Family: 2, RegAddrMin: 1, RegProtoMin: 9}
	for _, tc := range []struct {
		name  string
		exprs []expr.Any
		want  []mapDNAT
	}{
		{name: "a numgen lookup into the dnat's registers is read with its slot", exprs: []expr.Any{numgen, lookup, dnat},
			want: []mapDNAT{{set: "endpoints-0", modulus: 65536, offset: 131072, portAt: 4}}},
		{name: "a dnat that keeps the port has no port in the value", exprs: []expr.Any{numgen, lookup, &expr.NAT{Type: expr.NATTypeDestNAT, RegAddrMin: 1}},
			want: []mapDNAT{{set: "endpoints-0", modulus: 65536, offset: 131072, portAt: -1}}},
		{name: "a verdict map lookup is not a dnat", exprs: []expr.Any{numgen, &expr.Lookup{SourceRegister: 1, IsDestRegSet: true, SetName: "vmap"}, dnat}},
		{name: "a lookup not keyed by a numgen is not ours", exprs: []expr.Any{&expr.Payload{DestRegister: 1, Len: 4}, lookup, dnat}},
		{name: "a register loaded again after the lookup is not the map's", exprs: []expr.Any{numgen, lookup, &expr.Immediate{Register: 1, Data: []byte{10, 0, 0, 1}}, dnat}},
		{name: "an snat from the map is no endpoint", exprs: []expr.Any{numgen, lookup, &expr.NAT{Type: expr.NATTypeSourceNAT, RegAddrMin: 1}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := ruleMapDNATs(tc.exprs); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("ruleMapDNATs = %+v, want %+v", got, tc.want)
			}
		})
	}

	val := func(a, b, c, d byte, port uint16) []byte {
		return binary.BigEndian.AppendUint16([]byte{a, b, c, d}, port) // the kernel pads the port to 4 bytes; unread
	}
	key := func(k uint32) []byte { return binary.BigEndian.AppendUint32(nil, k) }
	elems := []nftables.SetElement{
		{Key: key(0), Val: val(10, 0, 0, 1, 8080)},
		{Key: key(65536), IntervalEnd: true},
		{Key: key(65536), Val: val(10, 2, 0, 1, 80)}, // the next slot, starting where this one ends
		{Key: key(98304), IntervalEnd: true},
		{Key: key(131072), Val: val(10, 1, 0, 1, 80)},
		{Key: key(163840), IntervalEnd: true},
		{Key: key(163840), Val: val(10, 1, 0, 2, 80)},
		{Key: key(196608), IntervalEnd: true},
	}
	for _, tc := range []struct {
		name string
		m    mapDNAT
		want []string
	}{
		{name: "slot 0 holds its one element and not the next slot's", m: mapDNAT{modulus: 65536, offset: 0, portAt: 4}, want: []string{"10.0.0.1/8080"}},
		{name: "slot 2 holds its two elements", m: mapDNAT{modulus: 65536, offset: 131072, portAt: 4}, want: []string{"10.1.0.1/80", "10.1.0.2/80"}},
		{name: "a dnat that keeps the port gives addresses alone", m: mapDNAT{modulus: 65536, offset: 131072, portAt: -1}, want: []string{"10.1.0.1", "10.1.0.2"}},
		{name: "a slot with no elements holds nothing", m: mapDNAT{modulus: 65536, offset: 196608, portAt: 4}},
		{name: "a port register past the value names no target", m: mapDNAT{modulus: 65536, offset: 0, portAt: 8}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.m.targets(elems)
			slices.Sort(got)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("targets = %q, want %q", got, tc.want)
			}
		})
	}
}
