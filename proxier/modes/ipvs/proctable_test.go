package ipvs

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const procHeader = "IP Virtual Server version 1.2.1 (size=4096)\n" +
	"Prot LocalAddress:Port Scheduler Flags\n" +
	"  -> RemoteAddress:Port Forward Weight ActiveConn InActConn\n"

// procDump lists a destTable as "tcp/10.96.0.1:80 rr persistent -> dest
// fwd/weight/active/inactive ..." lines, sorted.
func procDump(t *destTable) []string {
	var out []string
	for _, s := range t.services {
		out = append(out, procLine(s.key.String(), s))
	}
	for m, s := range t.marks {
		out = append(out, procLine(fmt.Sprintf("fwmark/%d", m), s))
	}
	slices.Sort(out)
	return out
}

func procLine(name string, s *procService) string {
	line := name + " " + s.sched
	if s.persistent {
		line += " persistent"
	}
	line += " ->"
	for _, d := range s.dests {
		line += fmt.Sprintf(" %s af%d fwd%d/w%d/a%d/i%d", destKey(d), d.AddressFamily, d.ConnectionFlags, d.Weight, d.ActiveConnections, d.InactiveConnections)
	}
	return line
}

func TestParseProcIPVSReadsEveryKindOfVirtualServer(t *testing.T) {
	cases := []struct {
		name string
		body string
		want []string
	}{
		{"an empty table has no virtual servers", "", nil},
		{"an IPv4 virtual server keeps its real servers in order, with their figures",
			"TCP  0A600001:0050 rr \n" +
				"  -> 0A000105:1F90      Masq    1      0          0         \n" +
				"  -> 0A000104:1F90      Masq    3      12         4         \n",
			[]string{"tcp/10.96.0.1:80 rr -> 10.0.1.5:8080 af2 fwd0/w1/a0/i0 10.0.1.4:8080 af2 fwd0/w3/a12/i4"}},
		{"a virtual server without real servers is there, with none",
			"UDP  0A60000A:0035 wrr \n" +
				"SCTP  0A60000B:0BB8 sh \n" +
				"  -> 0A000001:0BB8      Route   0      0          0         \n",
			[]string{"sctp/10.96.0.11:3000 sh -> 10.0.0.1:3000 af2 fwd3/w0/a0/i0", "udp/10.96.0.10:53 wrr ->"}},
		{"IPv6 addresses are bracketed, in full",
			"TCP  [fd00:0000:0000:0000:0000:0000:0060:0001]:01BB lc \n" +
				"  -> [fd00:0010:0244:0001:0000:0000:0000:000a]:20FB      Masq    1      0          2         \n" +
				"  -> [0000:0000:0000:0000:0000:ffff:0a00:0001]:20FB      Tunnel  1      0          0         \n",
			[]string{"tcp/[fd00::60:1]:443 lc -> [fd00:10:244:1::a]:8443 af10 fwd0/w1/a0/i2 10.0.0.1:8443 af2 fwd2/w1/a0/i0"}},
		{"a persistent virtual server is keyed the same",
			"TCP  0A600002:0050 rr persistent 10800 FFFFFFFF\n" +
				"  -> 0A000101:1F90      Local   2      0          0         \n",
			[]string{"tcp/10.96.0.2:80 rr persistent -> 10.0.1.1:8080 af2 fwd1/w2/a0/i0"}},
		{"a one-packet virtual server is keyed the same",
			"UDP  0A600003:0035 rr ops \n",
			[]string{"udp/10.96.0.3:53 rr ->"}},
		{"a firewall-mark virtual server is kept apart",
			"FWM  00000017 rr persistent 300 FFFFFFFF\n" +
				"  -> 0A000101:0000      Masq    1      0          0         \n" +
				"TCP  0A600001:0050 rr \n",
			[]string{"fwmark/23 rr persistent -> 10.0.1.1:0 af2 fwd0/w1/a0/i0", "tcp/10.96.0.1:80 rr ->"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := parseProcIPVS("ip_vs", procHeader+c.body)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(c.want, procDump(got)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseProcIPVSNamesTheLineItCannotRead(t *testing.T) {
	cases := []struct {
		name, body, want string
	}{
		{"a file that is not the IPVS table", "Inter-|   Receive\n", `ip_vs line 1 "Inter-|   Receive": not an IPVS table`},
		{"a real server before any virtual server", "  -> 0A000105:1F90      Masq    1      0          0\n", `ip_vs line 4 "  -> 0A000105:1F90      Masq    1      0          0": real server before any virtual server`},
		{"a short virtual server line", "TCP  0A600001:0050\n", `ip_vs line 4 "TCP  0A600001:0050": want protocol, address and scheduler`},
		{"an unknown protocol", "QUIC  0A600001:0050 rr\n", `line 4 "QUIC  0A600001:0050 rr": unknown protocol "QUIC"`},
		{"a dotted IPv4 address", "TCP  10.96.0.1:0050 rr\n", `line 4 "TCP  10.96.0.1:0050 rr": virtual server address: "10.96.0.1:0050": want 8 hex digits of IPv4 address`},
		{"a decimal port", "TCP  0A600001:80 rr\n", `virtual server address: "0A600001:80": want ADDRESS:PORT with a 4-digit hex port`},
		{"an unbracketed IPv6 address", "TCP  fd00::1:0050 rr\n", `virtual server address: "fd00::1:0050": want 8 hex digits of IPv4 address`},
		{"an IPv4 address in brackets", "TCP  [10.96.0.1]:0050 rr\n", `"[10.96.0.1]:0050": want a bracketed IPv6 address`},
		{"a firewall mark of zero", "FWM  00000000 rr\n", `line 4 "FWM  00000000 rr": firewall mark "00000000": want 8 hex digits, not 0`},
		{"unknown flags", "TCP  0A600001:0050 rr sticky\n", `flags "sticky": want none, ops or persistent TIMEOUT NETMASK`},
		{"a persistence without its netmask", "TCP  0A600001:0050 rr persistent 10800\n", `flags "persistent 10800": want none, ops or persistent TIMEOUT NETMASK`},
		{"a real server without its connections",
			"TCP  0A600001:0050 rr\n  -> 0A000105:1F90      Masq    1\n",
			`ip_vs line 5 "  -> 0A000105:1F90      Masq    1": real server: want address:port, forward, weight, active and inactive connections, got 3 fields`},
		{"an unknown forwarding method",
			"TCP  0A600001:0050 rr\n  -> 0A000105:1F90      Nat     1      0          0\n",
			`line 5 "  -> 0A000105:1F90      Nat     1      0          0": real server 10.0.1.5:8080: unknown forwarding method "Nat"`},
		{"a weight that is no number",
			"TCP  0A600001:0050 rr\n  -> 0A000105:1F90      Masq    x      0          0\n",
			`real server 10.0.1.5:8080: weight "x": `},
		{"inactive connections that are no number",
			"TCP  0A600001:0050 rr\n  -> 0A000105:1F90      Masq    1      0          -\n",
			`real server 10.0.1.5:8080: inactive connections "-": `},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			body := procHeader + c.body
			if strings.HasPrefix(c.name, "a file that") {
				body = c.body
			}
			_, err := parseProcIPVS("ip_vs", body)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %v, want one containing %s", err, c.want)
			}
		})
	}
	if _, err := parseProcIPVS("ip_vs", ""); err == nil || err.Error() != "ip_vs: empty" {
		t.Errorf("an empty file: error %v, want ip_vs: empty", err)
	}
}

func TestDestTableWithoutAVirtualServerSaysSo(t *testing.T) {
	tab, err := parseProcIPVS("ip_vs", procHeader+"TCP  0A600001:0050 rr\n")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := tab.dests(vsKey{netip.MustParseAddr("10.96.0.1"), 80, 6}); !ok {
		t.Errorf("tcp/10.96.0.1:80 not found")
	}
	for _, k := range []vsKey{{netip.MustParseAddr("10.96.0.1"), 80, 17}, {netip.MustParseAddr("10.96.0.1"), 81, 6}} {
		if _, ok := tab.dests(k); ok {
			t.Errorf("%s found in a table without it", k)
		}
	}
	if _, ok := (*destTable)(nil).dests(vsKey{netip.MustParseAddr("10.96.0.1"), 80, 6}); ok {
		t.Errorf("a nil table has a virtual server")
	}
}

// BenchmarkParseProcIPVS parses a table of 10,000 virtual servers with
// 10 real servers each, the size BenchmarkSync's 10000x10 reads.
func BenchmarkParseProcIPVS(b *testing.B) {
	var sb strings.Builder
	sb.WriteString(procHeader)
	for i := range 10000 {
		fmt.Fprintf(&sb, "TCP  0A60%04X:0050 rr \n", i)
		for j := range 10 {
			fmt.Fprintf(&sb, "  -> 0A64%04X:%04X      Masq    1      0          0         \n", i, 8000+j)
		}
	}
	text := sb.String()
	b.SetBytes(int64(len(text)))
	b.ResetTimer()
	for range b.N {
		t, err := parseProcIPVS("ip_vs", text)
		if err != nil || len(t.services) != 10000 {
			b.Fatalf("%v, %d virtual servers", err, len(t.services))
		}
	}
}
