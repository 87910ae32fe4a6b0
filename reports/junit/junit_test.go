package junit

import (
	"bytes"
	"encoding/xml"
	"path/filepath"
	"strings"
	"testing"

	"github.com/proxyproof/proxyproof/reports/run"
)

func TestJUnitMergesModesAndSurvivesAnXMLRoundTrip(t *testing.T) {
	r, err := run.Load(filepath.Join("..", "testdata", "runs", "before"))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := Write(&buf, FromRun(r)); err != nil {
		t.Fatal(err)
	}
	var back TestSuites
	if err := xml.Unmarshal(buf.Bytes(), &back); err != nil {
		t.Fatalf("the XML we wrote does not parse: %v", err)
	}
	if back.Tests != 27 || back.Failures != 2 || back.Skipped != 4 || len(back.Suites) != 3 {
		t.Errorf("totals tests=%d failures=%d skipped=%d suites=%d, want 27/2/4 over 3 modes", back.Tests, back.Failures, back.Skipped, len(back.Suites))
	}
	names := map[string]bool{}
	for _, s := range back.Suites {
		for _, c := range s.Cases {
			if names[c.Name] {
				t.Errorf("two cases named %q: CI systems would merge them", c.Name)
			}
			names[c.Name] = true
			if c.Failure != nil && !strings.HasPrefix(c.Failure.Text, "probe: ") {
				t.Errorf("failure of %s does not start with its probe: %q", c.Name, c.Failure.Text)
			}
		}
	}
	nft := back.Suites[1]
	if nft.Name != "nftables" || nft.Failures != 1 || nft.Properties[0] != (Property{"mode", "nftables"}) {
		t.Errorf("nftables suite = %s failures=%d props=%v", nft.Name, nft.Failures, nft.Properties)
	}
}
