package bench

import (
	"encoding/binary"
	"reflect"
	"testing"
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

func TestVerdictChainsFindsEveryEndpointChainInAMapValue(t *testing.T) {
	// NFTA_VERDICT_CODE then NFTA_VERDICT_CHAIN, as the kernel nests them.
	val := append([]byte{8, 0, 1, 0, 0xff, 0xff, 0xff, 0xfc, 40, 0, 2, 0}, "endpoint-ABC-ns/svc/tcp/http__172.16.0.1/8080\x00"...)
	got := verdictChains(val)
	if want := []string{"endpoint-ABC-ns/svc/tcp/http__172.16.0.1/8080"}; !reflect.DeepEqual(got, want) {
		t.Errorf("verdictChains = %q, want %q", got, want)
	}
	if got := verdictChains([]byte{1, 2, 3}); got != nil {
		t.Errorf("verdictChains of a value with no chain = %q, want none", got)
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
