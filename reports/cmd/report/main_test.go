package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const testdata = "../../testdata/runs"

func TestReportWritesPageJUnitAndBundle(t *testing.T) {
	out := t.TempDir()
	var stdout bytes.Buffer
	if err := Main([]string{"--out", out, filepath.Join(testdata, "before")}, &stdout); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{ReportFile, JUnitFile, BundleFile} {
		if st, err := os.Stat(filepath.Join(out, f)); err != nil || st.Size() == 0 {
			t.Errorf("%s: %v", f, err)
		}
	}
	if !strings.Contains(stdout.String(), "nftables: 7/9 passed, 1 failed, 1 pending") {
		t.Errorf("stdout lacks the verdicts:\n%s", stdout.String())
	}
	if ents, _ := os.ReadDir(out); len(ents) != 3 {
		t.Errorf("output has %d entries, want exactly the 3 files (no temporaries)", len(ents))
	}
}

func TestACorruptRunWritesNothingAndNamesTheFile(t *testing.T) {
	out := t.TempDir()
	err := Main([]string{"--out", out, filepath.Join(testdata, "corrupt")}, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), filepath.Join("corrupt", "iptables", "ginkgo.json")) || !strings.Contains(err.Error(), "invalid JSON at line") {
		t.Fatalf("err = %v, want one naming corrupt/iptables/ginkgo.json and the JSON problem", err)
	}
	if ents, _ := os.ReadDir(out); len(ents) != 0 {
		t.Errorf("a corrupt run left %d files (a half report)", len(ents))
	}
}

func TestCompareWritesThePageAndPrintsTheDiff(t *testing.T) {
	page := filepath.Join(t.TempDir(), "compare.html")
	var stdout bytes.Buffer
	err := Main([]string{"compare", "--out", page, filepath.Join(testdata, "before"), filepath.Join(testdata, "after")}, &stdout)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stdout.String(), "specs that flipped: 2") {
		t.Errorf("stdout:\n%s", stdout.String())
	}
	b, err := os.ReadFile(page)
	if err != nil || !bytes.Contains(b, []byte("What changed: e2e-before → e2e-after")) {
		t.Errorf("compare page: %v", err)
	}
}

func TestUsageErrorsSayHowToCallIt(t *testing.T) {
	for _, args := range [][]string{nil, {"a", "b"}, {"compare", "only-one"}} {
		if err := Main(args, &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "usage") {
			t.Errorf("Main(%q) = %v, want a usage error", args, err)
		}
	}
}
