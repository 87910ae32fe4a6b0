package ipvs

import (
	"strings"
	"testing"
)

// What a 6.1 kernel printed for one held connection through a ClusterIP,
// one closing, and an IPv6 one (ip_vs_conn_seq_show's formats).
const procConnSample = `Pro FromIP   FPrt ToIP     TPrt DestIP   DPrt State       Expires PEName PEData
TCP 0AF40105 B6C2 0A600001 0050 0AF40203 1F90 ESTABLISHED     899
TCP 0AF40105 B6C4 0A600001 0050 0AF40102 1F90 TIME_WAIT       118
TCP fd00:0000:0000:0000:0000:0000:0000:0005 9C40 fd00:0000:0000:0000:0000:0000:0096:0001 0050 fd00:0000:0000:0000:0000:0000:0244:0002 1F90 ESTABLISHED     850
`

func TestTheConnectionTableNamesWhoIsStillConnected(t *testing.T) {
	conns, err := parseProcConns(procConnSample)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range conns {
		got = append(got, c.String())
	}
	want := []string{
		"TCP 10.244.1.5:46786 -> 10.96.0.1:80 via 10.244.2.3:8080 ESTABLISHED (899 s left)",
		"TCP 10.244.1.5:46788 -> 10.96.0.1:80 via 10.244.1.2:8080 TIME_WAIT (118 s left)",
		"TCP [fd00::5]:40000 -> [fd00::96:1]:80 via [fd00::244:2]:8080 ESTABLISHED (850 s left)",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("parsed\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestAConnectionTableThatIsNotOneIsRefusedWithTheLine(t *testing.T) {
	for text, want := range map[string]string{
		"IP Virtual Server version 1.2.1\n":                                              "not an IPVS connection table",
		procConnSample + "TCP 0AF4010 B6C2\n":                                            `line 5 "TCP 0AF4010 B6C2"`,
		procConnSample + "TCP 0AF4010Z B6C2 0A600001 0050 0AF40203 1F90 ESTABLISHED 1\n": `address "0AF4010Z"`,
	} {
		if _, err := parseProcConns(text); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("parse of %q: err %v, want it to say %q", text, err, want)
		}
	}
}
