package bench

import (
	"bytes"
	"strings"
	"testing"
)

func TestParseScales(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     []Scale
		wantErr  bool
	}{
		{name: "the issue's default reads as two scales", in: "2000x5,10000x10", want: []Scale{{2000, 5}, {10000, 10}}},
		{name: "spaces around a scale are ignored", in: " 200x5 ", want: []Scale{{200, 5}}},
		{name: "a missing endpoint count is refused", in: "2000", wantErr: true},
		{name: "zero Services are refused", in: "0x5", wantErr: true},
		{name: "more endpoints than the address pool holds are refused", in: "100000x10", wantErr: true},
		{name: "an empty list is refused", in: "", wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseScales(tc.in)
			if (err != nil) != tc.wantErr {
				t.Fatalf("ParseScales(%q) error = %v, want error %v", tc.in, err, tc.wantErr)
			}
			if !tc.wantErr && (len(got) != len(tc.want) || got[0] != tc.want[0] || got[len(got)-1] != tc.want[len(tc.want)-1]) {
				t.Fatalf("ParseScales(%q) = %v, want %v", tc.in, got, tc.want)
			}
		})
	}
}

func TestParseCases(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     string
		wantErr  bool
	}{
		{name: "every mode and backend reads back the same", in: "iptables/nft,iptables/legacy,nftables,ipvs", want: "iptables/nft iptables/legacy nftables ipvs"},
		{name: "iptables without a backend is refused: the backend is the point", in: "iptables", wantErr: true},
		{name: "a backend on nftables is refused", in: "nftables/nft", wantErr: true},
		{name: "an unknown mode is refused", in: "userspace", wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseCases(tc.in)
			if (err != nil) != tc.wantErr {
				t.Fatalf("ParseCases(%q) error = %v, want error %v", tc.in, err, tc.wantErr)
			}
			var names []string
			for _, c := range got {
				names = append(names, c.String())
			}
			if !tc.wantErr && strings.Join(names, " ") != tc.want {
				t.Fatalf("ParseCases(%q) = %v, want %s", tc.in, names, tc.want)
			}
		})
	}
}

func TestPercentileIsTheNearestRank(t *testing.T) {
	v := sortedCopy([]float64{5, 1, 4, 2, 3, 6, 7, 8, 9, 10})
	if got := percentile(v, 50); got != 5 {
		t.Errorf("p50 of 1..10 = %v, want 5", got)
	}
	if got := percentile(v, 99); got != 10 {
		t.Errorf("p99 of 1..10 = %v, want 10", got)
	}
	if got := percentile(nil, 99); got != 0 {
		t.Errorf("p99 of nothing = %v, want 0", got)
	}
}

func TestTableGivesTheRatioAndSaysWhatDidNotFinish(t *testing.T) {
	rows := []Row{
		{Mode: "nftables", Proxier: "ours", Services: 10, Endpoints: 2, FirstSyncS: 1, ChangeP99Ms: 10, RSSMB: 50},
		{Mode: "nftables", Proxier: "upstream", Services: 10, Endpoints: 2, FirstSyncS: 2, ChangeP99Ms: 40, RSSMB: 100},
		{Mode: "iptables", Backend: "nft", Proxier: "ours", Services: 10, Endpoints: 2, FirstSyncS: 3, RSSMB: 60},
		{Mode: "iptables", Backend: "nft", Proxier: "upstream", Services: 10, Endpoints: 2, DidNotFinish: true, RSSMB: 200},
		{Mode: "ipvs", Proxier: "ours", Services: 10, Endpoints: 2, NotMeasured: true, Reason: "not measured: no ip_vs"},
		{Mode: "ipvs", Proxier: "upstream", Services: 10, Endpoints: 2, NotMeasured: true, Reason: "not measured: no ip_vs"},
	}
	var b bytes.Buffer
	if err := WriteTable(&b, rows, "ours", "upstream"); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"first sync 1.00 s 2.00 s 0.50",
		"change p99 10.0 ms 40.0 ms 0.25",
		"first sync 3.00 s did not finish upstream did not finish",
		"rss 60.0 MB 200 MB 0.30",
		"ipvs not measured: no ip_vs",
	} {
		if !strings.Contains(squeeze(out), want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
}

// squeeze turns runs of spaces into one, so the test ignores alignment.
func squeeze(s string) string {
	var lines []string
	for _, l := range strings.Split(s, "\n") {
		lines = append(lines, strings.Join(strings.Fields(l), " "))
	}
	return strings.Join(lines, "\n")
}
