package ginkgo

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const fixture = "../testdata/runs/before/nftables/ginkgo.json"

func TestLoadReadsARealGinkgoReport(t *testing.T) {
	reports, err := Load(fixture)
	if err != nil {
		t.Fatal(err)
	}
	if len(reports) != 1 || reports[0].SuiteDescription != "Services" || len(reports[0].SpecReports) == 0 {
		t.Fatalf("got %d reports, want the one Services suite with specs", len(reports))
	}
	var failed *SpecReport
	for i, s := range reports[0].SpecReports {
		if s.State == StateFailed {
			failed = &reports[0].SpecReports[i]
		}
	}
	if failed == nil {
		t.Fatal("the nftables fixture has a failed spec; none decoded as failed")
	}
	if got := Feature(*failed); got != "NodePort" {
		t.Errorf("Feature = %q, want NodePort from the feature:NodePort label", got)
	}
	if got := Reason(*failed); !strings.Contains(got, "Timed out after") || !strings.Contains(got, "192.168.50.3:30080") {
		t.Errorf("Reason = %q, want Gomega's timeout line joined with the probe it described", got)
	}
	ents, err := DecodeEntries(*failed)
	if err != nil || len(ents.Probes) != 1 || len(ents.Dumps) != 1 || ents.Probes[0].Node != "node-2" {
		t.Errorf("entries = %+v, %v; want one probe on node-2 and one dump", ents, err)
	}
	tl := Timeline(*failed)
	if len(tl) == 0 || !tl[len(tl)-1].Failure || tl[0].Kind != "By" {
		t.Errorf("timeline = %+v, want By steps first and the failure last", tl)
	}
}

func TestLoadNamesTheFileAndWhatIsWrong(t *testing.T) {
	good, err := os.ReadFile(fixture)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		content string
		want    []string
	}{
		{"an empty file", "  \n", []string{"file is empty"}},
		{"a truncated report says where it broke", string(good[:3000]), []string{"invalid JSON at line", "unexpected end of JSON input"}},
		{"a text file is not JSON", "FAIL: suite crashed\n", []string{"not JSON", "FAIL: suite"}},
		{"a JSON object that is not a report", `{"hello": "world"}`, []string{"not a Ginkgo v2 report"}},
		{"a wrong type names the field", `[{"SuiteDescription": "s", "SpecReports": [{"State": 3}]}]`, []string{"SpecReports.State", "line 1"}},
		{"an unknown spec state", `[{"SuiteDescription": "s", "SpecReports": [{"LeafNodeText": "x", "State": "exploded"}]}]`, []string{`State "exploded"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "ginkgo.json")
			if err := os.WriteFile(path, []byte(tt.content), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := Load(path)
			if err == nil {
				t.Fatal("Load succeeded on a bad report")
			}
			for _, w := range append(tt.want, path) {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
	if _, err := Load(filepath.Join(t.TempDir(), "missing.json")); err == nil || !strings.Contains(err.Error(), "missing.json") {
		t.Errorf("missing file: %v, want an error naming it", err)
	}
}

func TestDecodeEntriesRejectsAMalformedFigureNamingTheSpec(t *testing.T) {
	s := SpecReport{LeafNodeType: "It", LeafNodeText: "records", ReportEntries: []ReportEntry{{Name: "figure:x"}}}
	s.ReportEntries[0].Value.AsJSON = `{"name":"x","values":[1]}`
	_, err := DecodeEntries(s)
	if err == nil || !strings.Contains(err.Error(), `spec "records"`) || !strings.Contains(err.Error(), "no unit") {
		t.Errorf("DecodeEntries = %v, want an error naming the spec and the missing unit", err)
	}
}
